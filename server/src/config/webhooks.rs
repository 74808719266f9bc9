//! `[[webhooks]]` in `factory.toml`: where committed events are POSTed, which kinds, the secret
//! that signs them (named by environment variable, or inline), and the delivery limits. Checked
//! strictly at start-up: a webhook that could never work, or that would send events in the
//! clear across a network, stops the command with a message saying what is accepted.

use std::net::IpAddr;

use app::events::EventData;
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Shortest secret accepted: a shorter one can be guessed from any signed request.
pub const MIN_SECRET_CHARS: usize = 16;

/// One webhook (`[[webhooks]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// What the log and the logs call it (default: the URL's origin, so a path or query that
    /// carries a token is never recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where deliveries are POSTed: `https://`, or `http://` to a loopback host (or anywhere
    /// with `allow_http`).
    pub url: String,
    /// Event kinds delivered: a kind as stored (`run_finished`), a prefix (`run_*`), or `*`.
    pub events: Vec<String>,
    /// The environment variable holding the signing secret (preferred: factory.toml holds none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// The signing secret itself; never serialised, never printed.
    #[serde(default, skip_serializing)]
    pub secret: Option<InlineSecret>,
    /// Attempts of one delivery, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Longest one attempt may take, connecting included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Pause before the first retry; doubles each retry (full jitter), capped at `backoff_max_ms`.
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Events waiting for this webhook; when full the oldest waiting one is dropped (recorded
    /// as `webhook_dropped`), so a slow receiver never holds up a run.
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Accept `http://` to a host that is not loopback (signed, but readable on the way).
    #[serde(default)]
    pub allow_http: bool,
}

/// A secret written in factory.toml. Its `Debug` hides it; it is never serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct InlineSecret(String);

impl InlineSecret {
    pub fn new(secret: impl Into<String>) -> InlineSecret {
        InlineSecret(secret.into())
    }
}

impl std::fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineSecret(…)")
    }
}

fn default_max_attempts() -> u32 {
    5
}
fn default_timeout_secs() -> u64 {
    10
}
fn default_backoff_base_ms() -> u64 {
    1_000
}
fn default_backoff_max_ms() -> u64 {
    60_000
}
fn default_queue_size() -> usize {
    1_000
}

impl WebhookConfig {
    /// A webhook to `url` for `events`, signed with `secret`, with the default limits.
    pub fn new(url: &str, events: &[&str], secret: &str) -> WebhookConfig {
        WebhookConfig {
            name: None,
            url: url.to_string(),
            events: events.iter().map(|e| e.to_string()).collect(),
            secret_env: None,
            secret: Some(InlineSecret::new(secret)),
            max_attempts: default_max_attempts(),
            timeout_secs: default_timeout_secs(),
            backoff_base_ms: default_backoff_base_ms(),
            backoff_max_ms: default_backoff_max_ms(),
            queue_size: default_queue_size(),
            allow_http: false,
        }
    }

    /// Its name: `name`, or the URL's origin (`https://hooks.example.com`), never its path.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match Url::parse(&self.url) {
            Ok(url) => url.origin().ascii_serialization(),
            Err(_) => "(invalid url)".into(),
        }
    }

    /// True when events of `kind` go to this webhook. Webhook outcomes never do.
    pub fn wants(&self, kind: &str) -> bool {
        !EventData::is_webhook_outcome(kind) && self.events.iter().any(|p| pattern_matches(p, kind))
    }

    /// The signing secret: inline, or read through `lookup` from the variable `secret_env`
    /// names. The message of an error never contains the secret.
    pub fn secret(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<Vec<u8>, ConfigError> {
        let label = self.label();
        let value = match (&self.secret, &self.secret_env) {
            (Some(InlineSecret(value)), None) => value.clone(),
            (None, Some(var)) => lookup(var).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "[[webhooks]] `{label}` reads its secret from {var}, which is not set: \
                     export {var}, or remove the webhook from factory.toml"
                ))
            })?,
            _ => {
                return Err(invalid(
                    &label,
                    "set exactly one of `secret_env` and `secret`",
                ));
            }
        };
        if value.trim().chars().count() < MIN_SECRET_CHARS {
            return Err(invalid(
                &label,
                &format!(
                    "the secret must have at least {MIN_SECRET_CHARS} characters \
                     (e.g. the output of `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(value.into_bytes())
    }

    /// Checks one webhook on its own; `position` (1-based) names it when it has no usable name.
    fn validate(&self, position: usize) -> Result<(), ConfigError> {
        let label = self.name.clone().unwrap_or_else(|| format!("#{position}"));
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(invalid(&label, "`name` must not be empty"));
        }
        check_url(&self.url, self.allow_http).map_err(|m| invalid(&label, &m))?;
        let label = self.label();
        if self.events.is_empty() {
            return Err(invalid(
                &label,
                "`events` is empty: list event kinds (e.g. \"run_finished\"), prefixes \
                 (\"run_*\") or \"*\" for every kind",
            ));
        }
        for pattern in &self.events {
            check_pattern(pattern).map_err(|m| invalid(&label, &m))?;
        }
        match (&self.secret, &self.secret_env) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(
                    &label,
                    "set exactly one of `secret_env` (the name of the environment variable \
                     holding the secret; preferred) and `secret`",
                ));
            }
            (Some(_), None) => {
                self.secret(|_| None)?;
            }
            (None, Some(var)) if var.trim().is_empty() || var.contains('=') => {
                return Err(invalid(
                    &label,
                    "`secret_env` must name an environment variable",
                ));
            }
            (None, Some(_)) => {}
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(invalid(&label, "max_attempts must be between 1 and 20"));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(invalid(&label, "timeout_secs must be between 1 and 300"));
        }
        if self.backoff_base_ms == 0 || self.backoff_base_ms > self.backoff_max_ms {
            return Err(invalid(
                &label,
                "backoff_base_ms must be at least 1 and not exceed backoff_max_ms",
            ));
        }
        if !(1..=100_000).contains(&self.queue_size) {
            return Err(invalid(&label, "queue_size must be between 1 and 100000"));
        }
        Ok(())
    }
}

/// Checks every webhook, and that their names (or origins) tell them apart.
pub fn validate(webhooks: &[WebhookConfig]) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, webhook) in webhooks.iter().enumerate() {
        webhook.validate(i + 1)?;
        let label = webhook.label();
        if !seen.insert(label.clone()) {
            return Err(invalid(
                &label,
                "two webhooks have this name: give each a distinct `name`",
            ));
        }
    }
    Ok(())
}

fn invalid(label: &str, message: &str) -> ConfigError {
    ConfigError::Invalid(format!("[[webhooks]] `{label}`: {message}"))
}

/// `https://` anywhere; `http://` only to a loopback host unless allowed.
fn check_url(text: &str, allow_http: bool) -> Result<(), String> {
    let url = Url::parse(text).map_err(|e| format!("url `{text}` is not a URL ({e})"))?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("url `{text}` has no host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the url must not carry credentials: the signature (X-Factory-Signature) \
                    tells the receiver the request is Factory's"
                .into(),
        );
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http || is_loopback(host) => Ok(()),
        "http" => Err(format!(
            "url `{text}` is http:// to a host that is not loopback: events (goals, artifacts) \
             would cross the network readable; use https://, or set `allow_http = true` to \
             accept that"
        )),
        other => Err(format!(
            "url `{text}` has scheme `{other}`: use https:// (or http:// to a loopback host)"
        )),
    }
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, as a URL writes its host.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `*`, a stored kind, or a prefix ending in `*` that matches at least one kind.
fn check_pattern(pattern: &str) -> Result<(), String> {
    let deliverable = || {
        EventData::KINDS
            .iter()
            .filter(|k| !EventData::is_webhook_outcome(k))
    };
    if EventData::is_webhook_outcome(pattern.trim_end_matches('*')) && pattern != "*" {
        return Err(format!(
            "`{pattern}`: webhook outcomes are never delivered (a webhook would feed on its \
             own deliveries); they are in the log and on the audit page"
        ));
    }
    if pattern == "*" || deliverable().any(|k| pattern_matches(pattern, k)) {
        return Ok(());
    }
    Err(format!(
        "`{pattern}` is not an event kind; accepted: \"*\", a prefix ending in `*`, or one of {}",
        deliverable().copied().collect::<Vec<_>>().join(", ")
    ))
}

/// `*` matches everything, `run_*` every kind starting `run_`, anything else itself.
fn pattern_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => !prefix.contains('*') && kind.starts_with(prefix),
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests;
