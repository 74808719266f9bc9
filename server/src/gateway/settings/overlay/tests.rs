//! The overlay's rules: what a person may set, how it lands over the file, and what removal
//! does to the chains.

use app::server_fns::settings::{KeyText, ProviderInput};

use super::*;
use crate::config::EnvSnapshot;

fn base() -> GatewayConfig {
    GatewayConfig::defaults(&EnvSnapshot::default())
}

fn input(name: &str, kind: &str) -> ProviderInput {
    ProviderInput {
        name: name.into(),
        kind: kind.into(),
        base_url: Some("http://127.0.0.1:8000/v1".into()),
        model: "qwen-test".into(),
        api_key: Some(KeyText("sk-test-abcdefgh1234".into())),
        api_key_env: None,
        every_alias: true,
        aliases: vec![],
        embed_model: None,
    }
}

fn refusal(result: Result<impl std::fmt::Debug, SettingsError>) -> String {
    result.expect_err("refused").to_string()
}

#[test]
fn every_alias_points_the_chat_aliases_at_the_model_and_leaves_embeddings_alone() {
    let base = base();
    let mut overlay = ModelOverlay::default();
    let typed = overlay
        .save(&input("acme", "openai"), true, &base, &base)
        .unwrap();
    assert_eq!(typed.unwrap().hint(), "key set, ends in …1234");
    let mut config = base.clone();
    overlay.apply(&base, &mut config).unwrap();
    for alias in [
        "factory/architect",
        "factory/coder",
        "factory/fast",
        "factory/cheap",
    ] {
        assert_eq!(config.aliases[alias], vec!["acme:qwen-test"], "{alias}");
    }
    assert_eq!(config.aliases["local/embed"], base.aliases["local/embed"]);
    assert!(config.providers["acme"].key_stored);
    // The event says only that the key changed.
    let recorded = serde_json::to_value(&overlay).unwrap();
    assert_eq!(recorded["providers"]["acme"]["key"], "changed");
    assert!(!recorded.to_string().contains("abcdefgh"));
    assert_eq!(
        serde_json::to_value(overlay.settled()).unwrap()["providers"]["acme"]["key"],
        "stored"
    );
}

#[test]
fn bad_input_names_the_field_and_what_is_accepted() {
    let base = base();
    let cases: Vec<(ProviderInput, &str)> = vec![
        (
            ProviderInput {
                name: "Acme Corp".into(),
                ..input("x", "openai")
            },
            "name: `Acme Corp` is not a provider name (accepted: 1 to 32 lowercase",
        ),
        (
            input("acme", "gemini"),
            "kind: `gemini` is not a provider kind (accepted: openai, anthropic, ollama)",
        ),
        (
            ProviderInput {
                base_url: Some("ftp://example.com".into()),
                ..input("acme", "openai")
            },
            "base_url: `ftp://example.com` is not an http:// or https:// address",
        ),
        (
            ProviderInput {
                base_url: Some("https://user:pw@example.com/v1".into()),
                ..input("acme", "openai")
            },
            "base_url: an address may not carry a user or password",
        ),
        (
            ProviderInput {
                model: "two words".into(),
                ..input("acme", "openai")
            },
            "model: give the model's name",
        ),
        (
            ProviderInput {
                api_key_env: Some("OPENAI_API_KEY".into()),
                ..input("acme", "openai")
            },
            "api_key, api_key_env: give the key or the variable holding it, not both",
        ),
        (
            ProviderInput {
                api_key: Some(KeyText("has a space".into())),
                ..input("acme", "openai")
            },
            "api_key: a key is visible ASCII characters only",
        ),
        (
            input("local", "ollama"),
            "api_key: an Ollama server takes no key",
        ),
        (
            ProviderInput {
                api_key: None,
                ..input("claude", "anthropic")
            },
            "api_key: an Anthropic provider needs a key",
        ),
        (
            input("offline", "openai"),
            "name: a provider `offline` already exists",
        ),
        (
            ProviderInput {
                every_alias: false,
                aliases: vec!["factory/nope".into()],
                ..input("acme", "openai")
            },
            "aliases: `factory/nope` cannot be pointed at a chat model (accepted: factory/architect",
        ),
        (
            ProviderInput {
                embed_model: Some("embed".into()),
                ..input("claude", "anthropic")
            },
            "embed_model: Anthropic has no embedding models",
        ),
    ];
    for (input, needle) in cases {
        let mut overlay = ModelOverlay::default();
        let message = refusal(overlay.save(&input, true, &base, &base));
        assert!(
            message.contains(needle),
            "{message:?} should say {needle:?}"
        );
        assert_eq!(
            overlay,
            ModelOverlay::default(),
            "nothing changed for {needle}"
        );
    }
    let mut overlay = ModelOverlay::default();
    assert!(
        refusal(overlay.save(&input("ghost", "openai"), false, &base, &base))
            .contains("there is no provider `ghost` to edit")
    );
    assert!(refusal(overlay.remove("offline", &base, &base)).contains("built in"));
}

#[test]
fn removing_a_provider_takes_it_out_of_every_chain_and_restores_the_files_chains() {
    let base = base();
    let mut overlay = ModelOverlay::default();
    overlay
        .save(&input("acme", "openai"), true, &base, &base)
        .unwrap();
    let mut config = base.clone();
    overlay.apply(&base, &mut config).unwrap();
    overlay.remove("acme", &config, &base).unwrap();
    assert!(
        overlay.providers.is_empty() && overlay.aliases.is_empty(),
        "{overlay:?}"
    );
    assert!(overlay.removed.is_empty(), "acme was never the file's");
    let mut after = base.clone();
    overlay.apply(&base, &mut after).unwrap();
    assert_eq!(after.aliases, base.aliases);

    // A provider of the file is removed by name, and stays removed over the file; a chain
    // it alone serves, in the file too, keeps it from being removed.
    let mut overlay = ModelOverlay::default();
    let message = refusal(overlay.remove("ollama", &base, &base));
    assert!(
        message.contains("alias `local/embed` would have no model left"),
        "{message}"
    );
    assert_eq!(
        overlay,
        ModelOverlay::default(),
        "a refusal changes nothing"
    );
    let mut chains = BTreeMap::new();
    chains.insert("local/embed".to_string(), vec!["acme:embed".to_string()]);
    overlay
        .save(&input("acme", "openai"), true, &base, &base)
        .unwrap();
    overlay.set_chains(&chains, &base).unwrap();
    let mut config = base.clone();
    overlay.apply(&base, &mut config).unwrap();
    overlay.remove("ollama", &config, &base).unwrap();
    assert!(overlay.removed.contains("ollama"));
    let mut after = base.clone();
    overlay.apply(&base, &mut after).unwrap();
    assert!(!after.providers.contains_key("ollama"));
    assert_eq!(after.aliases["factory/coder"], vec!["acme:qwen-test"]);
}

#[test]
fn chains_are_checked_as_the_file_checks_them() {
    let base = base();
    let mut overlay = ModelOverlay::default();
    let mut chains = BTreeMap::new();
    chains.insert("factory/coder".to_string(), vec!["ghost:model".to_string()]);
    overlay.set_chains(&chains, &base).unwrap();
    let mut config = base.clone();
    let message = refusal(overlay.apply(&base, &mut config));
    assert!(
        message.contains("provider `ghost` in `ghost:model` is not configured"),
        "{message}"
    );
    let mut other = BTreeMap::new();
    other.insert("team/x".to_string(), vec!["ollama:auto".to_string()]);
    assert!(
        refusal(ModelOverlay::default().set_chains(&other, &base))
            .contains("`team/x` is not an alias set here")
    );
}
