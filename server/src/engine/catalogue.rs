//! The team catalogue: 17 teams, each a folder of `SOUL.md`, `AGENTS.md`, `TOOLS.md`,
//! `team.toml` and `offline.md.j2`, embedded in the binary from `server/teams/`. A project
//! overrides any single file with `.factory/teams/<team>/<file>` in its repository.

use std::collections::BTreeMap;
use std::path::Path;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

static TEAMS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/teams");

/// The files of a team folder.
pub const TEAM_FILES: [&str; 5] = [
    "SOUL.md",
    "AGENTS.md",
    "TOOLS.md",
    "team.toml",
    "offline.md.j2",
];

/// What kind of work a team does (decides whether it may propose edits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamKind {
    Analysis,
    Engineering,
    Review,
}

/// An artifact a team must deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deliverable {
    pub name: String,
    pub description: String,
}

/// The agent loop's bounds (`[agent]` in `team.toml`): how long a team may work in its
/// sandbox on one work order before it must answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentLimits {
    /// Model turns that run a command, per attempt, before the team must answer.
    pub max_turns: u32,
    /// Longest one command may run, in seconds.
    pub command_timeout_secs: u64,
    /// Output of one command kept and shown to the model, in bytes (the rest is cut).
    pub command_output_bytes: usize,
    /// Wall time for a whole work order (every turn, command and gate round), in seconds.
    pub max_wall_secs: u64,
    /// Model spend for a whole work order, in US dollars.
    pub max_cost_usd: f64,
}

impl Default for AgentLimits {
    fn default() -> Self {
        AgentLimits {
            max_turns: 20,
            command_timeout_secs: 120,
            command_output_bytes: 16 * 1024,
            max_wall_secs: 1_800,
            max_cost_usd: 5.0,
        }
    }
}

impl AgentLimits {
    /// Each limit no higher than `cap`'s.
    pub fn at_most(self, cap: &AgentLimits) -> AgentLimits {
        AgentLimits {
            max_turns: self.max_turns.min(cap.max_turns),
            command_timeout_secs: self.command_timeout_secs.min(cap.command_timeout_secs),
            command_output_bytes: self.command_output_bytes.min(cap.command_output_bytes),
            max_wall_secs: self.max_wall_secs.min(cap.max_wall_secs),
            max_cost_usd: self.max_cost_usd.min(cap.max_cost_usd),
        }
    }
}

/// `team.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    pub name: String,
    pub title: String,
    pub summary: String,
    /// The model alias the team calls.
    pub alias: String,
    pub kind: TeamKind,
    /// Re-asks when its TaskResult is malformed.
    pub max_reasks: u32,
    /// Attempts of one objective before the run fails.
    pub max_iterations: u32,
    pub operatives: Vec<String>,
    pub deliverables: Vec<Deliverable>,
    /// Bounds of the team's agent loop (defaults when absent).
    #[serde(default)]
    pub agent: AgentLimits,
}

/// A team, ready to prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    #[serde(flatten)]
    pub settings: TeamSettings,
    pub soul: String,
    pub agents: String,
    pub tools: String,
    #[serde(skip)]
    pub offline_template: String,
    /// Files replaced by the project (`.factory/teams/<team>/…`).
    pub overridden: Vec<String>,
}

impl Team {
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The identity block of the prompt.
    pub fn identity(&self) -> String {
        format!(
            "# Team: {} ({})\n\n{}\n\n# Your operatives\n\n{}\n\n# Your tools\n\n{}",
            self.settings.title,
            self.settings.name,
            self.soul.trim(),
            self.agents.trim(),
            self.tools.trim()
        )
    }
}

/// Why the catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("team `{team}`: {file} is missing")]
    Missing { team: String, file: String },
    #[error("team `{team}`: {file} is not valid: {message}")]
    Invalid {
        team: String,
        file: String,
        message: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// All teams by name.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    teams: BTreeMap<String, Team>,
}

impl Catalogue {
    /// The embedded catalogue.
    pub fn builtin() -> Result<Catalogue, CatalogueError> {
        Catalogue::load(None)
    }

    /// The embedded catalogue with a project's overrides from `<repo>/.factory/teams/`. The
    /// embedded one never changes, so it is parsed once (a project's files are read every
    /// time: they may change between runs).
    pub fn load(project: Option<&Path>) -> Result<Catalogue, CatalogueError> {
        static BUILTIN: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
        if project.is_some() {
            return Catalogue::parse(project);
        }
        if let Some(catalogue) = BUILTIN.get() {
            return Ok(catalogue.clone());
        }
        let catalogue = Catalogue::parse(None)?;
        Ok(BUILTIN.get_or_init(|| catalogue).clone())
    }

    fn parse(project: Option<&Path>) -> Result<Catalogue, CatalogueError> {
        let mut teams = BTreeMap::new();
        for dir in TEAMS.dirs() {
            let name = dir
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let mut files = BTreeMap::new();
            let mut overridden = Vec::new();
            for file in TEAM_FILES {
                let builtin = dir
                    .get_file(dir.path().join(file))
                    .and_then(|f| f.contents_utf8())
                    .map(str::to_string);
                let local = match project {
                    Some(root) => read_override(root, &name, file)?,
                    None => None,
                };
                let text = match (local, builtin) {
                    (Some(text), _) => {
                        overridden.push(file.to_string());
                        text
                    }
                    (None, Some(text)) => text,
                    (None, None) => {
                        return Err(CatalogueError::Missing {
                            team: name,
                            file: file.into(),
                        });
                    }
                };
                files.insert(file, text);
            }
            let parse = |text: &str| {
                toml::from_str::<TeamSettings>(text).map_err(|e| CatalogueError::Invalid {
                    team: name.clone(),
                    file: "team.toml".into(),
                    message: e.to_string().trim().replace('\n', " "),
                })
            };
            let mut settings = parse(&files["team.toml"])?;
            check(&name, &settings)?;
            // A repository may tighten its teams' agent limits, never loosen them: its files
            // are not the operator's.
            if overridden.iter().any(|f| f == "team.toml")
                && let Some(builtin) = dir
                    .get_file(dir.path().join("team.toml"))
                    .and_then(|f| f.contents_utf8())
            {
                settings.agent = settings.agent.at_most(&parse(builtin)?.agent);
            }
            if let Err(e) = minijinja::Environment::new().template_from_str(&files["offline.md.j2"])
            {
                return Err(CatalogueError::Invalid {
                    team: name,
                    file: "offline.md.j2".into(),
                    message: e.to_string(),
                });
            }
            teams.insert(
                name,
                Team {
                    settings,
                    soul: files["SOUL.md"].clone(),
                    agents: files["AGENTS.md"].clone(),
                    tools: files["TOOLS.md"].clone(),
                    offline_template: files["offline.md.j2"].clone(),
                    overridden,
                },
            );
        }
        Ok(Catalogue { teams })
    }

    /// SHA-256 (hex) of every team's files as loaded (settings, SOUL, AGENTS, TOOLS, offline
    /// template): two runs with the same hash had the same teams.
    pub fn content_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for (name, team) in &self.teams {
            let settings = serde_json::to_string(&team.settings).unwrap_or_default();
            for part in [
                name.as_str(),
                &settings,
                &team.soul,
                &team.agents,
                &team.tools,
                &team.offline_template,
            ] {
                hash.update((part.len() as u64).to_le_bytes());
                hash.update(part.as_bytes());
            }
        }
        hex::encode(hash.finalize())
    }

    pub fn get(&self, name: &str) -> Option<&Team> {
        self.teams.get(name)
    }

    pub fn teams(&self) -> impl Iterator<Item = &Team> {
        self.teams.values()
    }

    pub fn names(&self) -> Vec<&str> {
        self.teams.keys().map(String::as_str).collect()
    }
}

/// A project's replacement of one team file, refusing symlinks and oversize files.
fn read_override(root: &Path, team: &str, file: &str) -> Result<Option<String>, CatalogueError> {
    use crate::delivery::repo_files::{self, RepoFileError};
    let path = root.join(".factory").join("teams").join(team).join(file);
    match repo_files::read(root, &[".factory", "teams", team, file], 256 * 1024) {
        Ok(text) => Ok(text),
        Err(RepoFileError::Io { source, .. }) => Err(CatalogueError::Read {
            path: path.display().to_string(),
            source,
        }),
        Err(e) => Err(CatalogueError::Invalid {
            team: team.into(),
            file: path.display().to_string(),
            message: format!(
                "{e} (team files must be regular files, not symlinks, of at most 256 KiB)"
            ),
        }),
    }
}

fn check(folder: &str, s: &TeamSettings) -> Result<(), CatalogueError> {
    let bad = |message: String| {
        Err(CatalogueError::Invalid {
            team: folder.into(),
            file: "team.toml".into(),
            message,
        })
    };
    if s.name != folder {
        return bad(format!("name `{}` must equal the folder name", s.name));
    }
    if s.max_reasks > 5 {
        return bad(format!("max_reasks {} must be 0 to 5", s.max_reasks));
    }
    if !(1..=10).contains(&s.max_iterations) {
        return bad(format!(
            "max_iterations {} must be 1 to 10",
            s.max_iterations
        ));
    }
    if s.deliverables.is_empty() {
        return bad("at least one [[deliverables]] is needed".into());
    }
    let a = &s.agent;
    if a.max_turns > 100 {
        return bad(format!(
            "[agent] max_turns {} must be 0 to 100",
            a.max_turns
        ));
    }
    if !(1..=3_600).contains(&a.command_timeout_secs) {
        return bad(format!(
            "[agent] command_timeout_secs {} must be 1 to 3600",
            a.command_timeout_secs
        ));
    }
    if !(256..=1024 * 1024).contains(&a.command_output_bytes) {
        return bad(format!(
            "[agent] command_output_bytes {} must be 256 to 1048576",
            a.command_output_bytes
        ));
    }
    if !(1..=86_400).contains(&a.max_wall_secs) {
        return bad(format!(
            "[agent] max_wall_secs {} must be 1 to 86400",
            a.max_wall_secs
        ));
    }
    if !(a.max_cost_usd.is_finite() && a.max_cost_usd >= 0.0) {
        return bad(format!(
            "[agent] max_cost_usd {} must be a number of dollars, 0 or more",
            a.max_cost_usd
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const THE_17: [&str; 17] = [
        "product-management",
        "solution-architecture",
        "feature-engineering",
        "frontend-engineering",
        "backend-engineering",
        "database-engineering",
        "devops-infrastructure",
        "qa-engineering",
        "security-engineering",
        "data-engineering",
        "ml-engineering",
        "api-design",
        "documentation",
        "business-analysis",
        "ux-ui-design",
        "compliance-legal",
        "sre-operations",
    ];

    #[test]
    fn the_catalogue_has_the_17_teams_of_the_plan() {
        let c = Catalogue::builtin().unwrap();
        let mut expected = THE_17.to_vec();
        expected.sort_unstable();
        assert_eq!(c.names(), expected);
        for team in c.teams() {
            assert!(
                team.soul.len() > 500,
                "{}: SOUL.md is substantial",
                team.name()
            );
            assert!(!team.settings.operatives.is_empty());
            for op in &team.settings.operatives {
                assert!(
                    team.agents.contains(&format!("## {op}")),
                    "{}: operative {op} is described in AGENTS.md",
                    team.name()
                );
            }
        }
    }

    #[test]
    fn a_project_may_tighten_agent_limits_but_never_loosen_them() {
        let repo = tempfile::tempdir().unwrap();
        let dir = repo.path().join(".factory/teams/backend-engineering");
        std::fs::create_dir_all(&dir).unwrap();
        let builtin = TEAMS
            .get_file("backend-engineering/team.toml")
            .and_then(|f| f.contents_utf8())
            .unwrap();
        std::fs::write(
            dir.join("team.toml"),
            format!(
                "{builtin}\n[agent]\nmax_turns = 100\ncommand_timeout_secs = 5\n\
                 max_wall_secs = 86400\nmax_cost_usd = 1000.0\n"
            ),
        )
        .unwrap();
        let catalogue = Catalogue::load(Some(repo.path())).unwrap();
        let agent = catalogue.get("backend-engineering").unwrap().settings.agent;
        let defaults = AgentLimits::default();
        assert_eq!(agent.command_timeout_secs, 5, "tightened");
        assert_eq!(agent.max_turns, defaults.max_turns, "not loosened");
        assert_eq!(agent.max_wall_secs, defaults.max_wall_secs);
        assert_eq!(agent.max_cost_usd, defaults.max_cost_usd);

        std::fs::write(
            dir.join("team.toml"),
            format!("{builtin}\n[agent]\nmax_turns = 101\n"),
        )
        .unwrap();
        let refused = Catalogue::load(Some(repo.path())).unwrap_err().to_string();
        assert!(
            refused.contains("max_turns 101 must be 0 to 100"),
            "{refused}"
        );
    }

    #[test]
    fn a_project_overrides_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let team_dir = dir.path().join(".factory/teams/documentation");
        std::fs::create_dir_all(&team_dir).unwrap();
        std::fs::write(team_dir.join("SOUL.md"), "You write docs for Acme.").unwrap();
        let c = Catalogue::load(Some(dir.path())).unwrap();
        let docs = c.get("documentation").unwrap();
        assert_eq!(docs.soul, "You write docs for Acme.");
        assert_eq!(docs.overridden, ["SOUL.md"]);
        assert!(docs.agents.len() > 100, "other files stay built in");

        std::fs::write(team_dir.join("team.toml"), "name = \"documentation\"\n").unwrap();
        let err = Catalogue::load(Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("team `documentation`: team.toml is not valid"),
            "{err}"
        );
    }
}
