//! Scenarios as files: `scenarios/<name>.toml` beside `fixtures/<fixture>/` in a gym
//! directory (the built-in one embedded in the binary, a project's `.factory/gym/`, or any
//! directory given). Parsed strictly: an unknown key, an unknown option or a bad regex is an
//! error naming the file and what is accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use app::approval::ApprovalKind;
use serde::Deserialize;

use super::GymError;

/// Longest requirement a scenario may give (the engine's own limit applies too).
const MAX_REQUIREMENT_CHARS: usize = 20_000;
/// Checks per scenario at most.
const MAX_CHECKS: usize = 64;

/// One scenario, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Set from the file name when the file does not say.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The requirement, as a person would type it in the chat.
    pub requirement: String,
    /// `default`, `full` or the fixture's own (default: `default`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// The fixture under `fixtures/` (plain files made into a git repository at run time);
    /// its `hidden/` directory is kept out of the repository and the model's view.
    #[serde(default)]
    pub fixture: Option<String>,
    /// Instead of a fixture: a local git checkout, cloned at `commit` for each attempt
    /// (`factory gym import-swebench` writes these).
    #[serde(default)]
    pub repository: Option<RepositorySource>,
    /// Let work orders be committed without a gate (recorded as unverified), for a repository
    /// whose tests only the checks run.
    #[serde(default)]
    pub unverified: bool,
    /// A failure of a critical scenario makes `factory gym run` exit non-zero.
    #[serde(default)]
    pub critical: bool,
    /// Gate commands registered with the fixture's project (besides its own
    /// `.factory/project.toml`).
    #[serde(default)]
    pub gates: Vec<String>,
    /// `factory.toml` text applied over the gym's configuration for this scenario only
    /// (budgets, engine limits). Providers and aliases set here are refused: the models are
    /// the gym's choice (`--model`), so runs compare.
    #[serde(default)]
    pub factory_toml: Option<String>,
    /// How the gym answers in a person's place, by approval kind.
    #[serde(default)]
    pub decisions: Decisions,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Where it was read from (for messages and reports).
    #[serde(skip)]
    pub source: String,
    /// The gym directory holding its fixture.
    #[serde(skip)]
    pub gym_dir: GymDir,
}

/// A local checkout a scenario starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositorySource {
    /// The checkout (absolute, or relative to the gym directory).
    pub path: String,
    /// The base commit (full hex id).
    pub commit: String,
    /// The directory of files kept from the model (relative to the gym directory).
    #[serde(default)]
    pub hidden: Option<String>,
}

/// Where a scenario's fixtures are.
#[derive(Debug, Clone, Default)]
pub enum GymDir {
    /// The embedded built-in gym.
    #[default]
    BuiltIn,
    /// A directory with `scenarios/` and `fixtures/`.
    Dir(PathBuf),
}

/// What the gym decides for each kind of approval. A kind left out is not decided: the
/// attempt ends with the run waiting for a person (which a check may expect).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decisions {
    #[serde(default = "approve")]
    pub plan: Option<Decision>,
    #[serde(default = "approve")]
    pub review: Option<Decision>,
    /// The answer to any clarification escalated to a person.
    #[serde(default)]
    pub clarification: Option<String>,
    #[serde(default)]
    pub budget: Option<Decision>,
    #[serde(default)]
    pub blocked: Option<Decision>,
    /// Decisions made at most (a run asking more is stopped and fails the limit).
    #[serde(default = "default_max_decisions")]
    pub max: u32,
}

fn approve() -> Option<Decision> {
    Some(Decision::Option("approve".into()))
}

fn default_max_decisions() -> u32 {
    8
}

impl Default for Decisions {
    fn default() -> Self {
        Decisions {
            plan: approve(),
            review: approve(),
            clarification: None,
            budget: None,
            blocked: None,
            max: default_max_decisions(),
        }
    }
}

/// An option, optionally with its words: `"approve"` or `{ option = "revise", text = "…" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Decision {
    Option(String),
    WithText { option: String, text: String },
}

impl Decision {
    pub fn option(&self) -> &str {
        match self {
            Decision::Option(o) | Decision::WithText { option: o, .. } => o,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match self {
            Decision::Option(_) => None,
            Decision::WithText { text, .. } => Some(text),
        }
    }
}

impl Decisions {
    /// The option and words to decide an approval of `kind` with, when the scenario says.
    pub fn for_kind(&self, kind: ApprovalKind) -> Option<(String, Option<String>)> {
        let decision = match kind {
            ApprovalKind::Clarification => {
                return self
                    .clarification
                    .clone()
                    .map(|answer| ("answer".to_string(), Some(answer)));
            }
            ApprovalKind::Plan => &self.plan,
            ApprovalKind::Review => &self.review,
            ApprovalKind::Budget => &self.budget,
            ApprovalKind::Blocked => &self.blocked,
        };
        decision
            .as_ref()
            .map(|d| (d.option().to_string(), d.text().map(str::to_string)))
    }
}

/// Bounds the attempt must stay within; each is reported as a check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Wall time of the run; past it the run is canceled (default 600 s).
    #[serde(default = "default_wall_secs")]
    pub wall_secs: u64,
    #[serde(default)]
    pub model_calls: Option<u32>,
    #[serde(default)]
    pub human_decisions: Option<u32>,
}

fn default_wall_secs() -> u64 {
    600
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            cost_usd: None,
            wall_secs: default_wall_secs(),
            model_calls: None,
            human_decisions: None,
        }
    }
}

/// One check, by `kind` (unknown keys are refused by the kind's own fields).
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    /// Shown in reports (default: made from what is checked).
    #[serde(default)]
    pub name: Option<String>,
    /// `false`: the check needs a model, and is skipped (and said so) when every call was
    /// answered by the offline templates.
    #[serde(default = "yes")]
    pub offline: bool,
    #[serde(flatten)]
    pub what: CheckKind,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckKind {
    /// `regex` matches in at least one artifact whose name matches `artifact` (a glob).
    Artifact { artifact: String, regex: String },
    /// A file exists (or, `exists = false`, does not) on the delivered branch.
    File {
        path: String,
        #[serde(default = "yes")]
        exists: bool,
    },
    /// A tree-sitter `query` (in the language of `path`'s extension: the repository map's
    /// languages) matches at least once in `path` on the delivered branch.
    Signature { path: String, query: String },
    /// `run` passes in the project's sandbox on a copy of the delivered branch, with the
    /// fixture's `hidden/` files named in `hidden` added first (kept from the model).
    Command {
        run: String,
        #[serde(default)]
        hidden: Vec<String>,
        /// A patch among the hidden files applied before `run` (e.g. SWE-bench's test patch).
        #[serde(default)]
        patch: Option<String>,
    },
    /// The run ended with this status (`succeeded`, `failed`, `waiting_for_human`, …).
    Status { status: String },
    /// An approval of this kind was (or, `asked = false`, was not) requested.
    Approval {
        approval: String,
        #[serde(default = "yes")]
        asked: bool,
    },
    /// A path on the host (`{work}` is the attempt's directory) exists or not after the run:
    /// what a sandbox escape would leave.
    HostFile { path: String, exists: bool },
}

impl Check {
    /// The name reports show.
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.what {
            CheckKind::Artifact { artifact, regex } => format!("{artifact} matches /{regex}/"),
            CheckKind::File { path, exists } => {
                format!("{path} {}", if *exists { "exists" } else { "is absent" })
            }
            CheckKind::Signature { path, .. } => format!("signature in {path}"),
            CheckKind::Command { run, .. } => format!("`{run}` passes"),
            CheckKind::Status { status } => format!("run {status}"),
            CheckKind::Approval { approval, asked } => {
                format!(
                    "{approval} approval {}",
                    if *asked { "asked" } else { "not asked" }
                )
            }
            CheckKind::HostFile { path, exists } => {
                format!(
                    "host {path} {}",
                    if *exists { "exists" } else { "is absent" }
                )
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.what {
            CheckKind::Artifact { .. } => "artifact",
            CheckKind::File { .. } => "file",
            CheckKind::Signature { .. } => "signature",
            CheckKind::Command { .. } => "command",
            CheckKind::Status { .. } => "status",
            CheckKind::Approval { .. } => "approval",
            CheckKind::HostFile { .. } => "host_file",
        }
    }
}

const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "waiting_for_human",
    "succeeded",
    "failed",
    "canceled",
];

/// Parses one scenario file's text; `name` is the file's stem.
pub fn parse(text: &str, name: &str, source: &str) -> Result<Scenario, GymError> {
    let bad = |message: String| GymError::Scenario {
        file: source.to_string(),
        message,
    };
    let mut scenario: Scenario =
        toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
    if scenario.name.is_empty() {
        scenario.name = name.to_string();
    }
    scenario.source = source.to_string();
    validate(&scenario).map_err(bad)?;
    Ok(scenario)
}

fn validate(s: &Scenario) -> Result<(), String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !name_ok(&s.name) {
        return Err(format!(
            "name `{}`: use 1–64 letters, digits, `-` or `_`",
            s.name
        ));
    }
    match (&s.fixture, &s.repository) {
        (Some(fixture), None) if name_ok(fixture) => {}
        (Some(fixture), None) => {
            return Err(format!(
                "fixture `{fixture}`: name a directory under fixtures/ (letters, digits, `-`, `_`)"
            ));
        }
        (None, Some(repo)) => {
            if repo.commit.len() != 40 || !repo.commit.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "repository.commit `{}`: give the full 40-character commit id",
                    repo.commit
                ));
            }
            if let Some(hidden) = &repo.hidden
                && Path::new(hidden)
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return Err(format!(
                    "repository.hidden `{hidden}`: give a directory inside the gym directory"
                ));
            }
        }
        _ => {
            return Err(
                "give either `fixture` (a directory under fixtures/) or [repository] (a local                  checkout and commit), not both or neither"
                    .into(),
            );
        }
    }
    let chars = s.requirement.trim().chars().count();
    if chars == 0 || chars > MAX_REQUIREMENT_CHARS {
        return Err(format!(
            "requirement: {chars} characters; give 1–{MAX_REQUIREMENT_CHARS}"
        ));
    }
    if s.checks.is_empty() || s.checks.len() > MAX_CHECKS {
        return Err(format!(
            "{} checks; give 1–{MAX_CHECKS} ([[checks]] with kind = artifact, file, signature, \
             command, status, approval or host_file)",
            s.checks.len()
        ));
    }
    if let Some(toml_text) = &s.factory_toml {
        let table: toml::Table =
            toml::from_str(toml_text).map_err(|e| format!("factory_toml: {e}"))?;
        for key in ["providers", "aliases", "models"] {
            if table.contains_key(key) {
                return Err(format!(
                    "factory_toml may not set [{key}]: the gym's models come from its \
                     configuration and --model, so scenarios compare"
                ));
            }
        }
    }
    let d = &s.decisions;
    for (kind, decision) in [
        (ApprovalKind::Plan, &d.plan),
        (ApprovalKind::Review, &d.review),
        (ApprovalKind::Budget, &d.budget),
        (ApprovalKind::Blocked, &d.blocked),
    ] {
        let Some(decision) = decision else { continue };
        let options = kind.options();
        let Some(option) = options.iter().find(|o| o.id == decision.option()) else {
            return Err(format!(
                "decisions.{}: `{}` is not an option; use one of {}",
                kind.as_str(),
                decision.option(),
                options
                    .iter()
                    .map(|o| o.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if option.needs_text && decision.text().is_none_or(|t| t.trim().is_empty()) {
            return Err(format!(
                "decisions.{}: `{}` needs words: {{ option = \"{}\", text = \"…\" }}",
                kind.as_str(),
                option.id,
                option.id
            ));
        }
    }
    for check in &s.checks {
        check_one(check).map_err(|e| format!("check `{}`: {e}", check.label()))?;
    }
    Ok(())
}

fn check_one(check: &Check) -> Result<(), String> {
    let relative = |path: &str| {
        let p = Path::new(path);
        if path.is_empty()
            || p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            Err(format!(
                "path `{path}`: give a relative path inside the repository (no `..`, not absolute)"
            ))
        } else {
            Ok(())
        }
    };
    match &check.what {
        CheckKind::Artifact { artifact, regex } => {
            globset::Glob::new(artifact).map_err(|e| format!("artifact glob: {e}"))?;
            regex::Regex::new(regex).map_err(|e| format!("regex: {e}"))?;
        }
        CheckKind::File { path, .. } => relative(path)?,
        CheckKind::Signature { path, query } => {
            relative(path)?;
            let lang = crate::engine::repo_map::Lang::from_path(path).ok_or_else(|| {
                format!(
                    "`{path}`: no tree-sitter grammar for this extension (Rust, Python, \
                     JavaScript, TypeScript, TSX, Go)"
                )
            })?;
            tree_sitter::Query::new(&lang.grammar(), query).map_err(|e| format!("query: {e}"))?;
        }
        CheckKind::Command { run, hidden, patch } => {
            if run.trim().is_empty() {
                return Err("run: give a command".into());
            }
            for h in hidden.iter().chain(patch) {
                relative(h)?;
            }
        }
        CheckKind::Status { status } => {
            if !STATUSES.contains(&status.as_str()) {
                return Err(format!(
                    "status `{status}`: use one of {}",
                    STATUSES.join(", ")
                ));
            }
        }
        CheckKind::Approval { approval, .. } => {
            let kinds = ["clarification", "blocked", "plan", "budget", "review"];
            if !kinds.contains(&approval.as_str()) {
                return Err(format!(
                    "approval `{approval}`: use one of {}",
                    kinds.join(", ")
                ));
            }
        }
        CheckKind::HostFile { path, .. } => {
            if !path.starts_with("{work}/") || path.contains("..") {
                return Err(format!(
                    "path `{path}`: a host path must start with `{{work}}/` (the attempt's \
                     directory) and have no `..`"
                ));
            }
        }
    }
    Ok(())
}

/// Every scenario of a gym directory (sorted by name). Names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, GymError> {
    let scenarios = dir.join("scenarios");
    let entries = std::fs::read_dir(&scenarios).map_err(GymError::io(&scenarios))?;
    let mut found = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path).map_err(GymError::io(&path))?;
        let mut scenario = parse(&text, &stem, &path.display().to_string())?;
        scenario.gym_dir = GymDir::Dir(dir.to_path_buf());
        insert(&mut found, scenario)?;
    }
    Ok(found.into_values().collect())
}

/// The built-in scenarios, embedded in the binary.
pub fn builtin() -> Result<Vec<Scenario>, GymError> {
    let mut found = BTreeMap::new();
    let Some(dir) = super::BUILTIN.get_dir("scenarios") else {
        return Ok(Vec::new());
    };
    for file in dir.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let text = file.contents_utf8().unwrap_or_default();
        let scenario = parse(text, stem, &format!("built-in {}", path.display()))?;
        insert(&mut found, scenario)?;
    }
    Ok(found.into_values().collect())
}

fn insert(found: &mut BTreeMap<String, Scenario>, scenario: Scenario) -> Result<(), GymError> {
    if let Some(first) = found.get(&scenario.name) {
        return Err(GymError::Scenario {
            file: scenario.source.clone(),
            message: format!(
                "the name `{}` is already used by {}",
                scenario.name, first.source
            ),
        });
    }
    found.insert(scenario.name.clone(), scenario);
    Ok(())
}

#[cfg(test)]
mod tests;
