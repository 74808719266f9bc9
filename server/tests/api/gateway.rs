//! The gateway against a real HTTP server on loopback that speaks the OpenAI wire format and
//! replays scripted replies (never an in-process fake of the client).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use serde_json::json;

use crate::support::providers::{Reply, config, request, serve};
use crate::support::{Gateway, GatewayConfig, GatewayError, loopback};

/// A gateway whose `test/chain` alias tries the given servers in order, with fast backoff
/// (see [`config`]).
fn gateway(bases: &[&str], tweak: impl FnOnce(&mut GatewayConfig)) -> Gateway {
    Gateway::new(config(bases, tweak))
}

#[tokio::test]
async fn success_reports_text_tokens_cost_and_path() {
    let (base, script) = serve(vec![Reply::Ok {
        text: "hi",
        input: 1_000,
        output: 500,
    }])
    .await;
    let gw = gateway(&[&base], |_| {});
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!(res.text, "hi");
    assert_eq!((res.input_tokens, res.output_tokens), (1_000, 500));
    assert!((res.cost_usd - (1_000.0 * 2.0 + 500.0 * 8.0) / 1e6).abs() < 1e-12);
    assert_eq!(
        (res.provider.as_str(), res.model.as_str()),
        ("p0", "gpt-test")
    );
    assert_eq!(res.path.len(), 1);
    let (headers, body) = script.requests.lock().unwrap()[0].clone();
    assert!(
        headers.get("authorization").is_none(),
        "no key configured, none sent"
    );
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["messages"][1]["content"], "Say hi");
    assert!(body.get("response_format").is_none());
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_then_succeeds() {
    let (base, script) = serve(vec![
        Reply::Status {
            status: 429,
            retry_after: Some("1"),
        },
        Reply::Ok {
            text: "ok",
            input: 1,
            output: 1,
        },
    ])
    .await;
    let gw = gateway(&[&base], |_| {});
    let started = Instant::now();
    let res = gw.complete(&request(None)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(script.calls(), 2);
    assert!(res.path[0].outcome.contains("429"), "{:?}", res.path);
}

#[tokio::test]
async fn two_500s_then_success() {
    let (base, script) = serve(vec![
        Reply::Status {
            status: 500,
            retry_after: None,
        },
        Reply::Status {
            status: 500,
            retry_after: None,
        },
        Reply::Ok {
            text: "third time",
            input: 1,
            output: 1,
        },
    ])
    .await;
    let res = gateway(&[&base], |_| {})
        .complete(&request(None))
        .await
        .unwrap();
    assert_eq!(res.text, "third time");
    assert_eq!(script.calls(), 3);
}

#[tokio::test]
async fn a_timeout_and_a_garbled_body_are_retried() {
    let (base, script) = serve(vec![
        Reply::Slow(Duration::from_secs(3)),
        Reply::Garbled,
        Reply::Ok {
            text: "fine",
            input: 1,
            output: 1,
        },
    ])
    .await;
    let res = gateway(&[&base], |_| {})
        .complete(&request(None))
        .await
        .unwrap();
    assert_eq!(res.text, "fine");
    assert_eq!(script.calls(), 3);
    assert!(res.path[0].outcome.contains("timed out"), "{:?}", res.path);
    assert!(res.path[1].outcome.contains("not JSON"), "{:?}", res.path);
}

#[tokio::test]
async fn a_401_fails_at_once_naming_provider_and_model() {
    let (base, script) = serve(vec![Reply::Status {
        status: 401,
        retry_after: None,
    }])
    .await;
    let err = gateway(&[&base], |_| {})
        .complete(&request(None))
        .await
        .unwrap_err();
    let GatewayError::Permanent { message, .. } = &err else {
        panic!("expected a permanent error, got {err}");
    };
    assert!(
        message.contains("p0:gpt-test") && message.contains("401"),
        "{message}"
    );
    assert_eq!(script.calls(), 1);
}

#[tokio::test]
async fn falls_back_to_the_second_provider() {
    let (first, first_script) = serve(vec![]).await; // every call: 500
    let (second, _) = serve(vec![Reply::Ok {
        text: "from second",
        input: 1,
        output: 1,
    }])
    .await;
    let gw = gateway(&[&first, &second], |c| c.retry.max_retries = 1);
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!(res.provider, "p1");
    assert_eq!(first_script.calls(), 2, "one try plus one retry");
    let models: Vec<&str> = res.path.iter().map(|a| a.model.as_str()).collect();
    assert_eq!(models, ["p0:gpt-test", "p0:gpt-test", "p1:gpt-test"]);
}

#[tokio::test]
async fn the_circuit_opens_and_later_lets_a_trial_through() {
    let (base, script) = serve(vec![]).await; // always 500
    let gw = gateway(&[&base], |c| {
        c.retry.max_retries = 0;
        c.retry.breaker_failures = 2;
        c.retry.breaker_cooldown_secs = 1;
    });
    for _ in 0..2 {
        assert!(gw.complete(&request(None)).await.is_err());
    }
    assert_eq!(script.calls(), 2);
    let err = gw.complete(&request(None)).await.unwrap_err();
    assert!(err.to_string().contains("circuit open"), "{err}");
    assert_eq!(script.calls(), 2, "an open circuit sends nothing");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    script.replies.lock().unwrap().push_back(Reply::Ok {
        text: "back",
        input: 1,
        output: 1,
    });
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!(res.text, "back");
}

/// The schemas Factory sends are strict-mode schemas, and OpenAI's loopback (which validates
/// strict schemas as the API does) accepts them; a caller's schema that strict mode would
/// refuse is sent with `strict: false` instead of being refused.
#[tokio::test]
async fn schema_constrained_output_is_requested_strictly_and_parsed() {
    let (base, script) = serve(vec![
        Reply::Ok {
            text: "Sure! here you go",
            input: 1,
            output: 1,
        },
        Reply::Ok {
            text: r#"{"status":"COMPLETE"}"#,
            input: 1,
            output: 1,
        },
        Reply::Ok {
            text: r#"{"status":"COMPLETE"}"#,
            input: 1,
            output: 1,
        },
    ])
    .await;
    let gw = gateway(&[&base], |_| {});
    let task_result = ::app::task::task_result_schema(true, true);
    let res = gw
        .complete(&request(Some(task_result.clone())))
        .await
        .unwrap();
    assert_eq!(res.json, Some(json!({"status": "COMPLETE"})));
    assert_eq!(script.calls(), 2, "a reply that is not JSON is retried");
    let body = script.requests.lock().unwrap()[0].1.clone();
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"],
        task_result
    );
    assert_eq!(body["response_format"]["json_schema"]["strict"], true);

    let loose = json!({"type": "object", "properties": {"status": {"type": "string"}}});
    gw.complete(&request(Some(loose.clone()))).await.unwrap();
    let body = script.requests.lock().unwrap()[2].1.clone();
    assert_eq!(body["response_format"]["json_schema"]["schema"], loose);
    assert_eq!(body["response_format"]["json_schema"]["strict"], false);
}

/// A model without structured output gets the schema in its prompt and no `response_format`.
#[tokio::test]
async fn without_structured_output_the_schema_is_written_into_the_prompt() {
    let (base, script) = serve(vec![Reply::Ok {
        text: r#"{"status":"COMPLETE"}"#,
        input: 1,
        output: 1,
    }])
    .await;
    let gw = gateway(&[&base], |c| {
        c.models.get_mut("p0:gpt-test").unwrap().structured_output = Some(false);
    });
    let schema = ::app::task::task_result_schema(false, false);
    let res = gw.complete(&request(Some(schema.clone()))).await.unwrap();
    assert_eq!(res.json, Some(json!({"status": "COMPLETE"})));
    let body = script.requests.lock().unwrap()[0].1.clone();
    assert!(body.get("response_format").is_none(), "{body}");
    let last = body["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "system");
    assert!(
        last["content"]
            .as_str()
            .unwrap()
            .contains(&schema.to_string()),
        "{last}"
    );
}

/// Reasoning models take `max_completion_tokens` and no temperature but the default; the
/// loopback refuses what OpenAI refuses, so a wrong capability fails the call.
#[tokio::test]
async fn reasoning_models_get_max_completion_tokens_and_no_temperature() {
    let ok = || Reply::Ok {
        text: "hi",
        input: 1,
        output: 1,
    };
    let (base, script) = serve(vec![ok(), ok()]).await;
    let gw = gateway(&[&base], |c| {
        c.aliases.insert("test/o3".into(), vec!["p0:o3".into()]);
        c.models.insert(
            "p0:o3".into(),
            crate::support::ModelConfig {
                reasoning_effort: Some(crate::support::ReasoningEffort::Low),
                ..Default::default()
            },
        );
    });
    let mut req = request(None);
    req.target = "test/o3".into();
    req.temperature = Some(0.2);
    gw.complete(&req).await.unwrap();
    let body = script.requests.lock().unwrap()[0].1.clone();
    assert_eq!(body["max_completion_tokens"], 64);
    assert!(body.get("max_tokens").is_none(), "{body}");
    assert!(body.get("temperature").is_none(), "{body}");
    assert_eq!(body["reasoning_effort"], "low");

    // A model that is not a reasoning model on a compatible server keeps `max_tokens` and
    // its temperature.
    gw.complete(&request(None)).await.unwrap();
    let body = script.requests.lock().unwrap()[1].1.clone();
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["temperature"], 0.0);
    assert!(body.get("reasoning_effort").is_none(), "{body}");

    // Told wrongly that o3 takes a temperature, the call is refused as OpenAI refuses it.
    let gw = gateway(&[&base], |c| {
        c.aliases.insert("test/o3".into(), vec!["p0:o3".into()]);
        c.models.insert(
            "p0:o3".into(),
            crate::support::ModelConfig {
                temperature: Some(true),
                ..Default::default()
            },
        );
    });
    match gw.complete(&req).await {
        Err(GatewayError::Permanent { message, .. }) => assert!(
            message.contains("400") && message.contains("'temperature' does not support"),
            "{message}"
        ),
        other => panic!("expected OpenAI's refusal, got {other:?}"),
    }
}

/// A reply cut off at the output limit is not taken as whole: the model is asked again for a
/// shorter answer (bounded), and the cut-off reply's tokens are counted too.
#[tokio::test]
async fn a_reply_cut_off_at_the_limit_is_asked_again_shorter_and_counted() {
    let (base, script) = serve(vec![
        Reply::Fixture("length"),
        Reply::Ok {
            text: "short",
            input: 1_300,
            output: 10,
        },
    ])
    .await;
    let gw = gateway(&[&base], |_| {});
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!(res.text, "short");
    assert_eq!(
        (res.input_tokens, res.output_tokens),
        (1_200 + 1_300, 64 + 10)
    );
    assert!(
        (res.cost_usd - (2_500.0 * 2.0 + 74.0 * 8.0) / 1e6).abs() < 1e-12,
        "{}",
        res.cost_usd
    );
    assert!(
        res.path[0]
            .outcome
            .contains("cut off at the 64-token limit"),
        "{:?}",
        res.path
    );
    assert_eq!(res.path[1].outcome, "ok");
    let again = script.requests.lock().unwrap()[1].1.clone();
    let last = again["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["content"].as_str().unwrap().contains("cut off"),
        "{last}"
    );

    // With no re-ask allowed, a cut-off reply moves on to the next model.
    let (first, _) = serve(vec![Reply::Fixture("length")]).await;
    let (second, _) = serve(vec![Reply::Ok {
        text: "whole",
        input: 1,
        output: 1,
    }])
    .await;
    let gw = gateway(&[&first, &second], |c| c.retry.max_truncation_retries = 0);
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!((res.text.as_str(), res.provider.as_str()), ("whole", "p1"));
    assert!(
        res.path[0].outcome.contains("trying the next model"),
        "{:?}",
        res.path
    );
}

/// Cached prompt tokens are read back from `usage` and priced at the cached rate, in the
/// response and in the ledger; a refusal is a permanent failure naming it.
#[tokio::test]
async fn cached_prompt_tokens_are_priced_at_the_cached_rate_and_recorded() {
    let (base, _) = serve(vec![
        Reply::Fixture("cached_usage"),
        Reply::Fixture("refusal"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = crate::support::Store::open(dir.path()).await.unwrap();
    let config = config(&[&base], |c| {
        c.models
            .get_mut("p0:gpt-test")
            .unwrap()
            .cached_input_per_mtok = Some(0.5);
    });
    let gw = Gateway::with_ledger(config, store.clone()).await.unwrap();
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!((res.input_tokens, res.cached_tokens), (2_006, 1_920));
    let expected = (86.0 * 2.0 + 1_920.0 * 0.5 + 300.0 * 8.0) / 1e6;
    assert!((res.cost_usd - expected).abs() < 1e-12, "{}", res.cost_usd);
    let total = crate::support::cost_report(&store)
        .await
        .unwrap()
        .total
        .unwrap();
    assert_eq!((total.input_tokens, total.cached_tokens), (2_006, 1_920));
    assert!((total.cost_usd - expected).abs() < 1e-12);

    match gw.complete(&request(None)).await {
        Err(GatewayError::Permanent { message, .. }) => {
            assert!(
                message.contains("refused to answer: I'm sorry"),
                "{message}"
            )
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_targets_are_refused_with_the_accepted_forms() {
    let gw = gateway(&["http://127.0.0.1:9/v1"], |_| {});
    let mut req = request(None);
    req.target = "factory/nope".into();
    let err = gw.complete(&req).await.unwrap_err();
    assert!(err.to_string().contains("factory/architect"), "{err}");
    req.target = "nobody:gpt".into();
    assert!(matches!(
        gw.complete(&req).await,
        Err(GatewayError::UnknownTarget { .. })
    ));
}

/// A server that answers after 150 ms and records the most calls it saw at once.
async fn serve_slow() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let state = (now, peak.clone());
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(
                |State((now, peak)): State<(Arc<AtomicUsize>, Arc<AtomicUsize>)>| async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Json(json!({"choices": [{"message": {"content": "ok"}}], "usage": {}}))
                },
            ),
        )
        .with_state(state);
    let addr = loopback(app).await;
    (format!("http://{addr}/v1"), peak)
}

#[tokio::test]
async fn per_model_and_global_concurrency_limits_hold() {
    use std::sync::atomic::Ordering;
    let (base, peak) = serve_slow().await;
    // p0:gpt-test allows 2 at a time (see `gateway`).
    let gw = gateway(&[&base], |_| {});
    let req = request(None);
    let replies = futures_util::future::join_all((0..8).map(|_| gw.complete(&req))).await;
    assert!(replies.iter().all(Result::is_ok));
    assert_eq!(peak.load(Ordering::SeqCst), 2);

    let (base, peak) = serve_slow().await;
    let gw = gateway(&[&base], |c| {
        c.models.get_mut("p0:gpt-test").unwrap().max_concurrency = 8;
        c.retry.max_in_flight = 1;
    });
    let replies = futures_util::future::join_all((0..4).map(|_| gw.complete(&req))).await;
    assert!(replies.iter().all(Result::is_ok));
    assert_eq!(peak.load(Ordering::SeqCst), 1, "the global cap holds");
}

#[tokio::test]
async fn auto_takes_the_first_model_the_server_lists() {
    let (base, script) = serve(vec![Reply::Ok {
        text: "hello",
        input: 1,
        output: 1,
    }])
    .await;
    let gw = gateway(&[&base], |c| {
        c.aliases
            .insert("test/chain".into(), vec!["p0:auto".into()]);
    });
    let res = gw.complete(&request(None)).await.unwrap();
    assert_eq!(res.model, "served-model");
    let body = script.requests.lock().unwrap()[0].1.clone();
    assert_eq!(body["model"], "served-model");
}
