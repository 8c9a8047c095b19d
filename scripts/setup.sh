#!/usr/bin/env bash
# Installs what vcc-auth needs to build and test, skipping whatever is already present,
# so that a warm machine is fast and a fresh one (CI) gets everything from these files.
# Usage: scripts/setup.sh [rust|wasm-tools|browser|redis|npm|all]...
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must match the `wasm-bindgen = "=…"` pin in Cargo.toml
WASM_PACK_VERSION=0.15.1

say() { printf '[setup] %s\n' "$*" >&2; }

rust() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
}

# `--locked` first (reproducible); the registry mirror here has lacked a version a published
# lockfile pins (webpki-roots 1.0.11 for wasm-bindgen-cli 0.2.130), so fall back to a fresh
# resolution rather than fail the whole build.
cargo_install() {
  cargo install --locked "$@" || { say "locked install failed; retrying without --locked"; cargo install "$@"; }
}

wasm_tools() {
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (~4 min)"
    cargo_install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
    say "installing wasm-pack $WASM_PACK_VERSION (~4 min)"
    cargo_install wasm-pack --version "$WASM_PACK_VERSION"
  fi
}

browser() {
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    say "installing Debian chromium + chromium-driver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

redis() {
  # The store's tests start their own redis-server on a free loopback port (tests/store/);
  # the package's service, if apt starts one, is not used.
  if ! command -v redis-server >/dev/null; then
    say "installing Debian redis-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq redis-server >/dev/null
  fi
}

npm_deps() {
  # `npm ci` is exact and reproducible from the committed lock; skip when npm's own record
  # of the install (node_modules/.package-lock.json) is there and newer than the lock, so
  # an emptied node_modules is reinstalled.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing npm dev dependencies from package-lock.json"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules/.package-lock.json
  fi
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    rust) rust ;;
    wasm-tools) wasm_tools ;;
    browser) browser ;;
    redis) redis ;;
    npm) npm_deps ;;
    all) rust; browser; redis; npm_deps; wasm_tools ;;
    *) say "unknown part: $what"; exit 2 ;;
  esac
done
