//! The Anthropic client against a loopback server speaking the Messages API, which refuses
//! what the real API refuses (see `support::wire`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::support::wire::{anthropic_refusal, fixture};
use crate::support::{
    AnthropicProvider, Capabilities, Message, Provider, ProviderError, ProviderKind,
    ProviderRequest, family_defaults, loopback,
};

type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;
type Queue = Arc<Mutex<VecDeque<(u16, Value)>>>;

async fn serve(replies: Vec<(u16, Value)>) -> (String, Seen) {
    let queue: Queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/messages",
            post(
                |State((queue, seen)): State<(Queue, Seen)>,
                 headers: HeaderMap,
                 Json(body): Json<Value>| async move {
                    let refused = anthropic_refusal(&headers, &body);
                    seen.lock().unwrap().push((headers, body));
                    let (status, reply) =
                        refused.unwrap_or_else(|| queue.lock().unwrap().pop_front().unwrap());
                    let res: Response =
                        (StatusCode::from_u16(status).unwrap(), Json(reply)).into_response();
                    res
                },
            ),
        )
        .with_state((queue, seen.clone()));
    let addr = loopback(app).await;
    (format!("http://{addr}"), seen)
}

fn provider(base: &str) -> AnthropicProvider {
    AnthropicProvider::new(
        "anthropic",
        base,
        Some("sk-ant-test".into()),
        Duration::from_secs(5),
    )
}

fn caps() -> Capabilities {
    family_defaults(ProviderKind::Anthropic, "claude-test", false)
}

fn messages() -> Vec<Message> {
    vec![Message::system("Be brief."), Message::user("Hello")]
}

/// The system prompt goes to `system`, marked for the prompt cache; cached tokens come back
/// in `usage` apart from `input_tokens` and are counted as input, with how many were cached.
#[tokio::test]
async fn text_reply_with_cached_usage_and_native_headers() {
    let (base, seen) = serve(vec![(200, fixture("anthropic", "cache_usage"))]).await;
    let msgs = messages();
    let caps = caps();
    let req = ProviderRequest {
        model: "claude-test",
        messages: &msgs,
        temperature: Some(0.2),
        max_tokens: 100,
        schema: None,
        offline: None,
        caps: &caps,
        tools: &[],
        stream: None,
    };
    let reply = provider(&base).complete(&req).await.unwrap();
    assert_eq!(reply.text, "Hi there");
    assert_eq!(
        (reply.input_tokens, reply.output_tokens),
        (12 + 248 + 1800, 3)
    );
    assert_eq!((reply.cached_tokens, reply.cache_write_tokens), (1800, 248));
    assert!(!reply.truncated);
    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["x-api-key"], "sk-ant-test");
    assert_eq!(headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Hello"}])
    );
}

/// A reply cut off at `max_tokens` says so.
#[tokio::test]
async fn a_reply_cut_off_at_max_tokens_is_marked_truncated() {
    let (base, _) = serve(vec![(200, fixture("anthropic", "max_tokens"))]).await;
    let msgs = messages();
    let caps = caps();
    let req = ProviderRequest {
        model: "claude-test",
        messages: &msgs,
        temperature: None,
        max_tokens: 64,
        schema: None,
        offline: None,
        caps: &caps,
        tools: &[],
        stream: None,
    };
    let reply = provider(&base).complete(&req).await.unwrap();
    assert!(reply.truncated);
    assert_eq!(reply.output_tokens, 64);
}

/// The loopback refuses what the API refuses: a key missing is a permanent 401.
#[tokio::test]
async fn the_loopback_refuses_what_the_api_refuses() {
    let (base, _) = serve(vec![]).await;
    let msgs = messages();
    let caps = caps();
    let req = ProviderRequest {
        model: "claude-test",
        messages: &msgs,
        temperature: None,
        max_tokens: 64,
        schema: None,
        offline: None,
        caps: &caps,
        tools: &[],
        stream: None,
    };
    let keyless = AnthropicProvider::new("anthropic", &base, None, Duration::from_secs(5));
    match keyless.complete(&req).await {
        Err(ProviderError::Permanent { message }) => {
            assert!(
                message.contains("401") && message.contains("x-api-key"),
                "{message}"
            )
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[tokio::test]
async fn structured_output_uses_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
    let (base, seen) = serve(vec![(
        200,
        json!({"content": [{"type": "tool_use", "name": "result", "input": {"ok": true}}],
               "usage": {"input_tokens": 1, "output_tokens": 1}}),
    )])
    .await;
    let msgs = messages();
    let caps = caps();
    let req = ProviderRequest {
        model: "claude-test",
        messages: &msgs,
        temperature: Some(0.0),
        max_tokens: 100,
        schema: Some(&schema),
        offline: None,
        caps: &caps,
        tools: &[],
        stream: None,
    };
    let reply = provider(&base).complete(&req).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&reply.text).unwrap(),
        json!({"ok": true})
    );
    let body = seen.lock().unwrap()[0].1.clone();
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "result"})
    );
    assert_eq!(body["tools"][0]["input_schema"], schema);
}

#[tokio::test]
async fn overloaded_is_transient_and_bad_requests_are_permanent() {
    let (base, _) = serve(vec![
        (529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
        (400, json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens too large"}})),
    ])
    .await;
    let msgs = messages();
    let caps = caps();
    let req = ProviderRequest {
        model: "claude-test",
        messages: &msgs,
        temperature: None,
        max_tokens: 100,
        schema: None,
        offline: None,
        caps: &caps,
        tools: &[],
        stream: None,
    };
    let p = provider(&base);
    assert!(matches!(
        p.complete(&req).await,
        Err(ProviderError::Transient { .. })
    ));
    match p.complete(&req).await {
        Err(ProviderError::Permanent { message }) => {
            assert!(
                message.contains("anthropic:claude-test")
                    && message.contains("max_tokens too large"),
                "{message}"
            );
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
}
