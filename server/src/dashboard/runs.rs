//! The run pages' port: a run folded from its events for the dashboard, starting runs from the
//! chat, the composer's choices, cancelling.
//!
//! A run page is rendered again every time its run moves (that is how it stays live), so the
//! folded views of recently shown runs are kept: a rendering folds only the events committed
//! since the last one. Events are append-only and the fold is deterministic, so a kept view
//! plus the newer events is exactly the view folded from scratch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use app::dto::{RunSummary, StartRunRequest};
use app::run_view::{RunView, TeamCard};
use app::server_fns::PortError;
use app::server_fns::runs::{ComposerOptions, RunsPort};

use crate::api::ApiError;
use crate::engine::Catalogue;
use crate::startup::AppState;

/// Most events folded for one page (a run with more shows its beginning and says so).
const MAX_VIEW_EVENTS: usize = 20_000;
/// Events read per query while folding.
const PAGE: u32 = 1_000;
/// Folded views kept for the runs shown most recently.
const KEPT_VIEWS: usize = 32;

pub(super) fn port(state: &AppState) -> Arc<dyn RunsPort> {
    Arc::new(Runs {
        state: state.clone(),
        views: Mutex::default(),
    })
}

struct Runs {
    state: AppState,
    views: Mutex<ViewCache>,
}

/// A run's folded view and how many events went into it.
struct Kept {
    view: RunView,
    folded: usize,
    /// When it was last used (a counter), for evicting the least recently used.
    used: u64,
}

#[derive(Default)]
struct ViewCache {
    views: HashMap<String, Kept>,
    clock: u64,
}

impl ViewCache {
    /// A copy of the view kept for `id` and how many events went into it; marks it used.
    fn get(&mut self, id: &str) -> Option<(RunView, usize)> {
        self.clock += 1;
        let kept = self.views.get_mut(id)?;
        kept.used = self.clock;
        Some((kept.view.clone(), kept.folded))
    }

    /// Keeps `view` unless a view that has folded further is there already; evicts the least
    /// recently used beyond [`KEPT_VIEWS`].
    fn keep(&mut self, id: &str, view: &RunView, folded: usize) {
        self.clock += 1;
        let used = self.clock;
        match self.views.get_mut(id) {
            Some(old) if old.view.last_seq > view.last_seq => old.used = used,
            _ => {
                let view = view.clone();
                self.views
                    .insert(id.to_string(), Kept { view, folded, used });
            }
        }
        while self.views.len() > KEPT_VIEWS {
            let Some(oldest) = self
                .views
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            self.views.remove(&oldest);
        }
    }
}

/// The catalogue's teams as the graph needs them (parsed once).
fn team_cards() -> Result<&'static [TeamCard], PortError> {
    static CARDS: OnceLock<Vec<TeamCard>> = OnceLock::new();
    if let Some(cards) = CARDS.get() {
        return Ok(cards);
    }
    let catalogue = Catalogue::builtin().map_err(|e| {
        tracing::error!(error = %e, "the built-in catalogue does not load");
        PortError::Internal
    })?;
    let cards = catalogue
        .teams()
        .map(|t| TeamCard {
            name: t.name().to_string(),
            title: t.settings.title.clone(),
            operatives: t.settings.operatives.clone(),
        })
        .collect();
    Ok(CARDS.get_or_init(|| cards))
}

/// A refusal keeps its message; anything internal is logged and stays opaque.
fn from_api(e: ApiError) -> PortError {
    match e {
        ApiError::Internal(cause) => {
            tracing::error!(error = %cause, "dashboard request failed");
            PortError::Internal
        }
        refused => PortError::Refused(refused.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> PortError {
    tracing::error!(error = %e, "dashboard request failed");
    PortError::Internal
}

#[async_trait::async_trait]
impl RunsPort for Runs {
    async fn list_runs(&self, limit: u32) -> Result<Vec<RunSummary>, PortError> {
        self.state.store.list_runs(limit).await.map_err(internal)
    }

    async fn run_view(&self, id: String) -> Result<RunView, PortError> {
        let store = &self.state.store;
        if store.get_run(&id).await.map_err(internal)?.is_none() {
            return Err(PortError::Refused(format!("no run with id {id:?}")));
        }
        let kept = self.views.lock().map_err(internal)?.get(&id);
        let was_kept = kept.is_some();
        let (mut view, mut folded) = kept.unwrap_or_else(|| (RunView::new(&id), 0));
        let before = (folded, view.truncated);
        let mut after = view.last_seq;
        while !view.truncated {
            let page = store.run_events(&id, after, PAGE).await.map_err(internal)?;
            if page.is_empty() {
                break;
            }
            if folded >= MAX_VIEW_EVENTS {
                view.truncated = true;
                break;
            }
            for event in page.iter().take(MAX_VIEW_EVENTS - folded) {
                view.apply(event);
                after = event.seq;
                folded += 1;
            }
        }
        if view.teams.is_empty() {
            view.teams = team_cards()?.to_vec();
        }
        // A view with nothing new is kept as it is (no second copy).
        if !was_kept || (folded, view.truncated) != before {
            self.views
                .lock()
                .map_err(internal)?
                .keep(&id, &view, folded);
        }
        view.streaming = self.state.engine.progress().of_run(&id);
        Ok(view)
    }

    async fn start_run(
        &self,
        goal: String,
        project: Option<String>,
        pipeline: Option<String>,
    ) -> Result<String, PortError> {
        let blank = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        let request = StartRunRequest {
            goal,
            project: blank(project),
            request_id: None,
            pipeline: blank(pipeline),
        };
        let (run_id, _) = self
            .state
            .engine
            .start(request, self.state.config.max_goal_chars, "dashboard")
            .await
            .map_err(|e| from_api(e.into()))?;
        Ok(run_id)
    }

    async fn composer_options(&self) -> Result<ComposerOptions, PortError> {
        let projects = self
            .state
            .store
            .list_projects()
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|p| p.active)
            .map(|p| p.name)
            .collect();
        let catalogue = Catalogue::builtin().map_err(internal)?;
        let pipelines = crate::engine::pipeline::load_all(&catalogue, None)
            .map_err(internal)?
            .into_values()
            .map(|p| (p.name, p.stages.len()))
            .collect();
        let chain = self
            .state
            .gateway
            .resolve("factory/architect")
            .unwrap_or_default();
        let offline = |entry: &String| entry.starts_with("offline:");
        let models_note = match chain.first() {
            Some(first) if offline(first) => "No model is configured: teams answer with the offline (no model) provider — deterministic templates, not an LLM.".to_string(),
            Some(_) if chain.last().is_some_and(offline) => format!(
                "Models: {} — the last is the offline (no model) provider: deterministic templates, not an LLM, used when nothing before it answers.",
                chain.join(" → ")
            ),
            Some(_) => format!("Models: {}", chain.join(" → ")),
            None => "No model chain is configured.".to_string(),
        };
        Ok(ComposerOptions {
            projects,
            pipelines,
            max_goal_chars: self.state.config.max_goal_chars,
            models_note,
        })
    }

    async fn cancel_run(&self, id: String) -> Result<(), PortError> {
        self.state
            .engine
            .cancel(&id, "dashboard")
            .await
            .map_err(|e| from_api(e.into()))
    }
}
