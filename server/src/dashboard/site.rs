//! Where the compiled dashboard lives and the Leptos options that point at it, so
//! `factory serve` works when started directly, without any `LEPTOS_*` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use leptos::config::LeptosOptions;

/// Name cargo-leptos gives the JS, WASM and CSS files
/// (`[[workspace.metadata.leptos]] output-name`).
const OUTPUT_NAME: &str = "factory";

/// The site root: `explicit`, else `LEPTOS_SITE_ROOT`, else the first of `<exe>/site`,
/// `<exe>/../site` (cargo-leptos puts `target/site` beside `target/debug`) and `./target/site`
/// that holds `pkg/`. `None` when the dashboard has not been built.
pub fn site_root(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("LEPTOS_SITE_ROOT") {
        return Some(PathBuf::from(dir));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let mut candidates = Vec::new();
    if let Some(dir) = exe_dir {
        candidates.push(dir.join("site"));
        if let Some(parent) = dir.parent() {
            candidates.push(parent.join("site"));
        }
    }
    candidates.push(PathBuf::from("target/site"));
    candidates.into_iter().find(|c| c.join("pkg").is_dir())
}

/// Leptos options for a server listening on `addr` with assets in `site_root`.
pub fn leptos_options(site_root: &Path, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_root.to_string_lossy().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}
