#!/usr/bin/env bash
# Every benchmark in smoke mode: a few iterations each, built with the dev profile (built first,
# unbounded), each run bounded in time. A bench that hangs or breaks fails the test command
# instead of rotting unnoticed; the figures printed here mean nothing (`cargo bench` and
# `scripts/bench-dashboard.sh` give those, see docs/performance.md).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
source "$here/env.sh"
cd "$FACTORY_ROOT"
export FACTORY_BENCH_SMOKE=1
limit=300

# Building is not what is bounded: on a clean machine linking seven debug bench binaries takes
# minutes, so they are built first and only their runs are timed. `-p app` as in `cargo test -p
# server -p app`: the same packages give the same features, so the benches link the libraries
# the tests built instead of compiling `app` and `server` again (about eight minutes on 2 cores).
packages=(-p server -p app)
echo "-- building the benches (dev profile)"
cargo bench --profile dev -q "${packages[@]}" --bench store --bench gateway --bench engine --bench delivery --bench repo_map --bench gym --bench mcp --no-run

smoke() {
  local name=$1
  shift
  echo "-- bench $name (smoke)"
  if ! env "$@" timeout "$limit" cargo bench --profile dev -q "${packages[@]}" --bench "$name"; then
    echo "bench $name failed, or did not finish within $limit s" >&2
    return 1
  fi
}

smoke store
smoke gateway FACTORY_BENCH_RATE=200 FACTORY_BENCH_SECS=1
smoke engine FACTORY_BENCH_RUNS=3 FACTORY_BENCH_CONCURRENT=20 FACTORY_BENCH_DELAY_MS=20 FACTORY_BENCH_AGENT_RUNS=2
smoke delivery FACTORY_BENCH_ROUNDS=2
smoke repo_map
smoke gym
smoke mcp
echo "-- bench dashboard (smoke)"
if ! FACTORY_BIN="$FACTORY_ROOT/target/debug/factory" timeout "$limit" node end2end/bench.mjs; then
  echo "bench dashboard failed, or did not finish within $limit s" >&2
  exit 1
fi
