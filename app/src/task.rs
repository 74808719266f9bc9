//! The TaskResult confidence gate: what every team answers with, one type for server and
//! dashboard. The parser accepts raw JSON or a fenced JSON block and checks what serde cannot
//! (a COMPLETE result delivers artifacts, a NEEDS_CLARIFICATION result asks a question, a
//! BLOCKED result names its blockers); its errors are written to be sent back to the model.

use serde::{Deserialize, Serialize};

use crate::ledger::Risk;

/// The gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Complete,
    NeedsClarification,
    Blocked,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Complete => "COMPLETE",
            TaskStatus::NeedsClarification => "NEEDS_CLARIFICATION",
            TaskStatus::Blocked => "BLOCKED",
        }
    }
}

/// A question for another team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clarification {
    pub target_team: String,
    pub question: String,
}

/// A document the stage delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// File name, e.g. `requirements.md` (no directories).
    pub name: String,
    pub content: String,
}

/// A change to one file of the project (engineering teams).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Edit {
    Write {
        path: String,
        content: String,
    },
    Replace {
        path: String,
        search: String,
        replace: String,
    },
    Delete {
        path: String,
    },
}

/// A unit of engineering work planned by solution architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderSpec {
    /// Short id unique within the run, e.g. `wo-1`.
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub risk: Risk,
    #[serde(default)]
    pub files_in_scope: Vec<String>,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    /// Ids of work orders that must finish first.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// How sure the architect is of this work order, 0 to 1 (the director policy approves low
    /// risk at 0.95 or more automatically).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
}

fn default_confidence() -> f64 {
    0.5
}

/// A team's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub status: TaskStatus,
    pub reasoning: String,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub assumptions_made: Vec<String>,
    #[serde(default)]
    pub verified_facts: Vec<String>,
    #[serde(default)]
    pub clarification_needed: Option<Clarification>,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Engineering teams only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
    /// Solution architecture only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub work_orders: Vec<WorkOrderSpec>,
}

/// Largest artifact accepted, in bytes.
pub const MAX_ARTIFACT_BYTES: usize = 256 * 1024;
/// Most artifacts in one result.
pub const MAX_ARTIFACTS: usize = 16;

/// Parses a model's reply: the whole text as JSON, else the first fenced block (```json or
/// ```), else the outermost `{…}`. Errors say what is wrong and what is accepted.
pub fn parse_task_result(text: &str) -> Result<TaskResult, String> {
    parse_with(text, true)
}

/// Like [`parse_task_result`] for a clarification answer: COMPLETE needs no artifacts (the
/// answer is the `reasoning`, or the first artifact).
pub fn parse_answer(text: &str) -> Result<TaskResult, String> {
    parse_with(text, false)
}

fn parse_with(text: &str, require_artifacts: bool) -> Result<TaskResult, String> {
    let candidate = extract_json(text).ok_or_else(|| {
        "the reply contains no JSON object: answer with one TaskResult JSON object".to_string()
    })?;
    let value: serde_json::Value = serde_json::from_str(candidate)
        .map_err(|e| format!("the reply is not valid JSON ({e}): answer with one JSON object"))?;
    if !value.is_object() {
        return Err(
            "the reply is JSON but not an object: answer with one TaskResult object".into(),
        );
    }
    let result: TaskResult = serde_json::from_value(value).map_err(|e| {
        let e = e.to_string();
        if e.contains("unknown variant") {
            format!("{e} (status must be COMPLETE, NEEDS_CLARIFICATION or BLOCKED)")
        } else {
            e
        }
    })?;
    validate(&result, require_artifacts)?;
    Ok(result)
}

fn extract_json(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') && trimmed.ends_with('}') {
        return Some(trimmed);
    }
    if let Some(start) = trimmed.find("```") {
        let rest = &trimmed[start + 3..];
        let body_start = rest.find('\n').map_or(0, |i| i + 1);
        let body = &rest[body_start..];
        if let Some(end) = body.find("```") {
            let block = body[..end].trim();
            if block.starts_with('{') {
                return Some(block);
            }
        }
    }
    let (start, end) = (trimmed.find('{')?, trimmed.rfind('}')?);
    (start < end).then(|| &trimmed[start..=end])
}

/// The checks serde cannot make.
pub fn validate(result: &TaskResult, require_artifacts: bool) -> Result<(), String> {
    if result.reasoning.trim().is_empty() {
        return Err(
            "`reasoning` is empty: explain in a sentence or more how you reached the status".into(),
        );
    }
    match result.status {
        TaskStatus::Complete if require_artifacts && result.artifacts.is_empty() => {
            return Err(
                "status COMPLETE needs at least one entry in `artifacts` ({name, content})".into(),
            );
        }
        TaskStatus::NeedsClarification if result.clarification_needed.is_none() => {
            return Err(
                "status NEEDS_CLARIFICATION needs `clarification_needed` {target_team, question}"
                    .into(),
            );
        }
        TaskStatus::Blocked if result.blockers.is_empty() => {
            return Err("status BLOCKED needs at least one entry in `blockers`".into());
        }
        _ => {}
    }
    if result.artifacts.len() > MAX_ARTIFACTS {
        return Err(format!(
            "{} artifacts: at most {MAX_ARTIFACTS} per result",
            result.artifacts.len()
        ));
    }
    for a in &result.artifacts {
        let name_ok = !a.name.is_empty()
            && a.name.len() <= 100
            && !a.name.starts_with('.')
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(format!(
                "artifact name `{}` is not accepted: use a plain file name of letters, digits, \
                 `-`, `_` and `.` (e.g. `requirements.md`), no directories",
                a.name
            ));
        }
        if a.content.len() > MAX_ARTIFACT_BYTES {
            return Err(format!(
                "artifact `{}` is {} bytes: at most {MAX_ARTIFACT_BYTES}",
                a.name,
                a.content.len()
            ));
        }
    }
    if let Some(c) = &result.clarification_needed
        && (c.target_team.trim().is_empty() || c.question.trim().is_empty())
    {
        return Err("`clarification_needed` needs a non-empty `target_team` and `question`".into());
    }
    Ok(())
}

/// The JSON Schema models are asked to follow (OpenAI `json_schema`, Anthropic tool input,
/// Ollama `format`). `edits` and `work_orders` are offered only to the teams that use them.
/// It meets OpenAI's strict mode: every object closed and every property required, so an
/// edit's fields that its `op` does not use are `null`.
pub fn task_result_schema(edits: bool, work_orders: bool) -> serde_json::Value {
    use serde_json::json;
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let mut properties = json!({
        "status": {"type": "string", "enum": ["COMPLETE", "NEEDS_CLARIFICATION", "BLOCKED"]},
        "reasoning": {"type": "string"},
        "blockers": strings,
        "assumptions_made": strings,
        "verified_facts": strings,
        "clarification_needed": {
            "type": ["object", "null"],
            "properties": {
                "target_team": {"type": "string"},
                "question": {"type": "string"}
            },
            "required": ["target_team", "question"],
            "additionalProperties": false
        },
        "artifacts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "content": {"type": "string"}},
                "required": ["name", "content"],
                "additionalProperties": false
            }
        }
    });
    let mut required = vec![
        "status",
        "reasoning",
        "blockers",
        "assumptions_made",
        "verified_facts",
        "clarification_needed",
        "artifacts",
    ];
    if edits {
        properties["edits"] = json!({
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "op": {"type": "string", "enum": ["write", "replace", "delete"]},
                    "path": {"type": "string"},
                    "content": {"type": ["string", "null"]},
                    "search": {"type": ["string", "null"]},
                    "replace": {"type": ["string", "null"]}
                },
                "required": ["op", "path", "content", "search", "replace"],
                "additionalProperties": false
            }
        });
        required.push("edits");
    }
    if work_orders {
        properties["work_orders"] = json!({
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                    "files_in_scope": strings,
                    "acceptance_criteria": strings,
                    "dependencies": strings,
                    "confidence": {"type": "number"}
                },
                "required": ["id", "title", "description", "risk", "files_in_scope",
                             "acceptance_criteria", "dependencies", "confidence"],
                "additionalProperties": false
            }
        });
        required.push("work_orders");
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        r#"{"status":"COMPLETE","reasoning":"done","artifacts":[{"name":"a.md","content":"x"}]}"#;

    #[test]
    fn raw_fenced_and_embedded_json_are_accepted() {
        assert_eq!(parse_task_result(OK).unwrap().status, TaskStatus::Complete);
        let fenced = format!("Here you go:\n```json\n{OK}\n```\nThanks");
        assert!(parse_task_result(&fenced).is_ok());
        let embedded = format!("Result: {OK} end");
        assert!(parse_task_result(&embedded).is_ok());
    }

    #[test]
    fn errors_say_what_is_wrong_and_what_is_accepted() {
        let cases = [
            ("no json here", "contains no JSON object"),
            ("{not json}", "not valid JSON"),
            (
                r#"{"status":"DONE","reasoning":"r"}"#,
                "COMPLETE, NEEDS_CLARIFICATION or BLOCKED",
            ),
            (r#"{"reasoning":"r"}"#, "missing field `status`"),
            (
                r#"{"status":"COMPLETE","reasoning":"r"}"#,
                "at least one entry in `artifacts`",
            ),
            (r#"{"status":"BLOCKED","reasoning":"r"}"#, "`blockers`"),
            (
                r#"{"status":"NEEDS_CLARIFICATION","reasoning":"r"}"#,
                "clarification_needed",
            ),
            (
                r#"{"status":"COMPLETE","reasoning":"r","artifacts":[{"name":"../x","content":""}]}"#,
                "plain file name",
            ),
            (
                r#"{"status":"COMPLETE","reasoning":" ","artifacts":[]}"#,
                "`reasoning` is empty",
            ),
        ];
        for (text, needle) in cases {
            let err = parse_task_result(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    /// Strict structured output sends every field of an edit, the unused ones as `null`.
    #[test]
    fn edits_with_null_unused_fields_parse() {
        let text = r#"{"status":"COMPLETE","reasoning":"r","artifacts":[{"name":"a.md","content":"x"}],
            "edits":[{"op":"write","path":"src/a.rs","content":"fn a() {}","search":null,"replace":null},
                     {"op":"replace","path":"b.rs","content":null,"search":"x","replace":"y"},
                     {"op":"delete","path":"c.rs","content":null,"search":null,"replace":null}]}"#;
        let result = parse_task_result(text).unwrap();
        assert_eq!(
            result.edits,
            vec![
                Edit::Write {
                    path: "src/a.rs".into(),
                    content: "fn a() {}".into()
                },
                Edit::Replace {
                    path: "b.rs".into(),
                    search: "x".into(),
                    replace: "y".into()
                },
                Edit::Delete {
                    path: "c.rs".into()
                },
            ]
        );
        let missing = r#"{"status":"COMPLETE","reasoning":"r","artifacts":[{"name":"a.md","content":"x"}],
            "edits":[{"op":"replace","path":"b.rs","content":null,"search":null,"replace":"y"}]}"#;
        assert!(parse_task_result(missing).is_err());
    }

    #[test]
    fn the_schema_names_every_required_field_of_the_type() {
        let schema = task_result_schema(true, true);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let value = serde_json::to_value(TaskResult {
            status: TaskStatus::Blocked,
            reasoning: "r".into(),
            blockers: vec!["b".into()],
            assumptions_made: vec![],
            verified_facts: vec![],
            clarification_needed: None,
            artifacts: vec![],
            edits: vec![Edit::Delete { path: "x".into() }],
            work_orders: vec![],
        })
        .unwrap();
        for field in value.as_object().unwrap().keys() {
            assert!(
                required.contains(&field.as_str()),
                "{field} missing from schema"
            );
        }
    }
}
