//! What a model accepts, so a request is never refused for asking something the model does not
//! take: reasoning models (OpenAI's o-series and GPT-5 family) refuse `max_tokens` and any
//! `temperature` but the default; some models have no tool calling or structured output.
//!
//! Each `provider:model` gets the defaults of its family ([`family_defaults`]), and `[models."…"]` in
//! `factory.toml` overrides any of them.

use serde::{Deserialize, Serialize};

use super::{GatewayConfig, ProviderKind, split_model};

/// How hard a reasoning model thinks before answering (OpenAI `reasoning_effort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }
}

/// What one `provider:model` accepts, after family defaults and configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capabilities {
    /// Prompt and reply together, in tokens (context packing derives its budget from it).
    pub context_window: u32,
    /// A reasoning model: no `temperature` but the default, `reasoning_effort` accepted.
    pub reasoning: bool,
    /// Takes a `temperature`.
    pub temperature: bool,
    /// Sent to a reasoning model when set.
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Native tool calling; without it tools are described in the prompt and actions are read
    /// from the reply's text.
    pub tools: bool,
    /// Structured output constrained by a JSON Schema; without it the schema is given in the
    /// prompt and the reply parsed leniently.
    pub structured_output: bool,
    /// The OpenAI wire format's output limit is `max_completion_tokens` (OpenAI itself) rather
    /// than the older `max_tokens` (most OpenAI-compatible servers).
    pub max_completion_tokens: bool,
}

/// Context window of a model whose family is unknown.
pub const DEFAULT_CONTEXT_WINDOW: u32 = 32_768;

/// Ollama model families that take `tools`.
const OLLAMA_TOOL_FAMILIES: [&str; 12] = [
    "llama3.1",
    "llama3.2",
    "llama3.3",
    "llama4",
    "qwen2.5",
    "qwen3",
    "mistral",
    "mistral-nemo",
    "mistral-small",
    "command-r",
    "gpt-oss",
    "granite3",
];

/// The defaults of a model's family. `openai_itself`: the provider is OpenAI's own API (not a
/// compatible server), where every model takes `max_completion_tokens`.
pub fn family_defaults(kind: ProviderKind, model: &str, openai_itself: bool) -> Capabilities {
    let base = Capabilities {
        context_window: DEFAULT_CONTEXT_WINDOW,
        reasoning: false,
        temperature: true,
        reasoning_effort: None,
        tools: false,
        structured_output: true,
        max_completion_tokens: false,
    };
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    match kind {
        ProviderKind::Openai => {
            let reasoning = starts(&["o1", "o3", "o4", "gpt-5"]);
            let known = reasoning || starts(&["gpt-4", "gpt-3.5", "chatgpt"]);
            let context_window = if starts(&["gpt-5"]) {
                400_000
            } else if starts(&["gpt-4.1"]) {
                1_047_576
            } else if reasoning {
                200_000
            } else if starts(&["gpt-4o", "gpt-4-turbo", "chatgpt"]) {
                128_000
            } else {
                DEFAULT_CONTEXT_WINDOW
            };
            // The first o1 previews had neither tools nor structured output.
            let early = starts(&["o1-mini", "o1-preview"]);
            Capabilities {
                context_window,
                reasoning,
                temperature: !reasoning,
                tools: known && !early,
                structured_output: !early,
                max_completion_tokens: openai_itself || known,
                ..base
            }
        }
        ProviderKind::Anthropic => Capabilities {
            context_window: 200_000,
            tools: true,
            ..base
        },
        ProviderKind::Ollama => Capabilities {
            tools: OLLAMA_TOOL_FAMILIES.iter().any(|f| {
                name.strip_prefix(f)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(':'))
            }),
            ..base
        },
        ProviderKind::Offline => Capabilities {
            temperature: false,
            ..base
        },
    }
}

impl Capabilities {
    /// What the offline template provider takes: a schema, nothing else.
    pub fn offline() -> Capabilities {
        family_defaults(ProviderKind::Offline, "template", false)
    }
}

impl GatewayConfig {
    /// What `entry` (`provider:model`) accepts: its family's defaults with `[models."entry"]`
    /// over them.
    pub fn capabilities(&self, entry: &str) -> Capabilities {
        let (provider, model) = split_model(entry).unwrap_or(("", entry));
        let (kind, openai_itself) =
            self.providers
                .get(provider)
                .map_or((ProviderKind::Openai, false), |p| {
                    let official = p
                        .base_url
                        .as_deref()
                        .is_none_or(|u| u.contains("://api.openai.com"));
                    (p.kind, p.kind == ProviderKind::Openai && official)
                });
        let mut caps = family_defaults(kind, model, openai_itself);
        if let Some(m) = self.models.get(entry) {
            if let Some(window) = m.context_window {
                caps.context_window = window;
            }
            if let Some(t) = m.temperature {
                caps.temperature = t;
            }
            if let Some(effort) = m.reasoning_effort {
                caps.reasoning_effort = Some(effort);
            }
            if let Some(tools) = m.tools {
                caps.tools = tools;
            }
            if let Some(structured) = m.structured_output {
                caps.structured_output = structured;
            }
            if let Some(field) = m.max_completion_tokens {
                caps.max_completion_tokens = field;
            }
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_families_take_no_temperature_and_the_new_token_field() {
        for model in ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5.1"] {
            let c = family_defaults(ProviderKind::Openai, model, true);
            assert!(
                c.reasoning && !c.temperature && c.max_completion_tokens,
                "{model}"
            );
        }
        let c = family_defaults(ProviderKind::Openai, "gpt-4o", true);
        assert!(!c.reasoning && c.temperature && c.tools && c.max_completion_tokens);
        assert_eq!(c.context_window, 128_000);
        assert_eq!(
            family_defaults(ProviderKind::Openai, "gpt-4.1-mini", true).context_window,
            1_047_576
        );
    }

    #[test]
    fn compatible_servers_keep_max_tokens_and_unknown_models_get_no_tools() {
        let c = family_defaults(ProviderKind::Openai, "qwen2.5-coder-32b", false);
        assert!(!c.max_completion_tokens && !c.tools && c.temperature);
        assert_eq!(c.context_window, DEFAULT_CONTEXT_WINDOW);
        assert!(family_defaults(ProviderKind::Ollama, "llama3.1:8b", false).tools);
        assert!(!family_defaults(ProviderKind::Ollama, "llama3:8b", false).tools);
        assert!(!family_defaults(ProviderKind::Ollama, "llama3.10", false).tools);
        assert!(family_defaults(ProviderKind::Anthropic, "claude-sonnet-4-5", false).tools);
    }

    #[test]
    fn configuration_overrides_the_family() {
        let mut config = GatewayConfig::defaults(&crate::config::EnvSnapshot {
            openai_key: true,
            ..Default::default()
        });
        assert!(config.capabilities("openai:o3").max_completion_tokens);
        assert!(!config.capabilities("openai:o3").temperature);
        // An unknown name on OpenAI's own API still gets the field OpenAI takes.
        assert!(
            config
                .capabilities("openai:future-model")
                .max_completion_tokens
        );
        config.models.insert(
            "openai:o3".into(),
            super::super::ModelConfig {
                temperature: Some(true),
                reasoning_effort: Some(ReasoningEffort::Low),
                context_window: Some(50_000),
                ..Default::default()
            },
        );
        let c = config.capabilities("openai:o3");
        assert!(c.temperature && c.reasoning);
        assert_eq!(c.reasoning_effort, Some(ReasoningEffort::Low));
        assert_eq!(c.context_window, 50_000);
    }
}
