//! Authentication and authorisation, in one middleware: every path except a few public ones
//! needs `Authorization: Bearer <token>` or the session cookie set by `/login` (API paths answer
//! 401 JSON; pages redirect to `/login`); the token's scope must cover the route ([`scope`]);
//! a cookie-borne state change must come from this server's pages ([`origin`]); wrong tokens
//! are throttled per client address. Every response gets the security headers.

pub(super) mod origin;
mod projects;
mod scope;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use app::events::TokenScope;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;

use super::ApiError;
use crate::startup::AppState;
use crate::store::auth::Credential;

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
    } else if path == "/ws"
        || path == "/mcp"
        || path == "/api"
        || path == "/metrics"
        || API_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        Access::Api
    } else {
        Access::Page
    }
}

impl Access {
    /// Every protected route and server function as `(method, path, scope needed)`, from the
    /// one table the middleware reads (`{id}` stands for a path segment). Paths not listed need
    /// `viewer` for GET and `admin` otherwise.
    pub fn scoped_routes() -> impl Iterator<Item = (&'static str, &'static str, TokenScope)> {
        scope::ROUTES.iter().map(|r| (r.method, r.path, r.scope))
    }
}

/// Who made an authenticated request: the token used (directly or through a session) and what
/// it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub scope: TokenScope,
    /// Project paths the token is limited to; empty means every project.
    pub projects: Vec<String>,
    /// True when it came with the session cookie rather than a Bearer token.
    pub by_session: bool,
}

impl Principal {
    fn new(credential: Credential, by_session: bool) -> Principal {
        Principal {
            token_id: credential.token_id,
            scope: credential.scope,
            projects: credential.projects,
            by_session,
        }
    }

    /// The machine's own user, as the CLI commands act (`factory mcp` over stdio): every scope,
    /// every project, no token.
    pub fn local() -> Principal {
        Principal {
            token_id: "local".into(),
            scope: TokenScope::Admin,
            projects: Vec::new(),
            by_session: false,
        }
    }

    /// Whether this principal may see and act on runs of `project` (a run's recorded project:
    /// a path, or none): always for an unlimited token, else only for one of its projects.
    pub async fn may_use_project(&self, project: Option<&str>) -> bool {
        self.projects.is_empty() || projects::allowed(&self.projects, project).await
    }

    /// Whether this principal may start a run in `project` as given (a registered project's
    /// name or a path; none for a run without a project).
    pub async fn may_start_in(
        &self,
        store: &crate::store::Store,
        project: Option<&str>,
    ) -> Result<bool, crate::store::StoreError> {
        if self.projects.is_empty() {
            return Ok(true);
        }
        let resolved = projects::resolve(store, project.map(str::to_string)).await?;
        Ok(projects::allowed(&self.projects, resolved.as_deref()).await)
    }
}

/// The client's address (the TCP peer), which failed sign-ins are counted by. Behind a reverse
/// proxy every client shares the proxy's address; forwarded headers are not trusted.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| {
            addr.ip()
        })
}

/// 429 with `Retry-After` (whole seconds, at least one).
fn too_many_attempts(wait: Duration) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let message = format!(
        "too many wrong tokens from this address: try again in {secs} s (every token from it is \
         refused until then)"
    );
    let body = serde_json::json!({ "error": { "code": "too_many_requests", "message": message } });
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs.to_string())],
        Json(body),
    )
        .into_response()
}

/// Why a raw request path is refused before it is classified, if it is: a `.` or `..`
/// segment (raw or percent-encoded), an empty segment (`//`), a backslash or an encoded slash.
/// Routers and browsers normalise such paths, so `/pkg/../approvals` would be classified as a
/// public asset and then rendered as the Approvals page; no real page or asset needs them.
pub fn unnormalised(path: &str) -> Option<&'static str> {
    let lower = path.to_ascii_lowercase();
    if lower.contains('\\') || lower.contains("%5c") || lower.contains("%2f") {
        return Some("backslashes and encoded slashes are not accepted in a path");
    }
    let mut segments = lower.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        // A trailing slash leaves one empty last segment; any other empty segment is `//`.
        if segment.is_empty() && segments.peek().is_some() {
            return Some("empty path segments (`//`) are not accepted");
        }
        let decoded = segment.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Some("`.` and `..` path segments are not accepted");
        }
    }
    None
}

/// The authentication middleware.
pub async fn require_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Refused before anything else looks at the path: classification must see the path the
    // router will route, and a path that would be normalised differs from it.
    let mut response = match unnormalised(req.uri().path()) {
        Some(problem) => ApiError::BadRequest(format!(
            "{problem}: send the normalised path (no `.`/`..` or empty segments)"
        ))
        .into_response(),
        None => guard(&state, req, next).await,
    };
    origin::secure_headers(response.headers_mut());
    response
}

/// Authenticates, then checks the Origin of cookie-borne changes, the scope and the projects.
async fn guard(state: &AppState, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    req.extensions_mut().insert(ClientIp(ip));
    let allowed = &state.config.allowed_origins;
    let changes_state = origin::changes_state(req.method());
    let access = classify(req.uri().path());
    if access == Access::Public {
        if changes_state && let Err(refused) = origin::check_sign_in(req.headers(), allowed) {
            return refused.into_response();
        }
        return next.run(req).await;
    }
    let principal = match authenticate(state, req.headers(), ip).await {
        Ok(principal) => principal,
        Err(Refused::Throttled(wait)) => return too_many_attempts(wait),
        Err(Refused::Api(ApiError::Unauthorized(_))) if access == Access::Page => {
            return Redirect::to("/login").into_response();
        }
        Err(Refused::Api(err)) => return err.into_response(),
    };
    if principal.by_session
        && changes_state
        && let Err(refused) = origin::check_session_request(req.headers(), allowed)
    {
        return refused.into_response();
    }
    let (needed, target) = scope::required(req.method().as_str(), req.uri().path());
    if principal.scope < needed {
        return ApiError::Forbidden(format!(
            "this needs a token with the `{needed}` scope; the token used has `{}`",
            principal.scope
        ))
        .into_response();
    }
    let route = scope::ROUTES
        .iter()
        .find(|r| scope::matches(r.path, req.uri().path()).is_some())
        .map(|r| r.path);
    let mut req = match projects::check(state, &principal, route, target, req).await {
        Ok(req) => req,
        Err(refused) => return refused.into_response(),
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    Api(#[from] ApiError),
    /// Too many wrong tokens from this address: wait this long.
    #[error("too many wrong tokens from this address: retry in {0:?}")]
    Throttled(Duration),
}

impl From<crate::store::StoreError> for Refused {
    fn from(e: crate::store::StoreError) -> Self {
        Refused::Api(e.into())
    }
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Principal, Refused> {
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
        let throttle = &state.config.sign_in_throttle;
        if let Some(wait) = throttle.retry_after(ip) {
            return Err(Refused::Throttled(wait));
        }
        return match state.store.credential_for(token).await? {
            Some(credential) => Ok(Principal::new(credential, false)),
            None => {
                throttle.record_failure(ip);
                Err(ApiError::Unauthorized("invalid token".into()).into())
            }
        };
    }
    let jar = CookieJar::from_headers(headers);
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        return match state.store.session_credential(cookie.value()).await? {
            Some(credential) => Ok(Principal::new(credential, true)),
            None => Err(ApiError::Unauthorized(
                "session expired or signed out: sign in again at /login".into(),
            )
            .into()),
        };
    }
    Err(ApiError::Unauthorized(
        "authentication required: send `Authorization: Bearer <token>` or sign in at /login".into(),
    )
    .into())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /login` (form): a valid token opens a session (with the token's scope) and lands on the
/// Runs page. Wrong tokens count against the client's address (429 once it has too many).
pub async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    jar: CookieJar,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let throttle = &state.config.sign_in_throttle;
    if let Some(wait) = throttle.retry_after(ip) {
        return Ok(too_many_attempts(wait));
    }
    let token = form
        .map(|Form(f)| f.token.trim().to_string())
        .unwrap_or_default();
    if token.is_empty() {
        return Ok(Redirect::to("/login?error=missing").into_response());
    }
    let Some(credential) = state.store.credential_for(&token).await? else {
        tracing::warn!(%ip, "sign-in with an invalid token");
        throttle.record_failure(ip);
        return Ok(Redirect::to("/login?error=invalid").into_response());
    };
    let secret = state
        .store
        .create_session(&credential.token_id, state.config.session_ttl)
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
        assert_eq!(classify("/mcp"), Access::Api);
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

    #[test]
    fn unnormalised_paths_are_refused() {
        for bad in [
            "/pkg/../approvals",
            "/vendor/%2e%2e/audit",
            "/vendor/%2E./audit",
            "/pkg/./x",
            "/pkg//x",
            "//approvals",
            "/pkg/..",
            "/pkg/..%5capprovals",
            "/pkg/a%2F..%2Fb",
        ] {
            assert!(unnormalised(bad).is_some(), "{bad}");
        }
        for good in [
            "/",
            "/runs/abc",
            "/pkg/factory.wasm",
            "/runs/",
            "/a.b/..c",
            "/x/.hidden",
        ] {
            assert_eq!(unnormalised(good), None, "{good}");
        }
    }
}
