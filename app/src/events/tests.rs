use super::*;

#[test]
fn kind_matches_the_serialized_tag() {
    let samples = [
        EventData::RunCreated {
            run_id: "r".into(),
            request_id: None,
            goal: "g".into(),
            project: None,
            pipeline: None,
        },
        EventData::AdminTokenCreated {
            token_id: "t".into(),
            label: "l".into(),
        },
        EventData::SessionStarted {
            token_id: "t".into(),
        },
        EventData::TokenScoped {
            token_id: "t".into(),
            scope: TokenScope::Viewer,
            projects: vec!["/srv/p".into()],
        },
        EventData::TokenRevoked {
            token_id: "t".into(),
            reason: "r".into(),
        },
        EventData::SettingsChanged {
            section: "routing".into(),
            before: serde_json::json!({"threshold": 0.3}),
            after: serde_json::json!({"threshold": 0.5}),
            changed_by: "dashboard".into(),
        },
    ];
    for data in samples {
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["kind"], data.kind());
    }
}

#[test]
fn scopes_parse_order_and_default_to_admin_for_old_events() {
    for scope in TokenScope::ALL {
        assert_eq!(scope.as_str().parse::<TokenScope>(), Ok(scope));
    }
    let err = "root".parse::<TokenScope>().unwrap_err().to_string();
    assert!(err.contains("viewer, operator or admin"), "{err}");
    assert!(TokenScope::Viewer < TokenScope::Operator);
    assert!(TokenScope::Operator < TokenScope::Admin);
    let old: EventData = serde_json::from_value(
        serde_json::json!({"kind": "token_scoped", "payload": {"token_id": "t"}}),
    )
    .unwrap();
    assert_eq!(
        old,
        EventData::TokenScoped {
            token_id: "t".into(),
            scope: TokenScope::Admin,
            projects: vec![],
        }
    );
}

#[test]
fn event_round_trips_with_flattened_data() {
    let event = Event {
        seq: 7,
        run_id: Some("r1".into()),
        ts: "2026-11-22T05:00:00.000Z".into(),
        actor: "api".into(),
        data: EventData::RunCreated {
            run_id: "r1".into(),
            request_id: Some("req".into()),
            goal: "Add login".into(),
            project: None,
            pipeline: None,
        },
        hash: "ab".into(),
    };
    let text = serde_json::to_string(&event).unwrap();
    assert!(text.contains(r#""kind":"run_created""#), "{text}");
    let back: Event = serde_json::from_str(&text).unwrap();
    assert_eq!(back, event);
}

/// `KINDS` names every variant, and only those: serde lists the variants it expects when it
/// meets an unknown kind, so a variant added without its kind fails here.
#[test]
fn kinds_lists_every_variant() {
    let err =
        serde_json::from_value::<EventData>(serde_json::json!({"kind": "nope", "payload": {}}))
            .unwrap_err()
            .to_string();
    let mut expected: Vec<&str> = err.split('`').skip(3).step_by(2).collect();
    let mut kinds = EventData::KINDS.to_vec();
    expected.sort_unstable();
    kinds.sort_unstable();
    assert_eq!(kinds, expected, "{err}");
}

#[test]
fn webhook_records_keep_their_run_and_kind() {
    let delivered = EventData::WebhookDelivered {
        webhook: "ci".into(),
        delivery_id: "d".into(),
        event_seq: 4,
        event_kind: "run_finished".into(),
        run_id: Some("r".into()),
        attempts: 2,
        status: 204,
        duration_ms: 10,
    };
    let dropped = EventData::WebhookDropped {
        webhook: "ci".into(),
        reason: WebhookDrop::QueueFull,
        count: 3,
        first_seq: Some(1),
        last_seq: Some(3),
    };
    assert_eq!(delivered.run_id(), Some("r"));
    assert_eq!(dropped.run_id(), None);
    for data in [delivered, dropped] {
        let json = serde_json::to_value(&data).unwrap();
        assert_eq!(json["kind"], data.kind());
        assert!(EventData::is_webhook_outcome(data.kind()));
    }
    assert!(!EventData::is_webhook_outcome("run_finished"));
}
