//! The model-related environment variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`,
//! `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`), read once.

/// The model-related environment, read once (tests build it by hand). Key *values* are not
/// kept, only whether they are set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSnapshot {
    pub openai_key: bool,
    pub openai_base_url: Option<String>,
    pub anthropic_key: bool,
    pub anthropic_base_url: Option<String>,
    pub ollama_host: Option<String>,
}

impl EnvSnapshot {
    /// Reads the ecosystem's conventional variables.
    pub fn from_env() -> EnvSnapshot {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let value = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        EnvSnapshot {
            openai_key: set("OPENAI_API_KEY"),
            openai_base_url: value("OPENAI_BASE_URL"),
            anthropic_key: set("ANTHROPIC_API_KEY"),
            anthropic_base_url: value("ANTHROPIC_BASE_URL"),
            ollama_host: value("OLLAMA_HOST"),
        }
    }
}
