# Sourced by the other scripts: puts Factory's pinned tools on PATH and selects the Rust
# toolchain that can build the WASM dashboard on this machine. Changes nothing on disk
# except the small shim directory below.

FACTORY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FACTORY_ROOT

# Pinned tool versions (wasm-bindgen must equal the wasm-bindgen crate in Cargo.lock).
CARGO_LEPTOS_VERSION=0.3.11
WASM_BINDGEN_VERSION=0.2.130

if [ -z "${FACTORY_TOOLS_DIR:-}" ]; then
  if [ "$(id -u)" = 0 ]; then FACTORY_TOOLS_DIR=/opt/factory-tools; else FACTORY_TOOLS_DIR="$HOME/.local/share/factory-tools"; fi
fi
export FACTORY_TOOLS_DIR
CARGO_LEPTOS_ROOT="$FACTORY_TOOLS_DIR/cargo-leptos-$CARGO_LEPTOS_VERSION"
WASM_BINDGEN_ROOT="$FACTORY_TOOLS_DIR/wasm-bindgen-$WASM_BINDGEN_VERSION"

# Which Rust builds everything (server, tests and WASM alike, so their artifacts are shared):
#  - rustup, when it has the wasm32 target and rust-src (machines that reach rustup's servers);
#  - otherwise Debian's rustc-web 1.96 with its standard-library source (machines that reach only
#    the package registries; see ../shared/TOOLCHAIN.md), through a shim directory first on PATH.
# rustup counts only when its rustc is at least 1.96: Cargo.lock and cargo-leptos 0.3.11 (built
# --locked) need it, and a machine whose rustup reached the wasm32 target but is older must still
# take the Debian route.
FACTORY_MIN_RUSTC_MINOR=96
factory_rustup_new_enough() {
  local minor
  minor=$("$(rustup which rustc 2>/dev/null)" --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
  [ -n "$minor" ] && [ "$minor" -ge "$FACTORY_MIN_RUSTC_MINOR" ]
}
factory_rustup_has_wasm() {
  command -v rustup >/dev/null 2>&1 &&
    factory_rustup_new_enough &&
    rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown &&
    rustup component list --installed 2>/dev/null | grep -q '^rust-src'
}

if factory_rustup_has_wasm; then
  FACTORY_TOOLCHAIN=rustup
elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
  FACTORY_TOOLCHAIN=debian
  shim="$FACTORY_TOOLS_DIR/shim"
  mkdir -p "$shim"
  for tool in cargo rustc rustdoc cargo-clippy clippy-driver; do
    if [ -x "/usr/bin/$tool" ] && [ ! -e "$shim/$tool" ]; then ln -sf "/usr/bin/$tool" "$shim/$tool"; fi
  done
  export PATH="$shim:$PATH" RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
else
  FACTORY_TOOLCHAIN=none
fi
export FACTORY_TOOLCHAIN

# The WASM build passes -Zbuild-std (Cargo.toml's leptos metadata); stable toolchains accept it
# with RUSTC_BOOTSTRAP. Set for every build so all of them share one set of fingerprints.
export RUSTC_BOOTSTRAP=1
# cargo-leptos sets this while building; setting it everywhere keeps `cargo test` from
# rebuilding the crates that read it at compile time.
export LEPTOS_OUTPUT_NAME=factory

export PATH="$CARGO_LEPTOS_ROOT/bin:$WASM_BINDGEN_ROOT/bin:$FACTORY_ROOT/node_modules/.bin:$PATH"

# Runs a named phase and prints how long it took, so slow steps are visible.
factory_phase() {
  local name="$1"
  shift
  local started=$SECONDS
  echo "==> $name"
  "$@"
  local status=$?
  echo "<== $name: $((SECONDS - started)) s (exit $status)"
  return $status
}
