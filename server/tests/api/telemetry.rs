//! Observability end to end: a `factory serve` process exporting traces to a loopback OTLP/HTTP
//! receiver (which decodes the protobuf as a collector would) runs one run through a person's
//! approvals and a gate; its span tree is checked against what the run recorded, then `/metrics`
//! is scraped and parsed with the Prometheus client's own OpenMetrics parser.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::app::TOKEN;
use crate::support::cli::{add_project, factory_serve, wait_until_up};
use crate::support::db::payloads;
use crate::support::git::{bubblewrap, client_python, git_repo};
use crate::support::served::Client;
use crate::support::{free_port, loopback};

/// Spans received, as the collector decoded them.
type Received = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP trace receiver on loopback: its endpoint and what it decoded.
async fn otlp_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let into = received.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let into = into.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let spans = request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans);
                into.lock().unwrap().extend(spans);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let addr = loopback(router).await;
    (format!("http://{addr}"), received)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(span, key) {
        Some(Any::StringValue(s)) => s,
        other => panic!("{}: `{key}` is {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attribute(span, key) {
        Some(Any::IntValue(n)) => *n,
        other => panic!("{}: `{key}` is {other:?}", span.name),
    }
}

/// `factory serve` exporting traces to `endpoint`, flushing every 100 ms.
fn serve_traced(data: &std::path::Path, port: u16, endpoint: &str) -> Child {
    let mut cmd = factory_serve(data, None, port);
    cmd.env_remove("FACTORY_CONFIG")
        .env("OLLAMA_HOST", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    cmd.spawn().unwrap()
}

/// Decides every approval the run asks for (approving), until it succeeds.
async fn approve_until_done(client: &Client, run_id: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut decided = 0;
    loop {
        let run = client
            .call(
                axum::http::Method::GET,
                &format!("/supervisor/status/{run_id}"),
                None,
            )
            .await;
        match run["status"].as_str() {
            Some("succeeded") => return decided,
            Some("failed" | "canceled") => panic!("the run ended {run}"),
            Some("waiting_for_human") => {
                let asked = client.pending(run_id).await;
                let options = asked["options"].as_array().unwrap();
                let option = options
                    .iter()
                    .find(|o| o["id"] == "approve")
                    .unwrap_or(&options[0]);
                client
                    .decide(&asked, serde_json::json!({"option": option["id"]}))
                    .await;
                decided += 1;
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "never succeeded: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn trace_id(run_id: &str) -> Vec<u8> {
    Sha256::digest(run_id.as_bytes())[..16].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_served_run_is_one_trace_and_its_metrics_parse() {
    if !bubblewrap() {
        return;
    }
    let Some(python) = client_python("prometheus_client") else {
        return;
    };
    let (endpoint, received) = otlp_receiver().await;
    let data = tempfile::tempdir().unwrap();
    let repo = git_repo();
    // A gate that passes once a work order has written its record: run in the sandbox.
    add_project(
        data.path(),
        repo.path(),
        &["--gate", "test -n \"$(ls docs/work-orders)\""],
    );
    let port = free_port();
    let client = Client::new(port);
    let mut child = serve_traced(data.path(), port, &endpoint);
    wait_until_up(&client.base).await;
    let run_id = client.start("Export orders as CSV", "shop").await;
    let decided = approve_until_done(&client, &run_id).await;
    assert!(decided >= 1, "the plan waits for a person");

    // The whole run arrives as one trace once its root span is sent (at its end).
    let trace = trace_id(&run_id);
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans: Vec<Span> = loop {
        let spans: Vec<Span> = received
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect();
        if spans.iter().any(|s| s.name == "factory.run") {
            break spans;
        }
        assert!(Instant::now() < deadline, "no root span: {spans:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // What the run recorded, to check the spans against.
    let events = payloads(data.path(), "model_call_finished").await;
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["attribution"]["run_id"] == run_id.as_str())
        .collect();
    let started = payloads(data.path(), "stage_started").await;
    let stages = started
        .iter()
        .filter(|e| e["run_id"] == run_id.as_str())
        .count();

    let root = spans.iter().find(|s| s.name == "factory.run").unwrap();
    assert!(root.parent_span_id.is_empty(), "the run is the root");
    assert_eq!(text(root, "factory.run.id"), run_id);
    assert_eq!(text(root, "factory.run.status"), "succeeded");
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (&s.span_id[..], s)).collect();
    let parent = |s: &Span| by_id.get(&s.parent_span_id[..]).copied();

    let stage_spans: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name.starts_with("stage "))
        .collect();
    assert!(stages >= 3, "{stages}");
    assert_eq!(stage_spans.len(), stages, "a span per stage attempt");
    for s in &stage_spans {
        assert_eq!(s.parent_span_id, root.span_id, "{} under the run", s.name);
        assert!(!text(s, "factory.team").is_empty());
    }

    let chats: Vec<&Span> = spans
        .iter()
        .filter(|s| text_or_empty(s, "gen_ai.operation.name") == "chat")
        .collect();
    assert_eq!(chats.len(), calls.len(), "a span per model call");
    for c in &chats {
        // The chain's head is asked first (Ollama, unreachable here); the templates answer.
        assert_eq!(c.name, format!("chat {}", text(c, "gen_ai.request.model")));
        assert_eq!(text(c, "gen_ai.response.model"), "template");
        assert_eq!(text(c, "gen_ai.provider.name"), "offline");
        let stage = parent(c).expect("a model call's parent was sent");
        assert!(stage.name.starts_with("stage "), "{} under a stage", c.name);
    }
    let span_tokens: i64 = chats
        .iter()
        .map(|c| int(c, "gen_ai.usage.input_tokens"))
        .sum();
    let ledger_tokens: i64 = calls
        .iter()
        .map(|c| c["input_tokens"].as_i64().unwrap())
        .sum();
    assert!(ledger_tokens > 0);
    assert_eq!(
        span_tokens, ledger_tokens,
        "the spans carry the ledger's tokens"
    );

    let gates: Vec<&Span> = spans.iter().filter(|s| s.name == "factory.gate").collect();
    assert!(!gates.is_empty(), "the gate ran");
    for g in &gates {
        assert!(parent(g).is_some_and(|p| p.name.starts_with("stage ")));
        let command = spans
            .iter()
            .find(|s| s.name == "factory.sandbox" && s.parent_span_id == g.span_id)
            .expect("the gate's sandboxed command");
        assert_eq!(text(command, "factory.sandbox"), "bubblewrap");
        assert_eq!(int(command, "factory.exit_code"), 0);
    }

    let waits: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "factory.approval_wait")
        .collect();
    assert_eq!(waits.len(), decided, "a span per decided approval");
    for w in &waits {
        assert_eq!(w.parent_span_id, root.span_id);
        assert!(w.end_time_unix_nano > w.start_time_unix_nano);
        assert!(w.start_time_unix_nano >= root.start_time_unix_nano);
    }

    // Metrics: refused without a token, then parsed by a real OpenMetrics parser, with one
    // dashboard client connected.
    let url = format!("{}/metrics", client.base);
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let mut upgrade = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .unwrap();
    upgrade
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (_socket, _) = tokio_tungstenite::connect_async(upgrade).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let samples = loop {
        let scraped = reqwest::Client::new()
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200);
        assert!(
            scraped.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let samples = parse_openmetrics(&python, &scraped.text().await.unwrap());
        if sum(&samples, "factory_websocket_clients", &[]) == 1.0 {
            break samples;
        }
        assert!(
            Instant::now() < deadline,
            "the WebSocket client is never counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let value = |name: &str, labels: &[(&str, &str)]| sum(&samples, name, labels);
    assert_eq!(value("factory_runs", &[("status", "succeeded")]), 1.0);
    assert_eq!(value("factory_runs", &[("status", "failed")]), 0.0);
    assert_eq!(value("factory_approvals_waiting", &[]), 0.0);
    assert_eq!(
        value("factory_model_tokens_total", &[("direction", "input")]),
        ledger_tokens as f64
    );
    assert_eq!(
        value(
            "factory_model_call_duration_seconds_count",
            &[("model", "offline:template"), ("outcome", "ok")]
        ),
        calls.len() as f64
    );
    assert_eq!(
        value("factory_stage_duration_seconds_count", &[]),
        stages as f64
    );
    assert_eq!(
        value(
            "factory_sandbox_runs_total",
            &[("sandbox", "bubblewrap"), ("outcome", "passed")]
        ),
        gates.len() as f64
    );
    assert!(value("factory_event_append_duration_seconds_count", &[]) > 0.0);
    assert_eq!(
        value("factory_gateway_breaker_state", &[("provider", "offline")]),
        0.0
    );
    assert_eq!(value("factory_gateway_queue_depth", &[]), 0.0);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The sum of the samples named `name` with `labels`.
fn sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

fn text_or_empty<'a>(span: &'a Span, key: &str) -> &'a str {
    match attribute(span, key) {
        Some(Any::StringValue(s)) => s,
        _ => "",
    }
}

/// The samples of an OpenMetrics exposition as `prometheus_client`'s parser reads them
/// (`{"name", "labels", "value"}` each); the parser refuses a malformed exposition.
fn parse_openmetrics(python: &std::path::Path, exposition: &str) -> Vec<Value> {
    const PARSE: &str = "import json, sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
        out = [{'name': s.name, 'labels': s.labels, 'value': s.value}\n\
               for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
        print(json.dumps(out))\n";
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
