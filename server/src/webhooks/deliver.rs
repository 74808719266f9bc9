//! One delivery to one webhook: sign, POST, retry what retrying can fix with exponential backoff
//! and full jitter (the gateway's [`next_step`]), and say how it ended.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use app::events::Event;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::config::gateway::RetryConfig;
use crate::gateway::resilience::{Next, is_transient_status, next_step, parse_retry_after};

use super::sign::signature;

/// A webhook ready to deliver to: its resolved secret and limits, and the shared client.
pub struct Hook {
    /// How the log names it (never the URL, whose path or query may carry a token).
    pub name: String,
    url: Url,
    /// Kept only here, for signing; never logged or recorded.
    secret: Vec<u8>,
    timeout: Duration,
    /// Backoff, attempts (as retries after the first) and the longest `Retry-After` honoured.
    policy: RetryConfig,
    client: Client,
}

/// How a delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered {
        attempts: u32,
        status: u16,
        duration_ms: u64,
    },
    /// Attempts ran out, the answer cannot be fixed by retrying, or the process stopped.
    Failed {
        attempts: u32,
        status: Option<u16>,
        error: String,
    },
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("the request failed: {0}")]
    Request(String),
    #[error("answered {text}")]
    Status {
        status: u16,
        /// `503 Service Unavailable`.
        text: String,
        retry_after: Option<Duration>,
    },
}

impl AttemptError {
    /// Network failures, timeouts and 408, 425, 429 and 5xx answers may pass; a redirect or
    /// another 4xx (a wrong URL, a refused signature) will not.
    fn retryable(&self) -> bool {
        match self {
            AttemptError::Status { status, .. } => is_transient_status(*status),
            _ => true,
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            AttemptError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl Hook {
    /// A webhook from its checked configuration and its secret.
    pub fn new(config: &WebhookConfig, url: Url, secret: Vec<u8>, client: Client) -> Hook {
        Hook {
            name: config.label(),
            url,
            secret,
            timeout: Duration::from_secs(config.timeout_secs),
            policy: RetryConfig {
                max_retries: config.max_attempts.saturating_sub(1),
                backoff_base_ms: config.backoff_base_ms,
                backoff_max_ms: config.backoff_max_ms,
                retry_after_max_ms: config.backoff_max_ms,
                ..RetryConfig::default()
            },
            client,
        }
    }

    /// Delivers `event` until it is accepted, cannot be, or `abort` is cancelled.
    pub async fn deliver(
        &self,
        event: &Event,
        delivery_id: &str,
        abort: &CancellationToken,
    ) -> Outcome {
        let body = match serde_json::to_vec(event) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Failed {
                    attempts: 0,
                    status: None,
                    error: format!("the event could not be encoded: {e}"),
                };
            }
        };
        let started = Instant::now();
        let longest_pause = Duration::from_millis(self.policy.backoff_max_ms);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = tokio::select! {
                answer = self.attempt(event.data.kind(), delivery_id, &body) => answer,
                () = abort.cancelled() => return stopped(attempts, None, "during it"),
            };
            let error = match answer {
                Ok(status) => {
                    return Outcome::Delivered {
                        attempts,
                        status,
                        duration_ms: started.elapsed().as_millis() as u64,
                    };
                }
                Err(error) => error,
            };
            let failed = || Outcome::Failed {
                attempts,
                status: error.status(),
                error: error.to_string(),
            };
            if !error.retryable() {
                return failed();
            }
            // A long `Retry-After` is honoured up to the longest backoff, never past it.
            let asked = error.retry_after().map(|d| d.min(longest_pause));
            let pause = match next_step(&self.policy, attempts - 1, asked, rand::random()) {
                Next::RetryAfter(pause) => pause,
                Next::NextProvider => return failed(),
            };
            tracing::debug!(webhook = %self.name, seq = event.seq, attempts, %error, ?pause, "webhook attempt failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = abort.cancelled() => {
                    return stopped(attempts, error.status(), &format!("after: {error}"));
                }
            }
        }
    }

    /// One signed POST; the status of a 2xx answer.
    async fn attempt(
        &self,
        kind: &str,
        delivery_id: &str,
        body: &[u8],
    ) -> Result<u16, AttemptError> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let values = [
            ("x-factory-event", kind.to_string()),
            ("x-factory-delivery", delivery_id.to_string()),
            ("x-factory-timestamp", timestamp.to_string()),
            (
                "x-factory-signature",
                signature(&self.secret, timestamp, body),
            ),
        ];
        for (name, value) in values {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let sent = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .headers(headers)
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Without the URL: its path or query may carry a token, and this text is recorded.
            Err(e) if e.is_timeout() => return Err(AttemptError::Timeout(self.timeout.as_secs())),
            Err(e) if e.is_connect() => return Err(AttemptError::Connect(causes(e.without_url()))),
            Err(e) => return Err(AttemptError::Request(causes(e.without_url()))),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        Err(AttemptError::Status {
            status: status.as_u16(),
            text: status.to_string(),
            retry_after: response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
        })
    }
}

/// The failure recorded when the process stops a delivery before it ends.
fn stopped(attempts: u32, status: Option<u16>, when: &str) -> Outcome {
    Outcome::Failed {
        attempts,
        status,
        error: format!(
            "the process stopped before the delivery ended (attempt {attempts}, {when})"
        ),
    }
}

/// An error and its causes on one line (`error sending request: connection refused`).
fn causes(error: reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_retrying_can_fix_is_retried() {
        let status = |status: u16| AttemptError::Status {
            status,
            text: status.to_string(),
            retry_after: None,
        };
        for retried in [408, 425, 429, 500, 502, 503, 504] {
            assert!(status(retried).retryable(), "{retried}");
        }
        for final_answer in [301, 302, 400, 401, 403, 404, 410, 422] {
            assert!(!status(final_answer).retryable(), "{final_answer}");
        }
        assert!(AttemptError::Timeout(10).retryable());
        assert!(AttemptError::Connect("refused".into()).retryable());
    }

    #[test]
    fn attempts_backoff_and_retry_after_follow_the_configuration() {
        let mut config = WebhookConfig::new("https://example.com/", &["*"], "0123456789abcdef");
        config.max_attempts = 3;
        config.backoff_base_ms = 100;
        config.backoff_max_ms = 250;
        let url = Url::parse(&config.url).unwrap();
        let hook = Hook::new(&config, url, Vec::new(), Client::new());
        // Retries 0 and 1 follow attempts 1 and 2; attempt 3 is the last.
        let full = |retry| next_step(&hook.policy, retry, None, 0.999_999);
        assert_eq!(full(0), Next::RetryAfter(Duration::from_millis(99)));
        assert_eq!(full(1), Next::RetryAfter(Duration::from_millis(199)));
        assert_eq!(full(2), Next::NextProvider);
        let asked = Some(Duration::from_millis(250));
        assert_eq!(
            next_step(&hook.policy, 0, asked, 0.5),
            Next::RetryAfter(Duration::from_millis(250))
        );
    }
}
