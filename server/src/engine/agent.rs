//! What a team may do between its model turns, and what its answer must pass: the agent side
//! of asking a team. `driver::ask_team` holds the conversation; a [`Workbench`] offers the
//! tools (a shell command in the work order's sandbox), runs the calls the model makes, checks
//! a finished answer (the work order's gates) and says when the work has used its time or
//! money. Without a workbench a team answers in one reply, as every analysis stage does.

use app::events::EventData;
use app::task::TaskResult;

use crate::gateway::types::{ToolCall, ToolSpec};

/// The name of the one tool: a shell command in the sandbox.
pub const RUN_TOOL: &str = "run";

/// The `run` tool as the model is offered it. Its schema satisfies OpenAI's strict mode (every
/// property required, no others allowed).
pub fn run_tool(workdir_note: &str) -> ToolSpec {
    ToolSpec {
        name: RUN_TOOL.into(),
        description: format!(
            "Run one shell command (`sh -c`) in the repository's working tree, inside a \
             sandbox: no network, read-only system, a time limit and an output cap. You see its \
             exit code and output. Use it to list files, read them (`cat`, `sed -n`, `grep \
             -rn`), change them (`sed -i`, a heredoc, `python3`), and run the tests. \
             {workdir_note} When you are done, answer with the TaskResult instead of calling \
             a tool."
        ),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {
                "command": {
                    "type": "string",
                    "description": "The shell command, e.g. `ls -R src` or `cat src/lib.rs`."
                }
            },
            "required": ["command"],
            "additionalProperties": false
        }),
    }
}

/// What a finished answer's check decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// The answer stands (its change passed the gates).
    Accepted,
    /// Not yet: this goes back to the model in the same conversation (a gate's output).
    Again(String),
    /// The work stops with this reason (rounds, time or money used up; isolation broken).
    Stop(String),
}

/// The tools and checks of one piece of agent work (one work order's attempt).
#[async_trait::async_trait]
pub trait Workbench: Send + Sync {
    /// The tools offered while turns remain.
    fn tools(&self) -> Vec<ToolSpec>;
    /// Model turns that may call tools before the team must answer.
    fn max_turns(&self) -> u32;
    /// Runs one tool call of model turn `turn` (1-based): the text the model gets back and
    /// the events it caused.
    async fn call(&self, turn: u32, call: &ToolCall) -> (String, Vec<EventData>);
    /// Checks a COMPLETE answer; its events (gate runs are recorded by the caller's result).
    async fn finish(&self, result: &TaskResult) -> (Finish, Vec<EventData>);
    /// Why no further model call may be made, given what the work has cost so far.
    fn exhausted(&self, cost_usd: f64) -> Option<String>;
}

/// The last `max` bytes of `text` (at a character boundary), with a note of what was cut.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {} bytes before this cut]\n{}", start, &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_tool_is_accepted_by_the_gateway_and_strict_mode() {
        let tool = run_tool("");
        crate::gateway::tools::validate(std::slice::from_ref(&tool)).unwrap();
        assert_eq!(tool.parameters["additionalProperties"], false);
        assert_eq!(tool.parameters["required"], serde_json::json!(["command"]));
    }

    #[test]
    fn a_tail_keeps_the_end_and_says_what_was_cut() {
        assert_eq!(tail("short", 10), "short");
        let cut = tail(&"é".repeat(100), 51);
        assert!(cut.starts_with("[… 150 bytes before this cut]\n"), "{cut}");
        assert!(cut.ends_with('é'));
    }
}
