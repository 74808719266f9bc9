//! OpenAI's streamed chat completions, for loopback servers that answer whole replies: when a
//! request asks to stream, the reply it would have had is sent the way the real API streams
//! it — a role chunk, the content in pieces (a pause between them), a chunk with the finish
//! reason, the usage in a last chunk only when `stream_options.include_usage` asks for it,
//! then `[DONE]` — so a client that reassembles it wrong, or that does not ask for usage,
//! gets something else than the whole reply. Tool calls stream in pieces too: each call's id
//! and name, then its arguments a piece at a time.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use serde_json::{Value, json};

/// Characters of content per streamed piece.
const PIECE: usize = 48;

/// `whole` (a `chat.completion` body) as the stream `request` asked for, one piece every
/// `gap`.
pub fn openai_stream(request: &Value, whole: &Value, gap: Duration) -> Response {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": whole["id"], "object": "chat.completion.chunk", "model": request["model"],
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let choice = &whole["choices"][0];
    let content = choice["message"]["content"].as_str().unwrap_or_default();
    let mut frames = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let chars: Vec<char> = content.chars().collect();
    for piece in chars.chunks(PIECE) {
        let piece: String = piece.iter().collect();
        frames.push(chunk(json!({"content": piece}), Value::Null));
    }
    // Tool calls stream as the API sends them: the id and name first, the arguments in pieces.
    for (index, call) in choice["message"]["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        frames.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                   "function": {"name": call["function"]["name"], "arguments": ""}}]}),
            Value::Null,
        ));
        let arguments: Vec<char> = call["function"]["arguments"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .collect();
        for piece in arguments.chunks(PIECE) {
            let piece: String = piece.iter().collect();
            frames.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    let finish = choice
        .get("finish_reason")
        .cloned()
        .unwrap_or(json!("stop"));
    frames.push(chunk(json!({}), finish));
    if request["stream_options"]["include_usage"] == true {
        frames.push(
            json!({"id": whole["id"], "object": "chat.completion.chunk", "choices": [],
                           "usage": whole["usage"]}),
        );
    }
    let mut frames: Vec<String> = frames.iter().map(|f| format!("data: {f}\n\n")).collect();
    frames.push("data: [DONE]\n\n".into());
    let stream = futures::stream::unfold((0usize, frames), move |(i, frames)| async move {
        let frame = frames.get(i)?.clone();
        if i > 0 && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        Some((Ok::<_, std::io::Error>(frame), (i + 1, frames)))
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
