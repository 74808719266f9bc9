//! MCP benchmark: a `get_run` round trip over streamable HTTP (`/mcp`, JSON-RPC over HTTP as
//! any MCP client speaks it: `initialize`, `notifications/initialized`, then `tools/call`
//! with the `Mcp-Session-Id` header; the answer is read from its event stream) against an
//! in-process server, beside its peer measured in the same run: the same read through the
//! REST API (`GET /api/runs/{id}`). The run read is a real one, started offline and waiting for
//! its plan to be approved (two stages' artifacts in its detail).
//!
//! `cargo bench -p server --bench mcp` (`FACTORY_BENCH_CALLS` round trips each, default 2000;
//! `FACTORY_BENCH_SMOKE=1` makes it 20).

use std::time::{Duration, Instant};

use factory_server::config::Config;
use factory_server::startup::build;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[path = "common/mod.rs"]
mod common;
use common::{env_or, percentile};

const TOKEN: &str = "fct_bench_token_0123456789abcdef0123456789abcdef";
const PROTOCOL: &str = "2025-11-25";

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let smoke = std::env::var("FACTORY_BENCH_SMOKE").is_ok_and(|v| v == "1");
    let calls = env_or("FACTORY_BENCH_CALLS", if smoke { 20 } else { 2000 }) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(calls));
}

async fn run(calls: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::new(dir.path().to_path_buf());
    config.addr = "127.0.0.1:0".parse().expect("an address");
    config.admin_token = Some(TOKEN.into());
    factory_server::gym::apply_models(&mut config.factory, &["*=offline:template".to_string()])
        .expect("offline models");
    let shutdown = CancellationToken::new();
    let app = build(config, shutdown.clone())
        .await
        .expect("the server builds");
    let base = format!("http://{}", app.addr());
    tokio::spawn(app.run());
    let http = reqwest::Client::new();

    let run_id = waiting_run(&http, &base).await;
    let mcp = Mcp::connect(&http, &base).await;
    let arguments = json!({ "run_id": run_id });
    // Warm both paths (connections, caches) before measuring.
    for _ in 0..20 {
        mcp.call("get_run", &arguments).await;
        rest_get_run(&http, &base, &run_id).await;
    }
    let mut over_mcp = Vec::with_capacity(calls);
    let mut over_rest = Vec::with_capacity(calls);
    let mut sizes = (0, 0);
    // Interleaved, so both see the same machine.
    for _ in 0..calls {
        let started = Instant::now();
        let result = mcp.call("get_run", &arguments).await;
        over_mcp.push(started.elapsed());
        let started = Instant::now();
        let detail = rest_get_run(&http, &base, &run_id).await;
        over_rest.push(started.elapsed());
        assert_eq!(result["structuredContent"]["run"]["id"], run_id, "{result}");
        assert_eq!(detail["id"], run_id);
        sizes = (result.to_string().len(), detail.to_string().len());
    }
    over_mcp.sort_unstable();
    over_rest.sort_unstable();
    println!(
        "mcp bench: {calls} get_run round trips over streamable HTTP (session, {PROTOCOL}), \
         interleaved with the same read over REST; one keep-alive client, in-process server"
    );
    println!("| Measure | p50 | p99 | Target |");
    println!("|---|---|---|---|");
    println!(
        "| MCP `tools/call get_run` ({} B result) | {} | {} | p50 ≤ 5 ms |",
        sizes.0,
        ms(percentile(&over_mcp, 0.5)),
        ms(percentile(&over_mcp, 0.99))
    );
    println!(
        "| REST `GET /api/runs/{{id}}` ({} B, peer) | {} | {} | |",
        sizes.1,
        ms(percentile(&over_rest, 0.5)),
        ms(percentile(&over_rest, 0.99))
    );
    mcp.close().await;
    shutdown.cancel();
}

/// A run started through the REST API, once it waits for its plan to be approved.
async fn waiting_run(http: &reqwest::Client, base: &str) -> String {
    let started: Value = http
        .post(format!("{base}/supervisor/start"))
        .bearer_auth(TOKEN)
        .json(&json!({ "goal": "Export orders as CSV and email the weekly report" }))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("a JSON answer");
    let run_id = started["run_id"].as_str().expect("a run id").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = rest_get_run(http, base, &run_id).await;
        match run["status"].as_str() {
            Some("waiting_for_human") => return run_id,
            Some("failed" | "canceled" | "succeeded") => panic!("the run ended: {run}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the run never waited: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn rest_get_run(http: &reqwest::Client, base: &str, run_id: &str) -> Value {
    http.get(format!("{base}/api/runs/{run_id}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET /api/runs/{id}")
        .json()
        .await
        .expect("a JSON run")
}

/// One MCP session over streamable HTTP.
struct Mcp {
    http: reqwest::Client,
    url: String,
    session: String,
    next_id: std::sync::atomic::AtomicU64,
}

impl Mcp {
    async fn connect(http: &reqwest::Client, base: &str) -> Mcp {
        let url = format!("{base}/mcp");
        let initialize = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL, "capabilities": {},
                "clientInfo": { "name": "factory-bench", "version": "0" }
            }
        });
        let res = post(http, &url, None, &initialize).await;
        let session = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .expect("a session id")
            .to_string();
        let answer = answer(res).await;
        assert_eq!(
            answer["result"]["serverInfo"]["name"], "factory",
            "{answer}"
        );
        let initialized = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let res = post(http, &url, Some(&session), &initialized).await;
        assert!(res.status().is_success(), "{}", res.status());
        Mcp {
            http: http.clone(),
            url,
            session,
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// `tools/call`: the tool's result (the test fails on an error).
    async fn call(&self, tool: &str, arguments: &Value) -> Value {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": { "name": tool, "arguments": arguments }
        });
        let res = post(&self.http, &self.url, Some(&self.session), &request).await;
        let mut answer = answer(res).await;
        assert_eq!(answer["id"], id, "{answer}");
        assert_ne!(answer["result"]["isError"], true, "{answer}");
        answer["result"].take()
    }

    async fn close(self) {
        let _ = self
            .http
            .delete(&self.url)
            .bearer_auth(TOKEN)
            .header("mcp-session-id", &self.session)
            .header("mcp-protocol-version", PROTOCOL)
            .send()
            .await;
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = http
        .post(url)
        .bearer_auth(TOKEN)
        .header(ACCEPT, "application/json, text/event-stream")
        .header(CONTENT_TYPE, "application/json")
        .header("mcp-protocol-version", PROTOCOL)
        .json(body);
    if let Some(session) = session {
        req = req.header("mcp-session-id", session);
    }
    let res = req.send().await.expect("POST /mcp");
    assert!(res.status().is_success(), "POST /mcp: {}", res.status());
    res
}

/// The JSON-RPC answer in a response: the body itself, or the event of its stream that
/// carries one (a stream may open with a priming event without data).
async fn answer(res: reqwest::Response) -> Value {
    let is_stream = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = res.text().await.expect("a body");
    if !is_stream {
        return serde_json::from_str(&body).expect("a JSON-RPC answer");
    }
    body.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .filter(|data| !data.is_empty())
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in the stream: {body}"))
}
