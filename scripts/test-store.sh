#!/usr/bin/env bash
# The token store across processes: the packed package installed in a scratch project
# with both Redis clients (the versions the workspace pins), and tests/store/ run there
# against a redis-server the tests start (scripts/setup.sh redis installs it). Needs
# VCC_EMULATOR_URL (run under scripts/with-emulator.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "$root/pkg" 2>/dev/null | tail -n1)
cd "$work"
printf '{"name":"store-test","private":true,"type":"module"}\n' > package.json
pin() { node -p "require('$root/package.json').devDependencies['$1']"; }
npm install --no-audit --no-fund --loglevel=error "./$tarball" "redis@$(pin redis)" "ioredis@$(pin ioredis)" >/dev/null
mkdir store
cp "$root"/tests/store/*.mjs store/
cp "$root"/tests/emulator.mjs .
node --test --test-concurrency=1 --test-reporter=spec store/store.test.mjs
