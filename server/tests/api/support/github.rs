//! A loopback GitHub pull request API that behaves like the real one where Factory depends on
//! it: `POST /repos/{owner}/{repo}/pulls` opens a pull request (refused with 422 when the head
//! already has an open one, as GitHub refuses it), `GET …/pulls?state=open&head=owner:branch`
//! lists the open ones of a head, `PATCH …/pulls/{number}` updates one. Every request is
//! recorded with its method and `Authorization` header.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::{get, patch};
use serde_json::{Value, json};

use super::loopback;

/// One request the API was asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// `owner/repo`.
    pub repo: String,
    pub auth: String,
    /// The JSON body (`null` for a `GET`).
    pub body: Value,
}

/// A pull request the API holds.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    requests: Vec<Request>,
    pulls: Vec<PullRequest>,
}

/// The API's state, shared with the test.
#[derive(Clone)]
pub struct GitHubApi {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    /// Answer `POST` with this status (201 normally; 4xx to refuse).
    status: u16,
    /// When set, the first accepted `POST` opens its pull request and then never answers;
    /// the sender is told (a test kills the client there).
    hang: Arc<Mutex<Option<tokio::sync::oneshot::Sender<()>>>>,
}

impl GitHubApi {
    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// The requests with `method`.
    pub fn requests_of(&self, method: Method) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method)
            .collect()
    }

    /// The pull requests opened so far.
    pub fn pulls(&self) -> Vec<PullRequest> {
        self.shared.lock().unwrap().pulls.clone()
    }

    fn record(&self, method: Method, repo: String, headers: &HeaderMap, body: Value) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.shared.lock().unwrap().requests.push(Request {
            method,
            repo,
            auth,
            body,
        });
    }
}

fn answer(owner: &str, repo: &str, pr: &PullRequest) -> Value {
    json!({
        "number": pr.number,
        "html_url": format!("https://github.example/{owner}/{repo}/pull/{}", pr.number),
        "head": {"ref": pr.head},
        "base": {"ref": pr.base},
        "state": "open",
    })
}

async fn open(
    State(api): State<GitHubApi>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    api.record(
        Method::POST,
        format!("{owner}/{repo}"),
        &headers,
        body.clone(),
    );
    let status = StatusCode::from_u16(api.status).unwrap();
    if !status.is_success() {
        return (status, Json(json!({"message": "Validation Failed"})));
    }
    let head = body["head"].as_str().unwrap_or_default().to_string();
    let pr = {
        let mut shared = api.shared.lock().unwrap();
        if shared.pulls.iter().any(|p| p.head == head) {
            let message = format!("A pull request already exists for {owner}:{head}.");
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"message": "Validation Failed", "errors": [{"message": message}]})),
            );
        }
        let pr = PullRequest {
            number: shared.pulls.len() as u64 + 1,
            head,
            base: body["base"].as_str().unwrap_or_default().to_string(),
            title: body["title"].as_str().unwrap_or_default().to_string(),
            body: body["body"].as_str().unwrap_or_default().to_string(),
        };
        shared.pulls.push(pr.clone());
        pr
    };
    let hang = api.hang.lock().unwrap().take();
    if let Some(told) = hang {
        let _ = told.send(());
        std::future::pending::<()>().await;
    }
    (StatusCode::CREATED, Json(answer(&owner, &repo, &pr)))
}

async fn list(
    State(api): State<GitHubApi>,
    Path((owner, repo)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Json<Value> {
    api.record(
        Method::GET,
        format!("{owner}/{repo}"),
        &headers,
        Value::Null,
    );
    let head = query.get("head").cloned().unwrap_or_default();
    let branch = head
        .strip_prefix(&format!("{owner}:"))
        .unwrap_or("(a head must be owner:branch)");
    let found: Vec<Value> = api
        .pulls()
        .iter()
        .filter(|p| p.head == branch)
        .map(|p| answer(&owner, &repo, p))
        .collect();
    Json(Value::Array(found))
}

async fn update(
    State(api): State<GitHubApi>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    api.record(
        Method::PATCH,
        format!("{owner}/{repo}"),
        &headers,
        body.clone(),
    );
    let mut shared = api.shared.lock().unwrap();
    let Some(pr) = shared.pulls.iter_mut().find(|p| p.number == number) else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"})));
    };
    for (field, value) in [
        ("title", &mut pr.title),
        ("body", &mut pr.body),
        ("base", &mut pr.base),
    ] {
        if let Some(text) = body[field].as_str() {
            *value = text.to_string();
        }
    }
    (StatusCode::OK, Json(answer(&owner, &repo, pr)))
}

/// The API on loopback, answering pull requests with `status`.
pub async fn github_api(status: u16) -> GitHubApi {
    serve(status, None).await
}

/// The API on loopback; its first accepted pull request is opened and then never answered,
/// and `told` hears when that happened.
pub async fn github_api_hanging(told: tokio::sync::oneshot::Sender<()>) -> GitHubApi {
    serve(201, Some(told)).await
}

async fn serve(status: u16, hang: Option<tokio::sync::oneshot::Sender<()>>) -> GitHubApi {
    let mut api = GitHubApi {
        base: String::new(),
        shared: Arc::default(),
        status,
        hang: Arc::new(Mutex::new(hang)),
    };
    let app = axum::Router::new()
        .route("/repos/{owner}/{repo}/pulls", get(list).post(open))
        .route("/repos/{owner}/{repo}/pulls/{number}", patch(update))
        .with_state(api.clone());
    api.base = format!("http://{}", loopback(app).await);
    api
}
