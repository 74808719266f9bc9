//! The offline provider: no model at all. It answers deterministically so the whole pipeline
//! can run on a machine with no model configured, and says so in every reply. With a JSON
//! Schema it returns the answer the caller prepared
//! ([`OfflineAnswer`](crate::gateway::types::OfflineAnswer): the engine fills its teams'
//! templates) or else the smallest instance of the schema, filling strings from the request's
//! text; without one, a plain note. It is never presented as an LLM.

use serde_json::{Map, Value, json};

use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::gateway::types::Role;

/// Shown wherever this provider is named.
pub const OFFLINE_LABEL: &str = "offline (no model)";

/// How deep a schema is followed (a recursive schema cannot loop forever).
const MAX_DEPTH: usize = 8;

/// The deterministic template provider.
#[derive(Debug, Default)]
pub struct OfflineProvider;

#[async_trait::async_trait]
impl Provider for OfflineProvider {
    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let ask = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.trim())
            .unwrap_or_default();
        let gist: String = ask.chars().take(200).collect();
        let text = match (request.schema, request.offline) {
            (Some(schema), Some(answer)) => answer
                .render(schema)
                .map_err(|message| ProviderError::Permanent { message })?,
            (Some(schema), None) => instance(schema, &gist, 0).to_string(),
            (None, _) => format!(
                "[{OFFLINE_LABEL}] No model is configured; this is a template reply to: {gist}"
            ),
        };
        // Tokens are counted as words, so budgets and ledgers still see a size; the cost is $0.
        let words = |s: &str| s.split_whitespace().count().min(u32::MAX as usize) as u32;
        let input = request.messages.iter().map(|m| words(&m.content)).sum();
        let output = words(&text);
        let mut answer = ProviderReply::new(text, input, output, std::time::Duration::ZERO);
        answer.model = Some("template".into());
        Ok(answer)
    }
}

/// The smallest value that follows `schema`: required properties only, first enum value, empty
/// arrays unless `minItems`, strings from `gist`.
fn instance(schema: &Value, gist: &str, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts.iter().find_map(Value::as_str).unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, sub) in props {
                    if required.contains(&name.as_str()) {
                        out.insert(name.clone(), instance(sub, gist, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0).min(3) as usize;
            Value::Array(
                (0..n)
                    .map(|_| instance(&schema["items"], gist, depth + 1))
                    .collect(),
            )
        }
        "string" => json!(format!("[{OFFLINE_LABEL}] {gist}")),
        "integer" | "number" => {
            json!(schema["minimum"].as_f64().map_or(0.0, |m| m.max(0.0)) as i64)
        }
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests;
