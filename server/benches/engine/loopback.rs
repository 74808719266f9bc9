//! The loopback servers the engine bench talks to: a scripted OpenAI-compatible model and an
//! OTLP/HTTP receiver for the traces section.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Turns of the agent loop's engineer before it answers.
pub(crate) const AGENT_TURNS: usize = 20;

/// When the model server answered and was next asked, for the agent loop's engineer.
#[derive(Clone, Default)]
pub(crate) struct Turns(pub(crate) Arc<std::sync::Mutex<Vec<(Instant, Instant)>>>);

/// The model: every team answers with a valid TaskResult after `delay`. With `turns`, the
/// architect plans one work order and its engineer runs `true` for [`AGENT_TURNS`] turns
/// (the plain-text action format) before it answers with one edit; each of its requests'
/// arrival and answer is recorded.
pub(crate) async fn model(delay: Duration) -> String {
    model_with(delay, None).await
}

pub(crate) async fn model_with(delay: Duration, turns: Option<Turns>) -> String {
    async fn chat(
        State((delay, turns)): State<(Duration, Option<Turns>)>,
        Json(body): Json<Value>,
    ) -> Response {
        let arrived = Instant::now();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        // The team's own system message (a tool-less model gets the tools message first).
        let team = messages
            .iter()
            .filter(|m| m["role"] == "system")
            .filter_map(|m| m["content"].as_str())
            .filter_map(|c| c.lines().next())
            .find_map(|l| {
                l.rsplit_once('(')
                    .and_then(|(_, r)| r.split_once(')'))
                    .map(|(t, _)| t.to_string())
            })
            .unwrap_or_else(|| "team".into());
        let working = turns.is_some()
            && team == "backend-engineering"
            && messages.iter().any(|m| {
                m["role"] == "user"
                    && m["content"]
                        .as_str()
                        .is_some_and(|c| c.contains("Your work order `wo-1`"))
            });
        let assistant_turns = messages.iter().filter(|m| m["role"] == "assistant").count();
        let mut result = json!({
            "status": "COMPLETE",
            "reasoning": format!("{team} is done"),
            "blockers": [], "assumptions_made": [],
            "verified_facts": [format!("{team} checked the requirement")],
            "clarification_needed": null,
            "artifacts": [{"name": format!("{team}.md"), "content": format!("# {team}\n\nDone.\n")}]
        });
        if turns.is_some() && team == "solution-architecture" {
            result["work_orders"] = json!([{
                "id": "wo-1", "title": "Note the change", "description": "Add a note",
                "risk": "low", "files_in_scope": ["src/lib.rs"],
                "acceptance_criteria": ["the note exists"], "dependencies": [], "confidence": 0.9
            }]);
        }
        if working {
            result["edits"] = json!([{"op": "write", "path": "NOTE.md", "content": "noted\n"}]);
        }
        let content = if working && assistant_turns < AGENT_TURNS {
            json!({"tool_calls": [{"name": "run", "arguments": {"command": "true"}}]}).to_string()
        } else {
            result.to_string()
        };
        let result = Value::String(content);
        let usage = json!({"prompt_tokens": 800, "completion_tokens": 80});
        if working && let Some(t) = &turns {
            t.0.lock().unwrap().push((arrived, Instant::now()));
        }
        if body["stream"] != true {
            return Json(json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": result}, "finish_reason": "stop"}],
                "usage": usage
            }))
            .into_response();
        }
        // Streamed as the API streams (the engine asks for it by default).
        let chunk = |delta: Value, finish: Value| json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        let mut frames = [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": result}), Value::Null),
            chunk(json!({}), json!("stop")),
            json!({"choices": [], "usage": usage}),
        ]
        .iter()
        .map(|f| format!("data: {f}\n\n"))
        .collect::<String>();
        frames.push_str("data: [DONE]\n\n");
        ([("content-type", "text/event-stream")], frames).into_response()
    }
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state((delay, turns));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

/// An OTLP/HTTP receiver on loopback that accepts every export: its base URL and how many
/// requests it received.
pub(crate) async fn otlp_receiver() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        post(move |_body: axum::body::Bytes| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async {
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), count)
}
