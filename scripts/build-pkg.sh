#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack (--target web, no downloads), wasm-opt -Oz
# from the npm `binaryen` package, then our entry files and package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[pkg] %s\n' "$*" >&2; }

say "wasm-pack build (release, --target web)"
wasm-pack --quiet build --release --target web --mode no-install --no-pack --weak-refs --out-dir pkg --out-name vcc_auth . >&2
rm -f pkg/.gitignore pkg/package.json

say "wasm-opt -Oz"
node_modules/.bin/wasm-opt pkg/vcc_auth_bg.wasm -Oz --strip-debug --strip-producers -o pkg/vcc_auth_bg.wasm

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
cp js/node.mjs js/browser.mjs js/workerd.mjs js/client.mjs js/index.d.ts pkg/
sed "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" js/package.json > pkg/package.json
cp README.md pkg/README.md 2>/dev/null || true
say "built pkg/ (vcc-auth $version): $(wc -c < pkg/vcc_auth_bg.wasm) bytes of wasm"
