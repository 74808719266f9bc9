//! OpenAI's strict structured outputs accept only a subset of JSON Schema: the root is an
//! object; every object sets `additionalProperties: false` and lists every property in
//! `required` (an optional field is a union with `null`); composition other than `anyOf` and
//! some validation keywords are refused. [`strict_violations`] names what breaks those rules, so
//! the OpenAI client asks for `strict: true` only for a schema the API accepts and sends
//! `strict: false` otherwise (a caller's own schema is never refused for its shape).

use serde_json::Value;

/// Deepest nesting followed (the API's own limit is lower; a recursive schema cannot loop).
const MAX_DEPTH: usize = 32;

/// Keywords strict mode refuses wherever they appear.
const REFUSED: [&str; 12] = [
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
];

/// Every way `schema` breaks the strict-mode rules, each naming where (a JSON pointer into
/// the schema); empty when the API would accept it.
pub fn strict_violations(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if !is_object_type(schema) {
        found.push("(root): the root must be `\"type\": \"object\"`".to_string());
    }
    if schema.get("anyOf").is_some() {
        found.push("(root): the root must not be `anyOf`".to_string());
    }
    walk(schema, "", 0, &mut found);
    found
}

/// Whether strict mode accepts `schema`.
pub fn is_strict(schema: &Value) -> bool {
    strict_violations(schema).is_empty()
}

fn is_object_type(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(t) => t == "object",
        Value::Array(types) => types.iter().any(|t| t == "object"),
        _ => false,
    }
}

fn walk(schema: &Value, at: &str, depth: usize, found: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        return;
    };
    let here = if at.is_empty() { "(root)" } else { at };
    if depth > MAX_DEPTH {
        found.push(format!("{here}: nested deeper than {MAX_DEPTH} levels"));
        return;
    }
    for keyword in REFUSED {
        if map.contains_key(keyword) {
            found.push(format!(
                "{here}: `{keyword}` is not supported in strict mode"
            ));
        }
    }
    if is_object_type(schema) || map.contains_key("properties") {
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            found.push(format!(
                "{here}: an object must set `\"additionalProperties\": false`"
            ));
        }
        let required: Vec<&str> = map
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                if !required.contains(&name.as_str()) {
                    found.push(format!(
                        "{here}: property `{name}` must be listed in `required` (make an \
                         optional field a union with `null`)"
                    ));
                }
                walk(
                    property,
                    &format!("{at}/properties/{name}"),
                    depth + 1,
                    found,
                );
            }
        }
    }
    if let Some(items) = map.get("items") {
        walk(items, &format!("{at}/items"), depth + 1, found);
    }
    if let Some(options) = map.get("anyOf").and_then(Value::as_array) {
        for (i, option) in options.iter().enumerate() {
            walk(option, &format!("{at}/anyOf/{i}"), depth + 1, found);
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(defs) = map.get(key).and_then(Value::as_object) {
            for (name, def) in defs {
                walk(def, &format!("{at}/{key}/{name}"), depth + 1, found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every schema Factory sends to a model: each team kind's TaskResult and the answer to a
    /// clarification.
    #[test]
    fn every_schema_factory_sends_is_accepted_in_strict_mode() {
        for (edits, work_orders) in [(false, false), (true, false), (false, true), (true, true)] {
            let schema = app::task::task_result_schema(edits, work_orders);
            assert_eq!(
                strict_violations(&schema),
                Vec::<String>::new(),
                "edits {edits}, work orders {work_orders}"
            );
        }
    }

    #[test]
    fn each_rule_is_named_with_where_it_is_broken() {
        let schema = json!({
            "type": "object",
            "properties": {
                "edits": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"op": {"type": "string"}, "content": {"type": "string"}},
                    "required": ["op"]
                }},
                "pick": {"oneOf": [{"type": "string"}, {"type": "number"}]}
            },
            "required": ["edits", "pick"],
            "additionalProperties": false
        });
        let found = strict_violations(&schema).join("\n");
        assert!(
            found.contains("/properties/edits/items: an object must set"),
            "{found}"
        );
        assert!(
            found.contains("property `content` must be listed"),
            "{found}"
        );
        assert!(found.contains("/properties/pick: `oneOf`"), "{found}");
        assert!(!is_strict(
            &json!({"type": "array", "items": {"type": "string"}})
        ));
        assert!(is_strict(&json!({
            "type": "object",
            "properties": {"note": {"type": ["string", "null"]}},
            "required": ["note"],
            "additionalProperties": false
        })));
    }
}
