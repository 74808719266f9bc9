//! The conversation with a team once its context is packed: each call through the gateway;
//! tool calls run on the team's workbench between turns (bounded by its turns and its cost);
//! an answer checked against the TaskResult schema, the catalogue and the repository map, then
//! by the workbench (the gates); a malformed answer or a failed gate round goes back into the
//! same conversation, up to the team's re-asks.

use super::*;
use crate::engine::agent::Finish;
use crate::engine::context::Packed;
use crate::engine::repo_map::RepoMap;
use crate::gateway::types::ModelResponse;

/// Who is asked, in which run, and what the answer is checked against.
pub(super) struct Asked<'a> {
    pub(super) engine: &'a Engine,
    pub(super) run: &'a RunState,
    pub(super) brief: &'a Brief<'a>,
    pub(super) catalogue: &'a Catalogue,
    pub(super) repo_map: Option<Arc<RepoMap>>,
}

/// One conversation with a team, and what it has cost and caused so far.
pub(super) struct Conversation<'a> {
    asked: Asked<'a>,
    attribution: Attribution,
    schema: serde_json::Value,
    messages: Vec<Message>,
    events: Vec<EventData>,
    cost: f64,
    last_error: String,
    served_by_model: bool,
    /// Malformed answers so far, tool-call turns, gate rounds.
    reask: u32,
    turn: u32,
    round: u32,
}

impl<'a> Conversation<'a> {
    pub(super) fn new(
        asked: Asked<'a>,
        attribution: Attribution,
        packed: Packed,
        events: Vec<EventData>,
    ) -> Conversation<'a> {
        let (team, answer) = (asked.brief.team, asked.brief.answer);
        let schema = task_result_schema(
            team.settings.kind == TeamKind::Engineering && !answer,
            team.name() == "solution-architecture" && !answer,
        );
        let served_by_model = asked.run.served_by_model;
        Conversation {
            asked,
            attribution,
            schema,
            messages: vec![Message::system(packed.system), Message::user(packed.user)],
            events,
            cost: 0.0,
            last_error: String::new(),
            served_by_model,
            reask: 0,
            turn: 0,
            round: 0,
        }
    }

    /// Calls the team until it gives an accepted answer, its bench stops it, the model chain
    /// fails, a budget refuses, or its re-asks are used up (a BLOCKED answer saying so).
    pub(super) async fn until_answered(mut self) -> Outcome {
        let (engine, run, brief) = (self.asked.engine, self.asked.run, self.asked.brief);
        while self.reask <= brief.team.settings.max_reasks {
            if let Some(bench) = brief.bench
                && let Some(reason) = bench.exhausted(self.cost)
            {
                return stopped(reason, self.events, self.cost);
            }
            let tools_left = brief.bench.filter(|b| self.turn < b.max_turns());
            let request = self.request(tools_left);
            let (reply, ledger) = engine.gateway.complete_deferred(&request).await;
            engine.progress.finish(&run.run_id, &brief.step);
            self.events.extend(ledger);
            let reply = match reply {
                Ok(reply) => reply,
                Err(GatewayError::Budget { error, .. }) => {
                    return Outcome::Budget {
                        error,
                        events: self.events,
                    };
                }
                Err(e) => {
                    let permanent = !matches!(e, GatewayError::Exhausted { .. });
                    return Outcome::Failed {
                        error: e.to_string(),
                        events: self.events,
                        permanent,
                    };
                }
            };
            self.cost += reply.cost_usd;
            self.served_by_model |= !reply.offline;
            if !reply.tool_calls.is_empty() {
                self.tool_calls(reply, tools_left).await;
                continue;
            }
            if let Some(outcome) = self.answered(reply).await {
                return outcome;
            }
        }
        let reason = format!(
            "the team's reply was still not a valid TaskResult after {} re-asks",
            brief.team.settings.max_reasks
        );
        let blockers = vec![format!("malformed TaskResult: {}", self.last_error)];
        blocked(reason, blockers, self.events, self.cost)
    }

    /// The next call: the conversation so far, the schema, the tools while turns are left.
    fn request(&self, tools_left: Option<&dyn crate::engine::agent::Workbench>) -> ModelRequest {
        let (engine, run, brief) = (self.asked.engine, self.asked.run, self.asked.brief);
        let mut request = ModelRequest::new(
            &brief.alias,
            self.messages.clone(),
            engine.config.max_output_tokens,
        );
        request.temperature = Some(0.2);
        request.schema = Some(self.schema.clone());
        request.attribution = self.attribution.clone();
        // The first call of a one-reply team keeps the ids it always had (a restarted run's
        // calls are counted once); agent turns and gate rounds number their own.
        let (reask, turn, round) = (self.reask, self.turn, self.round);
        request.call_id = Some(if turn == 0 && round == 0 {
            format!("{}/{reask}", brief.call_prefix)
        } else {
            format!("{}/r{round}t{turn}/{reask}", brief.call_prefix)
        });
        request.offline = brief.offline.clone();
        request.caller_parses = true;
        request.no_templates = self.served_by_model;
        request.tools = tools_left.map(|b| b.tools()).unwrap_or_default();
        if engine.config.stream_replies {
            request.progress = Some(engine.progress.reporter(&run.run_id, &brief.step));
        }
        request
    }

    /// Runs the reply's tool calls on the workbench (refused once no turns are left, which
    /// counts as a malformed reply) and puts their results into the conversation.
    async fn tool_calls(
        &mut self,
        reply: ModelResponse,
        tools_left: Option<&dyn crate::engine::agent::Workbench>,
    ) {
        if tools_left.is_none() {
            self.reask += 1;
            self.last_error = format!(
                "tools called after the last turn that could use them ({} turns)",
                self.asked.brief.bench.map_or(0, |b| b.max_turns())
            );
        }
        self.turn += 1;
        self.messages.push(Message::assistant_calls(
            reply.text.clone(),
            reply.tool_calls.clone(),
        ));
        for call in &reply.tool_calls {
            let text = match tools_left {
                Some(bench) => {
                    let (text, caused) = bench.call(self.turn, call).await;
                    self.events.extend(caused);
                    text
                }
                None => "Refused: no more tool calls are allowed in this conversation. Answer \
                         now with the TaskResult JSON object."
                    .to_string(),
            };
            self.messages.push(Message::tool_result(call, text));
        }
    }

    /// An answer: the outcome when it is accepted (or the bench stops), `None` when it went
    /// back to the team (malformed, or a failed gate round).
    async fn answered(&mut self, reply: ModelResponse) -> Option<Outcome> {
        let Asked {
            run,
            brief,
            catalogue,
            ..
        } = self.asked;
        let parsed = if brief.answer {
            parse_answer(&reply.text)
        } else {
            parse_task_result(&reply.text)
        };
        let map = self.asked.repo_map.as_deref();
        let result = match parsed.and_then(|r| check_result(r, catalogue, map)) {
            Ok(result) => result,
            Err(error) => {
                tracing::info!(run_id = %run.run_id, team = brief.team.name(), reask = self.reask, %error, "malformed TaskResult; asking again");
                self.last_error = error.clone();
                self.reask += 1;
                self.messages.push(Message::assistant(reply.text));
                self.messages.push(Message::user(format!(
                    "Your reply is not a valid TaskResult: {error}. Reply again with only the \
                     corrected JSON object."
                )));
                return None;
            }
        };
        let verdict = match brief.bench {
            Some(bench) if result.status == TaskStatus::Complete => {
                let (verdict, caused) = bench.finish(&result).await;
                self.events.extend(caused);
                verdict
            }
            _ => Finish::Accepted,
        };
        let events = std::mem::take(&mut self.events);
        match verdict {
            Finish::Accepted => Some(Outcome::Answered {
                result: Box::new(result),
                events,
                cost: self.cost,
            }),
            Finish::Stop(reason) => Some(stopped(reason, events, self.cost)),
            Finish::Again(feedback) => {
                self.events = events;
                self.round += 1;
                self.messages.push(Message::assistant(reply.text));
                self.messages.push(Message::user(feedback));
                None
            }
        }
    }
}

/// A BLOCKED answer for agent work that had to stop (its bench said why).
fn stopped(reason: String, events: Vec<EventData>, cost: f64) -> Outcome {
    blocked(reason.clone(), vec![reason], events, cost)
}

/// A BLOCKED answer the engine gives on the team's behalf.
fn blocked(reasoning: String, blockers: Vec<String>, events: Vec<EventData>, cost: f64) -> Outcome {
    Outcome::Answered {
        result: Box::new(TaskResult {
            status: TaskStatus::Blocked,
            reasoning,
            blockers,
            assumptions_made: vec![],
            verified_facts: vec![],
            clarification_needed: None,
            artifacts: vec![],
            edits: vec![],
            work_orders: vec![],
        }),
        events,
        cost,
    }
}
