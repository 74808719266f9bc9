//! Pipelines: ordered stages, each a team with an objective template and acceptance criteria.
//! Built in: `default` and `full` (embedded from `server/pipelines/`); a project adds its own
//! in `.factory/pipelines/<name>.toml`. Invalid pipelines are refused with the line at fault.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::catalogue::Catalogue;

static PIPELINES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/pipelines");

/// One stage, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub team: String,
    /// `{requirement}` and `{project}` are filled in per run.
    pub objective: String,
    pub acceptance_criteria: Vec<String>,
}

impl Stage {
    /// The objective with the run's requirement and project filled in.
    pub fn objective_for(&self, requirement: &str, project: Option<&str>) -> String {
        self.objective
            .replace("{requirement}", requirement)
            .replace("{project}", project.unwrap_or("(no project)"))
    }
}

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub description: String,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStage {
    name: Spanned<String>,
    team: Spanned<String>,
    objective: String,
    #[serde(default)]
    acceptance_criteria: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePipeline {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    stages: Vec<FileStage>,
}

/// Why a pipeline was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {message}", .line.map(|l| format!(" line {l}")).unwrap_or_default())]
pub struct PipelineError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Stage and pipeline names: `[a-z0-9-]{1,64}`. A stage name becomes a folder of the run's
/// artifacts, so anything path-like (`/`, `..`) is refused here, at the source.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses and validates a pipeline file against the catalogue.
pub fn parse(text: &str, origin: &str, catalogue: &Catalogue) -> Result<Pipeline, PipelineError> {
    let err = |line: Option<usize>, message: String| PipelineError {
        origin: origin.to_string(),
        line,
        message,
    };
    let file: FilePipeline = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        err(line, e.message().to_string())
    })?;
    if !valid_name(&file.name) {
        return Err(err(
            Some(1),
            format!(
                "pipeline name `{}` is not accepted: use 1 to 64 of a-z, 0-9 and `-`",
                file.name
            ),
        ));
    }
    if file.stages.is_empty() {
        return Err(err(
            None,
            "the pipeline has no stages: add one or more [[stages]] with name, team and objective"
                .into(),
        ));
    }
    let mut seen = HashSet::new();
    let mut stages = Vec::with_capacity(file.stages.len());
    for stage in file.stages {
        let name_line = line_of(text, stage.name.span().start);
        if !valid_name(stage.name.get_ref()) {
            return Err(err(
                Some(name_line),
                format!(
                    "stage name `{}` is not accepted: use 1 to 64 of a-z, 0-9 and `-` (it names \
                     the stage's artifact folder)",
                    stage.name.get_ref()
                ),
            ));
        }
        if !seen.insert(stage.name.get_ref().clone()) {
            return Err(err(
                Some(name_line),
                format!(
                    "duplicate stage name `{}`: stage names must be unique",
                    stage.name.get_ref()
                ),
            ));
        }
        if catalogue.get(stage.team.get_ref()).is_none() {
            return Err(err(
                Some(line_of(text, stage.team.span().start)),
                format!(
                    "unknown team `{}` (teams: {})",
                    stage.team.get_ref(),
                    catalogue.names().join(", ")
                ),
            ));
        }
        if stage.objective.trim().is_empty() {
            return Err(err(
                Some(name_line),
                format!("stage `{}` has an empty objective", stage.name.get_ref()),
            ));
        }
        stages.push(Stage {
            name: stage.name.into_inner(),
            team: stage.team.into_inner(),
            objective: stage.objective,
            acceptance_criteria: stage.acceptance_criteria,
        });
    }
    Ok(Pipeline {
        name: file.name,
        description: file.description,
        stages,
    })
}

/// The embedded pipelines, parsed once: they never change, and every catalogue has the same
/// teams (a project's files replace a team's files, they add no team).
fn builtin(catalogue: &Catalogue) -> Result<BTreeMap<String, Pipeline>, PipelineError> {
    static BUILTIN: std::sync::OnceLock<BTreeMap<String, Pipeline>> = std::sync::OnceLock::new();
    if let Some(pipelines) = BUILTIN.get() {
        return Ok(pipelines.clone());
    }
    let mut out = BTreeMap::new();
    for file in PIPELINES.files() {
        let origin = format!("built-in pipeline {}", file.path().display());
        let text = file.contents_utf8().unwrap_or_default();
        let p = parse(text, &origin, catalogue)?;
        out.insert(p.name.clone(), p);
    }
    Ok(BUILTIN.get_or_init(|| out).clone())
}

/// Every pipeline available to a project: built in, then the project's own (which may replace
/// a built-in one of the same name).
pub fn load_all(
    catalogue: &Catalogue,
    project: Option<&Path>,
) -> Result<BTreeMap<String, Pipeline>, PipelineError> {
    let mut out = builtin(catalogue)?;
    if let Some(root) = project {
        use crate::delivery::repo_files::{self, MAX_SETTINGS_BYTES};
        let dir = root.join(".factory").join("pipelines");
        let problem = |origin: String, message: String| PipelineError {
            origin,
            line: None,
            message,
        };
        let names = repo_files::list(root, &[".factory", "pipelines"])
            .map_err(|e| problem(dir.display().to_string(), e.to_string()))?;
        for file in names.iter().filter(|n| n.ends_with(".toml")) {
            let origin = dir.join(file).display().to_string();
            let text = repo_files::read(root, &[".factory", "pipelines", file], MAX_SETTINGS_BYTES)
                .map_err(|e| problem(origin.clone(), e.to_string()))?
                .unwrap_or_default();
            let p = parse(&text, &origin, catalogue)?;
            let stem = file.trim_end_matches(".toml");
            if p.name != stem {
                return Err(PipelineError {
                    origin,
                    line: Some(1),
                    message: format!("name `{}` must equal the file name `{stem}`", p.name),
                });
            }
            out.insert(p.name.clone(), p);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_pipelines_are_valid() {
        let c = Catalogue::builtin().unwrap();
        let all = load_all(&c, None).unwrap();
        let teams: Vec<&str> = all["default"]
            .stages
            .iter()
            .map(|s| s.team.as_str())
            .collect();
        assert_eq!(
            teams,
            [
                "business-analysis",
                "solution-architecture",
                "backend-engineering",
                "qa-engineering",
                "documentation"
            ]
        );
        let full: HashSet<&str> = all["full"].stages.iter().map(|s| s.team.as_str()).collect();
        assert_eq!(full.len(), 17, "the full pipeline uses every team");
    }

    #[test]
    fn invalid_pipelines_name_the_line() {
        let c = Catalogue::builtin().unwrap();
        let cases = [
            ("name = \"x\"\n", "no stages"),
            (
                "name = \"x\"\n[[stages]]\nname = \"a\"\nteam = \"nobody\"\nobjective = \"o\"\n",
                "line 4: unknown team `nobody`",
            ),
            (
                "name = \"x\"\n[[stages]]\nname = \"a\"\nteam = \"documentation\"\nobjective = \"o\"\n\
                 [[stages]]\nname = \"a\"\nteam = \"documentation\"\nobjective = \"o\"\n",
                "line 7: duplicate stage name `a`",
            ),
            (
                "name = \"x\"\nstagez = 1\n",
                "line 2: unknown field `stagez`",
            ),
            (
                "name = \"x\"\n[[stages]]\nname = \"x/../../..\"\nteam = \"documentation\"\nobjective = \"o\"\n",
                "line 3: stage name `x/../../..` is not accepted",
            ),
            (
                "name = \"x\"\n[[stages]]\nname = \"\"\nteam = \"documentation\"\nobjective = \"o\"\n",
                "stage name `` is not accepted",
            ),
            (
                "name = \"../x\"\n[[stages]]\nname = \"a\"\nteam = \"documentation\"\nobjective = \"o\"\n",
                "pipeline name `../x` is not accepted",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(text, "p.toml", &c).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_project_adds_its_own_pipeline() {
        let c = Catalogue::builtin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".factory/pipelines");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(
            p.join("docs-only.toml"),
            "name = \"docs-only\"\n[[stages]]\nname = \"docs\"\nteam = \"documentation\"\nobjective = \"Document {requirement}\"\n",
        )
        .unwrap();
        let all = load_all(&c, Some(dir.path())).unwrap();
        assert_eq!(
            all["docs-only"].stages[0].objective_for("login", None),
            "Document login"
        );
        assert!(all.contains_key("default"));
    }
}
