//! What the real model APIs refuse, for the loopback servers: a request the real service would
//! answer with a 400 gets the same 400 here, so a test passes only if Factory sends what the
//! service accepts. The rules are written from the providers' documentation, independently of
//! Factory's own code (which must not be what decides whether Factory's requests are right),
//! and the replies are fixtures in `tests/fixtures/wire/`, recorded from the documentation.

use serde_json::{Value, json};

/// A fixture reply: `tests/fixtures/wire/{provider}/{name}.json`.
pub fn fixture(provider: &str, name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/wire/{provider}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn openai_error(message: String, param: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})
}

/// OpenAI's reasoning models (o-series, GPT-5 family).
fn openai_reasoning(model: &str) -> bool {
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|p| model.starts_with(p))
}

/// Why OpenAI's chat completions would refuse `body` (status 400 and its error body), or
/// `None` when it would be accepted.
pub fn openai_refusal(body: &Value) -> Option<Value> {
    let model = body["model"].as_str().unwrap_or_default();
    if model.is_empty() {
        return Some(openai_error(
            "you must provide a model parameter".into(),
            "model",
            Some("missing_required_parameter"),
        ));
    }
    if body["messages"].as_array().is_none_or(Vec::is_empty) {
        return Some(openai_error(
            "[] is too short - 'messages'".into(),
            "messages",
            Some("invalid_value"),
        ));
    }
    if openai_reasoning(model) {
        if body.get("max_tokens").is_some() {
            return Some(openai_error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use \
                 'max_completion_tokens' instead."
                    .into(),
                "max_tokens",
                Some("unsupported_parameter"),
            ));
        }
        if let Some(t) = body.get("temperature").and_then(Value::as_f64)
            && t != 1.0
        {
            return Some(openai_error(
                format!(
                    "Unsupported value: 'temperature' does not support {t} with this model. \
                     Only the default (1) value is supported."
                ),
                "temperature",
                Some("unsupported_value"),
            ));
        }
    } else if body.get("reasoning_effort").is_some() {
        return Some(openai_error(
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.".into(),
            "reasoning_effort",
            Some("unsupported_parameter"),
        ));
    }
    if body.get("stream_options").is_some() && body["stream"] != true {
        return Some(openai_error(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.".into(),
            "stream_options",
            Some("invalid_value"),
        ));
    }
    if let Some(problem) = openai_tool_problem(body) {
        return Some(problem);
    }
    let format = &body["response_format"];
    if format["type"] == "json_schema" && format["json_schema"]["strict"] == true {
        let schema = &format["json_schema"]["schema"];
        if let Some(problem) = strict_problem(schema, &mut Vec::new()) {
            let name = format["json_schema"]["name"].as_str().unwrap_or_default();
            return Some(openai_error(
                format!("Invalid schema for response_format '{name}': {problem}"),
                "response_format",
                None,
            ));
        }
    }
    None
}

/// How `body`'s tools or tool turns break the chat completions rules, worded as the API
/// words it: every tool a `function` with a valid name; a call's arguments a JSON string; each
/// assistant message with `tool_calls` followed by one `tool` message per call id, and no
/// `tool` message without such a call before it.
fn openai_tool_problem(body: &Value) -> Option<Value> {
    for (i, tool) in body["tools"].as_array().into_iter().flatten().enumerate() {
        let name = tool["function"]["name"].as_str().unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if tool["type"] != "function" || !valid {
            return Some(openai_error(
                format!(
                    "Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
                ),
                &format!("tools[{i}].function.name"),
                Some("invalid_value"),
            ));
        }
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m["role"] == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or_default();
            let Some(at) = open.iter().position(|o| o == id) else {
                return Some(openai_error(
                    format!(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[{i}])"
                    ),
                    &format!("messages.[{i}].role"),
                    None,
                ));
            };
            open.remove(at);
            continue;
        }
        if !open.is_empty() {
            return Some(openai_error(
                format!(
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                    open.join(", ")
                ),
                &format!("messages.[{i}].role"),
                None,
            ));
        }
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            if !call["function"]["arguments"].is_string() {
                return Some(openai_error(
                    format!(
                        "Invalid type for 'messages[{i}].tool_calls[0].function.arguments': expected a string, but got an object instead."
                    ),
                    &format!("messages[{i}].tool_calls[0].function.arguments"),
                    Some("invalid_type"),
                ));
            }
            open.push(call["id"].as_str().unwrap_or_default().to_string());
        }
    }
    None
}

/// The first way `schema` breaks strict mode, worded as the API words it.
fn strict_problem(schema: &Value, context: &mut Vec<String>) -> Option<String> {
    let at = format!(
        "In context=({})",
        context
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let map = schema.as_object()?;
    for keyword in ["allOf", "oneOf", "not", "if", "patternProperties"] {
        if map.contains_key(keyword) {
            return Some(format!("{}, '{keyword}' is not permitted.", at));
        }
    }
    let types: Vec<&str> = match &map.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if context.is_empty() && !types.contains(&"object") {
        return Some(format!(
            "{}, schema must be a JSON Schema of 'type: \"object\"'.",
            at
        ));
    }
    if types.contains(&"object") {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Some(format!(
                "{}, 'additionalProperties' is required to be supplied and to be false.",
                at
            ));
        }
        let properties = map.get("properties").and_then(Value::as_object);
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, property) in properties.into_iter().flatten() {
            if !required.contains(&name.as_str()) {
                return Some(format!(
                    "{}, 'required' is required to be supplied and to be an array including \
                     every key in properties. Missing '{name}'.",
                    at
                ));
            }
            context.extend(["properties".to_string(), name.clone()]);
            let found = strict_problem(property, context);
            context.truncate(context.len() - 2);
            if found.is_some() {
                return found;
            }
        }
    }
    if let Some(items) = map.get("items") {
        context.push("items".into());
        let found = strict_problem(items, context);
        context.pop();
        return found;
    }
    for (i, option) in map
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        context.extend(["anyOf".to_string(), i.to_string()]);
        let found = strict_problem(option, context);
        context.truncate(context.len() - 2);
        if found.is_some() {
            return found;
        }
    }
    None
}

fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// Why Anthropic's Messages API would refuse a request (status and error body), or `None`.
pub fn anthropic_refusal(headers: &axum::http::HeaderMap, body: &Value) -> Option<(u16, Value)> {
    if !headers.contains_key("x-api-key") {
        return Some((
            401,
            anthropic_error("authentication_error", "x-api-key header is required"),
        ));
    }
    if !headers.contains_key("anthropic-version") {
        return Some((
            400,
            anthropic_error(
                "invalid_request_error",
                "anthropic-version: header is required",
            ),
        ));
    }
    let invalid = |message: &str| Some((400, anthropic_error("invalid_request_error", message)));
    if body.get("max_tokens").and_then(Value::as_u64).is_none() {
        return invalid("max_tokens: Field required");
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if messages.iter().any(|m| m["role"] == "system") {
        return invalid(
            "messages: Unexpected role \"system\". The Messages API accepts a top-level \
             `system` parameter, not \"system\" as an input message role.",
        );
    }
    if messages.first().is_none_or(|m| m["role"] != "user") {
        return invalid("messages: first message must use the \"user\" role");
    }
    if let Some(t) = body.get("temperature").and_then(Value::as_f64)
        && !(0.0..=1.0).contains(&t)
    {
        return invalid("temperature: range: 0..1");
    }
    if body["tool_choice"]["type"] == "tool" {
        let name = &body["tool_choice"]["name"];
        let tools = body["tools"].as_array().cloned().unwrap_or_default();
        if !tools.iter().any(|t| &t["name"] == name) {
            return invalid("tool_choice: the named tool is not in `tools`");
        }
    }
    if let Some(problem) = anthropic_tool_problem(&messages) {
        return invalid(&problem);
    }
    let marks = body["system"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b.get("cache_control").is_some())
        .count();
    if marks > 4 {
        return invalid("A maximum of 4 blocks with cache_control may be provided.");
    }
    None
}

/// How tool turns break the Messages API's rules, worded as the API words it: every
/// `tool_use` answered by a `tool_result` in the very next (user) message, and no
/// `tool_result` without its `tool_use` just before.
fn anthropic_tool_problem(messages: &[Value]) -> Option<String> {
    let blocks = |m: &Value, kind: &str, key: &str| -> Vec<String> {
        m["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == kind)
            .map(|b| b[key].as_str().unwrap_or_default().to_string())
            .collect()
    };
    for (i, m) in messages.iter().enumerate() {
        let results = blocks(m, "tool_result", "tool_use_id");
        let asked = i
            .checked_sub(1)
            .map(|p| blocks(&messages[p], "tool_use", "id"))
            .unwrap_or_default();
        if let Some(stray) = results.iter().find(|r| !asked.contains(r)) {
            return Some(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let uses = blocks(m, "tool_use", "id");
        if !uses.is_empty() {
            let answered = messages
                .get(i + 1)
                .map(|next| blocks(next, "tool_result", "tool_use_id"))
                .unwrap_or_default();
            if let Some(missing) = uses.iter().find(|u| !answered.contains(u)) {
                return Some(format!(
                    "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    i + 1
                ));
            }
        }
    }
    None
}

/// Why Ollama's `/api/chat` would refuse `body` (its Go decoder takes a tool call's arguments
/// only as an object).
pub fn ollama_refusal(body: &Value) -> Option<Value> {
    for m in body["messages"].as_array().into_iter().flatten() {
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            if !call["function"]["arguments"].is_object() {
                return Some(
                    json!({"error": "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments"}),
                );
            }
        }
    }
    None
}

#[test]
fn the_rules_refuse_what_the_documented_errors_describe() {
    // The strict-mode refusal is the one the documentation shows for a loose `edits` item.
    let loose = json!({
        "type": "object",
        "properties": {"edits": {"type": "array", "items": {
            "type": "object", "properties": {"op": {"type": "string"}}, "required": ["op"]
        }}},
        "required": ["edits"],
        "additionalProperties": false
    });
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "result", "schema": loose, "strict": true}}});
    assert_eq!(
        openai_refusal(&body),
        Some(fixture("openai", "strict_schema_refused"))
    );
    let reasoning = json!({"model": "o3", "messages": [{"role": "user", "content": "x"}],
                           "max_tokens": 10});
    assert_eq!(
        openai_refusal(&reasoning),
        Some(fixture("openai", "max_tokens_refused"))
    );
    let hot = json!({"model": "gpt-5", "messages": [{"role": "user", "content": "x"}],
                     "max_completion_tokens": 10, "temperature": 0.2});
    assert_eq!(
        openai_refusal(&hot),
        Some(fixture("openai", "temperature_refused"))
    );
}
