//! Model servers on loopback that demand a key, as the real services do: an OpenAI-compatible
//! one (`Authorization: Bearer <key>`, else 401) and an Anthropic one (`x-api-key: <key>`, else
//! 401), each refusing what the real API refuses (`wire`) and answering with words only a
//! real call produces (the model asked for, echoed). Every request's headers are kept, so a
//! test can show the key a person typed is the key sent.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::loopback;
use super::wire::{anthropic_refusal, openai_refusal};

/// What a keyed server was sent: each request's headers and body.
pub type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

#[derive(Clone)]
struct Keyed {
    key: String,
    seen: Seen,
}

/// The `Authorization` headers a server received, in order.
pub fn bearer_headers(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter_map(|(h, _)| h.get("authorization"))
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect()
}

async fn openai_chat(
    State(s): State<Keyed>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let sent = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let refused = openai_refusal(&body);
    let model = body["model"].as_str().unwrap_or_default().to_string();
    s.seen.lock().unwrap().push((headers, body));
    if sent != format!("Bearer {}", s.key) {
        // OpenAI's own words (it quotes only the key's last four characters).
        let error = json!({"error": {"message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    if let Some(error) = refused {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    Json(json!({
        "id": "chatcmpl-keyed",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("ready ({model} on the keyed server)")}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 17, "completion_tokens": 4, "total_tokens": 21}
    }))
    .into_response()
}

/// An OpenAI-compatible server that answers only requests carrying `key`; returns its `/v1`
/// base URL and what it was sent.
pub async fn serve_openai(key: &str) -> (String, Seen) {
    let state = Keyed {
        key: key.to_string(),
        seen: Seen::default(),
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route(
            "/v1/models",
            get(|| async { Json(json!({"object": "list", "data": [{"id": "served-model"}]})) }),
        )
        .with_state(state.clone());
    let addr = loopback(app).await;
    (format!("http://{addr}/v1"), state.seen)
}

async fn anthropic_messages(
    State(s): State<Keyed>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let refused = anthropic_refusal(&headers, &body);
    let sent = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let model = body["model"].as_str().unwrap_or_default().to_string();
    s.seen.lock().unwrap().push((headers, body));
    if let Some((status, error)) = refused {
        return (StatusCode::from_u16(status).unwrap(), Json(error)).into_response();
    }
    if sent != s.key {
        let error = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    Json(json!({
        "id": "msg_keyed",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": format!("ready ({model} on the keyed server)")}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 15, "output_tokens": 4}
    }))
    .into_response()
}

/// An Anthropic Messages API that answers only requests carrying `key`; returns its base URL
/// and what it was sent.
pub async fn serve_anthropic(key: &str) -> (String, Seen) {
    let state = Keyed {
        key: key.to_string(),
        seen: Seen::default(),
    };
    let app = axum::Router::new()
        .route("/v1/messages", post(anthropic_messages))
        .with_state(state.clone());
    let addr = loopback(app).await;
    (format!("http://{addr}"), state.seen)
}
