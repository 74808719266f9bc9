//! Tool calling through each wire format, against loopback servers that replay the providers'
//! documented tool-call replies and refuse tool turns the real APIs refuse (see
//! `support::wire`). Each conversation reads two files whose random contents the server can
//! only learn from the tool results Factory sends back: its final answer echoes them, in the
//! order the calls were made.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::wire::{anthropic_refusal, fixture, ollama_refusal, openai_refusal};
use crate::support::{
    AnthropicProvider, EnvSnapshot, Gateway, GatewayConfig, Message, ModelConfig, ModelRequest,
    Provider, ProviderConfig, ProviderKind, ProviderRequest, ToolCall, ToolSpec, family_defaults,
    loopback,
};

type Seen = Arc<Mutex<Vec<Value>>>;

/// The two files the model asks for, with contents it cannot guess.
struct Notes {
    dir: tempfile::TempDir,
    a: String,
    b: String,
}

impl Notes {
    fn new() -> Notes {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("notes")).unwrap();
        let a = format!("alpha-{}", uuid::Uuid::new_v4().simple());
        let b = format!("beta-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.path().join("notes/a.txt"), &a).unwrap();
        std::fs::write(dir.path().join("notes/b.txt"), &b).unwrap();
        Notes { dir, a, b }
    }

    /// Runs a `read_file` call the way a tool loop would.
    fn run(&self, call: &ToolCall) -> String {
        assert_eq!(call.name, "read_file");
        let path = call.arguments["path"].as_str().expect("a path argument");
        std::fs::read_to_string(self.dir.path().join(path)).unwrap()
    }
}

fn read_file() -> ToolSpec {
    ToolSpec {
        name: "read_file".into(),
        description: "Read a file of the repository".into(),
        parameters: json!({
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": false
        }),
    }
}

/// The second turn's answer: every tool result the request carries, in order.
fn echo(results: Vec<String>) -> String {
    format!("read: {}", results.join(" | "))
}

/// A gateway whose `lab/tools` alias is `lab:<model>` on a provider of `kind` at `base`.
fn gateway(
    kind: ProviderKind,
    base: &str,
    model: &str,
    caps: impl FnOnce(&mut ModelConfig),
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
        .insert("lab/tools".into(), vec![entry.clone()]);
    let mut price = ModelConfig::default();
    caps(&mut price);
    config.models.insert(entry, price);
    config.retry.backoff_base_ms = 1;
    config.retry.backoff_max_ms = 5;
    config.validate().unwrap();
    Gateway::new(config)
}

/// Asks, runs the calls, sends their results back, and returns the calls and the answer.
async fn converse(gateway: &Gateway, notes: &Notes) -> (Vec<ToolCall>, String) {
    let mut request = ModelRequest::new(
        "lab/tools",
        vec![
            Message::system("You are a careful engineer."),
            Message::user("Read notes/a.txt and notes/b.txt, then tell me what they say."),
        ],
        256,
    );
    request.tools = vec![read_file()];
    let first = gateway.complete(&request).await.expect("the first turn");
    assert!(!first.tool_calls.is_empty(), "no tool calls in {first:?}");
    let calls = first.tool_calls.clone();
    request
        .messages
        .push(Message::assistant_calls(first.text.clone(), calls.clone()));
    for call in &calls {
        request
            .messages
            .push(Message::tool_result(call, notes.run(call)));
    }
    let second = gateway.complete(&request).await.expect("the second turn");
    assert!(second.tool_calls.is_empty());
    (calls, second.text)
}

async fn openai_chat(State(seen): State<Seen>, Json(body): Json<Value>) -> Response {
    let refused = openai_refusal(&body);
    seen.lock().unwrap().push(body.clone());
    if let Some(error) = refused {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let model = body["model"].as_str().unwrap_or_default();
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let native = model != "plain-model";
    if !native && body.get("tools").is_some() {
        // What vLLM answers when tool calling is not enabled for a model.
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"object": "error", "message": "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set", "type": "BadRequestError", "code": 400})),
        )
            .into_response();
    }
    let results: Vec<String> = if native {
        messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or_default().to_string())
            .collect()
    } else {
        messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .filter_map(|c| c.strip_prefix("Result of tool call "))
            .map(|c| c.split_once(":\n").map_or("", |(_, r)| r).to_string())
            .collect()
    };
    if results.is_empty() {
        if native {
            return Json(fixture("openai", "tool_calls")).into_response();
        }
        // A model without tool calling answers as the prompt asked.
        let offered = messages.iter().any(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("- read_file:"))
        });
        let text = if offered {
            "```json\n{\"tool_calls\": [{\"name\": \"read_file\", \"arguments\": {\"path\": \"notes/a.txt\"}}, {\"name\": \"read_file\", \"arguments\": {\"path\": \"notes/b.txt\"}}]}\n```"
        } else {
            "I cannot read files."
        };
        return Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 50, "completion_tokens": 30}})).into_response();
    }
    Json(json!({
        "id": "chatcmpl-answer", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": echo(results)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 140, "completion_tokens": 12}
    }))
    .into_response()
}

async fn serve_openai() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .with_state(seen.clone());
    (format!("http://{}/v1", loopback(app).await), seen)
}

/// Native OpenAI tool calling: the tools go out as functions, two parallel calls come back in
/// order with their ids and parsed arguments, and the results go back as `tool` messages the
/// API accepts.
#[tokio::test]
async fn openai_tool_calls_run_in_order_and_their_results_reach_the_model() {
    let (base, seen) = serve_openai().await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |_| {});
    let notes = Notes::new();
    let (calls, answer) = converse(&gateway, &notes).await;
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["call_abc123", "call_def456"]
    );
    assert_eq!(calls[1].arguments, json!({"path": "notes/b.txt"}));
    assert_eq!(answer, echo(vec![notes.a.clone(), notes.b.clone()]));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["tools"][0]["function"]["name"], "read_file");
    assert_eq!(seen[0]["tools"][0]["type"], "function");
    // The assistant turn went back with its arguments as a JSON string, as the API requires.
    let assistant = &seen[1]["messages"][2];
    assert!(assistant["tool_calls"][0]["function"]["arguments"].is_string());
}

/// The loopback refuses what the API refuses: a tool result with no call before it, and
/// calls left unanswered.
#[tokio::test]
async fn openai_refuses_tool_turns_out_of_order() {
    let (base, _) = serve_openai().await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |_| {});
    let call = ToolCall {
        id: "call_1".into(),
        name: "read_file".into(),
        arguments: json!({"path": "x"}),
    };
    let mut request = ModelRequest::new(
        "lab/tools",
        vec![Message::user("go"), Message::tool_result(&call, "stray")],
        64,
    );
    request.tools = vec![read_file()];
    let error = gateway.complete(&request).await.unwrap_err().to_string();
    assert!(
        error.contains("must be a response to a preceeding message"),
        "{error}"
    );
    request.messages = vec![
        Message::user("go"),
        Message::assistant_calls("", vec![call]),
        Message::user("never answered"),
    ];
    let error = gateway.complete(&request).await.unwrap_err().to_string();
    assert!(
        error.contains("did not have response messages: call_1"),
        "{error}"
    );
}

/// A model without tool calling (here, one a vLLM server serves without a tool parser) gets
/// the tools described in its prompt — never the `tools` field it would refuse — and its JSON
/// reply becomes the same tool calls; the results go back as text.
#[tokio::test]
async fn a_model_without_tool_calling_gets_tools_in_the_prompt_and_its_text_calls_are_read() {
    let (base, seen) = serve_openai().await;
    let gateway = gateway(ProviderKind::Openai, &base, "plain-model", |m| {
        m.tools = Some(false)
    });
    let notes = Notes::new();
    let (calls, answer) = converse(&gateway, &notes).await;
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["call_1", "call_2"]
    );
    assert_eq!(answer, echo(vec![notes.a.clone(), notes.b.clone()]));
    let seen = seen.lock().unwrap();
    assert!(seen.iter().all(|body| body.get("tools").is_none()));
    assert!(
        seen[1]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["role"] != "tool")
    );
}

/// A tool name the APIs would refuse is refused before any request, with what is accepted.
#[tokio::test]
async fn invalid_tool_names_are_refused_before_any_request() {
    let (base, seen) = serve_openai().await;
    let gateway = gateway(ProviderKind::Openai, &base, "gpt-4o", |_| {});
    let mut request = ModelRequest::new("lab/tools", vec![Message::user("go")], 64);
    let mut bad = read_file();
    bad.name = "read file".into();
    request.tools = vec![bad];
    let error = gateway.complete(&request).await.unwrap_err().to_string();
    assert!(error.contains("letters, digits, `_` or `-`"), "{error}");
    assert!(seen.lock().unwrap().is_empty());
}

async fn serve_ollama() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/tags",
            get(|| async { Json(json!({"models": [{"name": "llama3.1:8b", "size": 1}]})) }),
        )
        .route(
            "/api/chat",
            post(
                |State(seen): State<Seen>, Json(body): Json<Value>| async move {
                    let refused = ollama_refusal(&body);
                    seen.lock().unwrap().push(body.clone());
                    if let Some(error) = refused {
                        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
                    }
                    let results: Vec<String> = body["messages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|m| m["role"] == "tool")
                        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
                        .collect();
                    if results.is_empty() {
                        return Json(fixture("ollama", "tool_calls")).into_response();
                    }
                    Json(json!({
                        "model": body["model"], "done": true, "done_reason": "stop",
                        "message": {"role": "assistant", "content": echo(results)},
                        "prompt_eval_count": 150, "eval_count": 9
                    }))
                    .into_response()
                },
            ),
        )
        .with_state(seen.clone());
    (format!("http://{}", loopback(app).await), seen)
}

/// Ollama's tool calls carry no ids and their arguments as objects: Factory numbers them,
/// sends the arguments back as objects (Ollama refuses strings) and names each result's tool.
#[tokio::test]
async fn ollama_tool_calls_are_numbered_and_their_results_named() {
    let (base, seen) = serve_ollama().await;
    let gateway = gateway(ProviderKind::Ollama, &base, "llama3.1:8b", |_| {});
    let notes = Notes::new();
    let (calls, answer) = converse(&gateway, &notes).await;
    assert_eq!(
        calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["call_1", "call_2"]
    );
    assert_eq!(answer, echo(vec![notes.a.clone(), notes.b.clone()]));
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0]["tools"][0]["function"]["name"], "read_file");
    let tool_turn = seen[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    assert_eq!(tool_turn["tool_name"], "read_file");
}

/// Anthropic: tools go out with `input_schema`, `tool_use` blocks come back as calls (the text
/// beside them kept), and the results go back together in one user turn of `tool_result`
/// blocks right after the calls, as the API requires.
#[tokio::test]
async fn anthropic_tool_use_round_trips_with_results_in_one_user_turn() {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/messages",
            post(
                |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
                    let refused = anthropic_refusal(&headers, &body);
                    seen.lock().unwrap().push(body.clone());
                    if let Some((status, error)) = refused {
                        return (StatusCode::from_u16(status).unwrap(), Json(error))
                            .into_response();
                    }
                    let results: Vec<String> = body["messages"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
                        .filter(|b| b["type"] == "tool_result")
                        .map(|b| b["content"].as_str().unwrap_or_default().to_string())
                        .collect();
                    if results.is_empty() {
                        return Json(fixture("anthropic", "tool_use")).into_response();
                    }
                    Json(json!({
                        "id": "msg_answer", "type": "message", "role": "assistant",
                        "content": [{"type": "text", "text": echo(results)}],
                        "stop_reason": "end_turn",
                        "usage": {"input_tokens": 200, "output_tokens": 10}
                    }))
                    .into_response()
                },
            ),
        )
        .with_state(seen.clone());
    let base = format!("http://{}", loopback(app).await);
    let provider = AnthropicProvider::new(
        "anthropic",
        &base,
        Some("sk-ant-test".into()),
        Duration::from_secs(5),
    );
    let caps = family_defaults(ProviderKind::Anthropic, "claude-sonnet-4-5", false);
    let tools = [read_file()];
    let notes = Notes::new();
    let mut messages = vec![
        Message::system("Be careful."),
        Message::user("Read both notes."),
    ];
    let ask = |messages: &[Message]| {
        let messages = messages.to_vec();
        let provider = &provider;
        let caps = &caps;
        let tools = &tools;
        async move {
            provider
                .complete(&ProviderRequest {
                    model: "claude-sonnet-4-5",
                    messages: &messages,
                    temperature: None,
                    max_tokens: 256,
                    schema: None,
                    offline: None,
                    caps,
                    tools,
                    stream: None,
                })
                .await
        }
    };
    let first = ask(&messages).await.unwrap();
    assert_eq!(first.text, "I'll read both notes.");
    assert_eq!(first.tool_calls.len(), 2);
    assert_eq!(first.tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    messages.push(Message::assistant_calls(
        first.text.clone(),
        first.tool_calls.clone(),
    ));
    for call in &first.tool_calls {
        messages.push(Message::tool_result(call, notes.run(call)));
    }
    let second = ask(&messages).await.unwrap();
    assert_eq!(second.text, echo(vec![notes.a.clone(), notes.b.clone()]));
    {
        // Released before the next request: the server records into the same list.
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["tools"][0]["input_schema"]["type"], "object");
        let turns = seen[1]["messages"].as_array().unwrap();
        assert_eq!(turns.len(), 3, "the results share one user turn: {turns:?}");
    }
    // And the loopback does refuse results split from their calls.
    let mut split = messages.clone();
    split.insert(3, Message::user("in between"));
    let refused = ask(&split).await.unwrap_err().to_string();
    assert!(
        refused.contains("without `tool_result` blocks immediately after"),
        "{refused}"
    );
}
