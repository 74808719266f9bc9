//! A `factory serve` process on loopback and a client for its API: for tests that kill and
//! restart the server, or decide its approvals as a person would.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::Value;

use super::app::TOKEN;
use super::cli::factory_serve;
use super::github::GitHubApi;

/// `factory serve` offline on `data` with `config`, publishing to `api` when there is one.
pub fn serve(data: &Path, config: &Path, port: u16, api: Option<&GitHubApi>) -> Child {
    let mut cmd = factory_serve(data, Some(config), port);
    cmd.env_remove("FACTORY_CONFIG")
        .env("OLLAMA_HOST", "http://127.0.0.1:9");
    if let Some(api) = api {
        cmd.env("FACTORY_GITHUB_API", &api.base)
            .env("GITHUB_TOKEN", "ghp_test_token");
    }
    cmd.spawn().unwrap()
}

/// The server's API at `base`, with the admin token.
pub struct Client {
    pub base: String,
    http: reqwest::Client,
}

impl Client {
    /// The server on `127.0.0.1:<port>`.
    pub fn new(port: u16) -> Client {
        Client {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    /// Calls the API (retried while the server is not up, 20 s at most); a failure status
    /// fails the test.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(TOKEN);
            if let Some(b) = &body {
                req = req.json(b);
            }
            if let Ok(res) = req.send().await {
                assert!(res.status().is_success(), "{path}: {}", res.status());
                return res.json().await.unwrap_or(Value::Null);
            }
            assert!(Instant::now() < deadline, "server unreachable");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Starts a run of `goal` on `project`; its id.
    pub async fn start(&self, goal: &str, project: &str) -> String {
        let started = self
            .call(
                Method::POST,
                "/supervisor/start",
                Some(serde_json::json!({"goal": goal, "project": project})),
            )
            .await;
        started["run_id"].as_str().unwrap().to_string()
    }

    /// Waits until the run is `status` (60 s at most).
    pub async fn wait_for(&self, run_id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = self
                .call(Method::GET, &format!("/supervisor/status/{run_id}"), None)
                .await;
            if run["status"] == status {
                return run;
            }
            assert!(Instant::now() < deadline, "never {status}: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The run's first pending approval, once there is one.
    pub async fn pending(&self, run_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = self
                .call(
                    Method::GET,
                    &format!("/api/approvals?status=pending&run_id={run_id}"),
                    None,
                )
                .await;
            if let Some(first) = list.as_array().and_then(|l| l.first()) {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "no approval for {run_id}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Decides `approval` with `decision` (`{"option": …}`).
    pub async fn decide(&self, approval: &Value, decision: Value) {
        let id = approval["id"].as_str().unwrap();
        self.call(
            Method::POST,
            &format!("/api/approvals/{id}/decide"),
            Some(decision),
        )
        .await;
    }
}
