#!/usr/bin/env bash
# Sets the machine up, builds Factory in release mode and runs it: dashboard on
# http://127.0.0.1:3000 (FACTORY_ADDR to change), data in ~/.local/share/factory
# (FACTORY_DATA_DIR to change). Extra arguments go to `factory serve`.
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
bash "$here/setup.sh"
source "$here/env.sh"
cd "$FACTORY_ROOT"
factory_phase "build (cargo leptos build --release)" cargo leptos build --release
exec target/release/factory serve "$@"
