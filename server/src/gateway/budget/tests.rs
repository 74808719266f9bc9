use super::*;

fn run(id: &str) -> Attribution {
    Attribution {
        run_id: Some(id.into()),
        team: Some("qa-engineering".into()),
        ..Attribution::default()
    }
}

#[test]
fn reservations_count_against_the_hard_limit_until_settled() {
    let budgets = Budgets::new(BudgetConfig::default()); // $3 hard per run
    let a = budgets.reserve(&run("r"), "2026-11", 2.0).unwrap();
    let (error, reached) = budgets.reserve(&run("r"), "2026-11", 2.0).unwrap_err();
    assert!(matches!(error, BudgetError::Hard { .. }), "{error}");
    assert!(error.to_string().contains("run r"), "{error}");
    assert_eq!(reached.len(), 1, "the hard tier is reported once");
    // Another run has its own $3.
    let b = budgets.reserve(&run("s"), "2026-11", 2.0).unwrap();
    // Settling below the reservation frees the difference.
    assert!(budgets.settle(a, 0.5).is_empty());
    let c = budgets.reserve(&run("r"), "2026-11", 2.0).unwrap();
    budgets.release(b);
    budgets.release(c);
    let status = budgets.status("2026-11");
    let r = status
        .iter()
        .find(|s| s.scope == BudgetScope::Run { run_id: "r".into() })
        .unwrap();
    assert_eq!(
        (r.spent_usd, r.reserved_usd, r.hard_usd),
        (0.5, 0.0, Some(3.0))
    );
}

#[test]
fn soft_warns_once_and_emergency_stops_every_paid_call() {
    let config = BudgetConfig {
        run: Tiers::default(),
        ..BudgetConfig::default()
    };
    let budgets = Budgets::new(config); // month: 20 / 50 / 100
    let r = budgets.reserve(&run("r"), "2026-11", 25.0).unwrap();
    let reached = budgets.settle(r, 25.0);
    assert_eq!(reached.len(), 1);
    assert_eq!(reached[0].tier, BudgetTier::Soft);
    let r = budgets.reserve(&run("r"), "2026-11", 1.0).unwrap();
    assert!(budgets.settle(r, 1.0).is_empty(), "soft is reported once");
    budgets.raise(
        BudgetScope::Month {
            month: "2026-11".into(),
        },
        500.0,
    );
    // A reservation that would cross the emergency line is refused even with hard raised.
    assert!(budgets.reserve(&run("r"), "2026-11", 80.0).is_err());
    // Actual usage above the estimate can still reach it: then everything stops.
    let r = budgets.reserve(&run("r"), "2026-11", 73.0).unwrap();
    let reached = budgets.settle(r, 74.0);
    assert!(reached.iter().any(|x| x.tier == BudgetTier::Emergency));
    assert!(budgets.emergency_stop());
    let (error, _) = budgets.reserve(&run("other"), "2026-11", 0.01).unwrap_err();
    assert!(matches!(error, BudgetError::Emergency { .. }), "{error}");
    // Free calls are never refused.
    assert!(budgets.reserve(&run("other"), "2026-11", 0.0).is_ok());
}

#[test]
fn team_and_project_limits_apply_per_name_with_a_default() {
    let mut config = BudgetConfig::default();
    config.team.hard = Some(1.0);
    config.teams.insert(
        "qa-engineering".into(),
        Tiers {
            hard: Some(0.1),
            ..Tiers::default()
        },
    );
    let budgets = Budgets::new(config);
    let (error, _) = budgets.reserve(&run("r"), "2026-11", 0.2).unwrap_err();
    assert!(
        error.to_string().contains("team qa-engineering in 2026-11"),
        "{error}"
    );
    let other = Attribution {
        team: Some("documentation".into()),
        ..Attribution::default()
    };
    let ok = budgets.reserve(&other, "2026-11", 0.2).unwrap();
    budgets.release(ok);
}

#[test]
fn new_limits_apply_at_once_and_keep_what_was_spent() {
    let budgets = Budgets::new(BudgetConfig::default()); // $3 hard per run
    let r = budgets.reserve(&run("r"), "2026-11", 2.0).unwrap();
    let _ = budgets.settle(r, 2.0);
    let held = budgets.reserve(&run("r"), "2026-11", 0.5).unwrap();
    assert!(budgets.reserve(&run("r"), "2026-11", 1.0).is_err());
    let mut config = BudgetConfig::default();
    config.run.hard = Some(5.0);
    budgets.set_config(config.clone());
    let more = budgets.reserve(&run("r"), "2026-11", 1.0).unwrap();
    config.run.hard = Some(3.6);
    budgets.set_config(config);
    let (error, _) = budgets.reserve(&run("r"), "2026-11", 0.2).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("spent $2.0000, held by calls in flight $1.5000"),
        "spending and reservations are kept: {error}"
    );
    budgets.release(held);
    budgets.release(more);
}

#[test]
fn raising_the_emergency_limit_lifts_the_stop_and_lowering_it_stops() {
    let config = BudgetConfig {
        run: Tiers::default(),
        ..BudgetConfig::default()
    };
    let budgets = Budgets::new(config.clone()); // month: 20 / 50 / 100
    budgets.load_spent(
        BudgetScope::Month {
            month: "2026-11".into(),
        },
        30.0,
    );
    assert!(!budgets.emergency_stop());
    let mut lower = config.clone();
    lower.month = Tiers {
        soft: Some(5.0),
        hard: Some(10.0),
        emergency: Some(25.0),
    };
    budgets.set_config(lower);
    assert!(
        budgets.emergency_stop(),
        "already past the new emergency limit"
    );
    let mut higher = config;
    higher.month = Tiers {
        soft: Some(20.0),
        hard: Some(200.0),
        emergency: Some(400.0),
    };
    budgets.set_config(higher);
    assert!(!budgets.emergency_stop());
    let r = budgets.reserve(&run("r"), "2026-11", 1.0).unwrap();
    budgets.release(r);
}

#[test]
fn spending_loaded_from_the_ledger_counts() {
    let budgets = Budgets::new(BudgetConfig::default());
    budgets.load_spent(BudgetScope::Run { run_id: "r".into() }, 2.9);
    assert!(budgets.reserve(&run("r"), "2026-11", 0.2).is_err());
}
