//! A webhook receiver on loopback: it checks each delivery's signature itself (HMAC-SHA256 of
//! `<timestamp>.<body>`, computed here, not by Factory's code), records what arrived, and
//! answers as scripted — failing the first requests, refusing bad signatures, or hanging.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::app::TestApp;
use super::{Config, EnvSnapshot, EventData, FactoryConfig, loopback};
pub use factory_server::config::WebhookConfig;

/// The secret the receivers and the webhooks share unless a test says otherwise.
pub const SECRET: &str = "test-webhook-secret-0123456789abcdef";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: String,
    pub delivery_id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Bytes,
    /// The signature matched the receiver's own computation.
    pub verified: bool,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub struct Script {
    /// Statuses answered to the first requests, in order.
    pub first: Vec<u16>,
    /// The status after those (when the signature verifies; 401 otherwise).
    pub then: u16,
    /// Wait this long before answering each request.
    pub hang: Option<Duration>,
}

impl Script {
    /// Accepts every signed request with 204.
    pub fn accept() -> Script {
        Script {
            first: Vec::new(),
            then: 204,
            hang: None,
        }
    }
}

struct Shared {
    secret: Vec<u8>,
    first: Mutex<VecDeque<u16>>,
    then: u16,
    hang: Option<Duration>,
    deliveries: Mutex<Vec<Delivery>>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// A receiver checking signatures with `secret`, answering as `script` says.
    pub async fn start(secret: &str, script: Script) -> Receiver {
        Receiver::start_on(None, secret, script).await
    }

    /// [`Receiver::start`] on `port` (a port nothing listened on until now), or a free one.
    pub async fn start_on(port: Option<u16>, secret: &str, script: Script) -> Receiver {
        let shared = Arc::new(Shared {
            secret: secret.as_bytes().to_vec(),
            first: Mutex::new(script.first.into()),
            then: script.then,
            hang: script.hang,
            deliveries: Mutex::default(),
        });
        let router = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        let addr = match port {
            None => loopback(router).await,
            Some(port) => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .unwrap();
                tokio::spawn(async move { axum::serve(listener, router).await });
                SocketAddr::from(([127, 0, 0, 1], port))
            }
        };
        Receiver { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in order of arrival.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }
}

/// True when `signature` is `sha256=` and the HMAC-SHA256 of `<timestamp>.<body>` under
/// `secret`, compared in constant time.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex_mac) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_mac) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (timestamp, signature) = (header("x-factory-timestamp"), header("x-factory-signature"));
    let verified = verify(&shared.secret, &timestamp, &body, &signature);
    let scripted = shared.first.lock().unwrap().pop_front();
    let answered = match scripted {
        Some(status) => status,
        None if verified => shared.then,
        None => 401,
    };
    shared.deliveries.lock().unwrap().push(Delivery {
        event: header("x-factory-event"),
        delivery_id: header("x-factory-delivery"),
        timestamp,
        signature,
        body,
        verified,
        answered,
    });
    if let Some(hang) = shared.hang {
        tokio::time::sleep(hang).await;
    }
    StatusCode::from_u16(answered).unwrap()
}

/// A webhook to `receiver` for `events`, with the shared secret and fast retries.
pub fn webhook(name: &str, receiver: &Receiver, events: &[&str]) -> WebhookConfig {
    webhook_to(name, &receiver.url(), events)
}

/// [`webhook`] to `url`, where nothing may listen yet.
pub fn webhook_to(name: &str, url: &str, events: &[&str]) -> WebhookConfig {
    let mut hook = WebhookConfig::new(url, events, SECRET);
    hook.name = Some(name.to_string());
    hook.backoff_base_ms = 50;
    hook.backoff_max_ms = 200;
    hook
}

/// A server whose every model is the offline templates, plan and review approved
/// automatically, delivering to `webhooks`.
pub async fn offline_app(webhooks: Vec<WebhookConfig>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().to_path_buf());
    let mut factory = FactoryConfig::defaults(&EnvSnapshot::default());
    let offline = "[\"offline:template\"]";
    factory
        .merge_toml(
            &format!(
                "[aliases]\n\"factory/architect\" = {offline}\n\"factory/coder\" = {offline}\n\
                 \"factory/fast\" = {offline}\n\"factory/cheap\" = {offline}\n\
                 [approvals]\nauto_approve = true\n"
            ),
            "test",
        )
        .unwrap();
    factory.webhooks = webhooks;
    factory.validate().unwrap();
    config.factory = factory;
    let mut app = TestApp::spawn_with(config).await;
    app.keep_dir(dir);
    app
}

/// The payloads of the committed events of `kind` once `done` says they are complete (10 s at
/// most; the test fails otherwise).
pub async fn recorded(app: &TestApp, kind: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<Value> = app
            .store
            .events_after(0, 100_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.data.kind() == kind)
            .map(|e| serde_json::to_value(&e.data).unwrap()["payload"].clone())
            .collect();
        if done(&found) {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{kind} events never complete: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The kind of an event as the store names it (for assertions on receivers' bodies).
pub fn is_webhook_record(kind: &str) -> bool {
    EventData::is_webhook_outcome(kind)
}
