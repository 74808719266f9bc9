//! Tokens: listing without secrets, revoking (sessions end with the token), replacing
//! `FACTORY_ADMIN_TOKEN`, throttling wrong tokens per address; scopes and project limits
//! (`scopes`); cross-site requests and the security headers (`origin`).

mod origin;
mod scopes;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};

use crate::support::app::{TOKEN, TestApp};
use crate::support::cli::text;
use crate::support::{Config, SignInThrottle, Store, TokenScope, secret_hash};

/// Signs in through the form with `token`; returns the session cookie's value, or the refusal.
async fn sign_in(app: &TestApp, token: &str) -> Result<String, reqwest::Response> {
    let res = app
        .client
        .post(app.url("/login"))
        .header("origin", &app.base)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get(SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.strip_prefix("factory_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    cookie.ok_or(res)
}

/// GET `path` with the session cookie.
async fn get_with_cookie(app: &TestApp, path: &str, session: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .header(COOKIE, format!("factory_session={session}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// GET `path` with a Bearer token.
async fn get_with_token(app: &TestApp, path: &str, token: &str) -> StatusCode {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

/// Runs `factory` with `args` on `dir`: exit code, stdout, stderr.
fn factory(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = crate::support::cli::factory(dir, args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoking_one_ends_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let (code, secret, err) = factory(
        dir.path(),
        &[
            "token",
            "create",
            "--scope",
            "viewer",
            "--label",
            "wallboard",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let secret = secret.trim().to_string();
    let session = sign_in(&app, &secret).await.expect("a viewer may sign in");
    assert_eq!(get_with_cookie(&app, "/api/runs", &session).await, 200);

    let (code, list, err) = factory(dir.path(), &["token", "list"]);
    assert_eq!(code, Some(0), "{err}");
    let line = list.lines().find(|l| l.contains("wallboard")).unwrap();
    assert!(line.contains("viewer") && line.contains("active"), "{list}");
    assert!(!line.contains("never"), "the sign-in is shown: {list}");
    let hash = secret_hash(&secret);
    for leaked in [secret.as_str(), hash.as_str(), TOKEN] {
        assert!(!list.contains(leaked), "the list shows a secret: {list}");
    }
    let id = line.split_whitespace().next().unwrap().to_string();

    let (code, _, err) = factory(dir.path(), &["token", "revoke", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(get_with_cookie(&app, "/api/runs", &session).await, 401);
    assert_eq!(get_with_token(&app, "/api/runs", &secret).await, 401);
    assert_eq!(get_with_token(&app, "/api/runs", TOKEN).await, 200);

    // The revocation is an event: rebuilding the projections from the log keeps it.
    app.stop().await;
    let (code, _, err) = factory(dir.path(), &["audit", "rebuild"]);
    assert_eq!(code, Some(0), "{err}");
    let (_, list, _) = factory(dir.path(), &["token", "list"]);
    let line = list.lines().find(|l| l.contains("wallboard")).unwrap();
    assert!(
        line.contains("revoked") && line.contains("viewer"),
        "{list}"
    );
    let (code, _, err) = factory(dir.path(), &["audit", "verify"]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn bad_token_commands_say_what_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["token", "revoke", "no-such-id"], "no token with id"),
        (
            &["token", "create", "--scope", "root"],
            "viewer, operator or admin",
        ),
        (
            &["token", "create", "--scope", "admin", "--project", "/"],
            "cannot be limited to projects",
        ),
        (
            &[
                "token",
                "create",
                "--scope",
                "viewer",
                "--project",
                "/no/such/dir",
            ],
            "neither a registered project",
        ),
    ];
    for (args, expected) in cases {
        let (code, out, err) = factory(dir.path(), args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!out.contains("fct_"), "{args:?} issued a token: {out}");
    }
    let (code, list, _) = factory(dir.path(), &["token", "list"]);
    assert_eq!(code, Some(0));
    assert!(list.contains("no tokens"), "nothing was issued: {list}");
}

#[tokio::test]
async fn a_replaced_factory_admin_token_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path().to_path_buf()).await;
    let extra = app
        .store
        .create_token("ci", TokenScope::Operator, vec![], "test")
        .await
        .unwrap();
    app.stop().await;
    drop(app);

    // The same data directory, served with another `FACTORY_ADMIN_TOKEN`.
    let new = "fct_replacement_0123456789abcdef0123456789abcdef";
    let replaced = TestApp::spawn_with_token(Config::new(dir.path().to_path_buf()), new).await;
    let base = replaced.base.clone();
    let client = reqwest::Client::new();
    let status = |token: String| {
        let (client, url) = (client.clone(), format!("{base}/api/runs"));
        async move {
            let res = client.get(url).bearer_auth(token).send().await.unwrap();
            res.status()
        }
    };
    assert_eq!(status(new.to_string()).await, 200);
    assert_eq!(
        status(TOKEN.to_string()).await,
        401,
        "the old one is revoked"
    );
    assert_eq!(status(extra.secret).await, 200, "other tokens are kept");
    replaced.stop().await;

    let store = Store::open(dir.path()).await.unwrap();
    let tokens = store.list_tokens().await.unwrap();
    let old = tokens
        .iter()
        .find(|t| t.label == "FACTORY_ADMIN_TOKEN" && t.revoked_at.is_some())
        .expect("the replaced token is listed as revoked");
    assert!(
        old.revoked_reason.as_deref().unwrap().contains("replaced"),
        "{old:?}"
    );
    let active: Vec<_> = tokens
        .iter()
        .filter(|t| t.label == "FACTORY_ADMIN_TOKEN" && t.revoked_at.is_none())
        .collect();
    assert_eq!(active.len(), 1, "{tokens:?}");
}

/// A server that allows 5 wrong tokens per address in a 2-second window.
async fn throttled_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.sign_in_throttle = SignInThrottle::new(5, Duration::from_secs(2));
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    app
}

/// Waits out a 429's `Retry-After`.
async fn wait_out(res: &reqwest::Response) {
    let secs: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "Retry-After {secs}");
    tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(200)).await;
}

#[tokio::test]
async fn wrong_sign_ins_are_throttled_per_address_then_recover() {
    let app = throttled_app().await;
    for _ in 0..5 {
        let res = sign_in(&app, "fct_wrong_guess").await.unwrap_err();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[LOCATION], "/login?error=invalid");
    }
    let res = sign_in(&app, "fct_wrong_guess").await.unwrap_err();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // While throttled even the right token is refused, by form and by header.
    let good = sign_in(&app, TOKEN).await.unwrap_err();
    assert_eq!(good.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get_with_token(&app, "/api/runs", TOKEN).await, 429);
    let body: serde_json::Value = good.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");

    wait_out(&res).await;
    sign_in(&app, TOKEN)
        .await
        .expect("the right token works again");
    assert_eq!(get_with_token(&app, "/api/runs", TOKEN).await, 200);
}

#[tokio::test]
async fn wrong_bearer_tokens_are_throttled_too() {
    let app = throttled_app().await;
    for _ in 0..5 {
        assert_eq!(get_with_token(&app, "/api/runs", "fct_wrong").await, 401);
    }
    let res = app.get("/api/runs").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    wait_out(&res).await;
    assert_eq!(get_with_token(&app, "/api/runs", TOKEN).await, 200);
}
