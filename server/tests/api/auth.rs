//! Every route refuses requests without valid credentials; sign-in sets a safe cookie.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::support::app::{TOKEN, TestApp};
use crate::support::{Config, SignInThrottle};

/// Every protected API route (method, path). `/api/list_runs` is the dashboard's server function.
const API_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/runs"),
    ("GET", "/api/runs/some-id"),
    ("POST", "/supervisor/start"),
    ("GET", "/supervisor/status/some-id"),
    ("GET", "/ws"),
    ("POST", "/api/list_runs"),
    ("GET", "/api/no-such-route"),
    ("GET", "/events"),
];

/// Dashboard pages: without credentials they redirect to the sign-in page.
const PAGES: &[&str] = &["/", "/runs/x", "/no-such-page"];

async fn send(app: &TestApp, method: &str, path: &str, auth: Auth<'_>) -> reqwest::Response {
    let req = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app
            .client
            .post(app.url(path))
            .header(CONTENT_TYPE, "application/json")
            .body("{}"),
        other => panic!("unexpected method {other}"),
    };
    let req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Cookie(c) => req.header(COOKIE, format!("factory_session={c}")),
        Auth::Raw(h) => req.header("authorization", h),
    };
    req.send().await.unwrap()
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    Raw(&'a str),
}

#[tokio::test]
async fn every_api_route_requires_credentials() {
    // Many wrong tokens from one address: lift the sign-in throttle (tested in security::tokens).
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    config.sign_in_throttle = SignInThrottle::new(u32::MAX, Duration::from_secs(60));
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    let bad = [
        Auth::None,
        Auth::Bearer("fct_wrong_token_0000000000000000000000000000"),
        Auth::Cookie("not-a-session"),
        Auth::Raw("Basic dXNlcjpwYXNz"),
    ];
    for (method, path) in API_ROUTES {
        for auth in bad {
            let res = send(&app, method, path, auth).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(
                body["error"]["code"], "unauthorized",
                "{method} {path}: {body}"
            );
        }
        let res = send(&app, method, path, Auth::Bearer(TOKEN)).await;
        assert_ne!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path} with the token"
        );
    }
}

#[tokio::test]
async fn pages_redirect_to_sign_in_and_public_paths_stay_open() {
    let app = TestApp::spawn().await;
    for path in PAGES {
        let res = send(&app, "GET", path, Auth::None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/login");
    }
    let health = send(&app, "GET", "/healthz", Auth::None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let login = send(&app, "GET", "/login", Auth::None).await;
    assert_eq!(login.status(), StatusCode::OK);
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in to Factory"), "{html}");
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_sign_out_revokes_it() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/");
    let set_cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("factory_session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(
        !set_cookie.contains(TOKEN),
        "the cookie must not carry the admin token"
    );
    let session = set_cookie
        .trim_start_matches("factory_session=")
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let runs = send(&app, "GET", "/api/runs", Auth::Cookie(&session)).await;
    assert_eq!(runs.status(), StatusCode::OK);
    let page = send(&app, "GET", "/", Auth::Cookie(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("No runs yet"), "empty state is shown: {html}");

    let out = app
        .client
        .post(app.url("/logout"))
        .header(COOKIE, format!("factory_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = send(&app, "GET", "/api/runs", Auth::Cookie(&session)).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_token_does_not_sign_in() {
    let app = TestApp::spawn().await;
    for token in ["", "fct_wrong"] {
        let res = app
            .client
            .post(app.url("/login"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let location = res.headers()[LOCATION].to_str().unwrap();
        assert!(location.starts_with("/login?error="), "{location}");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let res = send(&app, "GET", "/api/runs", Auth::None).await;
    let id = res.headers()["x-request-id"].to_str().unwrap();
    assert!(!id.is_empty());
}
