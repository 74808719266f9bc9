//! Projects: registration (unique name and path, checked in the write transaction) and queries.

use super::batch::Tx;
use app::dto::Project;
use app::events::{Event, EventData};

use super::{NewEvent, Store, StoreError};

type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    bool,
    bool,
    String,
    String,
);

fn project(row: Row) -> Result<Project, StoreError> {
    let (name, path, remote, github, gates, require_clean, active, created_at, policy) = row;
    let gates = serde_json::from_str(&gates).map_err(|e| StoreError::BadRow {
        table: "projects",
        reason: format!("project {name}: gates are not JSON: {e}"),
    })?;
    let policy = serde_json::from_str(&policy).map_err(|e| StoreError::BadRow {
        table: "projects",
        reason: format!("project {name}: policy is not valid JSON: {e}"),
    })?;
    Ok(Project {
        name,
        path,
        remote,
        github,
        gates,
        require_clean,
        active,
        created_at,
        policy,
    })
}

const COLUMNS: &str =
    "name, path, remote, github, gates, require_clean, active, created_at, policy";

impl Store {
    /// Registers a validated project. `Err(message)` when the name or the path is taken.
    pub async fn add_project(
        &self,
        project: Project,
        actor: &str,
    ) -> Result<Result<(), String>, StoreError> {
        let actor = actor.to_string();
        let (outcome, _) = self
            .write(Box::new(move |conn| {
                Box::pin(async move {
                    let taken: Option<(String, String)> = sqlx::query_as(
                        "SELECT name, path FROM projects WHERE name = ? OR path = ?",
                    )
                    .bind(&project.name)
                    .bind(&project.path)
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some((name, path)) = taken {
                        let message = if name == project.name {
                            format!("a project named `{name}` exists already (at {path})")
                        } else {
                            format!("{path} is registered already as `{name}`")
                        };
                        return Ok((Err(message), vec![]));
                    }
                    let event = NewEvent::new(actor, EventData::ProjectAdded { project });
                    Ok((Ok(()), vec![event]))
                })
            }))
            .await?;
        Ok(outcome)
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM projects ORDER BY name"))
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(project).collect()
    }

    /// A project by name or by its (canonical) path.
    pub async fn find_project(&self, name_or_path: &str) -> Result<Option<Project>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM projects WHERE name = ? OR path = ?"
        ))
        .bind(name_or_path)
        .bind(name_or_path)
        .fetch_optional(self.pool())
        .await?;
        row.map(project).transpose()
    }
}

/// Folds a `project_added` event into the `projects` table.
pub(super) fn apply(tx: &mut Tx<'_>, event: &Event) -> Result<(), StoreError> {
    if let EventData::ProjectAdded { project } = &event.data {
        tx.push(
            "INSERT INTO projects (name, path, remote, github, gates, require_clean, active, \
                 created_at, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&project.name)
        .bind(&project.path)
        .bind(&project.remote)
        .bind(&project.github)
        .bind(serde_json::to_string(&project.gates)?)
        .bind(project.require_clean)
        .bind(project.active)
        .bind(&project.created_at)
        .bind(serde_json::to_string(&project.policy)?);
    }
    Ok(())
}
