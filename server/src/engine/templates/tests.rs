use super::*;
use crate::gateway::providers::offline::OfflineProvider;
use crate::gateway::providers::{Provider, ProviderRequest};
use crate::gateway::types::Message;

#[test]
fn requirement_facts_are_derived_from_the_text() {
    let text = "As a shop owner, I want to export orders as CSV and email the weekly report \
                    to accountants. Customers can reset their password.";
    let v = requirement_vars(text, Some("shop"), "requirements", "obj", &[], &[]);
    assert_eq!(v["actor"], "shop owner");
    assert_eq!(
        v["clauses"],
        json!([
            "export orders as CSV",
            "email the weekly report to accountants",
            "customers can reset their password"
        ])
    );
    assert_eq!(
        v["title"],
        "As a shop owner, I want to export orders as CSV and email the weekly report to…"
    );
    assert!(v["keywords"].as_array().unwrap().contains(&json!("orders")));
    assert_eq!(v["project"], "shop");
}

#[test]
fn a_brief_renders_the_teams_deliverable_as_a_task_result() {
    let brief = TemplateBrief {
        team: "documentation".into(),
        deliverable: "docs.md".into(),
        template: "# Docs for {{ title }}\n{% for c in clauses %}- {{ c }}\n{% endfor %}".into(),
        vars: requirement_vars(
            "Add a login page. Show recent orders",
            None,
            "docs",
            "o",
            &[],
            &[],
        ),
    };
    let schema = app::task::task_result_schema(false, true);
    let answer = brief.into_answer();
    let messages = [Message::user("go")];
    let caps = crate::config::gateway::Capabilities::offline();
    let request = ProviderRequest {
        caps: &caps,
        tools: &[],
        stream: None,
        model: "template",
        messages: &messages,
        temperature: None,
        max_tokens: 100,
        schema: Some(&schema),
        offline: Some(&answer),
    };
    let reply = futures::executor::block_on(OfflineProvider.complete(&request)).unwrap();
    let result = app::task::parse_task_result(&reply.text).unwrap();
    assert_eq!(result.artifacts[0].name, "docs.md");
    assert_eq!(
        result.artifacts[0].content,
        "# Docs for Add a login page\n- add a login page\n- show recent orders\n"
    );
    assert_eq!(result.work_orders.len(), 2);
    assert!(result.reasoning.starts_with("offline (no model)"));
}
