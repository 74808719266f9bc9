//! Starting a run — the one way, whoever asks (the REST API, the dashboard's chat, the CLI):
//! the request is checked (goal, project, pipeline, lengths), a registered project's name is
//! resolved to its path and its directory checked, the run is recorded (idempotent by
//! `request_id`) and handed to the driver.

use std::sync::Arc;

use app::dto::StartRunRequest;

use super::{Catalogue, Engine, pipeline};
use crate::store::StoreError;
use crate::store::runs::NewRun;

/// Longest accepted `request_id`, `project` and `pipeline`.
const MAX_KEY_CHARS: usize = 200;

/// Why a run was not started. The messages name the field and what is accepted; a caller that
/// names the goal differently (the CLI's "requirement") matches on the variant.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("`goal` is empty: describe the requirement in a sentence or more")]
    EmptyGoal,
    #[error("`goal` is {chars} characters; the limit is {limit}")]
    GoalTooLong { chars: usize, limit: usize },
    /// An optional field given empty or too long.
    #[error("{0}")]
    BadField(String),
    /// The project or pipeline cannot be used (unknown, inactive, not a directory).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A check running off the async threads did not finish (it panicked).
    #[error("a start-up check of the run failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Engine {
    /// Checks `req`, records the run and starts driving it. Returns the run's id and whether it
    /// was created (`false`: `request_id` matched an existing run, which is returned).
    pub async fn start(
        self: &Arc<Self>,
        req: StartRunRequest,
        max_goal_chars: usize,
        actor: &str,
    ) -> Result<(String, bool), StartError> {
        let mut run = validate(req, max_goal_chars)?;
        if let Some(given) = run.project.clone()
            && let Some(project) = self.store.find_project(&given).await?
        {
            let checked = project.clone();
            tokio::task::spawn_blocking(move || crate::delivery::project::check_active(&checked))
                .await?
                .map_err(|e| StartError::Refused(e.to_string()))?;
            run.project = Some(project.path);
        }
        let (project, pipeline) = (run.project.clone(), run.pipeline.clone());
        tokio::task::spawn_blocking(move || {
            Engine::check_start(project.as_deref(), pipeline.as_deref())
        })
        .await?
        .map_err(StartError::Refused)?;
        let (run_id, created) = self.store.create_run(run, actor).await?;
        self.submit(run_id.clone());
        Ok((run_id, created))
    }

    /// Checks what a run is started with: the project (a directory, absolute) and the
    /// pipeline (built in or the project's own). The message says what is accepted.
    fn check_start(project: Option<&str>, pipeline: Option<&str>) -> Result<(), String> {
        let root = match project {
            Some(p) => {
                let path = std::path::Path::new(p);
                if !path.is_absolute() {
                    return Err(format!(
                        "unknown project `{p}`: give a registered project's name \
                         (`factory project add`) or the absolute path of its directory"
                    ));
                }
                if !path.is_dir() {
                    return Err(format!("unknown project: `{p}` is not a directory"));
                }
                Some(path)
            }
            None => None,
        };
        let name = pipeline.unwrap_or("default");
        let catalogue = Catalogue::load(root).map_err(|e| e.to_string())?;
        let pipelines = pipeline::load_all(&catalogue, root).map_err(|e| e.to_string())?;
        if !pipelines.contains_key(name) {
            return Err(format!(
                "unknown pipeline `{name}` (available: {})",
                pipelines.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }
}

fn validate(req: StartRunRequest, max_goal_chars: usize) -> Result<NewRun, StartError> {
    let goal = req.goal.trim().to_string();
    if goal.is_empty() {
        return Err(StartError::EmptyGoal);
    }
    let chars = goal.chars().count();
    if chars > max_goal_chars {
        return Err(StartError::GoalTooLong {
            chars,
            limit: max_goal_chars,
        });
    }
    let key = |name: &str, value: Option<String>| -> Result<Option<String>, StartError> {
        match value.map(|v| v.trim().to_string()) {
            Some(v) if v.is_empty() => Err(StartError::BadField(format!(
                "`{name}` is empty: omit it or give a value"
            ))),
            Some(v) if v.chars().count() > MAX_KEY_CHARS => Err(StartError::BadField(format!(
                "`{name}` is longer than {MAX_KEY_CHARS} characters"
            ))),
            other => Ok(other),
        }
    };
    Ok(NewRun {
        goal,
        project: key("project", req.project)?,
        request_id: key("request_id", req.request_id)?,
        pipeline: key("pipeline", req.pipeline)?,
    })
}
