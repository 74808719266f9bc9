#!/usr/bin/env bash
# Sets the machine up, builds Factory and runs it: dashboard on http://127.0.0.1:3000
# (FACTORY_ADDR to change), data in ~/.local/share/factory (FACTORY_DATA_DIR to change).
#
# The default build is the one the test command makes (`cargo leptos build`: dependencies and
# the server at opt-level 1, the dashboard's WASM unoptimised), so a first run is quick and a
# later `scripts/test.sh` rebuilds nothing. `--release` builds the optimised server and the
# size-optimised WASM instead (what the benchmarks and a deployment use). Other arguments go to
# `factory serve`.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
release=false
if [ "${1:-}" = "--release" ]; then
  release=true
  shift
fi
bash "$here/setup.sh"
source "$here/env.sh"
cd "$FACTORY_ROOT"
if $release; then
  factory_phase "build (cargo leptos build --release)" cargo leptos build --release
  exec target/release/factory serve "$@"
fi
factory_phase "build (cargo leptos build)" cargo leptos build
exec target/debug/factory serve "$@"
