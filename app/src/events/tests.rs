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
