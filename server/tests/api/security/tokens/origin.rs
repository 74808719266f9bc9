//! Cross-site request forgery and framing: a change riding on the session cookie must come from
//! this server's pages (Bearer requests are not affected); a foreign sign-in form is refused;
//! every response forbids framing.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};

use super::sign_in;
use crate::support::Config;
use crate::support::app::{TOKEN, TestApp};

/// POST `/api/list_runs` (a server function) with the session cookie and `headers`.
async fn post_with_cookie(
    app: &TestApp,
    session: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/list_runs"))
        .header(COOKIE, format!("factory_session={session}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn cookie_changes_from_another_site_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.allowed_origins = vec!["https://factory.example".into()];
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    let session = sign_in(&app, TOKEN).await.unwrap();

    for refused in [
        &[("origin", "http://evil.example")][..],
        &[("origin", "null")],
        &[("sec-fetch-site", "cross-site")],
        // Neither header: not what a browser on this server's pages sends.
        &[],
    ] {
        let res = post_with_cookie(&app, &session, refused).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{refused:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("Origin"), "{refused:?}: {message}");
    }
    let own = app.base.clone();
    for accepted in [
        &[("origin", own.as_str())][..],
        &[("origin", "https://factory.example")],
        &[("sec-fetch-site", "same-origin")],
    ] {
        let res = post_with_cookie(&app, &session, accepted).await;
        assert_eq!(res.status(), StatusCode::OK, "{accepted:?}");
    }
    // Reading with the cookie, and anything with a Bearer token, is not affected.
    let read = app
        .client
        .get(app.url("/api/runs"))
        .header(COOKIE, format!("factory_session={session}"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let bearer = app
        .client
        .post(app.url("/api/list_runs"))
        .bearer_auth(TOKEN)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_sign_in_form_on_another_site_is_refused() {
    let app = TestApp::spawn().await;
    for headers in [
        &[("origin", "http://evil.example")][..],
        &[("sec-fetch-site", "cross-site")],
    ] {
        let mut req = app.client.post(app.url("/login")).form(&[("token", TOKEN)]);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(res.headers().get(SET_COOKIE).is_none(), "{headers:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cross-site sign-in"),
            "{body}"
        );
    }
    // The server's own form still signs in (as do clients that send no Origin).
    sign_in(&app, TOKEN).await.expect("same-origin sign-in");
    let plain = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert!(plain.headers().get(SET_COOKIE).is_some());
}

#[tokio::test]
async fn every_response_forbids_framing_and_sniffing() {
    let app = TestApp::spawn().await;
    let anonymous = |path: &str| app.client.get(app.url(path)).send();
    let responses = [
        anonymous("/login").await.unwrap(),
        anonymous("/healthz").await.unwrap(),
        anonymous("/api/runs").await.unwrap(),
        anonymous("/approvals").await.unwrap(),
        app.get("/").await,
        app.get("/api/no-such-route").await,
    ];
    for res in responses {
        let url = res.url().to_string();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{url}: {csp}");
        }
        // The dashboard's inline hydration scripts must keep running.
        assert!(
            !csp.contains("script-src") && !csp.contains("default-src"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["referrer-policy"], "same-origin", "{url}");
    }
}
