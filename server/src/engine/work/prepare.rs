//! A stage's prepare step: before any work order's sandbox, the project's dependencies are
//! fetched for the run's base commit (`delivery::toolchain::prepare`: network, but no
//! model-written code and no install scripts, cached per lock file) and each step becomes a
//! `dependencies_prepared` event. What the sandbox then shows of the toolchains is returned.

use std::path::Path;

use app::events::EventData;
use tokio::sync::Mutex;

use super::super::Engine;
use super::gates;
use crate::delivery::project::ProjectPolicy;
use crate::delivery::sandbox::{Bubblewrap, GateLimits};
use crate::delivery::toolchain::{self, HostEnv, LockFiles, ToolchainView};
use crate::delivery::worktree::export_tree;

/// One prepare step at a time: two runs with the same lock file share its cache.
static PREPARING: Mutex<()> = Mutex::const_new(());

/// Files of the base commit exported for the prepare step, at most.
const MAX_EXPORTED: usize = 100_000;

/// Prepares the dependencies of the project at `root` for `base`; returns the toolchains
/// gates and agent commands see, and the events of what ran.
pub(super) async fn prepare(
    engine: &Engine,
    run_id: &str,
    root: &Path,
    base: &str,
    policy: &ProjectPolicy,
    limits: &GateLimits,
) -> (ToolchainView, Vec<EventData>) {
    let host = HostEnv::current();
    let cache = toolchain::cache_dir(&engine.data_dir);
    let scratch = engine.data_dir.join("cache").join("scratch");
    let (repo, commit) = (root.to_path_buf(), base.to_string());
    let exported = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        let tree = tempfile::Builder::new()
            .prefix("prepare-")
            .tempdir_in(&scratch)
            .map_err(|e| e.to_string())?;
        export_tree(&repo, &commit, tree.path(), MAX_EXPORTED, u64::MAX)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(tree)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let Ok(tree) = exported else {
        return (
            toolchain::detect(&host, root, &cache, &LockFiles::default()),
            Vec::new(),
        );
    };
    let lock = LockFiles::of(tree.path());
    let mut events = Vec::new();
    if lock != LockFiles::default() && Bubblewrap::available().await {
        let sandbox = gates::bubblewrap(
            &engine.config,
            policy,
            &engine.data_dir,
            ToolchainView::default(),
        );
        let _one = PREPARING.lock().await;
        let steps =
            toolchain::prepare(&sandbox, &host, root, tree.path(), &lock, &cache, limits).await;
        events.extend(steps.into_iter().map(|p| EventData::DependenciesPrepared {
            run_id: run_id.to_string(),
            tool: p.tool,
            command: p.command,
            key: p.key,
            cached: p.cached,
            exit_code: p.exit_code,
            duration_ms: p.duration_ms,
            tail: p.tail,
        }));
    }
    (toolchain::detect(&host, root, &cache, &lock), events)
}
