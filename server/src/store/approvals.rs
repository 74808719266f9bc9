//! Approvals: the projection's queries.

use app::approval::{Approval, ApprovalOption, ApprovalStatus, Decision};

use super::batch::Tx;
use super::{Store, StoreError};
use app::events::{Event, EventData};

#[derive(Debug, sqlx::FromRow)]
struct ApprovalRow {
    id: String,
    run_id: String,
    kind: String,
    question: String,
    context: String,
    options: String,
    created_at: String,
    deadline: Option<String>,
    status: String,
    decided_by: Option<String>,
    option: Option<String>,
    text: Option<String>,
    automatic: bool,
    policy: Option<String>,
    decided_at: Option<String>,
}

impl ApprovalRow {
    fn into_approval(self) -> Result<Approval, StoreError> {
        let bad = |what: &str| StoreError::BadRow {
            table: "approvals",
            reason: format!("approval {}: {what}", self.id),
        };
        let status = ApprovalStatus::parse(&self.status).ok_or_else(|| bad("unknown status"))?;
        let kind = serde_json::from_value(serde_json::Value::String(self.kind.clone()))
            .map_err(|_| bad("unknown kind"))?;
        let options: Vec<ApprovalOption> =
            serde_json::from_str(&self.options).map_err(|_| bad("options are not JSON"))?;
        let decision = match (self.option, self.decided_at) {
            (Some(option), Some(decided_at)) => Some(Decision {
                option,
                text: self.text,
                decided_by: self.decided_by.unwrap_or_default(),
                decided_at,
                automatic: self.automatic,
                policy: self.policy,
            }),
            _ => None,
        };
        Ok(Approval {
            id: self.id,
            run_id: self.run_id,
            kind,
            question: self.question,
            context: self.context,
            options,
            created_at: self.created_at,
            deadline: self.deadline,
            status,
            decision,
        })
    }
}

const COLUMNS: &str = "id, run_id, kind, question, context, options, created_at, deadline, status, \
                       decided_by, option, text, automatic, policy, decided_at";

/// One approval by id, read with any executor (inside a write, its check and the decision
/// that follows share one transaction).
pub async fn get<'e, E>(exec: E, id: &str) -> Result<Option<Approval>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row: Option<ApprovalRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?"))
            .bind(id)
            .fetch_optional(exec)
            .await?;
    row.map(ApprovalRow::into_approval).transpose()
}

impl Store {
    /// Approvals, oldest first, filtered by status (`pending`, `decided`) and run.
    pub async fn list_approvals(
        &self,
        status: Option<ApprovalStatus>,
        run_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT {COLUMNS} FROM approvals WHERE 1 = 1"
        ));
        if let Some(status) = status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(run_id) = run_id {
            sql.push(" AND run_id = ").push_bind(run_id.to_string());
        }
        sql.push(" ORDER BY created_seq LIMIT ")
            .push_bind(i64::from(limit));
        let rows: Vec<ApprovalRow> = sql.build_query_as().fetch_all(self.pool()).await?;
        rows.into_iter().map(ApprovalRow::into_approval).collect()
    }

    /// One approval by id.
    pub async fn get_approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        get(self.pool(), id).await
    }
}

/// Folds one approval or clarification event into the `approvals`, `clarifications` and
/// `escalations` tables (and a run's waiting status).
pub(super) fn apply(tx: &mut Tx<'_>, event: &Event) -> Result<(), StoreError> {
    match &event.data {
        EventData::ApprovalRequested {
            approval_id,
            run_id,
            index,
            kind,
            question,
            context,
            options,
            deadline,
            escalation,
            detail,
        } => {
            tx.push(
                "INSERT INTO approvals (id, run_id, stage_index, kind, question, context, options, \
                 detail, created_at, deadline, status, created_seq) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
            )
            .bind(approval_id)
            .bind(run_id)
            .bind(i64::from(*index))
            .bind(kind.as_str())
            .bind(question)
            .bind(context)
            .bind(serde_json::to_string(options)?)
            .bind(serde_json::to_string(detail)?)
            .bind(&event.ts)
            .bind(deadline)
            .bind(event.seq);
            tx.push(
                "UPDATE supervisor_runs SET status = 'waiting_for_human', updated_at = ?, \
                 last_seq = ? WHERE id = ? AND status IN ('queued', 'running')",
            )
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id);
            if let Some(e) = escalation {
                let options: Vec<&str> = options.iter().map(|o| o.id.as_str()).collect();
                tx.push(
                    "INSERT INTO escalations (id, run_id, severity, error_type, message, \
                     resolution_options, status, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                )
                .bind(approval_id)
                .bind(run_id)
                .bind(serde_json::to_value(e.severity)?.as_str().unwrap_or("high"))
                .bind(
                    serde_json::to_value(e.error_type)?
                        .as_str()
                        .unwrap_or("execution"),
                )
                .bind(&e.message)
                .bind(serde_json::to_string(&options)?)
                .bind(&event.ts)
                .bind(&event.ts);
            }
        }
        EventData::ApprovalDecided {
            approval_id,
            run_id,
            option,
            text,
            decided_by,
            automatic,
            policy,
            ..
        } => {
            tx.push(
                "UPDATE approvals SET status = 'decided', decided_by = ?, option = ?, text = ?, \
                 automatic = ?, policy = ?, decided_at = ? WHERE id = ?",
            )
            .bind(decided_by)
            .bind(option)
            .bind(text)
            .bind(automatic)
            .bind(policy)
            .bind(&event.ts)
            .bind(approval_id);
            tx.push(
                "UPDATE supervisor_runs SET status = 'running', updated_at = ?, last_seq = ? \
                 WHERE id = ? AND status = 'waiting_for_human' AND NOT EXISTS \
                 (SELECT 1 FROM approvals WHERE run_id = ? AND status = 'pending')",
            )
            .bind(&event.ts)
            .bind(event.seq)
            .bind(run_id)
            .bind(run_id);
            let status = if option == "skip" {
                "ignored"
            } else {
                "resolved"
            };
            tx.push("UPDATE escalations SET status = ?, updated_at = ? WHERE id = ?")
                .bind(status)
                .bind(&event.ts)
                .bind(approval_id);
        }
        EventData::ClarificationRequested {
            clarification_id,
            run_id,
            index,
            asking_team,
            target_team,
            question,
            depth,
            parent,
        } => {
            tx.push(
                "INSERT INTO clarifications (id, run_id, stage_index, asking_team, target_team, \
                 question, depth, parent, status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(clarification_id)
            .bind(run_id)
            .bind(i64::from(*index))
            .bind(asking_team)
            .bind(target_team)
            .bind(question)
            .bind(i64::from(*depth))
            .bind(parent)
            .bind(&event.ts)
            .bind(&event.ts);
        }
        EventData::ClarificationAnswered {
            clarification_id,
            answer,
            answered_by,
            ..
        } => {
            tx.push(
                "UPDATE clarifications SET status = 'answered', answer = ?, answered_by = ?, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(answer)
            .bind(answered_by)
            .bind(&event.ts)
            .bind(clarification_id);
        }
        EventData::ClarificationRefused {
            clarification_id,
            reason,
            ..
        } => {
            tx.push(
                "UPDATE clarifications SET status = 'refused', reason = ?, updated_at = ? \
                 WHERE id = ?",
            )
            .bind(reason)
            .bind(&event.ts)
            .bind(clarification_id);
        }
        _ => {}
    }
    Ok(())
}
