#!/usr/bin/env bash
# Dashboard benchmark: a release build, then the WASM size (raw and gzip) and the run page's
# server render and first paint times (end2end/bench.mjs prints the table).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/env.sh"
cd "$FACTORY_ROOT"
factory_phase "release build (cargo leptos build --release)" cargo leptos build --release
factory_phase "dashboard benchmark" node end2end/bench.mjs
