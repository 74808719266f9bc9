//! Routing by complexity: a work order's complexity picks the cheap or the
//! strong alias; hard-stop keywords force the strongest model regardless of budget tier. Every
//! decision carries its inputs and a reason, to be recorded as an event (the decision log).
//!
//! `complexity = (files · w_files + risk · w_risk + criteria · w_criteria) / divisor` with the
//! default weights 0.4 / 0.3 / 0.3 and divisor 3, where
//! - `files` is `files_in_scope` normalised to 0..1 as `min(files_in_scope, files_cap) / files_cap`
//!   (files_cap 3 by default: three or more files count as "many");
//! - `risk` is 0.2 for low, 0.5 for medium, 0.8 for high;
//! - `criteria` is 1 when the work order has acceptance criteria, else 0.
//!
//! Below `threshold` (0.3) the cheap alias is used, otherwise the strong one. A hard-stop keyword
//! matches a word of the title or description that starts with it, case-insensitively (`auth`
//! matches "Authentication"), and forces the strong alias.

pub use app::ledger::{Risk, RoutingDecision};

use crate::config::gateway::RoutingConfig;

/// What the router looks at.
#[derive(Debug, Clone)]
pub struct RoutingInput<'a> {
    pub files_in_scope: u32,
    pub risk: Risk,
    pub has_acceptance_criteria: bool,
    /// Title and description, searched for hard-stop keywords.
    pub text: &'a str,
}

/// Routes one work order.
pub fn route(config: &RoutingConfig, input: &RoutingInput<'_>) -> RoutingDecision {
    let cap = f64::from(config.files_cap.max(1));
    let files = f64::from(input.files_in_scope).min(cap) / cap;
    let criteria = if input.has_acceptance_criteria {
        1.0
    } else {
        0.0
    };
    let complexity = (files * config.weight_files
        + input.risk.score() * config.weight_risk
        + criteria * config.weight_criteria)
        / config.divisor;
    let hard_stop = find_keyword(&config.hard_stop_keywords, input.text);
    let (alias, reason) = match &hard_stop {
        Some(word) => (
            config.strong_alias.clone(),
            format!("hard-stop keyword `{word}` forces the strongest model"),
        ),
        None if complexity < config.threshold => (
            config.cheap_alias.clone(),
            format!(
                "complexity {complexity:.3} < threshold {:.3}",
                config.threshold
            ),
        ),
        None => (
            config.strong_alias.clone(),
            format!(
                "complexity {complexity:.3} ≥ threshold {:.3}",
                config.threshold
            ),
        ),
    };
    RoutingDecision {
        alias,
        complexity,
        files_in_scope: input.files_in_scope,
        files_normalised: files,
        risk: input.risk,
        has_acceptance_criteria: input.has_acceptance_criteria,
        threshold: config.threshold,
        hard_stop,
        reason,
    }
}

fn find_keyword(keywords: &[String], text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    keywords
        .iter()
        .map(|k| k.to_lowercase())
        .find(|k| !k.is_empty() && words.iter().any(|w| w.starts_with(k.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(files: u32, risk: Risk, criteria: bool, text: &str) -> RoutingInput<'_> {
        RoutingInput {
            files_in_scope: files,
            risk,
            has_acceptance_criteria: criteria,
            text,
        }
    }

    #[test]
    fn follows_the_plans_formula() {
        let c = RoutingConfig::default();
        let d = route(
            &c,
            &input(3, Risk::High, true, "Refactor the report module"),
        );
        assert!((d.complexity - (0.4 + 0.8 * 0.3 + 0.3) / 3.0).abs() < 1e-9);
        assert_eq!(d.alias, "factory/architect");
        let d = route(&c, &input(1, Risk::Low, true, "Fix a typo in the README"));
        assert!((d.complexity - (0.4 / 3.0 + 0.06 + 0.3) / 3.0).abs() < 1e-9);
        assert_eq!(d.alias, "factory/cheap");
        assert!(d.reason.contains("< threshold"), "{}", d.reason);
    }

    #[test]
    fn files_beyond_the_cap_count_as_the_cap() {
        let c = RoutingConfig::default();
        let a = route(&c, &input(3, Risk::Medium, false, ""));
        let b = route(&c, &input(300, Risk::Medium, false, ""));
        assert_eq!(a.complexity, b.complexity);
        assert_eq!(b.files_normalised, 1.0);
    }

    #[test]
    fn hard_stop_keywords_force_the_strong_alias() {
        let c = RoutingConfig::default();
        let d = route(
            &c,
            &input(1, Risk::Low, false, "Tweak Authentication error text"),
        );
        assert_eq!(d.alias, "factory/architect");
        assert_eq!(d.hard_stop.as_deref(), Some("auth"));
        // Only whole-word prefixes: "oauthish" does not start with "auth".
        let d = route(&c, &input(1, Risk::Low, false, "rename oauthish helper"));
        assert_eq!(d.hard_stop, None);
        assert_eq!(d.alias, "factory/cheap");
    }

    #[test]
    fn weights_and_threshold_are_configurable() {
        let c = RoutingConfig {
            threshold: 0.05,
            ..RoutingConfig::default()
        };
        let d = route(&c, &input(1, Risk::Low, false, "small"));
        assert_eq!(d.alias, "factory/architect");
    }
}
