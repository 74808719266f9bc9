//! Model providers on loopback that replay scripted replies in their own wire format: an
//! OpenAI-compatible server (`serve`, with a gateway configuration for it; it refuses what
//! OpenAI refuses, see `wire`) and an Ollama (`serve_ollama`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{
    EnvSnapshot, GatewayConfig, Message, ModelConfig, ModelRequest, ProviderConfig, ProviderKind,
    loopback,
};

/// One scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// A recorded reply body from `tests/fixtures/wire/openai/`.
    Fixture(&'static str),
    Ok {
        text: &'static str,
        input: u32,
        output: u32,
    },
    Status {
        status: u16,
        retry_after: Option<&'static str>,
    },
    Garbled,
    Slow(Duration),
    /// Answers after a delay, with usage.
    Delayed {
        delay: Duration,
        input: u32,
        output: u32,
    },
}

/// What a scripted server has left to say and what it was asked.
#[derive(Clone, Default)]
pub struct Script {
    /// Replies not given yet, in order; when none is left, every call gets a 500.
    pub replies: Arc<Mutex<VecDeque<Reply>>>,
    /// Every request, headers and body, in order.
    pub requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Script {
    /// Requests received so far.
    pub fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// The next scripted reply, streamed when the request asks (errors are never streamed).
async fn chat(
    State(script): State<Script>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let streamed = body["stream"] == true;
    let reply = answer(script, headers, body.clone()).await;
    if !streamed || !reply.status().is_success() {
        return reply;
    }
    let bytes = axum::body::to_bytes(reply.into_body(), usize::MAX)
        .await
        .unwrap();
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(whole) => super::stream::openai_stream(&body, &whole, Duration::ZERO),
        // A garbled reply stays garbled.
        Err(_) => (StatusCode::OK, bytes).into_response(),
    }
}

async fn answer(script: Script, headers: HeaderMap, body: Value) -> Response {
    let refused = super::wire::openai_refusal(&body);
    script.requests.lock().unwrap().push((headers, body));
    if let Some(error) = refused {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let next = script.replies.lock().unwrap().pop_front();
    match next.unwrap_or(Reply::Status { status: 500, retry_after: None }) {
        Reply::Ok { text, input, output } => Json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}
        }))
        .into_response(),
        Reply::Status { status, retry_after } => {
            let mut res = (
                StatusCode::from_u16(status).unwrap(),
                Json(json!({"error": {"message": format!("scripted {status}"), "type": "test"}})),
            )
                .into_response();
            if let Some(v) = retry_after {
                res.headers_mut().insert("retry-after", v.parse().unwrap());
            }
            res
        }
        Reply::Fixture(name) => Json(super::wire::fixture("openai", name)).into_response(),
        Reply::Garbled => (StatusCode::OK, "{\"choices\": [ this is not json").into_response(),
        Reply::Delayed {
            delay,
            input,
            output,
        } => {
            tokio::time::sleep(delay).await;
            Json(json!({
                "choices": [{"message": {"content": "done"}}],
                "usage": {"prompt_tokens": input, "completion_tokens": output}
            }))
            .into_response()
        }
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            Json(json!({"choices": [{"message": {"content": "late"}}]})).into_response()
        }
    }
}

/// Starts a scripted OpenAI-compatible server; returns its `/v1` base URL.
pub async fn serve(replies: Vec<Reply>) -> (String, Script) {
    let script = Script {
        replies: Arc::new(Mutex::new(replies.into())),
        ..Script::default()
    };
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                Json(json!({"object": "list", "data": [{"id": "served-model"}]}))
            }),
        )
        .with_state(script.clone());
    let addr = loopback(app).await;
    (format!("http://{addr}/v1"), script)
}

/// A gateway configuration whose `test/chain` alias tries the servers at `bases` in order
/// (`p0`, `p1`, …) with fast backoff; `p0:gpt-test` costs $2 / $8 per million tokens.
pub fn config(bases: &[&str], tweak: impl FnOnce(&mut GatewayConfig)) -> GatewayConfig {
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    let mut chain = Vec::new();
    for (i, base) in bases.iter().enumerate() {
        let name = format!("p{i}");
        config.providers.insert(
            name.clone(),
            ProviderConfig {
                kind: ProviderKind::Openai,
                base_url: Some(base.to_string()),
                api_key_env: None,
                key_stored: false,
            },
        );
        chain.push(format!("{name}:gpt-test"));
    }
    config.aliases.insert("test/chain".into(), chain);
    config.models.insert(
        "p0:gpt-test".into(),
        ModelConfig {
            input_per_mtok: 2.0,
            output_per_mtok: 8.0,
            max_concurrency: 2,
            context_window: Some(8_000),
            ..ModelConfig::default()
        },
    );
    config.retry.backoff_base_ms = 1;
    config.retry.backoff_max_ms = 5;
    config.retry.timeout_secs = 1;
    tweak(&mut config);
    config.validate().unwrap();
    config
}

/// A short request to `test/chain`, with `schema` if given.
pub fn request(schema: Option<Value>) -> ModelRequest {
    let mut request = ModelRequest::new(
        "test/chain",
        vec![Message::system("You are terse."), Message::user("Say hi")],
        64,
    );
    request.temperature = Some(0.0);
    request.schema = schema;
    request
}

/// The chat requests an Ollama received, in order.
pub type Seen = Arc<Mutex<Vec<Value>>>;

/// An Ollama that lists `models` and answers every chat with "local answer".
pub async fn serve_ollama(models: &'static [&'static str]) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/tags",
            axum::routing::get(move || async move {
                let list: Vec<Value> = models.iter().map(|m| json!({"name": m, "size": 1})).collect();
                Json(json!({ "models": list }))
            }),
        )
        .route(
            "/api/chat",
            post(|State(seen): State<Seen>, Json(body): Json<Value>| async move {
                let model = body["model"].clone();
                seen.lock().unwrap().push(body);
                Json(json!({
                    "model": model, "done": true,
                    "message": {"role": "assistant", "content": "{\"answer\":\"local answer\"}"},
                    "prompt_eval_count": 21, "eval_count": 7
                }))
            }),
        )
        .with_state(seen.clone());
    let addr = loopback(app).await;
    (format!("http://{addr}"), seen)
}
