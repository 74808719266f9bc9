#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to one that can build, run and test Factory. Idempotent:
# when everything is installed it finishes in seconds. Downloads only from the package
# registries (Debian, crates.io, npm).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FACTORY_ROOT"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "setup: need root (or sudo) to run: $*" >&2; return 1; fi
}

missing_debs() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}

apt_install() {
  local missing
  missing=$(missing_debs "$@")
  [ -z "$missing" ] && return 0
  echo "setup: installing Debian packages: $missing"
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

# Build tools, the browser for the dashboard tests, and the sandboxes the gates use.
system_packages() {
  apt_install ca-certificates git gcc libc6-dev pkg-config libssl-dev make python3 python3-venv curl \
    chromium docker.io bubblewrap busybox-static
  # Node.js may come from elsewhere (as on these machines); only install Debian's when absent.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
  fi
}

# The WASM toolchain: rustup's target where it can be had (short timeouts: on a machine that
# only reaches the package registries the download hangs), else Debian's rustc-web route.
wasm_toolchain() {
  if factory_rustup_has_wasm; then return 0; fi
  if [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ] && [ -e /usr/bin/rust-lld ] &&
    [ -x /usr/bin/cargo-clippy ] && [ -z "$(missing_debs lld-22)" ]; then
    return 0
  fi
  if command -v rustup >/dev/null 2>&1 && factory_rustup_new_enough &&
    timeout 30 rustup target add wasm32-unknown-unknown >/dev/null 2>&1 &&
    timeout 60 rustup component add rust-src >/dev/null 2>&1; then
    echo "setup: using rustup's wasm32 target"
    return 0
  fi
  echo "setup: rustup has no usable wasm32 toolchain (rustc 1.96 or newer with the wasm32 target) here; using Debian's rustc-web + build-std"
  apt_install rustc-web cargo-web rust-web-src rust-web-llvm rust-web-clippy lld-22
}

# Build tools run a handful of times per build, so they are compiled for a quick install rather
# than for speed: opt-level 0, no LTO, 256 codegen units, no debug info (cargo-leptos with its
# own release profile — fat LTO, one codegen unit — took 37 minutes on 2 cores; with LTO off and
# opt-level 3, 17; at opt-level 1, 13). Both tools build in one target directory, so what they
# share is built once; it is removed after the second.
tool_install() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_TARGET_DIR="$FACTORY_TOOLS_DIR/build/tools" cargo install "$@"
}

# cargo-leptos, pinned, into a fixed root.
cargo_leptos() {
  if [ -x "$CARGO_LEPTOS_ROOT/bin/cargo-leptos" ]; then return 0; fi
  echo "setup: installing cargo-leptos $CARGO_LEPTOS_VERSION (about 8 minutes on 2 cores)"
  source "$FACTORY_ROOT/scripts/env.sh" # re-select the toolchain just installed
  tool_install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked \
    --features no_downloads --root "$CARGO_LEPTOS_ROOT"
}

# The wasm-bindgen CLI of exactly the crate's version (without --locked: its lock file pins a
# crate version the registry no longer serves).
wasm_bindgen() {
  if [ -x "$WASM_BINDGEN_ROOT/bin/wasm-bindgen" ]; then
    rm -rf "$FACTORY_TOOLS_DIR/build/tools"
    return 0
  fi
  grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | grep -q "version = \"$WASM_BINDGEN_VERSION\"" || {
    echo "setup: Cargo.lock's wasm-bindgen differs from $WASM_BINDGEN_VERSION; update scripts/env.sh" >&2
    return 1
  }
  echo "setup: installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  tool_install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$WASM_BINDGEN_ROOT"
  rm -rf "$FACTORY_TOOLS_DIR/build/tools"
}

# Tailwind, wasm-opt (binaryen) and playwright-core, pinned by package.json (exact versions) and
# package-lock.json. `npm install --no-save` rather than `npm ci`: npm 11 leaves some of
# tailwind's optional per-platform packages out of the lock file and `npm ci` then refuses it;
# `--no-save` installs what the lock says and never rewrites it.
npm_tools() {
  if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] &&
    [ -x node_modules/.bin/tailwindcss ] && [ -f node_modules/echarts/dist/echarts.min.js ] &&
    [ -f node_modules/idiomorph/dist/idiomorph.min.js ]; then
    vendor_scripts
    return 0
  fi
  npm install --no-save --no-audit --no-fund --loglevel=error
  vendor_scripts
}

# The dashboard loads ECharts (the Costs charts) and Idiomorph (live refreshes, see
# public/live.js) from /vendor (public/vendor is not committed): copied from npm on every
# setup, so they always match package.json.
vendor_scripts() {
  mkdir -p public/vendor
  cp node_modules/echarts/dist/echarts.min.js public/vendor/echarts.min.js
  cp node_modules/idiomorph/dist/idiomorph.min.js public/vendor/idiomorph.min.js
}

factory_phase "apt packages" system_packages
factory_phase "wasm toolchain" wasm_toolchain
source "$FACTORY_ROOT/scripts/env.sh"
factory_phase "cargo-leptos" cargo_leptos
factory_phase "wasm-bindgen-cli" wasm_bindgen
factory_phase "npm tools" npm_tools
echo "setup: ready (toolchain: $FACTORY_TOOLCHAIN, tools in $FACTORY_TOOLS_DIR)"
