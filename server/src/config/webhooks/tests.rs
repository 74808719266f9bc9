//! `[[webhooks]]`: what is accepted, what is refused and why, and that the secret stays hidden.

use super::*;
use crate::config::{EnvSnapshot, FactoryConfig};

const SECRET: &str = "0123456789abcdef0123";

/// The file `toml_text` over the defaults, validated: the webhooks, or the message.
fn load(toml_text: &str) -> Result<Vec<WebhookConfig>, String> {
    let mut c = FactoryConfig::defaults(&EnvSnapshot::default());
    c.merge_toml(toml_text, "factory.toml")
        .map_err(|e| e.to_string())?;
    c.validate().map_err(|e| e.to_string())?;
    Ok(c.webhooks)
}

fn refused(toml_text: &str) -> String {
    load(toml_text).expect_err("should be refused")
}

#[test]
fn a_full_entry_is_read_with_its_defaults() {
    let hooks = load(
        r#"
        [[webhooks]]
        name = "ci"
        url = "https://hooks.example.com/factory?token=abc"
        events = ["run_finished", "approval_*"]
        secret_env = "FACTORY_HOOK_SECRET"
        max_attempts = 3

        [[webhooks]]
        url = "http://127.0.0.1:9000/in"
        events = ["*"]
        secret = "0123456789abcdef0123"
        "#,
    )
    .unwrap();
    assert_eq!(hooks.len(), 2);
    assert_eq!(hooks[0].label(), "ci");
    assert_eq!(hooks[0].max_attempts, 3);
    assert_eq!(hooks[0].timeout_secs, 10);
    assert_eq!(hooks[0].queue_size, 1_000);
    assert!(hooks[0].wants("approval_requested") && hooks[0].wants("run_finished"));
    assert!(!hooks[0].wants("run_created") && !hooks[0].wants("model_call_started"));
    // Unnamed: the origin, never the path or query that may carry a token.
    assert_eq!(hooks[1].label(), "http://127.0.0.1:9000");
    assert!(hooks[1].wants("stage_completed"));
    assert!(
        !hooks[1].wants("webhook_delivered") && !hooks[1].wants("webhook_failed"),
        "a webhook never feeds on its own outcomes"
    );
}

#[test]
fn bad_entries_are_refused_with_what_is_accepted() {
    let entry = |body: &str| format!("[[webhooks]]\n{body}\n");
    let ok_secret = format!("secret = \"{SECRET}\"");
    let cases = [
        (
            entry(&format!(
                "url = \"hooks.example.com\"\nevents = [\"*\"]\n{ok_secret}"
            )),
            "is not a URL",
        ),
        (
            entry(&format!(
                "url = \"ftp://example.com/x\"\nevents = [\"*\"]\n{ok_secret}"
            )),
            "scheme `ftp`",
        ),
        (
            entry(&format!(
                "url = \"http://hooks.example.com/x\"\nevents = [\"*\"]\n{ok_secret}"
            )),
            "http:// to a host that is not loopback",
        ),
        (
            entry(&format!(
                "url = \"https://u:p@example.com/x\"\nevents = [\"*\"]\n{ok_secret}"
            )),
            "must not carry credentials",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"run_finish\"]\n{ok_secret}"
            )),
            "`run_finish` is not an event kind; accepted: \"*\"",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"nothing_*\"]\n{ok_secret}"
            )),
            "`nothing_*` is not an event kind",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"webhook_failed\"]\n{ok_secret}"
            )),
            "webhook outcomes are never delivered",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"webhook_*\"]\n{ok_secret}"
            )),
            "webhook outcomes are never delivered",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = []\n{ok_secret}"
            )),
            "`events` is empty",
        ),
        (
            entry("url = \"https://example.com\"\nevents = [\"*\"]"),
            "set exactly one of `secret_env`",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\nsecret_env = \"X\""
            )),
            "set exactly one of `secret_env`",
        ),
        (
            entry("url = \"https://example.com\"\nevents = [\"*\"]\nsecret = \"\""),
            "at least 16 characters",
        ),
        (
            entry("url = \"https://example.com\"\nevents = [\"*\"]\nsecret_env = \" \""),
            "must name an environment variable",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\nmax_attempts = 0"
            )),
            "max_attempts must be between 1 and 20",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\ntimeout_secs = 0"
            )),
            "timeout_secs must be between 1 and 300",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\nbackoff_base_ms = 9000\nbackoff_max_ms = 10"
            )),
            "backoff_base_ms must be at least 1",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\nqueue_size = 0"
            )),
            "queue_size must be between 1 and 100000",
        ),
        (
            entry(&format!(
                "url = \"https://example.com\"\nevents = [\"*\"]\n{ok_secret}\nretries = 3"
            )),
            "unknown field `retries`",
        ),
        (
            format!(
                "{}{}",
                entry(&format!(
                    "url = \"https://example.com/a\"\nevents = [\"*\"]\n{ok_secret}"
                )),
                entry(&format!(
                    "url = \"https://example.com/b\"\nevents = [\"*\"]\n{ok_secret}"
                ))
            ),
            "`https://example.com`: two webhooks have this name",
        ),
    ];
    for (text, needle) in cases {
        let message = refused(&text);
        assert!(
            message.contains(needle),
            "{text:?}: {message:?} should mention {needle:?}"
        );
        assert!(!message.contains(SECRET), "the secret leaked: {message}");
    }
}

#[test]
fn http_is_accepted_to_loopback_or_when_allowed() {
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://[::1]:8080/",
    ] {
        let text =
            format!("[[webhooks]]\nurl = \"{url}\"\nevents = [\"*\"]\nsecret = \"{SECRET}\"");
        assert!(load(&text).is_ok(), "{url}");
    }
    let allowed = format!(
        "[[webhooks]]\nurl = \"http://10.0.0.7/in\"\nevents = [\"*\"]\nsecret = \"{SECRET}\"\nallow_http = true"
    );
    assert!(load(&allowed).is_ok());
}

#[test]
fn the_secret_comes_from_the_environment_and_is_never_shown() {
    let mut hook = WebhookConfig::new("https://example.com/in", &["*"], SECRET);
    assert_eq!(hook.secret(|_| None).unwrap(), SECRET.as_bytes());
    let shown = format!("{hook:?} {}", serde_json::to_string(&hook).unwrap());
    assert!(!shown.contains(SECRET), "{shown}");

    hook.secret = None;
    hook.secret_env = Some("HOOK_SECRET".into());
    let err = hook.secret(|_| None).unwrap_err().to_string();
    assert!(err.contains("HOOK_SECRET, which is not set"), "{err}");
    let short = hook
        .secret(|_| Some("short-secret".into()))
        .unwrap_err()
        .to_string();
    assert!(short.contains("at least 16 characters"), "{short}");
    assert!(!short.contains("short-secret"), "{short}");
    let value = "from-the-environment-0123";
    assert_eq!(
        hook.secret(|var| (var == "HOOK_SECRET").then(|| value.to_string()))
            .unwrap(),
        value.as_bytes()
    );
}

#[test]
fn patterns_match_kinds_prefixes_and_everything() {
    assert!(pattern_matches("*", "run_created"));
    assert!(pattern_matches("run_*", "run_finished"));
    assert!(!pattern_matches("run_*", "stage_started"));
    assert!(pattern_matches("stage_started", "stage_started"));
    assert!(!pattern_matches("stage", "stage_started"));
    assert!(!pattern_matches("r*n_*", "run_created"));
}
