//! The offline provider: no model at all. It answers deterministically from templates so the
//! whole pipeline can run on a machine with no model configured, and says so in every reply.
//! With a JSON Schema it returns the smallest instance of the schema, filling strings from the
//! request's text; without one, a plain note. It is never presented as an LLM.

use serde_json::{Map, Value, json};

use super::{Provider, ProviderError, ProviderReply, ProviderRequest};
use crate::gateway::types::{OfflineBrief, Role};

/// Shown wherever this provider is named.
pub const OFFLINE_LABEL: &str = "offline (no model)";

/// How deep a schema is followed (a recursive schema cannot loop forever).
const MAX_DEPTH: usize = 8;

/// The deterministic template provider.
#[derive(Debug, Default)]
pub struct OfflineProvider;

#[async_trait::async_trait]
impl Provider for OfflineProvider {
    async fn complete(
        &self,
        request: &ProviderRequest<'_>,
    ) -> Result<ProviderReply, ProviderError> {
        let ask = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.trim())
            .unwrap_or_default();
        let gist: String = ask.chars().take(200).collect();
        let text = match (request.schema, request.brief) {
            (Some(schema), Some(brief)) => task_result(schema, brief)?,
            (Some(schema), None) => instance(schema, &gist, 0).to_string(),
            (None, _) => format!(
                "[{OFFLINE_LABEL}] No model is configured; this is a template reply to: {gist}"
            ),
        };
        // Tokens are counted as words, so budgets and ledgers still see a size; the cost is $0.
        let words = |s: &str| s.split_whitespace().count().min(u32::MAX as usize) as u32;
        let input = request.messages.iter().map(|m| words(&m.content)).sum();
        Ok(ProviderReply {
            output_tokens: words(&text),
            text,
            input_tokens: input,
            model: Some("template".into()),
            upstream: std::time::Duration::ZERO,
        })
    }
}

/// A COMPLETE TaskResult whose artifact is the team's template rendered from the
/// requirement's facts; for a schema that asks for work orders, one per clause.
fn task_result(schema: &Value, brief: &OfflineBrief) -> Result<String, ProviderError> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    let content =
        env.render_str(&brief.template, &brief.vars)
            .map_err(|e| ProviderError::Permanent {
                message: format!(
                    "{OFFLINE_LABEL}: the offline template of team `{}` cannot be rendered: {e}",
                    brief.team
                ),
            })?;
    let clauses: Vec<String> = brief.vars["clauses"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut result = json!({
        "status": "COMPLETE",
        "reasoning": format!(
            "{OFFLINE_LABEL}: no model is configured, so the {} template was filled from the \
             requirement text; it restructures the requirement and adds no knowledge of its own.",
            brief.team
        ),
        "blockers": [],
        "assumptions_made": [
            "No model was available: the content is a deterministic template, to be reviewed by a person or redone with a model."
        ],
        "verified_facts": [],
        "clarification_needed": null,
        "artifacts": [{"name": brief.deliverable, "content": content}],
    });
    let properties = &schema["properties"];
    if properties.get("edits").is_some() {
        // A work order gets a small real change: a document describing it, committed like any
        // other change and checked by the project's gates.
        result["edits"] = match brief.vars.get("work_order").filter(|w| w.is_object()) {
            Some(wo) => json!([{
                "op": "write",
                "path": format!("docs/work-orders/{}.md", wo["id"].as_str().unwrap_or("wo")),
                "content": work_order_doc(wo, brief.vars["requirement"].as_str().unwrap_or_default()),
            }]),
            None => json!([]),
        };
    }
    if properties.get("work_orders").is_some() {
        let risky = [
            "security",
            "auth",
            "payment",
            "migration",
            "delete",
            "password",
        ];
        let orders: Vec<Value> = clauses
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, clause)| {
                let lower = clause.to_lowercase();
                let risk = if risky.iter().any(|w| lower.contains(w)) {
                    "high"
                } else {
                    "medium"
                };
                json!({
                    "id": format!("wo-{}", i + 1),
                    "title": clause,
                    "description": format!("Implement: {clause}."),
                    "risk": risk,
                    "files_in_scope": [],
                    "acceptance_criteria": [
                        format!("{clause}: works as the requirement describes"),
                        "covered by automated tests that pass".to_string()
                    ],
                    "dependencies": [],
                    // Not assessed: no model read the requirement.
                    "confidence": 0.5
                })
            })
            .collect();
        result["work_orders"] = Value::Array(orders);
    }
    Ok(result.to_string())
}

/// The document the offline provider writes for a work order.
fn work_order_doc(wo: &Value, requirement: &str) -> String {
    let list = |key: &str| {
        wo[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("- {s}\n"))
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "- (none given)\n".into())
    };
    format!(
        "<!-- generated by the offline provider (no model): deterministic template -->\n\
         # {}: {}\n\n{}\n\nRisk: {}\n\n## Requirement\n\n{}\n\n## Acceptance criteria\n\n{}\n\
         ## Files in scope\n\n{}\n_No code was written: no model is configured. This record lets \
         a person or a configured model carry the work order out._\n",
        wo["id"].as_str().unwrap_or("wo"),
        wo["title"].as_str().unwrap_or_default(),
        wo["description"].as_str().unwrap_or_default(),
        wo["risk"].as_str().unwrap_or("medium"),
        requirement.trim(),
        list("acceptance_criteria"),
        list("files_in_scope"),
    )
}

/// The template variables of a team's `offline.md.j2`, derived from the requirement text (see
/// `server/teams/README.md`).
pub fn requirement_vars(
    requirement: &str,
    project: Option<&str>,
    stage: &str,
    objective: &str,
    acceptance_criteria: &[String],
    prior: &[(String, String)],
) -> Value {
    json!({
        "requirement": requirement.trim(),
        "title": title(requirement),
        "clauses": clauses(requirement),
        "keywords": keywords(requirement),
        "actor": actor(requirement),
        "project": project,
        "stage": stage,
        "objective": objective,
        "acceptance_criteria": acceptance_criteria,
        "prior": prior.iter().map(|(team, name)| json!({"team": team, "name": name})).collect::<Vec<_>>(),
    })
}

fn sentences(text: &str) -> Vec<String> {
    text.split(['.', '!', '?', ';', '\n'])
        .map(|s| s.trim().trim_start_matches(['-', '*', ' ']).trim())
        .filter(|s| s.split_whitespace().count() >= 2)
        .map(String::from)
        .collect()
}

/// The first sentence, at most 80 characters (cut at a word).
fn title(text: &str) -> String {
    let first = sentences(text)
        .into_iter()
        .next()
        .unwrap_or_else(|| text.trim().to_string());
    if first.chars().count() <= 80 {
        return first;
    }
    let mut out = String::new();
    for word in first.split_whitespace() {
        if out.chars().count() + word.chars().count() + 1 > 79 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.push('…');
    out
}

/// The distinct asks: sentences, split again at " and " / ", " joins of two long parts;
/// "As a …," prefixes dropped; lowercase first letter; at most 12.
fn clauses(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for sentence in sentences(text) {
        let sentence = strip_actor(&sentence);
        let mut parts = vec![sentence.clone()];
        for joiner in [", and ", " and ", "; "] {
            parts = parts
                .into_iter()
                .flat_map(|p| {
                    let pieces: Vec<&str> = p.split(joiner).collect();
                    if pieces.len() > 1 && pieces.iter().all(|x| x.split_whitespace().count() >= 3)
                    {
                        pieces.into_iter().map(String::from).collect()
                    } else {
                        vec![p]
                    }
                })
                .collect();
        }
        for part in parts {
            let part = part.trim().trim_end_matches([',', ':']).trim();
            if part.is_empty() {
                continue;
            }
            let mut chars = part.chars();
            let clause: String = match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).take(200).collect(),
                None => continue,
            };
            if !out.contains(&clause) {
                out.push(clause);
            }
        }
    }
    if out.is_empty() {
        out.push(text.trim().chars().take(200).collect());
    }
    out.truncate(12);
    out
}

fn strip_actor(sentence: &str) -> String {
    let lower = sentence.to_lowercase();
    for prefix in ["as an ", "as a "] {
        if lower.starts_with(prefix)
            && let Some(comma) = sentence.find(',')
        {
            let rest = sentence[comma + 1..].trim();
            let rest = rest
                .strip_prefix("I want to ")
                .or_else(|| rest.strip_prefix("I want "))
                .or_else(|| rest.strip_prefix("i want to "))
                .unwrap_or(rest);
            return rest.to_string();
        }
    }
    sentence.to_string()
}

/// "user", or the words after "as a"/"as an" up to a comma (at most three).
fn actor(text: &str) -> String {
    let lower = text.to_lowercase();
    for marker in ["as an ", "as a "] {
        if let Some(i) = lower.find(marker) {
            let rest = &lower[i + marker.len()..];
            let words: Vec<&str> = rest
                .split([',', '.', ';', '\n'])
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect();
            if !words.is_empty() {
                return words.join(" ");
            }
        }
    }
    "user".into()
}

const STOPWORDS: [&str; 40] = [
    "that", "this", "with", "from", "have", "will", "should", "would", "could", "must", "their",
    "there", "them", "they", "then", "than", "when", "what", "which", "where", "while", "into",
    "onto", "about", "also", "each", "every", "some", "more", "most", "only", "other", "such",
    "want", "need", "able", "page", "make", "being", "your",
];

/// Up to eight significant words, most frequent first (ties: first seen).
fn keywords(text: &str) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .map(|w| w.trim_matches('-').to_lowercase())
        .filter(|w| w.chars().count() >= 4 && !STOPWORDS.contains(&w.as_str()))
    {
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
    }
    // Stable sort keeps first-seen order among equals.
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts.into_iter().take(8).map(|(w, _)| w).collect()
}

/// The smallest value that follows `schema`: required properties only, first enum value, empty
/// arrays unless `minItems`, strings from `gist`.
fn instance(schema: &Value, gist: &str, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.as_str(),
        Value::Array(ts) => ts.iter().find_map(Value::as_str).unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema["properties"].as_object() {
                for (name, sub) in props {
                    if required.contains(&name.as_str()) {
                        out.insert(name.clone(), instance(sub, gist, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let n = schema["minItems"].as_u64().unwrap_or(0).min(3) as usize;
            Value::Array(
                (0..n)
                    .map(|_| instance(&schema["items"], gist, depth + 1))
                    .collect(),
            )
        }
        "string" => json!(format!("[{OFFLINE_LABEL}] {gist}")),
        "integer" | "number" => {
            json!(schema["minimum"].as_f64().map_or(0.0, |m| m.max(0.0)) as i64)
        }
        "boolean" => json!(false),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::types::Message;

    fn ask(schema: Option<&Value>) -> ProviderReply {
        let messages = [
            Message::system("You are an analyst."),
            Message::user("Add a login page"),
        ];
        let request = ProviderRequest {
            model: "template",
            messages: &messages,
            temperature: None,
            max_tokens: 100,
            schema,
            brief: None,
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
        let brief = OfflineBrief {
            team: "documentation".into(),
            deliverable: "docs.md".into(),
            template: "# Docs for {{ title }}\n{% for c in clauses %}- {{ c }}\n{% endfor %}"
                .into(),
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
        let messages = [Message::user("go")];
        let request = ProviderRequest {
            model: "template",
            messages: &messages,
            temperature: None,
            max_tokens: 100,
            schema: Some(&schema),
            brief: Some(&brief),
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
}
