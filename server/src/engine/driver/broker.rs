//! The clarification broker: a stage's question goes to the team it names, within the limits
//! (questions per objective, hop depth, time to live); what no team can answer, or the broker
//! refuses, becomes a question for a person.

use super::*;

/// Why the broker refuses a stage's question, if it does.
pub(super) fn refusal(engine: &Engine, run: &RunState, team: &Team, ask: &Ask) -> Option<String> {
    let limits = &engine.approvals;
    if ask.target_team == team.name() {
        return Some(format!(
            "`{}` asked itself; a team cannot answer its own question",
            team.name()
        ));
    }
    if run.clarifications.len() as u32 >= limits.max_clarifications_per_objective {
        return Some(format!(
            "the objective already asked {} questions, its limit ([approvals] max_clarifications_per_objective)",
            run.clarifications.len()
        ));
    }
    None
}

/// A refused question becomes a question for a person.
pub(super) fn refuse(
    run: &RunState,
    index: u32,
    team: &Team,
    id: &str,
    ask: &Ask,
    depth: u32,
    reason: String,
) -> Vec<EventData> {
    vec![
        EventData::ClarificationRequested {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            asking_team: team.name().to_string(),
            target_team: ask.target_team.clone(),
            question: ask.question.clone(),
            depth,
            parent: None,
        },
        EventData::ClarificationRefused {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            reason: reason.clone(),
        },
        approval(
            run,
            &uuid::Uuid::now_v7().to_string(),
            index,
            ApprovalKind::Clarification,
            ask.question.clone(),
            format!(
                "`{}` asked `{}`; the question comes to you because {reason}",
                team.name(),
                ask.target_team
            ),
            None,
            serde_json::json!({"clarification_id": id, "asking_team": team.name()}),
        ),
    ]
}

/// Seeks the answer to a stage's pending question: the target team's focused objective, within
/// the time-to-live; nested questions are followed to the hop depth, never in a cycle. Returns
/// the events to commit: the answer, or the refusal and a question for a person.
pub(super) async fn broker(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    asking: &Team,
    catalogue: &Catalogue,
    id: &str,
    ask: &Ask,
) -> Result<Vec<EventData>, StoreError> {
    let ttl = Duration::from_millis(engine.approvals.clarification_ttl_ms);
    let path = vec![asking.name().to_string()];
    let mut events = Vec::new();
    let hops = Hops {
        engine,
        run,
        stage,
        catalogue,
    };
    let outcome =
        tokio::time::timeout(ttl, hops.answer(ask, path, 1, id.to_string(), &mut events)).await;
    let index = run.next_index;
    let result = match outcome {
        Ok(result) => result?,
        Err(_) => Err(format!(
            "`{}` did not answer within the clarification time-to-live of {} s",
            ask.target_team,
            ttl.as_secs_f64()
        )),
    };
    match result {
        Ok(text) => events.push(EventData::ClarificationAnswered {
            clarification_id: id.to_string(),
            run_id: run.run_id.clone(),
            index,
            question: ask.question.clone(),
            answer: text,
            answered_by: ask.target_team.clone(),
        }),
        Err(reason) => {
            let mut refusal = refuse(run, index, asking, id, ask, 1, reason);
            refusal.remove(0); // the request is already recorded
            events.extend(refusal);
        }
    }
    Ok(events)
}

/// What every hop of one question shares: the run, the stage that asked, the teams.
struct Hops<'a> {
    engine: &'a Engine,
    run: &'a RunState,
    stage: &'a Stage,
    catalogue: &'a Catalogue,
}

impl Hops<'_> {
    /// The target team's answer to `ask` (asked by the last team of `path`, `depth` hops from
    /// the stage): `Ok(answer)` or `Err(why no team could answer)`. Questions the target asks
    /// in turn are followed, and their answers given back to it, for up to the hop depth.
    fn answer<'b>(
        &'b self,
        ask: &'b Ask,
        path: Vec<String>,
        depth: u32,
        id: String,
        events: &'b mut Vec<EventData>,
    ) -> BoxFuture<'b, Result<Result<String, String>, StoreError>> {
        Box::pin(async move {
            let Some(team) = self.catalogue.get(&ask.target_team) else {
                return Ok(Err(format!("`{}` is not a team", ask.target_team)));
            };
            let mut answers: Vec<(String, String)> = Vec::new();
            for round in 0..=self.engine.approvals.max_hop_depth {
                let brief = self.brief(team, ask, &path, &answers, &id, round);
                let result = match self.ask(&brief, events).await? {
                    Ok(result) => result,
                    Err(why) => return Ok(Err(why)),
                };
                match result.status {
                    TaskStatus::Complete => {
                        let text = result
                            .artifacts
                            .first()
                            .map(|a| a.content.clone())
                            .filter(|c| !c.trim().is_empty())
                            .unwrap_or(result.reasoning);
                        return Ok(Ok(text));
                    }
                    TaskStatus::Blocked => {
                        return Ok(Err(format!(
                            "`{}` could not answer: {}",
                            team.name(),
                            result.blockers.join("; ")
                        )));
                    }
                    TaskStatus::NeedsClarification => {
                        let Some(next) = result.clarification_needed else {
                            return Ok(Err("an answer asked a question without naming it".into()));
                        };
                        match self.follow(team, next, &path, depth, &id, events).await? {
                            Ok(answered) => answers.push(answered),
                            Err(why) => return Ok(Err(why)),
                        }
                    }
                }
            }
            Ok(Err(format!(
                "`{}` kept asking questions instead of answering",
                team.name()
            )))
        })
    }

    /// The brief of one round of a question: the requirement, the question, the answers the
    /// team received to its own questions so far.
    fn brief<'t>(
        &self,
        team: &'t Team,
        ask: &Ask,
        path: &[String],
        answers: &[(String, String)],
        id: &str,
        round: u32,
    ) -> Brief<'t> {
        let run = self.run;
        let asked_by = path.last().cloned().unwrap_or_default();
        let mut context = format!(
            "# Requirement\n\n{}\n\n# A question for your team\n\nTeam `{asked_by}` (stage `{}`) asks: {}\n",
            run.goal.trim(),
            self.stage.name,
            ask.question
        );
        for (q, a) in answers {
            context.push_str(&format!("\n# Answer you received\n\n- Q: {q}\n  A: {a}\n"));
        }
        context.push_str(
            "\n# How to answer\n\nReply with one TaskResult JSON object: `status` COMPLETE with \
             the answer in `reasoning` (concise, specific); NEEDS_CLARIFICATION with \
             `clarification_needed` {target_team, question} only if another team must answer \
             first; BLOCKED with `blockers` if the question cannot be answered.",
        );
        Brief {
            team,
            anchor: context,
            alias: team.settings.alias.clone(),
            call_prefix: format!(
                "{}/{}/{}/{id}/{round}",
                run.run_id, run.started_seq, run.round
            ),
            step: format!("{} answering a question", team.name()),
            offline: None,
            answer: true,
            bench: None,
        }
    }

    /// Asks the team one round: its answer, or why it gave none.
    async fn ask(
        &self,
        brief: &Brief<'_>,
        events: &mut Vec<EventData>,
    ) -> Result<Result<TaskResult, String>, StoreError> {
        let team = brief.team.name();
        Ok(
            match ask_team(self.engine, self.run, brief, self.catalogue).await? {
                Outcome::Answered {
                    result, events: e, ..
                } => {
                    events.extend(e);
                    Ok(*result)
                }
                Outcome::Failed {
                    error, events: e, ..
                } => {
                    events.extend(e);
                    Err(format!("`{team}` could not answer: {error}"))
                }
                Outcome::Budget { error, events: e } => {
                    events.extend(e);
                    Err(format!("`{team}` could not answer: {error}"))
                }
            },
        )
    }

    /// Follows the question `team` asked in turn (never in a cycle, never past the hop
    /// depth): the question and its answer, or why it could not be answered.
    async fn follow(
        &self,
        team: &Team,
        next: Ask,
        path: &[String],
        depth: u32,
        id: &str,
        events: &mut Vec<EventData>,
    ) -> Result<Result<(String, String), String>, StoreError> {
        let (run, limits) = (self.run, &self.engine.approvals);
        let mut chain = path.to_vec();
        chain.push(team.name().to_string());
        if next.target_team == team.name() || chain.contains(&next.target_team) {
            return Ok(Err(format!(
                "refused a cycle: `{}` asked `{}`, already in the chain {}",
                team.name(),
                next.target_team,
                chain.join(" → ")
            )));
        }
        if depth + 1 > limits.max_hop_depth {
            return Ok(Err(format!(
                "`{}` asked `{}`, beyond the hop depth of {} ([approvals] max_hop_depth)",
                team.name(),
                next.target_team,
                limits.max_hop_depth
            )));
        }
        let nested = uuid::Uuid::now_v7().to_string();
        events.push(EventData::ClarificationRequested {
            clarification_id: nested.clone(),
            run_id: run.run_id.clone(),
            index: run.next_index,
            asking_team: team.name().to_string(),
            target_team: next.target_team.clone(),
            question: next.question.clone(),
            depth: depth + 1,
            parent: Some(id.to_string()),
        });
        let reply = self
            .answer(&next, chain, depth + 1, nested.clone(), events)
            .await?;
        Ok(match reply {
            Ok(text) => {
                events.push(EventData::ClarificationAnswered {
                    clarification_id: nested,
                    run_id: run.run_id.clone(),
                    index: run.next_index,
                    question: next.question.clone(),
                    answer: text.clone(),
                    answered_by: next.target_team.clone(),
                });
                Ok((next.question, text))
            }
            Err(reason) => {
                events.push(EventData::ClarificationRefused {
                    clarification_id: nested,
                    run_id: run.run_id.clone(),
                    index: run.next_index,
                    reason: reason.clone(),
                });
                Err(reason)
            }
        })
    }
}
