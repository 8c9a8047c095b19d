#!/usr/bin/env bash
# Tests pkg/ as a user gets it: `npm pack`, install the tarball into a scratch project,
# type-check a TypeScript user of it, and run tests/pkg/*.test.mjs there with Node's
# test runner. Needs VCC_EMULATOR_URL (run under scripts/with-emulator.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Ready to publish: publint, and arethetypeswrong on the packed tarball (ESM only, by
# design: Node 20.19+ `require`s it, so its CommonJS resolutions are not checked).
(cd "$root/pkg" && "$root/node_modules/.bin/publint" --strict . >&2)
(cd "$root/pkg" && "$root/node_modules/.bin/attw" --pack . --profile esm-only --format table-flipped >&2)
tarball=$(cd "$work" && npm pack --silent "$root/pkg" 2>/dev/null | tail -n1)
cd "$work"
printf '{"name":"pkg-test","private":true,"type":"module"}\n' > package.json
npm install --no-audit --no-fund --loglevel=error "./$tarball" >/dev/null
cp "$root"/tests/pkg/*.test.mjs "$root"/tests/pkg/types-check.ts "$root"/tests/faults-table.mjs "$root"/tests/chromium.mjs "$root"/tests/emulator.mjs .
cp -r "$root/tests/workerd" ./workerd
export WRANGLER="$root/node_modules/.bin/wrangler" VCC_ROOT="$root"
"$root/node_modules/.bin/tsc" --noEmit --strict --target es2022 --module nodenext --moduleResolution nodenext --lib es2022,dom --skipLibCheck false types-check.ts
echo "[pkg] types-check.ts compiles against the installed package" >&2
node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
