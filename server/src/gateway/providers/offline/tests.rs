use super::*;
use crate::gateway::types::Message;

fn ask(schema: Option<&Value>) -> ProviderReply {
    let messages = [
        Message::system("You are an analyst."),
        Message::user("Add a login page"),
    ];
    let caps = crate::config::gateway::Capabilities::offline();
    let request = ProviderRequest {
        caps: &caps,
        tools: &[],
        stream: None,
        model: "template",
        messages: &messages,
        temperature: None,
        max_tokens: 100,
        schema,
        offline: None,
    };
    futures::executor::block_on(OfflineProvider.complete(&request)).unwrap()
}

#[test]
fn plain_replies_say_they_are_templates() {
    let reply = ask(None);
    assert!(
        reply.text.starts_with("[offline (no model)]"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("Add a login page"));
    assert_eq!(ask(None), reply, "deterministic");
}

#[test]
fn schema_replies_follow_the_schema() {
    let schema = json!({
        "type": "object",
        "required": ["status", "reasoning", "blockers", "score", "ok", "items"],
        "properties": {
            "status": {"enum": ["COMPLETE", "BLOCKED"]},
            "reasoning": {"type": "string"},
            "blockers": {"type": "array", "items": {"type": "string"}},
            "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "minimum": 1}}}},
            "score": {"type": "number"},
            "ok": {"type": "boolean"},
            "optional": {"type": "string"}
        }
    });
    let value: Value = serde_json::from_str(&ask(Some(&schema)).text).unwrap();
    assert_eq!(value["status"], "COMPLETE");
    assert!(
        value["reasoning"]
            .as_str()
            .unwrap()
            .contains("Add a login page")
    );
    assert_eq!(value["blockers"], json!([]));
    assert_eq!(value["items"], json!([{"id": 1}]));
    assert_eq!(value["ok"], false);
    assert!(value.get("optional").is_none());
}

#[test]
fn recursive_schemas_stop() {
    let schema = json!({"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1}}});
    let _ = instance(&schema, "x", 0);
}
