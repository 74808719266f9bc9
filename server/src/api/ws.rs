//! `GET /ws`: the live event stream. Authentication is done by the middleware; here the
//! Origin is checked (a browser page from another site must not ride on the session cookie),
//! then the socket is handed to the hub. Clients only send control messages, so inbound
//! messages are capped small, and past the connection limit a client is refused before the
//! upgrade.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::startup::AppState;

/// Largest message (and frame) a client may send. Clients send nothing but pings and close,
/// so anything near this is abuse; the default would buffer 64 MiB per socket.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

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

/// Upgrades to a WebSocket when the Origin is acceptable and a connection slot is free.
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
        progress: Some(state.engine.progress().clone()),
    };
    let Some(slot) = state.config.ws_connections.try_acquire() else {
        return Ok(busy(state.config.ws_connections.max()));
    };
    let (store, shutdown) = (state.store.clone(), state.shutdown.clone());
    let send_timeout = state.config.ws_send_timeout;
    Ok(ws
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| async move {
            // Held for the life of the connection.
            let _slot = slot;
            let _counted = crate::telemetry::metrics::Held::on(
                &crate::telemetry::metrics::METRICS.websocket_clients,
            );
            crate::hub::serve(socket, store, shutdown, options, send_timeout).await;
        }))
}

/// 503 with the usual JSON error body and a hint when to come back.
fn busy(max: usize) -> Response {
    let mut response = ApiError::Rejected {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!(
            "the server already streams to {max} WebSocket clients, the most it serves at once; \
             try again shortly"
        ),
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Accepts no Origin (non-browser clients, which must still authenticate), the server's own
/// origin (same host and port as the `Host` header), or one from the allowlist.
fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if super::trusted_origin(origin, headers, allowed) {
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
