//! Spawns a real server (the same `build` as `main`) on port 0 with its own data directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use factory_server::config::Config;
use factory_server::startup::build;
use factory_server::store::Store;
use tokio_util::sync::CancellationToken;

/// The `factory` binary on `data_dir`, offline: no config file from the environment and an
/// Ollama address nothing answers, so only the built-in template provider serves calls.
pub fn factory_cli(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_factory"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("FACTORY_CONFIG")
        .env("OLLAMA_HOST", "http://127.0.0.1:9");
    cmd
}

/// The admin token every test server accepts.
pub const TOKEN: &str = "fct_test_token_0123456789abcdef0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub store: Store,
    pub gateway: std::sync::Arc<factory_server::gateway::Gateway>,
    pub client: reqwest::Client,
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

    pub async fn spawn_with(mut config: Config) -> TestApp {
        // Server logs go to the test's captured output (shown when a test fails).
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn,factory_server=info")
            .with_test_writer()
            .try_init();
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.admin_token = Some(TOKEN.to_string());
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
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// POST /supervisor/start with the admin token.
    pub async fn start_run(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url("/supervisor/start"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
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
