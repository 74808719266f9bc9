//! `factory.toml` loading: defaults per environment, overrides, and the refusals.

use super::*;
use crate::config::gateway::split_model;

fn env(openai: bool, anthropic: bool, base: Option<&str>) -> EnvSnapshot {
    EnvSnapshot {
        openai_key: openai,
        openai_base_url: base.map(String::from),
        anthropic_key: anthropic,
        ..EnvSnapshot::default()
    }
}

#[test]
fn with_no_keys_every_alias_falls_back_to_local_then_offline() {
    let c = FactoryConfig::load(None, &env(false, false, None))
        .unwrap()
        .gateway;
    assert_eq!(
        c.aliases["factory/architect"],
        ["ollama:auto", "offline:template"]
    );
    assert!(!c.providers.contains_key("openai"));
}

/// With a model configured the templates never stand in for it: a failing model waits for a
/// person instead of becoming a template reply.
#[test]
fn cloud_comes_first_when_keys_are_set_and_no_chain_ends_in_templates() {
    let c = FactoryConfig::load(None, &env(true, true, None))
        .unwrap()
        .gateway;
    assert_eq!(
        c.aliases["factory/architect"],
        [
            "anthropic:claude-sonnet-4-5",
            "openai:gpt-4o",
            "ollama:auto",
        ]
    );
    for (alias, chain) in &c.aliases {
        assert!(
            !chain.iter().any(|e| e == "offline:template"),
            "{alias}: {chain:?}"
        );
    }
    assert_eq!(c.aliases["factory/cheap"][0], "openai:gpt-4o-mini");
    assert_eq!(c.model("openai:gpt-4o-mini").input_per_mtok, 0.15);
}

#[test]
fn only_a_custom_base_url_points_every_alias_at_that_server() {
    let c = FactoryConfig::load(None, &env(true, false, Some("http://127.0.0.1:8000/v1")))
        .unwrap()
        .gateway;
    for alias in [
        "factory/architect",
        "factory/coder",
        "factory/fast",
        "factory/cheap",
    ] {
        assert_eq!(c.aliases[alias][0], "openai:auto", "{alias}");
    }
    assert_eq!(
        c.providers["openai"].base_url.as_deref(),
        Some("http://127.0.0.1:8000/v1")
    );
}

#[test]
fn the_file_overrides_what_it_names() {
    let mut c = FactoryConfig::defaults(&env(true, false, None));
    c.merge_toml(
        r#"
        [aliases]
        "factory/fast" = ["openai:gpt-4o-mini", "offline:template"]
        [models."openai:gpt-4o-mini"]
        input_per_mtok = 0.2
        output_per_mtok = 0.8
        max_concurrency = 8
        [budgets.run]
        hard = 5.0
        "#,
        "factory.toml",
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(
        c.gateway.aliases["factory/fast"],
        ["openai:gpt-4o-mini", "offline:template"]
    );
    assert_eq!(c.gateway.model("openai:gpt-4o-mini").max_concurrency, 8);
    assert_eq!(c.gateway.budgets.run.hard, Some(5.0));
    assert_eq!(
        c.gateway.budgets.month.hard,
        Some(50.0),
        "unnamed fields keep their defaults"
    );
}

fn invalid(toml_text: &str) -> String {
    let mut c = FactoryConfig::defaults(&env(false, false, None));
    match c.merge_toml(toml_text, "factory.toml") {
        Err(e) => e.to_string(),
        Ok(()) => c.validate().expect_err("should be refused").to_string(),
    }
}

#[test]
fn bad_files_are_refused_with_what_is_accepted() {
    let cases = [
        ("[aliasses]\nx = []", "unknown field `aliasses`"),
        ("[aliases]\n\"factory/fast\" = []", "empty chain"),
        (
            "[aliases]\n\"factory/fast\" = [\"gpt-4o\"]",
            "is not `provider:model`",
        ),
        (
            "[aliases]\n\"factory/fast\" = [\"openai:gpt-4o\"]",
            "set OPENAI_API_KEY",
        ),
        (
            "[aliases]\n\"factory/fast\" = [\"offline:gpt\"]",
            "one model",
        ),
        ("[providers.x]\nkind = \"grpc\"", "unknown variant `grpc`"),
        ("[providers.x]\nkind = \"anthropic\"", "needs `api_key_env`"),
        (
            "[providers.x]\nkind = \"ollama\"\nbase_url = \"localhost:1\"",
            "must start with http",
        ),
        ("[routing]\nthreshold = 2.0", "between 0 and 1"),
        (
            "[routing]\ncheap_alias = \"nope\"",
            "alias `nope` is not defined",
        ),
        (
            "[budgets.month]\nsoft = 60.0\nhard = 50.0",
            "[budgets.month]: need soft ≤ hard ≤ emergency",
        ),
        (
            "[budgets.teams.qa-engineering]\nhard = -1.0",
            "[budgets.teams.qa-engineering]: limits must be zero or more",
        ),
        (
            "[budgets]\nmonthly_hard = 5.0",
            "unknown field `monthly_hard`",
        ),
        ("[retry]\nmax_in_flight = 0", "at least 1"),
        (
            "[models.\"openai:x\"]\ninput_per_mtok = -1.0",
            "zero or more",
        ),
        ("not toml at all", "factory.toml is not valid"),
        (
            "[engine]\nmax_concurrent_runs = 0",
            "[engine]: max_concurrent_runs",
        ),
        (
            "[approvals]\nmax_hop_depth = 0",
            "[approvals]: max_hop_depth",
        ),
    ];
    for (text, needle) in cases {
        let message = invalid(text);
        assert!(
            message.contains(needle),
            "{text:?}: {message:?} should mention {needle:?}"
        );
    }
}

#[test]
fn a_named_but_unset_key_is_refused_at_start_up() {
    let c = GatewayConfig::defaults(&env(true, false, None));
    let err = c.check_keys(|_| false).unwrap_err().to_string();
    assert!(err.contains("OPENAI_API_KEY, which is not set"), "{err}");
    assert!(c.check_keys(|_| true).is_ok());
}

#[test]
fn ollama_host_without_a_scheme_is_accepted() {
    let e = EnvSnapshot {
        ollama_host: Some("10.0.0.5:11434".into()),
        ..EnvSnapshot::default()
    };
    let c = FactoryConfig::load(None, &e).unwrap().gateway;
    assert_eq!(
        c.providers["ollama"].base_url.as_deref(),
        Some("http://10.0.0.5:11434")
    );
}

#[test]
fn ollama_model_names_keep_their_colons() {
    assert_eq!(
        split_model("ollama:qwen2.5-coder:14b"),
        Some(("ollama", "qwen2.5-coder:14b"))
    );
    assert_eq!(split_model(":x"), None);
    assert_eq!(split_model("x:"), None);
}
