//! Resources: a run (`factory://runs/{run_id}`, JSON), its artifacts
//! (`factory://runs/{run_id}/artifacts/{name}`, the text as written, `name` being the artifact's
//! path under the run's directory such as `01-requirements/requirements.md`) and its delivered
//! work orders' diffs (`factory://runs/{run_id}/diffs/{work_order_id}`, a unified diff).

use app::dto::{ArtifactRef, RunDetail, WorkOrderState};
use app::events::TokenScope;
use app::server_fns::artifacts::{DiffLineKind, WorkOrderPatch};
use rmcp::RoleServer;
use rmcp::model::{Resource, ResourceContents, ResourceTemplate};
use rmcp::service::RequestContext;

use super::FactoryMcp;
use super::RESOURCE_LIST_RUNS;
use super::access::require;
use super::error::ToolError;

const SCHEME: &str = "factory://runs/";

/// What a `factory://` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FactoryUri {
    Run(String),
    Artifact {
        run_id: String,
        name: String,
    },
    Diff {
        run_id: String,
        work_order_id: String,
    },
}

impl FactoryUri {
    /// Parses one of the three forms; the error lists them.
    pub(super) fn parse(uri: &str) -> Result<FactoryUri, ToolError> {
        let bad = || {
            ToolError::BadInput(format!(
                "{uri:?} is not a Factory resource: use factory://runs/{{run_id}}, \
                 factory://runs/{{run_id}}/artifacts/{{name}} or \
                 factory://runs/{{run_id}}/diffs/{{work_order_id}}"
            ))
        };
        let rest = uri.strip_prefix(SCHEME).ok_or_else(bad)?;
        let (run_id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if run_id.is_empty() {
            return Err(bad());
        }
        let run_id = run_id.to_string();
        if rest.is_empty() {
            return Ok(FactoryUri::Run(run_id));
        }
        if let Some(name) = rest.strip_prefix("artifacts/").filter(|n| !n.is_empty()) {
            return Ok(FactoryUri::Artifact {
                run_id,
                name: name.to_string(),
            });
        }
        match rest.strip_prefix("diffs/") {
            Some(id) if !id.is_empty() && !id.contains('/') => Ok(FactoryUri::Diff {
                run_id,
                work_order_id: id.to_string(),
            }),
            _ => Err(bad()),
        }
    }

    pub(super) fn run_id(&self) -> &str {
        match self {
            FactoryUri::Run(run_id)
            | FactoryUri::Artifact { run_id, .. }
            | FactoryUri::Diff { run_id, .. } => run_id,
        }
    }
}

pub(super) fn run_uri(run_id: &str) -> String {
    format!("{SCHEME}{run_id}")
}

pub(super) fn artifact_uri(run_id: &str, name: &str) -> String {
    format!("{SCHEME}{run_id}/artifacts/{name}")
}

pub(super) fn diff_uri(run_id: &str, work_order_id: &str) -> String {
    format!("{SCHEME}{run_id}/diffs/{work_order_id}")
}

/// An artifact's name: its path under the run's directory.
pub(super) fn artifact_name<'a>(run_id: &str, artifact: &'a ArtifactRef) -> &'a str {
    let prefix = format!("runs/{run_id}/");
    artifact
        .path
        .strip_prefix(prefix.as_str())
        .unwrap_or(&artifact.path)
}

/// The run's artifact named `name`: its path under the run's directory, its path under the
/// data directory, or its file name when no other artifact has the same.
pub(super) fn find_artifact<'a>(
    run: &'a RunDetail,
    name: &str,
) -> Result<&'a ArtifactRef, ToolError> {
    let id = &run.summary.id;
    let by_path = run
        .artifacts
        .iter()
        .find(|a| a.path == name || artifact_name(id, a) == name);
    let mut by_file = run.artifacts.iter().filter(|a| a.name == name);
    match (by_path, by_file.next(), by_file.next()) {
        (Some(found), _, _) | (None, Some(found), None) => Ok(found),
        _ => {
            let names: Vec<&str> = run.artifacts.iter().map(|a| artifact_name(id, a)).collect();
            Err(ToolError::NotFound(format!(
                "run {id} has no artifact {name:?}; its artifacts are: {}",
                if names.is_empty() {
                    "none yet".to_string()
                } else {
                    names.join(", ")
                }
            )))
        }
    }
}

/// The URI templates, for clients that build URIs themselves.
pub(super) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("factory://runs/{run_id}", "run")
            .with_title("A run")
            .with_description("The run with its plan, progress, artifacts, work orders and cost")
            .with_mime_type("application/json"),
        ResourceTemplate::new("factory://runs/{run_id}/artifacts/{+name}", "artifact")
            .with_title("An artifact of a run")
            .with_description(
                "An artifact as a team wrote it; `name` is its path under the run's directory, \
                 e.g. 01-requirements/requirements.md (get_run lists them)",
            )
            .with_mime_type("text/markdown"),
        ResourceTemplate::new("factory://runs/{run_id}/diffs/{work_order_id}", "diff")
            .with_title("A delivered work order's diff")
            .with_description("The work order's commit against its parent, as a unified diff")
            .with_mime_type("text/x-diff"),
    ]
}

/// `patch` as a unified diff (its lines were cut where the patch says `truncated`).
pub(super) fn unified_diff(patch: &WorkOrderPatch) -> String {
    let mut out = String::new();
    for file in &patch.files {
        let old = file.old_path.as_deref().unwrap_or(&file.path);
        out.push_str(&format!("diff --git a/{old} b/{}\n", file.path));
        if file.binary {
            out.push_str("Binary files differ\n");
            continue;
        }
        let (from, to) = match file.status.as_str() {
            "added" => ("/dev/null".to_string(), format!("b/{}", file.path)),
            "deleted" => (format!("a/{old}"), "/dev/null".to_string()),
            _ => (format!("a/{old}"), format!("b/{}", file.path)),
        };
        out.push_str(&format!("--- {from}\n+++ {to}\n"));
        for line in &file.lines {
            let marker = match line.kind {
                DiffLineKind::Addition => "+",
                DiffLineKind::Deletion => "-",
                DiffLineKind::Context if line.text.starts_with('\\') => "",
                DiffLineKind::Context => " ",
                DiffLineKind::Hunk => "",
            };
            out.push_str(marker);
            out.push_str(&line.text);
            out.push('\n');
        }
    }
    if patch.truncated {
        out.push_str("\\ (diff cut here: it is longer than the server shows)\n");
    }
    out
}

impl FactoryMcp {
    /// The newest runs' resources the caller may see.
    pub(super) async fn resource_list(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Vec<Resource>, ToolError> {
        let caller = self.caller(context)?;
        require(&caller, TokenScope::Viewer, "resources/list")?;
        let store = &self.services.store;
        let runs = store.list_runs(RESOURCE_LIST_RUNS).await?;
        let runs = self
            .only_visible(&caller, runs, |r| r.project.as_deref())
            .await;
        let mut resources = Vec::new();
        for summary in runs {
            let Some(run) = store.get_run_detail(&summary.id).await? else {
                continue;
            };
            let id = &run.summary.id;
            resources.push(
                Resource::new(run_uri(id), format!("run {id}"))
                    .with_title(format!("Run: {}", first_line(&run.summary.goal)))
                    .with_description(format!("status {}", run.summary.status))
                    .with_mime_type("application/json"),
            );
            for artifact in &run.artifacts {
                let name = artifact_name(id, artifact);
                resources.push(
                    Resource::new(artifact_uri(id, name), name.to_string())
                        .with_description(format!(
                            "{} by {} (stage {}) in run {id}",
                            artifact.name, artifact.team, artifact.stage
                        ))
                        .with_mime_type("text/markdown")
                        .with_size(artifact.bytes),
                );
            }
            for wo in &run.work_orders {
                if wo.status == WorkOrderState::Delivered {
                    resources.push(
                        Resource::new(diff_uri(id, &wo.id), format!("diff {}", wo.id))
                            .with_description(format!("{} (run {id})", wo.title))
                            .with_mime_type("text/x-diff"),
                    );
                }
            }
        }
        Ok(resources)
    }

    /// One resource's contents.
    pub(super) async fn resource_read(
        &self,
        context: &RequestContext<RoleServer>,
        uri: &str,
    ) -> Result<ResourceContents, ToolError> {
        let caller = self.caller(context)?;
        require(&caller, TokenScope::Viewer, "resources/read")?;
        let parsed = FactoryUri::parse(uri)?;
        self.visible_run(&caller, parsed.run_id()).await?;
        let services = &self.services;
        Ok(match parsed {
            FactoryUri::Run(run_id) => {
                let run = crate::api::run_detail(&services.store, &run_id).await?;
                ResourceContents::text(serde_json::to_string_pretty(&run)?, uri)
                    .with_mime_type("application/json")
            }
            FactoryUri::Artifact { run_id, name } => {
                let (_, text) = self.artifact(&run_id, &name).await?;
                ResourceContents::text(text, uri).with_mime_type("text/markdown")
            }
            FactoryUri::Diff {
                run_id,
                work_order_id,
            } => {
                let patch =
                    crate::dashboard::work_order_diff(&services.store, run_id, work_order_id)
                        .await?;
                ResourceContents::text(unified_diff(&patch), uri).with_mime_type("text/x-diff")
            }
        })
    }

    /// The run's artifact `name` (see [`find_artifact`]) and its text, read as the dashboard
    /// reads it.
    pub(super) async fn artifact(
        &self,
        run_id: &str,
        name: &str,
    ) -> Result<(ArtifactRef, String), ToolError> {
        let services = &self.services;
        let run = crate::api::run_detail(&services.store, run_id).await?;
        let path = find_artifact(&run, name)?.path.clone();
        Ok(
            crate::dashboard::artifact_text(&services.store, &services.data_dir, run_id, &path)
                .await?,
        )
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_into_what_they_name_and_bad_ones_list_the_forms() {
        assert_eq!(
            FactoryUri::parse("factory://runs/r1").unwrap(),
            FactoryUri::Run("r1".into())
        );
        assert_eq!(
            FactoryUri::parse("factory://runs/r1/artifacts/01-requirements/req.md").unwrap(),
            FactoryUri::Artifact {
                run_id: "r1".into(),
                name: "01-requirements/req.md".into()
            }
        );
        assert_eq!(
            FactoryUri::parse("factory://runs/r1/diffs/wo-1").unwrap(),
            FactoryUri::Diff {
                run_id: "r1".into(),
                work_order_id: "wo-1".into()
            }
        );
        for bad in [
            "factory://runs/",
            "factory://runs/r1/artifacts/",
            "factory://runs/r1/diffs/a/b",
            "factory://runs/r1/other",
            "file:///etc/passwd",
        ] {
            let err = FactoryUri::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("factory://runs/{run_id}/diffs/"),
                "{bad}: {err}"
            );
        }
        let uri = artifact_uri("r1", "01-a/b.md");
        assert_eq!(
            FactoryUri::parse(&uri).unwrap().run_id(),
            "r1",
            "a built URI parses back"
        );
    }

    #[test]
    fn a_patch_reads_as_a_unified_diff() {
        use app::server_fns::artifacts::{DiffFile, DiffLine};
        let line = |kind, text: &str| DiffLine {
            kind,
            text: text.into(),
        };
        let file = |path: &str, status: &str, lines| DiffFile {
            path: path.into(),
            old_path: None,
            status: status.into(),
            additions: 1,
            deletions: 0,
            binary: false,
            lines,
        };
        let patch = WorkOrderPatch {
            run_id: "r1".into(),
            work_order_id: "wo-1".into(),
            branch: None,
            commit: "c".into(),
            parent: None,
            files: vec![
                file(
                    "new.txt",
                    "added",
                    vec![
                        line(DiffLineKind::Hunk, "@@ -0,0 +1 @@"),
                        line(DiffLineKind::Addition, "hello"),
                        line(DiffLineKind::Context, "\\ No newline at end of file"),
                    ],
                ),
                file(
                    "a.rs",
                    "modified",
                    vec![
                        line(DiffLineKind::Hunk, "@@ -1,2 +1,2 @@"),
                        line(DiffLineKind::Context, "fn a() {}"),
                        line(DiffLineKind::Deletion, "old"),
                        line(DiffLineKind::Addition, "new"),
                    ],
                ),
            ],
            additions: 2,
            deletions: 1,
            truncated: false,
        };
        assert_eq!(
            unified_diff(&patch),
            "diff --git a/new.txt b/new.txt\n--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n\
             \\ No newline at end of file\n\
             diff --git a/a.rs b/a.rs\n--- a/a.rs\n+++ b/a.rs\n@@ -1,2 +1,2 @@\n fn a() {}\n-old\n\
             +new\n"
        );
    }
}
