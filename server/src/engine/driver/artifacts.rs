//! What a COMPLETE result leaves: its artifacts on disk (atomically) and memory items.

use super::*;

/// A result's artifact files being written, beside the commit that records them.
pub(super) struct ArtifactFiles(Option<tokio::task::JoinHandle<std::io::Result<()>>>);

impl ArtifactFiles {
    /// Waits for the files; the error says which stage's files could not be written.
    pub(super) async fn written(self) -> std::io::Result<()> {
        match self.0 {
            Some(handle) => handle.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

/// Starts writing a result's artifacts under `runs/<run>/<NN>-<stage>/` (`r<N>-…` for review
/// revisions), atomically (temp file, then rename), on the blocking pool. Returns the directory
/// relative to the data directory, and the write to wait for.
///
/// The stage's commit is sent while the files are written: creating a directory and files
/// (inode allocation) costs about as much as the rest of a stage outside the commit, and the
/// commit's fsync leaves the CPU idle. The driver waits for both before going on, so a stage
/// whose files failed is followed by the run's failure, saying why. The log holds every
/// artifact's text, so files lost to a crash in between are written again when the run is
/// driven next ([`restore_artifacts`]).
pub(super) fn write_artifacts(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    result: &TaskResult,
) -> std::io::Result<(String, ArtifactFiles)> {
    let relative = artifact_dir(run, run.next_index, &stage.name);
    check_names(run, &stage.name, &result.artifacts)?;
    if result.artifacts.is_empty() {
        return Ok((relative, ArtifactFiles(None)));
    }
    let dir = engine.data_dir.join(&relative);
    let artifacts = result.artifacts.clone();
    // One trip to the blocking pool for the whole stage rather than one per file operation.
    let handle = tokio::task::spawn_blocking(move || write_files(&dir, &artifacts));
    Ok((relative, ArtifactFiles(Some(handle))))
}

/// Writes again the files of this revision's completed stages that are not on disk (a crash
/// between a stage's commit and its files), from their text in the log. Whether each is there
/// is asked with its path alone, so when none is gone (nearly always) no text is copied.
pub(super) async fn restore_artifacts(engine: &Engine, run: &RunState) -> std::io::Result<()> {
    let stages: Vec<(std::path::PathBuf, &[Artifact])> = run
        .completed
        .iter()
        .filter(|(_, stage, _, r)| check_names(run, stage, &r.artifacts).is_ok())
        .map(|(index, stage, _, r)| {
            let dir = engine.data_dir.join(artifact_dir(run, *index, stage));
            (dir, r.artifacts.as_slice())
        })
        .collect();
    let paths: Vec<std::path::PathBuf> = stages
        .iter()
        .flat_map(|(dir, artifacts)| artifacts.iter().map(|a| dir.join(&a.name)))
        .collect();
    if paths.is_empty() {
        return Ok(());
    }
    let mut gone = blocking(move || {
        Ok(paths
            .iter()
            .map(|p| std::fs::symlink_metadata(p).is_err())
            .collect::<Vec<bool>>())
    })
    .await?
    .into_iter();
    let mut lost = Vec::new();
    for (dir, artifacts) in stages {
        let missing: Vec<Artifact> = artifacts
            .iter()
            .zip(gone.by_ref())
            .filter(|(_, gone)| *gone)
            .map(|(artifact, _)| artifact.clone())
            .collect();
        if !missing.is_empty() {
            lost.push((dir, missing));
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    blocking(move || {
        lost.iter()
            .try_for_each(|(dir, artifacts)| write_files(dir, artifacts))
    })
    .await
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(std::io::Error::other)?
}

/// Where stage `index`'s artifacts go, relative to the data directory.
fn artifact_dir(run: &RunState, index: u32, stage: &str) -> String {
    let revision = if run.revision > 0 {
        format!("r{}-", run.revision)
    } else {
        String::new()
    };
    format!("runs/{}/{revision}{:02}-{stage}", run.run_id, index + 1)
}

/// Every part of the path is a plain name (stage names are checked when a pipeline is parsed,
/// run ids are ours, artifact names by the TaskResult gate); checked again here, where a
/// path-like name would become a write outside the data directory.
fn check_names(run: &RunState, stage: &str, artifacts: &[Artifact]) -> std::io::Result<()> {
    let plain = |name: &str| {
        std::path::Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            && !name.contains('/')
    };
    if !crate::engine::pipeline::valid_name(stage)
        || !plain(&run.run_id)
        || artifacts
            .iter()
            .any(|a| !plain(&a.name) || a.name.is_empty())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a stage, run or artifact name is not a plain file name",
        ));
    }
    Ok(())
}

/// Writes `artifacts` into `dir` (made when missing), over any file of the same name (a stage
/// attempted again).
fn write_files(dir: &std::path::Path, artifacts: &[Artifact]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for artifact in artifacts {
        let target = dir.join(&artifact.name);
        // A random, exclusively created temp name: nothing planted there is followed.
        let mut tmp = tempfile::Builder::new()
            .prefix(".factory-artifact-")
            .tempfile_in(dir)?;
        std::io::Write::write_all(&mut tmp, artifact.content.as_bytes())?;
        tmp.persist(&target).map_err(|e| e.error)?;
    }
    Ok(())
}

/// Memory from a COMPLETE result: verified facts (team and shared banks) and a summary of
/// each artifact (team bank). Ids are deterministic, so a repeated commit adds nothing.
pub(super) fn retain(
    run: &RunState,
    index: u32,
    team: &Team,
    result: &TaskResult,
) -> Vec<EventData> {
    let mut out = Vec::new();
    let prefix = format!("{}/r{}/{index}", run.run_id, run.revision);
    let item = |id: String, bank: &str, kind: &str, text: String| EventData::MemoryRetained {
        item_id: id,
        bank: bank.to_string(),
        project: run.project.clone(),
        run_id: Some(run.run_id.clone()),
        kind: kind.to_string(),
        text,
    };
    for (i, fact) in result.verified_facts.iter().take(20).enumerate() {
        let fact: String = fact.chars().take(1_000).collect();
        out.push(item(
            format!("{prefix}/fact/{i}"),
            team.name(),
            "fact",
            fact.clone(),
        ));
        out.push(item(
            format!("{prefix}/fact/{i}/shared"),
            SHARED_BANK,
            "fact",
            fact,
        ));
    }
    for artifact in &result.artifacts {
        out.push(item(
            format!("{prefix}/artifact/{}", artifact.name),
            team.name(),
            "artifact_summary",
            format!("{}: {}", artifact.name, summarise(&artifact.content, 1_500)),
        ));
    }
    out
}

/// An extractive summary for indexing: headings and the first line under each, capped.
pub fn summarise(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out = String::new();
    let mut take_next = true;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let heading = line.starts_with('#');
        if heading || take_next {
            if out.chars().count() + line.chars().count() + 1 > max_chars {
                break;
            }
            out.push_str(line);
            out.push('\n');
        }
        take_next = heading;
    }
    out
}
