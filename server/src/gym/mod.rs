//! The Gym: scenarios with expected outcomes, each run as a real run of the whole factory in
//! a data directory of its own, checked, reported (`report.json`, `report.html`) and recorded
//! in the event log so the dashboard can show history and regressions.
//!
//! A scenario (see [`scenario`]) names a requirement, a fixture repository, how human
//! decisions are answered, and checks. `factory gym run` runs every selected scenario
//! `--repeat` times, up to `--jobs` at once, and exits non-zero when an attempt of a critical
//! scenario fails.

mod attempt;
pub mod checks;
pub mod fixture;
pub mod history;
pub mod html;
pub mod report;
pub mod scenario;
pub mod swebench;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use app::events::EventData;
use include_dir::{Dir, include_dir};
use tokio::sync::Semaphore;

use crate::config::FactoryConfig;
use crate::store::{NewEvent, Store, StoreError};
pub use report::Report;
pub use scenario::Scenario;

/// The built-in gym: `scenarios/*.toml` and `fixtures/<name>/`.
pub(crate) static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/gym");

/// Scenarios run at once at most.
pub const MAX_JOBS: usize = 16;
/// Attempts per scenario at most.
pub const MAX_REPEAT: u32 = 50;

/// Why the gym could not run (a failing scenario is not an error: it is a result).
#[derive(Debug, thiserror::Error)]
pub enum GymError {
    #[error("scenario {file}: {message}")]
    Scenario { file: String, message: String },
    #[error("{0}")]
    Fixture(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("the run could not start: {0}")]
    Start(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
}

impl GymError {
    /// An I/O failure on `path`, for `map_err`.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> GymError + '_ {
        move |source| GymError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What `factory gym run` was asked.
#[derive(Debug, Clone)]
pub struct GymOptions {
    /// Only scenarios whose name matches one of these globs (all when empty).
    pub patterns: Vec<String>,
    /// Gym directories besides the built-in one (`scenarios/`, `fixtures/`).
    pub dirs: Vec<PathBuf>,
    /// Leave the built-in scenarios out.
    pub no_builtin: bool,
    pub repeat: u32,
    pub jobs: usize,
    pub report_dir: PathBuf,
}

/// Applies `ALIAS=CHAIN` overrides (`*` for every alias; the chain comma-separated) to the
/// configuration, then checks it.
pub fn apply_models(config: &mut FactoryConfig, overrides: &[String]) -> Result<(), GymError> {
    for spec in overrides {
        let (alias, chain) = spec.split_once('=').ok_or_else(|| {
            GymError::Usage(format!(
                "--model `{spec}`: use ALIAS=CHAIN, e.g. factory/coder=openai:gpt-4o,offline:template \
                 (`*` for every alias)"
            ))
        })?;
        let chain: Vec<String> = chain
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        let aliases = &mut config.gateway.aliases;
        if alias == "*" {
            for entry in aliases.values_mut() {
                *entry = chain.clone();
            }
        } else if let Some(entry) = aliases.get_mut(alias) {
            *entry = chain;
        } else {
            return Err(GymError::Usage(format!(
                "--model: `{alias}` is not an alias (aliases: {})",
                aliases.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    config
        .validate()
        .map_err(|e| GymError::Usage(format!("--model: {e}")))
}

/// The model chains in force, as records show them.
pub fn models_label(config: &FactoryConfig) -> String {
    config
        .gateway
        .aliases
        .iter()
        .map(|(alias, chain)| format!("{alias}={}", chain.join(",")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The scenarios selected: built-in ones and those of `dirs`, filtered by `patterns`.
pub fn select(options: &GymOptions) -> Result<Vec<Scenario>, GymError> {
    let mut all = if options.no_builtin {
        Vec::new()
    } else {
        scenario::builtin()?
    };
    for dir in &options.dirs {
        for s in scenario::load_dir(dir)? {
            if let Some(first) = all.iter().find(|f| f.name == s.name) {
                return Err(GymError::Scenario {
                    file: s.source.clone(),
                    message: format!("the name `{}` is already used by {}", s.name, first.source),
                });
            }
            all.push(s);
        }
    }
    if options.patterns.is_empty() {
        return Ok(all);
    }
    let mut set = globset::GlobSetBuilder::new();
    for p in &options.patterns {
        set.add(
            globset::Glob::new(p).map_err(|e| GymError::Usage(format!("--scenario `{p}`: {e}")))?,
        );
    }
    let set = set
        .build()
        .map_err(|e| GymError::Usage(format!("--scenario: {e}")))?;
    let chosen: Vec<Scenario> = all.into_iter().filter(|s| set.is_match(&s.name)).collect();
    if chosen.is_empty() {
        return Err(GymError::Usage(format!(
            "--scenario {}: no scenario matches",
            options.patterns.join(", ")
        )));
    }
    Ok(chosen)
}

/// Runs the scenarios, writes the reports into `options.report_dir`, and records each attempt
/// in `history` (the gym's own data directory) when given. Called with scenarios from
/// [`select`].
pub async fn run(
    scenarios: Vec<Scenario>,
    options: &GymOptions,
    config: &FactoryConfig,
    history: Option<&Store>,
    on_attempt: impl Fn(&app::gym::GymRecord) + Send + Sync,
) -> Result<Report, GymError> {
    if options.repeat == 0 || options.repeat > MAX_REPEAT {
        return Err(GymError::Usage(format!(
            "--repeat {}: give 1–{MAX_REPEAT}",
            options.repeat
        )));
    }
    if options.jobs == 0 || options.jobs > MAX_JOBS {
        return Err(GymError::Usage(format!(
            "--jobs {}: give 1–{MAX_JOBS}",
            options.jobs
        )));
    }
    let report_dir = &options.report_dir;
    std::fs::create_dir_all(report_dir).map_err(GymError::io(report_dir))?;
    let report_dir = std::fs::canonicalize(report_dir).map_err(GymError::io(report_dir))?;
    let gym_run_id = uuid::Uuid::now_v7().to_string();
    let started_at = crate::store::now_rfc3339();
    let began = Instant::now();
    let models = models_label(config);
    let slots = Arc::new(Semaphore::new(options.jobs));
    let mut tasks = Vec::new();
    for s in &scenarios {
        for number in 1..=options.repeat {
            let work = report_dir
                .join("scenarios")
                .join(format!("{}-{number}", s.name));
            if work.exists() {
                return Err(GymError::Usage(format!(
                    "{} exists: give --report a new or empty directory",
                    work.display()
                )));
            }
            let attempt = attempt::Attempt {
                scenario: s,
                number,
                work,
                config,
                gym_run_id: &gym_run_id,
                models: &models,
            };
            let (slots, report_dir, on_attempt) = (slots.clone(), &report_dir, &on_attempt);
            tasks.push(async move {
                let _slot = slots.acquire().await;
                let done = attempt::run(attempt, report_dir).await;
                if let Ok((record, _)) = &done {
                    on_attempt(record);
                }
                (s.name.clone(), done)
            });
        }
    }
    let results = futures::future::join_all(tasks).await;
    let mut attempts = Vec::new();
    for (name, result) in results {
        match result {
            Ok(done) => attempts.push(done),
            Err(e) => {
                return Err(match e {
                    GymError::Fixture(m) => GymError::Fixture(format!("{name}: {m}")),
                    other => other,
                });
            }
        }
    }
    let mut reports = Vec::with_capacity(attempts.len());
    for (record, files) in attempts {
        // A failure of a scenario that passed before says what differs from that pass.
        let changed = match history {
            Some(store) if !record.passed => store
                .gym_history(Some(&record.scenario), 200)
                .await?
                .iter()
                .find(|e| e.record.passed)
                .map(|pass| history::what_changed(&pass.record, &record)),
            _ => None,
        };
        reports.push(report::AttemptReport {
            record,
            artifacts: files.artifacts,
            diff: files.diff,
            changed,
        });
    }
    if let Some(store) = history {
        let events = reports
            .iter()
            .map(|a| {
                NewEvent::new(
                    "gym",
                    EventData::GymScenarioFinished {
                        record: a.record.clone(),
                    },
                )
            })
            .collect();
        store.append_batch(events).await?;
    }
    let head = report::Head {
        gym_run_id,
        started_at,
        duration_ms: began.elapsed().as_millis() as u64,
        models,
    };
    let report = Report::build(head, options, &scenarios, reports);
    report.write(&report_dir)?;
    Ok(report)
}

/// The gym's reports directory by default: `<data>/gym/<UTC time>`.
pub fn default_report_dir(data_dir: &Path) -> PathBuf {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    data_dir.join("gym").join(now)
}
