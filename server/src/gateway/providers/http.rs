//! The HTTP exchange every provider shares: send, cap the body, classify the status, parse JSON.

use reqwest::header::RETRY_AFTER;
use serde_json::Value;

use super::ProviderError;
use crate::gateway::resilience::{is_transient_status, parse_retry_after};

/// The parts every HTTP provider has: its configured name, base URL and a client with the
/// call timeout.
#[derive(Debug)]
pub struct HttpEndpoint {
    pub name: String,
    pub base_url: String,
    pub http: reqwest::Client,
}

impl HttpEndpoint {
    pub fn new(name: &str, base_url: &str, timeout: std::time::Duration) -> HttpEndpoint {
        HttpEndpoint {
            name: name.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("a reqwest client with a timeout always builds"),
        }
    }

    /// `provider:model`, as every message names a model.
    pub fn who(&self, model: &str) -> String {
        format!("{}:{model}", self.name)
    }
}

/// An API key; its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Largest reply body read (a runaway server cannot exhaust memory).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Sends `call` and returns the JSON body of a successful reply with the time spent waiting on
/// the server (request sent to body received). `who` (`provider:model`) names the model in
/// every message; `error_message` digs the server's own explanation out of an error body.
pub async fn send_json(
    call: reqwest::RequestBuilder,
    who: &str,
    error_message: fn(&Value) -> Option<&str>,
) -> Result<(Value, std::time::Duration), ProviderError> {
    let started = std::time::Instant::now();
    let transient = |message: String, retry_after| ProviderError::Transient {
        message,
        retry_after,
    };
    let response = call.send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "could not be reached"
        };
        transient(format!("{who} {what}: {}", without_url(&e)), None)
    })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(transient(
            format!("{who}: reply larger than {MAX_BODY_BYTES} bytes"),
            None,
        ));
    }
    let bytes = response.bytes().await.map_err(|e| {
        transient(
            format!("{who}: reply body could not be read: {}", without_url(&e)),
            None,
        )
    })?;
    let upstream = started.elapsed();
    if bytes.len() > MAX_BODY_BYTES {
        return Err(transient(
            format!("{who}: reply larger than {MAX_BODY_BYTES} bytes"),
            None,
        ));
    }
    if !status.is_success() {
        let detail = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| error_message(&v).map(str::to_string))
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let message = format!("{who} answered {status}{detail}");
        return Err(if is_transient_status(status.as_u16()) {
            transient(message, retry_after)
        } else {
            ProviderError::Permanent { message }
        });
    }
    let body = serde_json::from_slice(&bytes)
        .map_err(|e| transient(format!("{who} sent a reply that is not JSON: {e}"), None))?;
    Ok((body, upstream))
}

/// A token count from a usage object (0 when absent).
pub fn tokens(usage: &Value, field: &str) -> u32 {
    usage[field].as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32
}

/// reqwest errors print the URL; the URL may carry credentials in odd setups, so drop it.
fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::ApiKey;
    use crate::gateway::providers::openai::OpenAiProvider;

    #[test]
    fn debug_output_never_shows_a_key() {
        let key = "sk-very-secret-value";
        assert!(!format!("{:?}", ApiKey(key.into())).contains(key));
        let provider = OpenAiProvider::new(
            "openai",
            "http://127.0.0.1:1/v1",
            Some(key.into()),
            std::time::Duration::from_secs(1),
        );
        assert!(!format!("{provider:?}").contains(key));
    }
}
