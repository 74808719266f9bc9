//! What a COMPLETE result leaves: its artifacts on disk (atomically) and memory items.

use super::*;

/// Writes a result's artifacts under `runs/<run>/<NN>-<stage>/` (`r<N>-…` for review
/// revisions), atomically (temp file, then rename). Returns the directory relative to the data
/// directory.
pub(super) async fn write_artifacts(
    engine: &Engine,
    run: &RunState,
    stage: &Stage,
    result: &TaskResult,
) -> std::io::Result<String> {
    let revision = if run.revision > 0 {
        format!("r{}-", run.revision)
    } else {
        String::new()
    };
    let relative = format!(
        "runs/{}/{revision}{:02}-{}",
        run.run_id,
        run.next_index + 1,
        stage.name
    );
    // Every part of the path is a plain name (stage names are checked when a pipeline is
    // parsed, run ids are ours, artifact names by the TaskResult gate); checked again here,
    // where a path-like name would become a write outside the data directory.
    let plain = |name: &str| {
        std::path::Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
            && !name.contains('/')
    };
    if !crate::engine::pipeline::valid_name(&stage.name)
        || !plain(&run.run_id)
        || result
            .artifacts
            .iter()
            .any(|a| !plain(&a.name) || a.name.is_empty())
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a stage, run or artifact name is not a plain file name",
        ));
    }
    if result.artifacts.is_empty() {
        return Ok(relative);
    }
    let dir = engine.data_dir.join(&relative);
    let artifacts = result.artifacts.clone();
    // One trip to the blocking pool for the whole stage rather than one per file operation.
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        for artifact in &artifacts {
            // Names were validated by the gate: plain file names, no directories.
            // A random, exclusively created temp name: nothing planted there is followed.
            let target = dir.join(&artifact.name);
            let mut tmp = tempfile::Builder::new()
                .prefix(".factory-artifact-")
                .tempfile_in(&dir)?;
            std::io::Write::write_all(&mut tmp, artifact.content.as_bytes())?;
            tmp.persist(&target).map_err(|e| e.error)?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok(relative)
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
