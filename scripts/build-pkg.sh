#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack (--target web, no downloads), wasm-opt -Oz
# from the npm `binaryen` package, then our entry files and package.json.
#   scripts/build-pkg.sh            the npm package (pkg/)
#   scripts/build-pkg.sh --gateway  the Gateway and Broker classes without the client, for
#                                   worker/ (worker/build/)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[pkg] %s\n' "$*" >&2; }

out=pkg features=()
if [ "${1:-}" = "--gateway" ]; then
  # No VccClient: a Worker never runs it, and workerd compiles the whole module at
  # each cold start (docs/performance.md has the figures).
  out=worker/build features=(--no-default-features --features gateway)
  # Its own target dir: the two feature sets would otherwise rebuild each other, and
  # target/wasm32-unknown-unknown/release/vcc_auth.wasm stays the npm build (make bench).
  export CARGO_TARGET_DIR=target/gateway
fi

say "wasm-pack build (release, --target web) -> $out"
# The JS helpers the glue imports land in snippets/<crate>-<hash>/: no stale copies.
rm -rf "$out/snippets"
wasm-pack --quiet build --release --target web --mode no-install --no-pack --weak-refs --out-dir "$out" --out-name vcc_auth . "${features[@]}" >&2
rm -f "$out/.gitignore" "$out/package.json"

say "wasm-opt -Oz"
node_modules/.bin/wasm-opt "$out/vcc_auth_bg.wasm" -Oz --strip-debug --strip-producers -o "$out/vcc_auth_bg.wasm"

if [ "$out" = pkg ]; then
  # Whitespace and comments out of the generated glue and the helpers it imports (the
  # docs ship in vcc_auth.d.ts; the helpers' source is src/glue/): 8.0 -> 5.4 KB to
  # download, gzipped. Names are kept, so stack traces still read.
  say "esbuild --minify-whitespace --minify-syntax: the glue"
  for f in "$out/vcc_auth.js" $(find "$out/snippets" -name '*.js'); do
    node_modules/.bin/esbuild "$f" --format=esm --minify-whitespace --minify-syntax --legal-comments=none \
      --log-level=warning --outfile="$f" --allow-overwrite
  done
  cp js/node.mjs js/browser.mjs js/workerd.mjs js/client.mjs js/index.d.ts pkg/
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
  sed "s/\"version\": \"0.0.0\"/\"version\": \"$version\"/" js/package.json > pkg/package.json
  cp README.md pkg/README.md 2>/dev/null || true
else
  rm -f "$out"/node.mjs "$out"/browser.mjs "$out"/workerd.mjs "$out"/client.mjs "$out"/index.d.ts
  cp js/gateway.mjs "$out/"
fi
say "built $out/: $(wc -c < "$out/vcc_auth_bg.wasm") bytes of wasm"
