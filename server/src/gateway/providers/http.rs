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
        return Err(refused(status, &bytes, retry_after, who, error_message));
    }
    let body = serde_json::from_slice(&bytes)
        .map_err(|e| transient(format!("{who} sent a reply that is not JSON: {e}"), None))?;
    Ok((body, upstream))
}

/// The error for a reply with a failing `status`: the server's own explanation when its body
/// has one; transient or permanent by status.
fn refused(
    status: reqwest::StatusCode,
    bytes: &[u8],
    retry_after: Option<std::time::Duration>,
    who: &str,
    error_message: fn(&Value) -> Option<&str>,
) -> ProviderError {
    let detail = serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| error_message(&v).map(str::to_string))
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let message = format!("{who} answered {status}{detail}");
    if is_transient_status(status.as_u16()) {
        ProviderError::Transient {
            message,
            retry_after,
        }
    } else {
        ProviderError::Permanent { message }
    }
}

/// How a streamed reply is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (OpenAI, Anthropic): each event's `data` is one JSON message.
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
}

/// Sends a streaming `call` and hands each message's data to `on_data` as it arrives; returns
/// the time from sending to the last byte. The whole exchange is bounded by `timeout` (set on
/// the request) and by [`MAX_BODY_BYTES`]; a gap of `stall` with no data fails it as stalled.
/// A failing status is classified as in [`send_json`].
pub async fn send_stream(
    call: reqwest::RequestBuilder,
    who: &str,
    error_message: fn(&Value) -> Option<&str>,
    framing: Framing,
    limits: (std::time::Duration, std::time::Duration),
    mut on_data: impl FnMut(&str) -> Result<(), ProviderError>,
) -> Result<std::time::Duration, ProviderError> {
    use eventsource_stream::Eventsource;
    use futures::StreamExt;

    let (stall, timeout) = limits;
    let started = std::time::Instant::now();
    let transient = |message: String| ProviderError::Transient {
        message,
        retry_after: None,
    };
    let response = call.timeout(timeout).send().await.map_err(|e| {
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "could not be reached"
        };
        transient(format!("{who} {what}: {}", without_url(&e)))
    })?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response.bytes().await.unwrap_or_default();
        let bytes = &bytes[..bytes.len().min(MAX_BODY_BYTES)];
        return Err(refused(status, bytes, retry_after, who, error_message));
    }
    let read_error =
        |e: &dyn std::fmt::Display| transient(format!("{who}: the reply stream broke off: {e}"));
    let stalled = || {
        transient(format!(
            "{who} stalled: nothing received for {} s (retry.stall_secs)",
            stall.as_secs()
        ))
    };
    let mut received = 0usize;
    let mut count = |n: usize| {
        received += n;
        if received > MAX_BODY_BYTES {
            Err(transient(format!(
                "{who}: reply larger than {MAX_BODY_BYTES} bytes"
            )))
        } else {
            Ok(())
        }
    };
    match framing {
        Framing::Sse => {
            let mut events = response.bytes_stream().eventsource();
            loop {
                let next = tokio::time::timeout(stall, events.next())
                    .await
                    .map_err(|_| stalled())?;
                match next {
                    None => break,
                    Some(Err(e)) => return Err(read_error(&e)),
                    Some(Ok(event)) => {
                        count(event.data.len())?;
                        on_data(&event.data)?;
                    }
                }
            }
        }
        Framing::Ndjson => {
            let mut chunks = response.bytes_stream();
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let next = tokio::time::timeout(stall, chunks.next())
                    .await
                    .map_err(|_| stalled())?;
                let chunk = match next {
                    None => break,
                    Some(Err(e)) => return Err(read_error(&e)),
                    Some(Ok(chunk)) => chunk,
                };
                count(chunk.len())?;
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line);
                    if !line.trim().is_empty() {
                        on_data(line.trim())?;
                    }
                }
            }
            let rest = String::from_utf8_lossy(&pending);
            if !rest.trim().is_empty() {
                on_data(rest.trim())?;
            }
        }
    }
    Ok(started.elapsed())
}

/// A streamed reply being put back together, one message at a time, into the body a whole
/// reply would have had.
pub trait Reassemble: Default {
    /// Adds one message's data; `true` when it carried output.
    fn add(&mut self, data: &str, who: &str) -> Result<bool, ProviderError>;
    /// Pieces of output received so far.
    fn count(&self) -> u32;
    /// The whole reply; an error when the stream ended before the reply did.
    fn body(self, who: &str) -> Result<Value, ProviderError>;
}

/// Sends `call` for one whole reply, or, with `stream`, streams it (`framing`), reporting
/// progress and reassembling it with `P`. Either way: the reply's body and the time spent
/// waiting on the server.
pub async fn exchange<P: Reassemble>(
    call: reqwest::RequestBuilder,
    who: &str,
    error_message: fn(&Value) -> Option<&str>,
    stream: Option<super::Streaming<'_>>,
    framing: Framing,
) -> Result<(Value, std::time::Duration), ProviderError> {
    let Some(stream) = stream else {
        return send_json(call, who, error_message).await;
    };
    let mut pieces = P::default();
    let limits = (stream.stall, stream.timeout);
    let upstream = send_stream(call, who, error_message, framing, limits, |data| {
        if pieces.add(data, who)? {
            (stream.progress)(pieces.count());
        }
        Ok(())
    })
    .await?;
    Ok((pieces.body(who)?, upstream))
}

/// One streamed message parsed as JSON (a garbled one is transient, like a garbled reply).
pub fn stream_json(data: &str, who: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(data).map_err(|e| ProviderError::Transient {
        message: format!("{who} streamed a message that is not JSON: {e}"),
        retry_after: None,
    })
}

/// A stream that closed before the reply said it was finished.
pub fn ended_early(who: &str) -> ProviderError {
    ProviderError::Transient {
        message: format!("{who}: the reply stream ended before the reply did"),
        retry_after: None,
    }
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
