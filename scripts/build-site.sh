#!/usr/bin/env bash
# Assembles the gateway's static assets (the demo page) into worker/site/: www/ plus the
# npm package's vcc-auth/slim files (the .wasm served on its own) under vendor/vcc-auth/, so the page imports the very
# package `make pkg` built and works offline (no CDN). Needs pkg/ (scripts/build-pkg.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for f in slim.mjs client.mjs errors.mjs vcc_auth.js vcc_auth_bg.wasm; do
  [ -f "pkg/$f" ] || { echo "[site] pkg/$f is missing: run scripts/build-pkg.sh (make pkg) first" >&2; exit 1; }
done
site=worker/site
rm -rf "$site.tmp"
mkdir -p "$site.tmp/vendor/vcc-auth"
cp -R www/. "$site.tmp/"
cp pkg/slim.mjs pkg/client.mjs pkg/errors.mjs pkg/vcc_auth.js pkg/vcc_auth_bg.wasm "$site.tmp/vendor/vcc-auth/"
cp -R pkg/snippets "$site.tmp/vendor/vcc-auth/"
# Swap in one step so a running `wrangler dev` never serves a half-copied site.
rm -rf "$site" && mv "$site.tmp" "$site"
echo "[site] built $site/ ($(find "$site" -type f | wc -l) files)" >&2
