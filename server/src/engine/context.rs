//! Context packing: what a team sees, within a token budget derived from its model's context
//! window. The **objective anchor** (requirement, stage objective, acceptance criteria) is always
//! present in full; then the team's identity, earlier stages' artifacts and recall from memory.
//! When everything together passes 80 % of the budget, the oldest recall is summarised (the
//! engine asks the cheap alias and retains the summary in memory); what still does not fit is
//! cut, oldest first — recall, then artifacts (shortened to their opening, then dropped), then
//! the repository map, then the identity — never the anchor. The identity and the map make the
//! system prompt: the part that stays the same from call to call (what providers cache).

/// Tokens estimated from text: one per four bytes (used for packing; budgets use a more
/// conservative estimate).
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// Fraction of the budget past which the oldest recall is summarised.
pub const SUMMARISE_AT: f64 = 0.8;

/// What goes into a prompt.
#[derive(Debug, Clone, Default)]
pub struct ContextParts {
    pub anchor: String,
    pub identity: String,
    /// The repository map (already rendered within its own budget); empty for teams that do
    /// not see the code.
    pub repo_map: String,
    /// Earlier stages' artifacts, oldest first: (title, content).
    pub artifacts: Vec<(String, String)>,
    /// Recalled memory, oldest (least relevant) first.
    pub recall: Vec<String>,
}

/// The packed prompt and what packing had to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub system: String,
    pub user: String,
    pub tokens: usize,
    pub dropped_recall: usize,
    pub shortened_artifacts: usize,
    pub dropped_artifacts: usize,
}

impl ContextParts {
    pub fn total_tokens(&self) -> usize {
        estimate_tokens(&self.anchor)
            + estimate_tokens(&self.identity)
            + estimate_tokens(&self.repo_map)
            + self
                .artifacts
                .iter()
                .map(|(t, c)| estimate_tokens(t) + estimate_tokens(c))
                .sum::<usize>()
            + self
                .recall
                .iter()
                .map(|r| estimate_tokens(r))
                .sum::<usize>()
    }

    /// True when the oldest recall should be summarised before packing.
    pub fn needs_summary(&self, budget: usize) -> bool {
        self.recall.len() > 1 && self.total_tokens() as f64 > budget as f64 * SUMMARISE_AT
    }

    /// The oldest half of the recall (to be summarised), removed from the parts.
    pub fn take_oldest_recall(&mut self) -> Vec<String> {
        let n = self.recall.len().div_ceil(2);
        self.recall.drain(..n).collect()
    }

    /// Packs within `budget` tokens. The anchor is always kept whole.
    pub fn pack(mut self, budget: usize) -> Packed {
        let mut dropped_recall = 0;
        let mut shortened = 0;
        let mut dropped_artifacts = 0;
        while self.total_tokens() > budget && !self.recall.is_empty() {
            self.recall.remove(0);
            dropped_recall += 1;
        }
        // Shorten artifacts to their opening, oldest first, then drop them.
        const OPENING: usize = 1_200;
        for i in 0..self.artifacts.len() {
            if self.total_tokens() <= budget {
                break;
            }
            let content = &mut self.artifacts[i].1;
            if content.len() > OPENING {
                let cut = floor_char_boundary(content, OPENING);
                content.truncate(cut);
                content.push_str("\n\n[… shortened to fit the context budget]");
                shortened += 1;
            }
        }
        while self.total_tokens() > budget && !self.artifacts.is_empty() {
            self.artifacts.remove(0);
            dropped_artifacts += 1;
        }
        if self.total_tokens() > budget {
            self.repo_map.clear();
        }
        if self.total_tokens() > budget {
            let room = budget.saturating_sub(estimate_tokens(&self.anchor)) * 4;
            let cut = floor_char_boundary(&self.identity, room);
            self.identity.truncate(cut);
        }
        let mut user = String::new();
        user.push_str(&self.anchor);
        if !self.artifacts.is_empty() {
            user.push_str("\n\n# Earlier stages' artifacts\n");
            for (title, content) in &self.artifacts {
                user.push_str(&format!("\n## {title}\n\n{content}\n"));
            }
        }
        if !self.recall.is_empty() {
            user.push_str(
                "\n\n# Recalled from memory (may be outdated; verify before relying on it)\n",
            );
            for item in &self.recall {
                user.push_str(&format!("\n- {item}"));
            }
            user.push('\n');
        }
        // The anchor again at the end: long contexts lose the middle, not the ends.
        user.push_str("\n\n# Reminder: your objective\n\n");
        user.push_str(&self.anchor);
        let mut system = self.identity;
        if !self.repo_map.is_empty() {
            system.push_str("\n\n# The repository\n\n");
            system.push_str(&self.repo_map);
        }
        let tokens = estimate_tokens(&system) + estimate_tokens(&user);
        Packed {
            system,
            user,
            tokens,
            dropped_recall,
            shortened_artifacts: shortened,
            dropped_artifacts,
        }
    }
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    if index >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(artifacts: usize, recall: usize, size: usize) -> ContextParts {
        ContextParts {
            anchor: "# Requirement\nExport orders as CSV\n# Objective\nWrite the test plan\n\
                     # Acceptance criteria\n- every ask has a test"
                .into(),
            identity: "You are QA. ".repeat(200),
            repo_map: String::new(),
            artifacts: (0..artifacts)
                .map(|i| (format!("stage {i}"), "é artifact text ".repeat(size)))
                .collect(),
            recall: (0..recall)
                .map(|i| format!("fact {i} ").repeat(size / 4))
                .collect(),
        }
    }

    #[test]
    fn the_anchor_survives_any_amount_of_context() {
        for (artifacts, recall, size, budget) in [
            (0, 0, 10, 100),
            (5, 50, 10_000, 2_000),
            (40, 500, 50_000, 4_000),
            (3, 3, 100_000, 50),
        ] {
            let p = parts(artifacts, recall, size);
            let anchor = p.anchor.clone();
            let packed = p.pack(budget);
            assert!(packed.user.starts_with(&anchor), "anchor first");
            assert!(packed.user.ends_with(&anchor), "and repeated last");
            if budget >= 2_000 {
                assert!(
                    packed.tokens <= budget + estimate_tokens(&anchor) + 200,
                    "{} tokens for a budget of {budget}",
                    packed.tokens
                );
            }
        }
    }

    #[test]
    fn recall_goes_before_artifacts_and_small_contexts_are_untouched() {
        let p = parts(2, 10, 100);
        let fits = p.clone().pack(1_000_000);
        assert_eq!(
            (
                fits.dropped_recall,
                fits.dropped_artifacts,
                fits.shortened_artifacts
            ),
            (0, 0, 0)
        );
        let budget = p.total_tokens() - 50;
        let tight = p.pack(budget);
        assert!(tight.dropped_recall > 0);
        assert_eq!(tight.dropped_artifacts, 0);
    }

    #[test]
    fn summarising_starts_past_eighty_percent() {
        let mut p = parts(0, 10, 100);
        let total = p.total_tokens();
        assert!(!p.needs_summary(total * 2));
        assert!(p.needs_summary(total));
        let oldest = p.take_oldest_recall();
        assert_eq!(oldest.len(), 5);
        assert!(oldest[0].starts_with("fact 0"));
    }
}
