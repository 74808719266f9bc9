#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), then runs every check: formatting, clippy (server and
# browser builds), the unit and integration tests, and the browser test in headless Chromium.
# Prints the time of each phase. Exit status is non-zero if anything fails.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/env.sh"
source "$here/docker-engine.sh"
source "$here/python-tools.sh"
cd "$FACTORY_ROOT"
started=$SECONDS
trap factory_docker_stop EXIT

factory_phase "cargo fmt --check" cargo fmt --all -- --check
factory_phase "clippy (server, shared types)" cargo clippy --workspace --all-targets -- -D warnings
factory_phase "clippy (browser build)" cargo clippy -p factory-front --features hydrate \
  --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort --target-dir target/front -- -D warnings
factory_phase "build dashboard and server (cargo leptos build)" cargo leptos build
factory_phase "docker engine (for the sandbox tests)" factory_docker_engine
factory_phase "python tools (MCP client, Prometheus parser)" factory_python_tools
factory_phase "unit and integration tests" cargo test -p server -p app
factory_phase "browser test (headless Chromium)" node end2end/run.mjs
factory_phase "benchmarks, smoke mode (a few iterations each)" bash scripts/bench-smoke.sh

echo "all checks passed in $((SECONDS - started)) s ($SECONDS s with the setup)"
