//! `GET /ws`: the live event stream. Authentication is done by the middleware; here the
//! Origin is checked (a browser page from another site must not ride on the session cookie),
//! then the socket is handed to the hub.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;

use super::ApiError;
use crate::startup::AppState;

/// `?after=N` resumes after event N (instead of a snapshot); `?run=ID` keeps one run's events;
/// `?brief=true` sends each event's number, kind and run only (what the dashboard's pages use).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    after: Option<i64>,
    run: Option<String>,
    #[serde(default)]
    brief: bool,
}

/// Upgrades to a WebSocket when the Origin is acceptable.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    check_origin(&headers, &state.config.allowed_origins)?;
    let Query(query) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; accepted: `after` (an event number), `run` (a run id) and `brief` (true or false)",
            e.body_text()
        ))
    })?;
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::BadRequest("`after` must be 0 or more".into()));
    }
    let options = crate::hub::StreamOptions {
        after: query.after,
        run: query.run,
        brief: query.brief,
    };
    let (store, shutdown) = (state.store.clone(), state.shutdown.clone());
    Ok(ws.on_upgrade(move |socket| crate::hub::serve(socket, store, shutdown, options)))
}

/// Accepts no Origin (non-browser clients, which must still authenticate), the server's own
/// origin (same host and port as the `Host` header), or one from the allowlist.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let own = !host.is_empty()
        && (origin == format!("http://{host}") || origin == format!("https://{host}"));
    if own || allowed.iter().any(|a| a == origin) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "WebSocket origin {origin:?} is not allowed: use the dashboard served by this server \
             or add the origin to FACTORY_ALLOWED_ORIGINS"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn own_origin_and_allowlist_pass_others_fail() {
        let allow = vec!["https://factory.example".to_string()];
        assert!(check_origin(&headers(None, "127.0.0.1:3000"), &allow).is_ok());
        assert!(
            check_origin(
                &headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000"),
                &allow
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(Some("https://factory.example"), "127.0.0.1:3000"),
                &allow
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &headers(Some("http://evil.example"), "127.0.0.1:3000"),
                &allow
            )
            .is_err()
        );
        assert!(
            check_origin(
                &headers(Some("http://127.0.0.1:3001"), "127.0.0.1:3000"),
                &allow
            )
            .is_err()
        );
    }
}
