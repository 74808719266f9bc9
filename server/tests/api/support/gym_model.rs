//! A scripted model for the gym's built-in scenarios, on loopback over the OpenAI wire format
//! (refusing what OpenAI refuses). It succeeds only when Factory showed it what it needed:
//!
//! - the architect plans one work order over the files the requirement names in backticks
//!   (or, when its identity says "Never name files in scope", over none);
//! - the engineer changes a file only from the text of it shown in its first prompt ("Files
//!   in scope"): the Rust fix rewrites the line with the wrong factor, the Python function is
//!   appended to the module as shown — a prompt without the file gets no edit, and a guess
//!   written blind would drop the module's other functions;
//! - an analyst asked to "ask before assuming" asks product management, which cannot say
//!   (BLOCKED), so the question goes to a person; the analyst then puts the answer it was
//!   given (from "# Answers to your questions") into its requirements.
//!
//! Every other team answers COMPLETE with a small artifact.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::loopback;
use super::model::{first_user, team_of};

/// What the scripted model saw, for assertions.
#[derive(Clone, Default)]
pub struct GymModel {
    pub requests: Arc<Mutex<Vec<Value>>>,
}

impl GymModel {
    /// The first user prompts of the engineering calls.
    pub fn engineer_prompts(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(first_user)
            .filter(|p| p.contains("Your work order `"))
            .collect()
    }
}

/// Starts it; returns its `/v1` base URL.
pub async fn serve_gym_model(model: GymModel) -> String {
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(model);
    let addr = loopback(app).await;
    format!("http://{addr}/v1")
}

async fn chat(State(model): State<GymModel>, Json(body): Json<Value>) -> Response {
    model.requests.lock().unwrap().push(body.clone());
    if let Some(error) = super::wire::openai_refusal(&body) {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let reply = answer(&body);
    let whole = json!({
        "id": "chatcmpl-gym",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.to_string()}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 800, "completion_tokens": 120, "total_tokens": 920}
    });
    if body["stream"] == true {
        return super::stream::openai_stream(&body, &whole, std::time::Duration::ZERO);
    }
    Json(whole).into_response()
}

/// The analyst's question in the clarification scenario.
const UNIT_QUESTION: &str = "In which unit is the distance given?";

fn system_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn requirement(prompt: &str) -> String {
    prompt
        .split("# Requirement\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n#").next())
        .unwrap_or_default()
        .to_string()
}

fn result(team: &str, artifact: String) -> Value {
    json!({
        "status": "COMPLETE",
        "reasoning": format!("{team} did its part"),
        "blockers": [],
        "assumptions_made": [],
        "verified_facts": [],
        "clarification_needed": null,
        "artifacts": [{"name": format!("{team}.md"), "content": artifact}]
    })
}

fn answer(body: &Value) -> Value {
    let team = team_of(body);
    let prompt = first_user(body);
    let goal = requirement(&prompt);
    let schema = body.to_string();
    if prompt.contains("Your work order `") {
        return engineer(&team, &prompt, &goal);
    }
    if schema.contains("work_orders") && team == "solution-architecture" {
        let files: Vec<String> = if system_text(body).contains("Never name files in scope") {
            Vec::new()
        } else {
            named_files(&goal)
        };
        let mut r = result(&team, format!("# Design\n\nChange {}.\n", files.join(", ")));
        r["work_orders"] = json!([{
            "id": "wo-1", "title": "Make the requested change", "description": goal,
            "risk": "low", "files_in_scope": files,
            "acceptance_criteria": ["the project's tests pass"], "dependencies": [],
            "confidence": 0.9
        }]);
        return r;
    }
    if prompt.contains(UNIT_QUESTION) && prompt.contains("# A question for your team") {
        // No team knows the unit: the question goes on to a person.
        let mut r = result(&team, String::new());
        r["status"] = "BLOCKED".into();
        r["blockers"] = json!(["only the stakeholder knows the unit"]);
        return r;
    }
    if team == "business-analysis" && goal.contains("ask before assuming") {
        let answered = prompt
            .split("# Answers to your questions\n\n")
            .nth(1)
            .and_then(|rest| rest.split("): ").nth(1))
            .map(|a| a.lines().next().unwrap_or_default().to_string());
        return match answered {
            Some(answer) => result(
                &team,
                format!("# Requirements\n\nUnit, as the stakeholder answered: {answer}\n"),
            ),
            None => {
                let mut r = result(&team, "# Requirements\n\nPending the unit.\n".into());
                r["status"] = "NEEDS_CLARIFICATION".into();
                r["clarification_needed"] = json!({
                    "target_team": "product-management",
                    "question": UNIT_QUESTION
                });
                r
            }
        };
    }
    result(
        &team,
        format!("# {team}\n\nScripted deliverable for: {goal}\n"),
    )
}

/// Paths in backticks in the requirement (`src/lib.rs`, `hello.py`).
fn named_files(goal: &str) -> Vec<String> {
    goal.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.contains('.') && !t.contains(' ') && !t.contains('('))
        .map(String::from)
        .collect()
}

/// The text of `path` as its prompt shows it, when it does.
fn shown(prompt: &str, path: &str) -> Option<String> {
    let start = prompt.find(&format!("\n## {path} ("))?;
    let rest = &prompt[start..];
    let header_end = rest.find(")\n\n")? + 3;
    let body = &rest[header_end..];
    let fence: String = body.chars().take_while(|c| *c == '`').collect();
    if fence.len() < 3 {
        return None;
    }
    let text = &body[fence.len()..];
    let text = text.strip_prefix('\n')?;
    let end = text.find(&format!("\n{fence}")).map(|i| i + 1)?;
    Some(text[..end].to_string())
}

fn engineer(team: &str, prompt: &str, goal: &str) -> Value {
    let mut edits = Vec::new();
    if goal.contains("Hello HyperCode") {
        edits.push(
            json!({"op": "write", "path": "hello.py", "content": "print(\"Hello HyperCode\")\n"}),
        );
    }
    if let Some(lib) = shown(prompt, "src/lib.rs") {
        if goal.contains("wrong factor") && lib.contains("nautical_miles * 1000") {
            let fixed = lib.replace(
                "nautical_miles * 1000",
                "nautical_miles * METRES_PER_NAUTICAL_MILE",
            );
            edits.push(json!({"op": "write", "path": "src/lib.rs", "content": fixed}));
        }
        if goal.contains("to_metres_from") {
            let added = format!(
                "{lib}\n/// Metres in `distance` nautical miles.\npub fn to_metres_from(distance: u32) -> u32 {{\n    to_metres(distance)\n}}\n"
            );
            edits.push(json!({"op": "write", "path": "src/lib.rs", "content": added}));
        }
    }
    if goal.contains("word_count")
        && let Some(module) = shown(prompt, "textkit/__init__.py")
    {
        let module = module.replace(
            "__all__ = [\"slugify\", \"initials\"]",
            "__all__ = [\"slugify\", \"initials\", \"word_count\"]",
        );
        let added = format!(
            "{module}\n\ndef word_count(text):\n    \"\"\"Whitespace-separated words in `text`.\"\"\"\n    return len(text.split())\n"
        );
        edits.push(json!({"op": "write", "path": "textkit/__init__.py", "content": added}));
        edits.push(json!({"op": "write", "path": "tests/test_word_count.py", "content":
            "import unittest\n\nfrom textkit import word_count\n\n\nclass WordCount(unittest.TestCase):\n    def test_words(self):\n        self.assertEqual(word_count(\"a b\"), 2)\n\n\nif __name__ == \"__main__\":\n    unittest.main()\n"}));
    }
    // The SWE-bench-style instance of the gym's tests: `add` subtracts.
    if let Some(calc) = shown(prompt, "calc.py")
        && calc.contains("return a - b")
    {
        let fixed = calc.replace("return a - b", "return a + b");
        edits.push(json!({"op": "write", "path": "calc.py", "content": fixed}));
    }
    let mut r = result(
        team,
        format!("# Change\n\n{} file(s) edited for: {goal}\n", edits.len()),
    );
    r["edits"] = Value::Array(edits);
    r
}
