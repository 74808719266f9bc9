//! A scripted model for engine tests: a real HTTP server on loopback speaking the OpenAI chat
//! completions format, refusing what OpenAI refuses (see `wire`). It answers each team with a valid TaskResult derived only from the team
//! and the requirement (so outputs are deterministic and comparable across runs), after an
//! optional delay, unless a queued fault says otherwise.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::app::TestApp;
use super::{Config, EnvSnapshot, FactoryConfig, loopback};

/// A fault injected into the next reply.
#[derive(Debug, Clone)]
pub enum Fault {
    /// An HTTP status (500 is transient, 400 permanent).
    Status(u16),
    /// A body that is JSON but not a valid TaskResult (unknown status).
    UnknownStatus,
    /// A TaskResult missing `reasoning`.
    MissingField,
    /// Plain prose instead of JSON.
    Prose,
    /// A NEEDS_CLARIFICATION result asking this team.
    Ask(&'static str, &'static str),
    /// The normal answer, after this delay.
    Slow(Duration),
    /// A plan of one work order with the given risk, confidence and files in scope.
    PlanTouching(&'static str, f64, &'static [&'static str]),
    /// At the work order's first prompt (other calls are answered normally and leave it
    /// queued): rewrites `src/lib.rs` from the `SEED: u32 = N` its prompt shows, adding
    /// `DOUBLE: u32 = 2N` — a change only a prompt holding the file can produce.
    EditFromShown,
}

#[derive(Clone, Default)]
pub struct ModelScript {
    pub faults: Arc<Mutex<VecDeque<Fault>>>,
    pub delay: Arc<Mutex<Duration>>,
    pub calls: Arc<AtomicUsize>,
    /// Every request body, in order.
    pub requests: Arc<Mutex<Vec<Value>>>,
    /// Pause between the pieces of a streamed reply.
    pub stream_gap: Arc<Mutex<Duration>>,
}

impl ModelScript {
    pub fn with_faults(faults: Vec<Fault>) -> ModelScript {
        let script = ModelScript::default();
        *script.faults.lock().unwrap() = faults.into();
        script
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The user prompts of the calls made to `team`, in order.
    /// Every request body sent to `team`, in order.
    pub fn bodies_to(&self, team: &str) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|b| team_of(b) == team)
            .cloned()
            .collect()
    }

    pub fn prompts_to(&self, team: &str) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|b| team_of(b) == team)
            .map(first_user)
            .collect()
    }
}

/// The team a request is for, from the identity block (`# Team: Title (name)`) of its system
/// messages (a model without native tools gets them described in a system message of their own
/// first).
pub fn team_of(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "system")
        .filter_map(|m| m["content"].as_str())
        .flat_map(str::lines)
        .find(|l| l.starts_with("# Team: "))
        .and_then(|l| l.rsplit_once('('))
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The first user message of a request: the team's prompt.
pub fn first_user(body: &Value) -> String {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The requirement, from the anchor (`# Requirement\n\n…\n\n#`).
fn goal_of(body: &Value) -> String {
    let user = first_user(body);
    user.split("# Requirement\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n#").next())
        .unwrap_or_default()
        .to_string()
}

/// What the scripted model delivers for a team and requirement.
pub fn expected_artifact(team: &str, goal: &str) -> String {
    format!("# {team}\n\nScripted deliverable of {team} for: {goal}\n")
}

fn task_result(team: &str, goal: &str) -> Value {
    json!({
        "status": "COMPLETE",
        "reasoning": format!("{team} finished its part"),
        "blockers": [],
        "assumptions_made": [],
        "verified_facts": [format!("{team} verified the requirement: {goal}")],
        "clarification_needed": null,
        "artifacts": [{"name": format!("{team}.md"), "content": expected_artifact(team, goal)}]
    })
}

fn completion(content: String) -> Response {
    Json(json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    }))
    .into_response()
}

/// The scripted reply, streamed when the request asks (errors are never streamed).
async fn chat(State(script): State<ModelScript>, Json(body): Json<Value>) -> Response {
    let gap = *script.stream_gap.lock().unwrap();
    let reply = answer(script, &body).await;
    if body["stream"] != true || !reply.status().is_success() {
        return reply;
    }
    let bytes = axum::body::to_bytes(reply.into_body(), usize::MAX)
        .await
        .unwrap();
    let whole: Value = serde_json::from_slice(&bytes).unwrap();
    super::stream::openai_stream(&body, &whole, gap)
}

async fn answer(script: ModelScript, body: &Value) -> Response {
    let body = body.clone();
    script.calls.fetch_add(1, Ordering::SeqCst);
    script.requests.lock().unwrap().push(body.clone());
    if let Some(error) = super::wire::openai_refusal(&body) {
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
    }
    let delay = *script.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let team = team_of(&body);
    let goal = goal_of(&body);
    let fault = {
        let mut faults = script.faults.lock().unwrap();
        let fault = faults.pop_front();
        if matches!(fault, Some(Fault::EditFromShown))
            && !first_user(&body).contains("Your work order `wo-1`")
        {
            faults.push_front(Fault::EditFromShown);
            None
        } else {
            fault
        }
    };
    match fault {
        None => completion(task_result(&team, &goal).to_string()),
        Some(Fault::Status(code)) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": {"message": format!("scripted {code}")}})),
        )
            .into_response(),
        Some(Fault::UnknownStatus) => {
            let mut r = task_result(&team, &goal);
            r["status"] = "DONE".into();
            completion(r.to_string())
        }
        Some(Fault::MissingField) => {
            let mut r = task_result(&team, &goal);
            r.as_object_mut().unwrap().remove("reasoning");
            completion(r.to_string())
        }
        Some(Fault::Prose) => completion("I think the plan looks good overall.".into()),
        Some(Fault::Ask(target, question)) => {
            let mut r = task_result(&team, &goal);
            r["status"] = "NEEDS_CLARIFICATION".into();
            r["clarification_needed"] = json!({"target_team": target, "question": question});
            completion(r.to_string())
        }
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            completion(task_result(&team, &goal).to_string())
        }
        Some(Fault::PlanTouching(risk, confidence, files)) => {
            plan(&team, &goal, risk, confidence, files)
        }
        Some(Fault::EditFromShown) => {
            let prompt = first_user(&body);
            let seed: u64 = prompt
                .split("SEED: u32 = ")
                .nth(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|digits| digits.parse().ok())
                .unwrap_or(0);
            let mut r = task_result(&team, &goal);
            r["edits"] = json!([{
                "op": "write",
                "path": "src/lib.rs",
                "content": format!("pub const SEED: u32 = {seed};\npub const DOUBLE: u32 = {};\n", seed * 2),
            }]);
            completion(r.to_string())
        }
    }
}

/// Starts the scripted model; returns its `/v1` base URL.
pub async fn serve_model(script: ModelScript) -> String {
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(script);
    let addr = loopback(app).await;
    format!("http://{addr}/v1")
}

/// A server whose aliases all point at the scripted model.
pub async fn app_with_model(script: ModelScript, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let base = serve_model(script).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    let mut factory = FactoryConfig::defaults(&EnvSnapshot::default());
    factory.merge_toml(&factory_toml(&base), "test").unwrap();
    factory.validate().unwrap();
    config.factory = factory;
    tweak(&mut config);
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    app
}

/// A factory.toml pointing every alias at the scripted model (priced, so costs are visible),
/// with fast retries; plan and review approvals decided automatically.
pub fn factory_toml(base: &str) -> String {
    factory_toml_with(base, true)
}

/// [`factory_toml`] for a model with native tool calling (`tools = true`).
pub fn factory_toml_with_tools(base: &str) -> String {
    factory_toml(base).replace(
        "context_window = 32000\n",
        "context_window = 32000\ntools = true\n",
    )
}

/// [`factory_toml`], choosing whether plan and review approvals wait for a person.
pub fn factory_toml_with(base: &str, auto_approve: bool) -> String {
    let chain = "[\"lab:scripted\"]";
    format!(
        "[providers.lab]\nkind = \"openai\"\nbase_url = \"{base}\"\n\n\
         [aliases]\n\"factory/architect\" = {chain}\n\"factory/coder\" = {chain}\n\
         \"factory/fast\" = {chain}\n\"factory/cheap\" = {chain}\n\n\
         [models.\"lab:scripted\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\
         max_concurrency = 8\ncontext_window = 32000\n\n\
         [retry]\nmax_retries = 2\nbackoff_base_ms = 10\nbackoff_max_ms = 50\ntimeout_secs = 10\n\n\
         [engine]\nbackoff_base_ms = 20\nbackoff_max_ms = 100\n\n\
         [approvals]\nauto_approve = {auto_approve}\n"
    )
}

/// The cost of one scripted call: 1,000 input tokens at $1/M and 100 output at $2/M.
pub const CALL_COST: f64 = (1_000.0 * 1.0 + 100.0 * 2.0) / 1e6;

/// A reply holding a plan of one work order.
fn plan(team: &str, goal: &str, risk: &str, confidence: f64, files: &[&str]) -> Response {
    let mut r = task_result(team, goal);
    r["work_orders"] = json!([{
        "id": "wo-1", "title": "Implement it", "description": "The change",
        "risk": risk, "files_in_scope": files,
        "acceptance_criteria": ["it works"], "dependencies": [], "confidence": confidence
    }]);
    completion(r.to_string())
}
