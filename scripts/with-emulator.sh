#!/usr/bin/env bash
# Runs "$@" with a VCC emulator on a free loopback port; VCC_EMULATOR_URL points at it.
# The emulator is stopped when the command ends, whatever way it ends.
# Extra emulator flags: EMULATOR_ARGS="--token-lifetime 5" scripts/with-emulator.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p vcc-emulator
dir=$(mktemp -d)
# shellcheck disable=SC2086
target/release/vcc-emulator --url-file "$dir/url" ${EMULATOR_ARGS:-} >"$dir/log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$dir/url" ] && break; sleep 0.1; done
if [ ! -s "$dir/url" ]; then echo "emulator did not start:" >&2; cat "$dir/log" >&2; exit 1; fi
VCC_EMULATOR_URL=$(cat "$dir/url")
export VCC_EMULATOR_URL
echo "[with-emulator] $VCC_EMULATOR_URL" >&2
"$@"
