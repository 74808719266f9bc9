//! Authentication: every path except a few public ones needs `Authorization: Bearer <token>`
//! or the session cookie set by `/login`. API paths answer 401 JSON; pages redirect to
//! `/login`.

use axum::Form;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::ApiError;
use crate::startup::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "factory_session";

/// How a path is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed: health, sign-in, compiled assets.
    Public,
    /// Machine-facing: 401 JSON without credentials.
    Api,
    /// A dashboard page: redirect to `/login` without credentials.
    Page,
}

/// Classifies a request path.
pub fn classify(path: &str) -> Access {
    const PUBLIC: &[&str] = &[
        "/healthz",
        "/login",
        "/logout",
        "/favicon.ico",
        "/favicon.svg",
        "/robots.txt",
        // The dashboard's scripts, needed by the sign-in page too; they hold no data.
        "/live.js",
        "/charts.js",
    ];
    const API_PREFIXES: &[&str] = &["/api/", "/supervisor/", "/events"];
    if PUBLIC.contains(&path) || path.starts_with("/pkg/") || path.starts_with("/vendor/") {
        Access::Public
    } else if path == "/ws" || path == "/api" || API_PREFIXES.iter().any(|p| path.starts_with(p)) {
        Access::Api
    } else {
        Access::Page
    }
}

/// Who made an authenticated request (the id of the admin token used).
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
}

/// The authentication middleware.
pub async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let access = classify(req.uri().path());
    if access == Access::Public {
        return next.run(req).await;
    }
    match authenticate(&state, req.headers()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(err) if access == Access::Page && matches!(err, ApiError::Unauthorized(_)) => {
            Redirect::to("/login").into_response()
        }
        Err(err) => err.into_response(),
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "malformed Authorization header: expected `Bearer <token>`".into(),
                )
            })?;
        return match state.store.token_id_for(token).await? {
            Some(token_id) => Ok(Principal { token_id }),
            None => Err(ApiError::Unauthorized("invalid token".into())),
        };
    }
    let jar = CookieJar::from_headers(headers);
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        return match state.store.session_token_id(cookie.value()).await? {
            Some(token_id) => Ok(Principal { token_id }),
            None => Err(ApiError::Unauthorized(
                "session expired or signed out: sign in again at /login".into(),
            )),
        };
    }
    Err(ApiError::Unauthorized(
        "authentication required: send `Authorization: Bearer <token>` or sign in at /login".into(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login` (form): a valid admin token opens a session and lands on the Runs page.
pub async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let token = form
        .map(|Form(f)| f.token.trim().to_string())
        .unwrap_or_default();
    if token.is_empty() {
        return Ok(Redirect::to("/login?error=missing").into_response());
    }
    let Some(token_id) = state.store.token_id_for(&token).await? else {
        tracing::warn!("sign-in with an invalid token");
        return Ok(Redirect::to("/login?error=invalid").into_response());
    };
    let secret = state
        .store
        .create_session(&token_id, state.config.session_ttl)
        .await?;
    let cookie = Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies)
        .path("/")
        .max_age(
            time::Duration::try_from(state.config.session_ttl).unwrap_or(time::Duration::WEEK),
        );
    Ok((jar.add(cookie), Redirect::to("/")).into_response())
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, ApiError> {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        state.store.delete_session(cookie.value()).await?;
    }
    let removal = Cookie::build((SESSION_COOKIE, "")).path("/");
    Ok((jar.remove(removal), Redirect::to("/login")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified() {
        assert_eq!(classify("/healthz"), Access::Public);
        assert_eq!(classify("/login"), Access::Public);
        assert_eq!(classify("/pkg/factory.wasm"), Access::Public);
        assert_eq!(classify("/live.js"), Access::Public);
        assert_eq!(classify("/vendor/idiomorph.min.js"), Access::Public);
        assert_eq!(classify("/vendorx"), Access::Page);
        assert_eq!(classify("/ws"), Access::Api);
        assert_eq!(classify("/api/runs"), Access::Api);
        assert_eq!(classify("/api"), Access::Api);
        assert_eq!(classify("/supervisor/start"), Access::Api);
        assert_eq!(classify("/events"), Access::Api);
        assert_eq!(classify("/"), Access::Page);
        assert_eq!(classify("/runs/abc"), Access::Page);
        // Look-alikes of public paths stay protected.
        assert_eq!(classify("/healthz/x"), Access::Page);
        assert_eq!(classify("/pkgx"), Access::Page);
    }
}
