//! Section 3: the engineering agent loop's overhead per turn, in a real git repository.

use std::time::{Duration, Instant};

use app::events::EventData;
use factory_server::store::runs::NewRun;

use crate::loopback::{AGENT_TURNS, Turns, model_with};
use crate::{QUIET_LIMIT, engine_for, percentile};

fn repository(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("src")).expect("repository");
    std::fs::write(
        dir.join("src/lib.rs"),
        "pub fn answer() -> u32 {\n    42\n}\n",
    )
    .expect("file");
    let repo = git2::Repository::init(dir).expect("git init");
    let mut index = repo.index().expect("index");
    index
        .add_path(std::path::Path::new("src/lib.rs"))
        .expect("add");
    let tree = repo
        .find_tree(index.write_tree().expect("tree"))
        .expect("tree");
    let who = git2::Signature::now("bench", "bench@example.com").expect("signature");
    repo.commit(Some("HEAD"), &who, &who, "start", &tree, &[])
        .expect("commit");
}

/// Runs `runs` runs whose work order's engineer takes [`AGENT_TURNS`] command turns; returns
/// each turn's overhead (sorted) and a command's own time alone (p50).
pub(crate) async fn agent_loop(runs: usize) -> (Vec<Duration>, Duration) {
    use app::dto::{Project, ProjectPolicy, SandboxKind};
    use factory_server::delivery::sandbox::{GateLimits, Process, Sandbox};
    let turns = Turns::default();
    let base = model_with(Duration::ZERO, Some(turns.clone())).await;
    let (engine, store, dir) = engine_for(&base, 4).await;
    let repo = dir.path().join("repo");
    repository(&repo);
    let path = repo.canonicalize().expect("path").display().to_string();
    store
        .add_project(
            Project {
                name: "bench".into(),
                path: path.clone(),
                remote: None,
                github: None,
                gates: Vec::new(),
                require_clean: false,
                active: true,
                created_at: factory_server::store::now_rfc3339(),
                policy: ProjectPolicy {
                    sandbox: Some(SandboxKind::Process),
                    allow_unsafe_process: true,
                    allow_unverified: true,
                    ..ProjectPolicy::default()
                },
            },
            "bench",
        )
        .await
        .expect("store")
        .expect("project");
    let mut events = store.subscribe();
    for i in 0..runs {
        let run_id = store
            .create_run(
                NewRun {
                    goal: format!("Agent benchmark {i}: note the change"),
                    project: Some(path.clone()),
                    request_id: None,
                    pipeline: None,
                },
                "bench",
            )
            .await
            .expect("run")
            .0;
        engine.submit(run_id.clone());
        loop {
            let Ok(event) = tokio::time::timeout(QUIET_LIMIT, events.recv()).await else {
                panic!(
                    "agent run {run_id} recorded nothing for {} s",
                    QUIET_LIMIT.as_secs()
                );
            };
            let event = event.expect("events");
            if event.run_id.as_deref() != Some(run_id.as_str()) {
                continue;
            }
            if let EventData::RunFinished { status, reason, .. } = &event.data {
                assert_eq!(status.as_str(), "succeeded", "{reason}");
                break;
            }
        }
    }
    // A command alone, in the same runner.
    let work = tempfile::tempdir().expect("directory");
    let mut alone = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let ran = Process
            .run(work.path(), "true", &GateLimits::default())
            .await
            .expect("true");
        assert!(ran.passed);
        alone.push(started.elapsed());
    }
    alone.sort();
    let command = percentile(&alone, 0.5);
    let recorded = turns.0.lock().unwrap().clone();
    assert_eq!(
        recorded.len(),
        runs * (AGENT_TURNS + 1),
        "each work order: {AGENT_TURNS} command turns and an answer"
    );
    let mut overheads = Vec::with_capacity(runs * AGENT_TURNS);
    // The first run warms caches and connections.
    for one in recorded.chunks(AGENT_TURNS + 1).skip(usize::from(runs > 1)) {
        for pair in one.windows(2) {
            let gap = pair[1].0.saturating_duration_since(pair[0].1);
            overheads.push(gap.saturating_sub(command));
        }
    }
    overheads.sort();
    (overheads, command)
}
