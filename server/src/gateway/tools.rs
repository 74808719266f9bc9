//! Tool calling across wire formats. A model with native tool calling gets the tools in its
//! wire format's own fields (each provider encodes them); a model without it gets them
//! described in the prompt and answers with a JSON object naming its calls, read back here, so
//! callers see the same [`ToolCall`]s either way.

use serde_json::{Value, json};

use super::types::{Message, Role, ToolCall, ToolSpec};

/// The tool name structured output uses with Anthropic (a forced tool), so no caller's tool
/// may take it.
pub const RESERVED: &str = "result";

/// Most tools one request may offer.
pub const MAX_TOOLS: usize = 128;

/// Checks what a request offers: names the APIs accept (`^[a-zA-Z0-9_-]{1,64}$`), unique,
/// parameters a JSON Schema object, at most [`MAX_TOOLS`].
pub fn validate(tools: &[ToolSpec]) -> Result<(), String> {
    if tools.len() > MAX_TOOLS {
        return Err(format!(
            "{} tools offered; at most {MAX_TOOLS} are accepted",
            tools.len()
        ));
    }
    for (i, tool) in tools.iter().enumerate() {
        let name_ok = !tool.name.is_empty()
            && tool.name.len() <= 64
            && tool
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(format!(
                "tool name `{}` is not accepted: use 1 to 64 letters, digits, `_` or `-`",
                tool.name
            ));
        }
        if tool.name == RESERVED {
            return Err(format!(
                "tool name `{RESERVED}` is reserved for structured replies: choose another"
            ));
        }
        if tools[..i].iter().any(|t| t.name == tool.name) {
            return Err(format!("tool `{}` is offered twice", tool.name));
        }
        if tool.parameters["type"] != "object" {
            return Err(format!(
                "tool `{}`: its parameters must be a JSON Schema with \"type\": \"object\"",
                tool.name
            ));
        }
    }
    Ok(())
}

/// The system message that offers `tools` to a model without native tool calling.
pub fn prompt(tools: &[ToolSpec]) -> Message {
    let listed: Vec<String> = tools
        .iter()
        .map(|t| {
            format!(
                "- {}: {}\n  arguments (JSON Schema): {}",
                t.name, t.description, t.parameters
            )
        })
        .collect();
    Message::system(format!(
        "You can call these tools:\n{}\n\nTo call tools, reply with only this JSON object, no \
         prose and no code fence: {{\"tool_calls\": [{{\"name\": \"<tool>\", \"arguments\": \
         {{…}}}}]}} (several calls run in order). Their results come back in the next message. \
         When you need no more tools, give your answer instead.",
        listed.join("\n")
    ))
}

/// `messages` for a model without native tool calling: an assistant's calls become the JSON
/// it would have written, and each tool result a user message naming the call it answers.
pub fn flatten(messages: &[Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| match m.role {
            Role::Assistant if !m.tool_calls.is_empty() => {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"name": c.name, "arguments": c.arguments}))
                    .collect();
                Message::assistant(json!({ "tool_calls": calls }).to_string())
            }
            Role::Tool => {
                let (id, name) = m
                    .tool_call
                    .as_ref()
                    .map_or(("?", "?"), |c| (c.id.as_str(), c.name.as_str()));
                Message::user(format!("Result of tool call {id} ({name}):\n{}", m.content))
            }
            _ => m.clone(),
        })
        .collect()
}

/// The calls in a reply written as [`prompt`] asks (the object alone, or in a code fence),
/// with ids `call_1`, `call_2`, …; `None` when the reply is an answer rather than calls.
pub fn parse_text_calls(text: &str) -> Option<Vec<ToolCall>> {
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .unwrap_or(trimmed);
    let value: Value = serde_json::from_str(inner.trim()).ok()?;
    let calls = value.get("tool_calls")?.as_array()?;
    let parsed: Option<Vec<ToolCall>> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            Some(ToolCall {
                id: format!("call_{}", i + 1),
                name: call.get("name")?.as_str()?.to_string(),
                arguments: call.get("arguments").cloned().unwrap_or_else(|| json!({})),
            })
        })
        .collect();
    parsed.filter(|calls| !calls.is_empty())
}

/// Arguments sent as a JSON string (the OpenAI wire format), parsed; a string that is not
/// JSON is kept as a string for the caller to refuse with a message the model can act on.
pub fn arguments_from_string(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file() -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    }

    #[test]
    fn names_the_apis_refuse_are_refused_here_with_what_is_accepted() {
        assert!(validate(&[read_file()]).is_ok());
        let mut bad = read_file();
        bad.name = "read file".into();
        assert!(validate(&[bad]).unwrap_err().contains("letters, digits"));
        assert!(
            validate(&[read_file(), read_file()])
                .unwrap_err()
                .contains("twice")
        );
        let mut flat = read_file();
        flat.parameters = json!({"type": "string"});
        assert!(
            validate(&[flat])
                .unwrap_err()
                .contains("\"type\": \"object\"")
        );
    }

    #[test]
    fn text_calls_are_read_in_order_and_answers_are_not_calls() {
        let calls = parse_text_calls(
            "```json\n{\"tool_calls\": [{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}, \
             {\"name\": \"list_dir\", \"arguments\": {}}]}\n```",
        )
        .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            (calls[0].id.as_str(), calls[0].name.as_str()),
            ("call_1", "read_file")
        );
        assert_eq!(calls[0].arguments["path"], "a");
        assert_eq!(calls[1].name, "list_dir");
        assert!(parse_text_calls("The answer is 42.").is_none());
        assert!(parse_text_calls("{\"status\": \"COMPLETE\"}").is_none());
        assert!(parse_text_calls("{\"tool_calls\": []}").is_none());
        assert!(parse_text_calls("{\"tool_calls\": [{\"arguments\": {}}]}").is_none());
    }

    #[test]
    fn a_conversation_with_tool_turns_flattens_to_plain_messages() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "read_file".into(),
            arguments: json!({"path": "src/lib.rs"}),
        };
        let flat = flatten(&[
            Message::user("look"),
            Message::assistant_calls("", vec![call.clone()]),
            Message::tool_result(&call, "fn main() {}"),
        ]);
        assert!(
            flat.iter()
                .all(|m| m.tool_calls.is_empty() && m.tool_call.is_none())
        );
        assert_eq!(flat[1].role, Role::Assistant);
        assert_eq!(
            parse_text_calls(&flat[1].content).unwrap()[0].arguments,
            call.arguments
        );
        assert_eq!(flat[2].role, Role::User);
        assert!(
            flat[2].content.contains("call_1 (read_file)")
                && flat[2].content.contains("fn main() {}")
        );
    }

    #[test]
    fn string_arguments_are_parsed_and_garbage_is_kept_for_the_caller() {
        assert_eq!(arguments_from_string("{\"a\":1}")["a"], 1);
        assert_eq!(arguments_from_string(""), json!({}));
        assert_eq!(arguments_from_string("{oops"), json!("{oops"));
    }
}
