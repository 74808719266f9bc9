//! A real server (the same `build` as `main`) on port 0 with its own data directory, and the
//! requests tests send it with the admin token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use factory_server::startup::build;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Config, Gateway, Store};

/// The admin token every test server accepts (unless started with another one).
pub const TOKEN: &str = "fct_test_token_0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub store: Store,
    pub gateway: Arc<Gateway>,
    /// Follows no redirects, so a test sees the server's own answer (a 303 to `/login`).
    pub client: reqwest::Client,
    /// The admin token this server was started with; the helpers below send it.
    token: String,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    /// A fresh server with a new data directory.
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut app = TestApp::spawn_in(path).await;
        app._dir = Some(dir);
        app
    }

    /// A server on an existing data directory (for restarts).
    pub async fn spawn_in(data_dir: PathBuf) -> TestApp {
        TestApp::spawn_with(Config::new(data_dir)).await
    }

    pub async fn spawn_with(config: Config) -> TestApp {
        TestApp::spawn_with_token(config, TOKEN).await
    }

    /// A server whose `FACTORY_ADMIN_TOKEN` is `token` instead of [`TOKEN`].
    pub async fn spawn_with_token(mut config: Config, token: &str) -> TestApp {
        // Server logs go to the test's captured output (shown when a test fails).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,factory_server=info")
            .with_test_writer()
            .try_init();
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.admin_token = Some(token.to_string());
        let shutdown = CancellationToken::new();
        let app = build(config, shutdown.clone())
            .await
            .expect("server builds");
        let addr = app.addr();
        let store = app.store.clone();
        let gateway = app.gateway.clone();
        tokio::spawn(app.run());
        TestApp {
            base: format!("http://{addr}"),
            addr,
            store,
            gateway,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            token: token.to_string(),
            shutdown,
            _dir: None,
        }
    }

    /// Keeps a directory alive as long as the server (its data directory).
    pub fn keep_dir(&mut self, dir: tempfile::TempDir) {
        self._dir = Some(dir);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path` with the admin token.
    pub async fn get(&self, path: &str) -> Response {
        let req = self.client.get(self.url(path));
        req.bearer_auth(&self.token).send().await.unwrap()
    }

    /// POST `path` with the admin token and no body.
    pub async fn post(&self, path: &str) -> Response {
        let req = self.client.post(self.url(path));
        req.bearer_auth(&self.token).send().await.unwrap()
    }

    /// POST `body` as JSON to `path` with the admin token.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        let req = self.client.post(self.url(path)).json(body);
        req.bearer_auth(&self.token).send().await.unwrap()
    }

    /// PUT `body` as JSON to `path` with the admin token.
    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        let req = self.client.put(self.url(path)).json(body);
        req.bearer_auth(&self.token).send().await.unwrap()
    }

    /// Calls the server function `name` the way the hydrated dashboard does: a form-encoded
    /// POST under `/api/`, with the admin token.
    pub async fn server_fn(&self, name: &str, form: &[(&str, &str)]) -> Response {
        let req = self
            .client
            .post(self.url(&format!("/api/{name}")))
            .form(form);
        req.bearer_auth(&self.token).send().await.unwrap()
    }

    /// POST /supervisor/start with the admin token.
    pub async fn start_run(&self, body: Value) -> Response {
        self.post_json("/supervisor/start", &body).await
    }

    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.store.close().await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A response's status and JSON body (`Null` when the body is not JSON).
pub async fn status_json(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// GET `path` with the admin token: the status and the JSON body.
pub async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    status_json(app.get(path).await).await
}

/// POST `path` with the admin token and no body: the status and the JSON body.
pub async fn post(app: &TestApp, path: &str) -> (StatusCode, Value) {
    status_json(app.post(path).await).await
}

/// Starts a run and returns its id.
pub async fn start(app: &TestApp, body: Value) -> String {
    let res = app.start_run(body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Polls the run until it is terminal or waits for a person (or `within` passes).
pub async fn finished(app: &TestApp, run_id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, run) = get(app, &format!("/supervisor/status/{run_id}")).await;
        let status = run["status"].as_str().unwrap_or_default();
        if ["succeeded", "failed", "canceled", "waiting_for_human"].contains(&status) {
            return run;
        }
        assert!(Instant::now() < deadline, "run did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
