//! The gateway's sections checked as a whole at start-up: every message names the entry and
//! what is accepted.

use super::*;

impl GatewayConfig {
    /// Checks the gateway's sections as a whole; the message names the offending entry and what is
    /// accepted.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        for name in CANONICAL_ALIASES {
            if !self.aliases.contains_key(name) {
                return bad(format!(
                    "alias `{name}` is missing: every canonical alias needs a chain"
                ));
            }
        }
        for (alias, chain) in &self.aliases {
            if chain.is_empty() {
                return bad(format!(
                    "alias `{alias}` has an empty chain: list one or more `provider:model` entries"
                ));
            }
            for entry in chain {
                let (provider, model) = split_model(entry).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "alias `{alias}`: `{entry}` is not `provider:model` (e.g. `openai:gpt-4o`)"
                    ))
                })?;
                let Some(p) = self.providers.get(provider) else {
                    return bad(format!(
                        "alias `{alias}`: provider `{provider}` in `{entry}` is not configured \
                         (configured: {}){}",
                        self.providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", "),
                        missing_key_hint(provider)
                    ));
                };
                if p.kind == ProviderKind::Offline && entry != OFFLINE_MODEL {
                    return bad(format!(
                        "alias `{alias}`: the offline provider has one model, `{OFFLINE_MODEL}`, not `{model}`"
                    ));
                }
            }
        }
        for (name, p) in &self.providers {
            // OpenAI-compatible servers on a private network (vLLM, llama.cpp) often need no
            // key; Anthropic always does.
            if p.kind == ProviderKind::Anthropic && p.api_key_env.is_none() && !p.key_stored {
                return bad(format!(
                    "provider `{name}` ({:?}) needs `api_key_env`, the name of the environment \
                     variable holding its key (or a key set from the dashboard or the CLI)",
                    p.kind
                ));
            }
            if let Some(url) = &p.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return bad(format!(
                    "provider `{name}`: base_url `{url}` must start with http:// or https://"
                ));
            }
        }
        for (name, m) in &self.models {
            if split_model(name).is_none() {
                return bad(format!(
                    "[models.\"{name}\"]: the key must be `provider:model`"
                ));
            }
            let prices = [m.cached_input_per_mtok, m.cache_write_per_mtok]
                .into_iter()
                .flatten()
                .chain([m.input_per_mtok, m.output_per_mtok]);
            if !prices.into_iter().all(non_negative) {
                return bad(format!("[models.\"{name}\"]: prices must be zero or more"));
            }
            if m.max_concurrency == 0 || m.context_window == Some(0) {
                return bad(format!(
                    "[models.\"{name}\"]: max_concurrency and context_window must be at least 1"
                ));
            }
        }
        let r = &self.retry;
        if r.max_in_flight == 0
            || r.timeout_secs == 0
            || r.breaker_failures == 0
            || r.stall_secs == 0
            || r.stream_timeout_secs == 0
        {
            return bad(
                "[retry]: max_in_flight, timeout_secs, breaker_failures, stall_secs and stream_timeout_secs must be at least 1"
                    .into(),
            );
        }
        if r.backoff_base_ms > r.backoff_max_ms {
            return bad("[retry]: backoff_base_ms must not exceed backoff_max_ms".into());
        }
        let rt = &self.routing;
        if !(0.0..=1.0).contains(&rt.threshold) {
            return bad(format!(
                "[routing]: threshold {} must be between 0 and 1",
                rt.threshold
            ));
        }
        if rt.divisor <= 0.0 || rt.files_cap == 0 {
            return bad("[routing]: divisor and files_cap must be greater than 0".into());
        }
        if [rt.weight_files, rt.weight_risk, rt.weight_criteria]
            .iter()
            .any(|w| *w < 0.0)
        {
            return bad("[routing]: weights must be zero or more".into());
        }
        for alias in [&rt.cheap_alias, &rt.strong_alias] {
            if !self.aliases.contains_key(alias) {
                return bad(format!(
                    "[routing]: alias `{alias}` is not defined in [aliases]"
                ));
            }
        }
        self.budgets.validate()
    }

    /// Refuses a provider whose key variable is named but not set (checked at start-up, so the
    /// problem shows before the first call rather than as a 401 during a run).
    pub fn check_keys(&self, is_set: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        for (name, p) in &self.providers {
            if let Some(var) = &p.api_key_env
                && !is_set(var)
            {
                return Err(ConfigError::Invalid(format!(
                    "provider `{name}` reads its API key from {var}, which is not set: export \
                     {var}, or remove the provider (and its chain entries) from factory.toml"
                )));
            }
        }
        Ok(())
    }
}
