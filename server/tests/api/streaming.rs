//! Streamed replies in each wire format, from loopback servers that stream the way the real
//! APIs do (server-sent events for OpenAI and Anthropic, one JSON object per line for Ollama).
//! Each server streams back a value it could only have read from the request, so a reply
//! assembled from the wrong pieces fails; progress is reported as the pieces arrive; a stalled
//! stream fails on its own clock while a slow one that keeps sending finishes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::wire::{anthropic_refusal, openai_refusal};
use crate::support::{
    AnthropicProvider, EnvSnapshot, Gateway, GatewayConfig, Message, ModelConfig, ModelRequest,
    Progress, Provider, ProviderConfig, ProviderKind, ProviderRequest, StreamProgress, Streaming,
    family_defaults, loopback,
};

/// How the loopback streams: the pieces of its answer, the pause between them, and whether it
/// stops sending (for good) after the second piece.
#[derive(Clone, Copy)]
struct Pace {
    every: Duration,
    stall_after_two: bool,
    finish: bool,
}

const BRISK: Pace = Pace {
    every: Duration::from_millis(5),
    stall_after_two: false,
    finish: true,
};

type Seen = Arc<Mutex<Vec<Value>>>;

/// The nonce in the request's last user message, which the answer must carry.
fn nonce(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .and_then(|c| c.split_whitespace().last())
        .unwrap_or("none")
        .to_string()
}

/// A response whose body is `frames`, sent one by one at `pace`.
fn streamed(frames: Vec<String>, pace: Pace, content_type: &'static str) -> Response {
    let stream = futures::stream::unfold((0usize, frames), move |(i, frames)| async move {
        if i >= frames.len() {
            return None;
        }
        if i > 0 {
            let wait = if pace.stall_after_two && i >= 2 {
                Duration::from_secs(30)
            } else {
                pace.every
            };
            tokio::time::sleep(wait).await;
        }
        let frame = frames[i].clone();
        Some((Ok::<_, std::io::Error>(frame), (i + 1, frames)))
    });
    Response::builder()
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

fn sse(data: &[Value]) -> Vec<String> {
    data.iter().map(|d| format!("data: {d}\n\n")).collect()
}

/// OpenAI's chat completions, streamed: content in pieces, the usage (with cached tokens) in a
/// last chunk when `include_usage` is asked for, then `[DONE]`.
async fn openai(State((seen, pace)): State<(Seen, Pace)>, Json(body): Json<Value>) -> Response {
    let refused = openai_refusal(&body);
    seen.lock().unwrap().push(body.clone());
    if let Some(error) = refused {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    assert_eq!(body["stream"], true, "a streamed call asks to stream");
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "model": body["model"],
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if body.get("tools").is_some() {
        // A tool call whose arguments arrive in three pieces.
        let n = nonce(&body);
        frames.push(chunk(json!({"tool_calls": [{"index": 0, "id": "call_s1", "type": "function", "function": {"name": "read_file", "arguments": ""}}]}), Value::Null));
        frames.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\":"}}]}),
            Value::Null,
        ));
        frames.push(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": format!("\"{n}.txt\"")}}]}), Value::Null));
        frames.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
            Value::Null,
        ));
        frames.push(chunk(json!({}), json!("tool_calls")));
    } else {
        for piece in ["echo", ": ", &nonce(&body)] {
            frames.push(chunk(json!({"content": piece}), Value::Null));
        }
        if pace.finish {
            frames.push(chunk(json!({}), json!("stop")));
        }
    }
    if pace.finish && body["stream_options"]["include_usage"] == true {
        frames.push(
            json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 900, "completion_tokens": 3, "total_tokens": 903,
                      "prompt_tokens_details": {"cached_tokens": 512}}}),
        );
    }
    let mut frames = sse(&frames);
    if pace.finish {
        frames.push("data: [DONE]\n\n".into());
    }
    streamed(frames, pace, "text/event-stream")
}

async fn serve_openai(pace: Pace) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(openai))
        .with_state((seen.clone(), pace));
    (format!("http://{}/v1", loopback(app).await), seen)
}

fn gateway(
    kind: ProviderKind,
    base: &str,
    model: &str,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> Gateway {
    let mut config = GatewayConfig::defaults(&EnvSnapshot::default());
    config.providers.insert(
        "lab".into(),
        ProviderConfig {
            kind,
            base_url: Some(base.to_string()),
            api_key_env: None,
            key_stored: false,
        },
    );
    let entry = format!("lab:{model}");
    config
        .aliases
        .insert("lab/stream".into(), vec![entry.clone()]);
    config.models.insert(
        entry,
        ModelConfig {
            input_per_mtok: 2.0,
            cached_input_per_mtok: Some(0.5),
            output_per_mtok: 8.0,
            ..ModelConfig::default()
        },
    );
    config.retry.backoff_base_ms = 1;
    config.retry.backoff_max_ms = 5;
    tweak(&mut config);
    config.validate().unwrap();
    Gateway::new(config)
}

/// A request that streams, collecting what it reports.
fn request(text: &str) -> (ModelRequest, Arc<Mutex<Vec<StreamProgress>>>) {
    let reports: Arc<Mutex<Vec<StreamProgress>>> = Arc::default();
    let mut request = ModelRequest::new(
        "lab/stream",
        vec![Message::system("Be brief."), Message::user(text)],
        128,
    );
    let sink = reports.clone();
    request.progress = Some(Progress::new(move |p| sink.lock().unwrap().push(p)));
    (request, reports)
}

#[tokio::test]
async fn an_openai_stream_is_assembled_reported_and_priced_with_its_cached_tokens() {
    let (base, seen) = serve_openai(BRISK).await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |_| {});
    let n = uuid::Uuid::new_v4().simple().to_string();
    let (request, reports) = request(&format!("Echo {n}"));
    let reply = gateway.complete(&request).await.unwrap();
    assert_eq!(reply.text, format!("echo: {n}"));
    assert_eq!(
        (reply.input_tokens, reply.output_tokens, reply.cached_tokens),
        (900, 3, 512)
    );
    let expected = (388.0 * 2.0 + 512.0 * 0.5 + 3.0 * 8.0) / 1e6;
    assert!(
        (reply.cost_usd - expected).abs() < 1e-12,
        "{}",
        reply.cost_usd
    );
    let reports = reports.lock().unwrap();
    let counts: Vec<u32> = reports.iter().map(|p| p.output_tokens).collect();
    assert_eq!(counts, [1, 2, 3], "one report per piece, counting up");
    assert!(reports.iter().all(|p| p.model == "lab:gpt-4o"));
    assert_eq!(
        seen.lock().unwrap()[0]["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn streamed_tool_call_arguments_are_joined_before_they_are_parsed() {
    let (base, _) = serve_openai(BRISK).await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |_| {});
    let n = uuid::Uuid::new_v4().simple().to_string();
    let (mut request, _) = request(&format!("Read {n}"));
    request.tools = vec![crate::support::ToolSpec {
        name: "read_file".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }];
    let reply = gateway.complete(&request).await.unwrap();
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].id, "call_s1");
    assert_eq!(
        reply.tool_calls[0].arguments,
        json!({"path": format!("{n}.txt")})
    );
}

/// A model that keeps sending finishes even past `timeout_secs` (it is not stalled); one that
/// stops sending fails after `stall_secs` with a message saying so, however young the call.
#[tokio::test]
async fn a_slow_stream_finishes_and_a_stalled_one_fails_on_its_own_clock() {
    let slow = Pace {
        every: Duration::from_millis(450),
        stall_after_two: false,
        finish: true,
    };
    let (base, _) = serve_openai(slow).await;
    let gateway_slow = gateway(ProviderKind::Openai, &base, "gpt-4o", |c| {
        c.retry.timeout_secs = 1;
        c.retry.stall_secs = 1;
        c.retry.max_retries = 0;
    });
    let (request_slow, _) = request("Echo slowly");
    let started = std::time::Instant::now();
    let reply = gateway_slow.complete(&request_slow).await.unwrap();
    assert_eq!(reply.text, "echo: slowly");
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "it outlived timeout_secs"
    );

    let stalling = Pace {
        every: Duration::from_millis(5),
        stall_after_two: true,
        finish: true,
    };
    let (base, _) = serve_openai(stalling).await;
    let gateway_stall = gateway(ProviderKind::Openai, &base, "gpt-4o", |c| {
        c.retry.stall_secs = 1;
        c.retry.max_retries = 0;
    });
    let (request_stall, reports) = request("Echo never");
    let started = std::time::Instant::now();
    let error = gateway_stall.complete(&request_stall).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the stall was noticed: {:?}",
        started.elapsed()
    );
    let outcome = &error.path()[0].outcome;
    assert!(
        outcome.contains("stalled: nothing received for 1 s"),
        "{outcome}"
    );
    assert_eq!(
        reports.lock().unwrap().len(),
        1,
        "the piece before the stall was reported"
    );
}

/// A stream that closes before the reply says it is finished is a failure, not a short answer.
#[tokio::test]
async fn a_stream_cut_short_is_not_taken_for_a_whole_reply() {
    let cut = Pace {
        every: Duration::from_millis(5),
        stall_after_two: false,
        finish: false,
    };
    let (base, seen) = serve_openai(cut).await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |c| {
        c.retry.max_retries = 1
    });
    let (request, _) = request("Echo cut");
    let error = gateway.complete(&request).await.unwrap_err();
    assert!(
        error.to_string().contains("ended before the reply did"),
        "{error}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "retried like any transient failure"
    );
}

#[tokio::test]
async fn an_ollama_stream_of_lines_is_assembled_with_its_counts() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/api/tags", get(|| async { Json(json!({"models": [{"name": "llama3.1:8b"}]})) }))
        .route(
            "/api/chat",
            post(|State(seen): State<Seen>, Json(body): Json<Value>| async move {
                seen.lock().unwrap().push(body.clone());
                let n = nonce(&body);
                let line = |content: &str| json!({"model": body["model"], "message": {"role": "assistant", "content": content}, "done": false}).to_string() + "\n";
                let frames = vec![
                    line("echo"),
                    line(": "),
                    line(&n),
                    json!({"model": body["model"], "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 40, "eval_count": 3}).to_string() + "\n",
                ];
                streamed(frames, BRISK, "application/x-ndjson")
            }),
        )
        .with_state(seen.clone());
    let base = format!("http://{}", loopback(app).await);
    let gateway = gateway(ProviderKind::Ollama, &base, "llama3.1:8b", |_| {});
    let n = uuid::Uuid::new_v4().simple().to_string();
    let (request, reports) = request(&format!("Echo {n}"));
    let reply = gateway.complete(&request).await.unwrap();
    assert_eq!(reply.text, format!("echo: {n}"));
    assert_eq!((reply.input_tokens, reply.output_tokens), (40, 3));
    assert_eq!(reports.lock().unwrap().len(), 3);
    assert_eq!(seen.lock().unwrap()[0]["stream"], true);
}

#[tokio::test]
async fn an_anthropic_event_stream_is_assembled_with_usage_from_start_and_delta() {
    let app = axum::Router::new()
        .route(
            "/v1/messages",
            post(|headers: HeaderMap, Json(body): Json<Value>| async move {
                if let Some((status, error)) = anthropic_refusal(&headers, &body) {
                    return (StatusCode::from_u16(status).unwrap(), Json(error)).into_response();
                }
                assert_eq!(body["stream"], true);
                let n = nonce(&body);
                let events = [
                    ("message_start", json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant", "content": [], "model": body["model"], "stop_reason": null, "usage": {"input_tokens": 25, "cache_read_input_tokens": 100, "output_tokens": 1}}})),
                    ("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})),
                    ("ping", json!({"type": "ping"})),
                    ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "echo: "}})),
                    ("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": n}})),
                    ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
                    ("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}})),
                    ("message_stop", json!({"type": "message_stop"})),
                ];
                let frames = events.iter().map(|(name, data)| format!("event: {name}\ndata: {data}\n\n")).collect();
                streamed(frames, BRISK, "text/event-stream")
            }),
        );
    let base = format!("http://{}", loopback(app).await);
    let provider = AnthropicProvider::new(
        "anthropic",
        &base,
        Some("sk-ant-test".into()),
        Duration::from_secs(5),
    );
    let caps = family_defaults(ProviderKind::Anthropic, "claude-sonnet-4-5", false);
    let n = uuid::Uuid::new_v4().simple().to_string();
    let messages = vec![
        Message::system("Be brief."),
        Message::user(format!("Echo {n}")),
    ];
    let reports: Mutex<Vec<u32>> = Mutex::default();
    let report = |tokens: u32| reports.lock().unwrap().push(tokens);
    let reply = provider
        .complete(&ProviderRequest {
            model: "claude-sonnet-4-5",
            messages: &messages,
            temperature: None,
            max_tokens: 128,
            schema: None,
            offline: None,
            caps: &caps,
            tools: &[],
            stream: Some(Streaming {
                stall: Duration::from_secs(5),
                timeout: Duration::from_secs(10),
                progress: &report,
            }),
        })
        .await
        .unwrap();
    assert_eq!(reply.text, format!("echo: {n}"));
    assert_eq!(
        (reply.input_tokens, reply.cached_tokens, reply.output_tokens),
        (125, 100, 4)
    );
    assert_eq!(*reports.lock().unwrap(), [1, 2]);
}
