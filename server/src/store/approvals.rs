//! Approvals: the projection's queries.

use app::approval::{Approval, ApprovalOption, Decision};

use super::{Store, StoreError};

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
            status: self.status,
            decision,
        })
    }
}

const COLUMNS: &str = "id, run_id, kind, question, context, options, created_at, deadline, status, \
                       decided_by, option, text, automatic, policy, decided_at";

impl Store {
    /// Approvals, oldest first, filtered by status (`pending`, `decided`) and run.
    pub async fn list_approvals(
        &self,
        status: Option<&str>,
        run_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
            "SELECT {COLUMNS} FROM approvals WHERE 1 = 1"
        ));
        if let Some(status) = status {
            sql.push(" AND status = ").push_bind(status.to_string());
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
        let row: Option<ApprovalRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        row.map(ApprovalRow::into_approval).transpose()
    }
}
