//! The offline provider's answers, made by the engine: each team's `offline.md.j2` filled from
//! facts derived from the requirement text (title, clauses, keywords, actor), as a COMPLETE
//! TaskResult; a plan's work orders one per clause; a work order's change a document describing
//! it. Rendered only when a request falls through to the offline provider.

use serde_json::{Value, json};

use crate::gateway::providers::offline::OFFLINE_LABEL;
use crate::gateway::types::OfflineAnswer;

/// The material a team's deliverable is made from without a model.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateBrief {
    pub team: String,
    /// File name of the artifact, e.g. `requirements.md`.
    pub deliverable: String,
    /// The team's `offline.md.j2` (minijinja).
    pub template: String,
    /// The template's variables.
    pub vars: Value,
}

impl TemplateBrief {
    /// The answer the offline provider gives for this brief, rendered only when it is asked.
    pub fn into_answer(self) -> OfflineAnswer {
        OfflineAnswer::new(move |schema| answer(schema, &self))
    }
}

/// A COMPLETE TaskResult whose artifact is the team's template rendered from the
/// requirement's facts; for a schema that asks for work orders, one per clause.
pub fn answer(schema: &Value, brief: &TemplateBrief) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    let content = env.render_str(&brief.template, &brief.vars).map_err(|e| {
        format!(
            "{OFFLINE_LABEL}: the offline template of team `{}` cannot be rendered: {e}",
            brief.team
        )
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

#[cfg(test)]
mod tests;
