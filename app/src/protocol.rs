//! The WebSocket protocol between the server (`/ws`) and the dashboard: one definition for both.
//!
//! A connection receives `Snapshot`, then `Ready`, then one `Event` per committed event in
//! sequence order. A client that falls too far behind receives `Resync` followed by a fresh
//! `Snapshot` and `Ready`; it must replace its state with the new snapshot.

use serde::{Deserialize, Serialize};

use crate::dto::RunSummary;
use crate::events::Event;

/// Messages from the server to a dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The current state, consistent with every event up to `last_seq`.
    Snapshot {
        last_seq: i64,
        runs: Vec<RunSummary>,
    },
    /// The snapshot is complete; live events follow.
    Ready,
    /// One committed event (`seq` greater than the snapshot's `last_seq`).
    Event { event: Box<Event> },
    /// Events were dropped because this client was too slow; a new snapshot follows.
    Resync { reason: String },
}

/// What `/ws?brief=true` sends: no payloads, only what a page needs to know that it must
/// refresh. The dashboard's pages are rendered on the server; the browser's live link only
/// learns *that* something it shows changed, and asks the server for the page again. Events
/// committed together (or while the client was being sent the previous message) arrive as one
/// message, so a burst of events is a few messages, not one per event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BriefMsg {
    /// Every event up to `last_seq` has been sent (or, on a first connection, is already in
    /// the page); live events follow.
    Ready { last_seq: i64 },
    /// `count` committed events, the newest numbered `last_seq`, of these kinds (each once,
    /// in order of first appearance).
    Events {
        last_seq: i64,
        count: u32,
        kinds: Vec<String>,
    },
    /// Events were skipped (the client fell too far behind, or resumed from a point not in
    /// this log): whatever the page shows must be loaded again. `Ready` follows.
    Resync { reason: String },
    /// A model is streaming a stage's reply: how far it has got. Not an event (nothing is
    /// recorded until the reply is whole); a page shows it in place without a refresh.
    Progress { progress: StageStream },
}

/// A streamed reply in progress: which run and stage, which model is answering, and how many
/// output tokens it has sent so far (counted by the provider where it says, else estimated
/// from the text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageStream {
    pub run_id: String,
    pub stage: String,
    /// `provider:model`.
    pub model: String,
    pub output_tokens: u32,
    /// The reply is whole (or the call ended): the stage's events follow.
    pub done: bool,
}

impl StageStream {
    /// How the dashboard and the CLI show it.
    pub fn label(&self) -> String {
        if self.done {
            format!("{}: {} finished streaming", self.stage, self.model)
        } else {
            format!(
                "{}: {} is answering, {} tokens so far",
                self.stage, self.model, self.output_tokens
            )
        }
    }
}

/// How many runs a snapshot carries (newest first).
pub const SNAPSHOT_RUN_LIMIT: u32 = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_by_type() {
        let text = serde_json::to_string(&ServerMsg::Ready).unwrap();
        assert_eq!(text, r#"{"type":"ready"}"#);
        let snap = ServerMsg::Snapshot {
            last_seq: 3,
            runs: vec![],
        };
        let back: ServerMsg = serde_json::from_str(&serde_json::to_string(&snap).unwrap()).unwrap();
        assert_eq!(back, snap);
    }

    #[test]
    fn brief_messages_carry_no_payload() {
        let events = BriefMsg::Events {
            last_seq: 7,
            count: 2,
            kinds: vec!["stage_completed".into()],
        };
        let text = serde_json::to_string(&events).unwrap();
        assert_eq!(
            text,
            r#"{"type":"events","last_seq":7,"count":2,"kinds":["stage_completed"]}"#
        );
        let ready: BriefMsg = serde_json::from_str(r#"{"type":"ready","last_seq":3}"#).unwrap();
        assert_eq!(ready, BriefMsg::Ready { last_seq: 3 });
        let progress = BriefMsg::Progress {
            progress: StageStream {
                run_id: "r1".into(),
                stage: "plan".into(),
                model: "p0:m".into(),
                output_tokens: 12,
                done: false,
            },
        };
        let text = serde_json::to_string(&progress).unwrap();
        assert!(
            text.starts_with(r#"{"type":"progress","progress":{"run_id":"r1""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<BriefMsg>(&text).unwrap(), progress);
    }
}
