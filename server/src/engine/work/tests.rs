use super::*;
use app::ledger::Risk;

fn wo(id: &str, deps: &[&str]) -> WorkOrderSpec {
    WorkOrderSpec {
        id: id.into(),
        title: id.into(),
        description: String::new(),
        risk: Risk::Low,
        files_in_scope: vec![],
        acceptance_criteria: vec![],
        dependencies: deps.iter().map(|d| d.to_string()).collect(),
        confidence: 0.5,
    }
}

#[test]
fn dependencies_come_first_and_bad_graphs_are_refused() {
    let orders = [wo("b", &["a"]), wo("a", &[]), wo("c", &["a", "b"])];
    let ids: Vec<&str> = order(&orders)
        .unwrap()
        .iter()
        .map(|w| w.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!(
        order(&[wo("a", &["z"])])
            .unwrap_err()
            .contains("unknown `z`")
    );
    assert!(
        order(&[wo("a", &["b"]), wo("b", &["a"])])
            .unwrap_err()
            .contains("cycle")
    );
    assert!(
        order(&[wo("a", &[]), wo("a", &[])])
            .unwrap_err()
            .contains("share an id")
    );
    let many: Vec<_> = (0..9).map(|i| wo(&i.to_string(), &[])).collect();
    assert!(order(&many).unwrap_err().contains("at most 8"));
}
