# vcc-auth — the README is the source of truth for these targets.
#   make demo    installs what is missing, builds, runs emulator + gateway + page (Ctrl-C stops)
#   make test    everything CI runs (.ci/run calls it)
#   make pkg     the npm package in pkg/
#   make gateway the gateway's wasm (worker/build/) and the page (worker/site/, which
#                carries the package's browser files); then: cd worker && npx wrangler dev
#   make key     a new gateway key and its GATEWAY_KEYS entry (ID=, SCOPES=, EXPIRES=, JSON=1)
#   make lint    rustfmt + clippy (native and wasm), Biome (format + lint) on every JS file
#   make bench   size / speed / memory figures (not pass/fail)
#   make fuzz    every fuzz target for FUZZ_S seconds each (default 60; nightly, not in CI)
#   make soak    the gateway in workerd under load and faults for SOAK_S seconds (default 600)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
export CARGO_TERM_COLOR ?= never
export CHROMEDRIVER ?= /usr/bin/chromedriver
WASM := --target wasm32-unknown-unknown

.PHONY: fuzz soak all setup setup-build pkg gateway demo demo-node key test lint test-native test-wasm test-pkg test-store test-consumers test-gateway test-demo bench emulator clean

all: pkg

# Everything the build and tests need; each step is skipped when already present.
setup:
	scripts/setup.sh rust npm browser redis wasm-tools

setup-build:
	scripts/setup.sh rust npm wasm-tools

# The emulator and the key minter (tests and the demo mint keys with it).
emulator:
	cargo build --release -p vcc-emulator -p vcc-key

# A new gateway key, printed once, and its GATEWAY_KEYS entry (README, "Gateway keys"):
#   make key ID=wallboard SCOPES="stats agents-availability:read" [EXPIRES=2027-01-31] [JSON=1]
key:
	@test -n "$(ID)" -a -n "$(SCOPES)" || { echo 'usage: make key ID=<id> SCOPES="<scope> ..." [EXPIRES=<UTC time>] [JSON=1]' >&2; exit 2; }
	@cargo build -q --release -p vcc-key
	@target/release/vcc-key --id '$(ID)' --scopes '$(SCOPES)' $(if $(EXPIRES),--expires '$(EXPIRES)') $(if $(filter 1,$(JSON)),--json)

pkg: setup-build
	scripts/build-pkg.sh

lint: setup-build
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy $(WASM) --lib --tests -- -D warnings
	cargo clippy $(WASM) --lib --no-default-features --features gateway -- -D warnings
	cargo clippy $(WASM) --lib --all-features -- -D warnings
	node_modules/.bin/biome ci --colors=off

test-native:
	cargo test --workspace

# One emulator for both runs of the shared wasm-bindgen-test suite (Node, Chromium).
test-wasm: setup
	scripts/with-emulator.sh bash -c '\
	  cargo test $(WASM) --test node && \
	  cargo test $(WASM) --test browser'

test-pkg: pkg
	scripts/with-emulator.sh scripts/test-pkg.sh

# The token store shared by processes: 4 Node processes per Redis client (node-redis,
# ioredis) against a redis-server the tests start.
test-store: setup pkg emulator
	scripts/with-emulator.sh scripts/test-store.sh

# The packed package in one app per toolchain (tests/consumers/): Node, serverless
# bundling, Vite, webpack, Rollup, esbuild, Next.js, Bun, Deno, TypeScript. Installs are
# cached in ~/.cache/vcc-auth-consumers (VCC_CONSUMER_CACHE); CONSUMERS=vite7,next for some.
test-consumers: setup pkg emulator
	scripts/with-emulator.sh node tests/consumers/run.mjs

test: setup lint test-native test-wasm test-pkg test-store test-consumers test-gateway test-demo
	@echo "make test: all suites passed (native, wasm in Node, wasm in Chromium, npm package, its token store across processes and its consumers, gateway in workerd, demo page in Chromium)"

# Emulator (or real VCC, see README) + gateway + page until Ctrl-C; prints URL and key.
demo: gateway emulator
	node scripts/demo.mjs

# The Node example alone, against an emulator with 5-second tokens; STORE=redis: two
# processes sharing one token through a redis-server it starts.
demo-node: pkg emulator
	EMULATOR_ARGS="--token-lifetime 5" scripts/with-emulator.sh node examples/$(if $(filter redis,$(STORE)),node-fleet,node-demo).mjs

bench: gateway emulator
	@command -v twiggy >/dev/null || cargo install --locked twiggy
	scripts/with-emulator.sh node --expose-gc bench/bench.mjs

# cargo-fuzz on the core's parsers and decisions (fuzz/); CI runs only their corpus, as
# tests/fuzz_corpus.rs. FUZZ_S=600 for the long run, FUZZ_TARGETS="scope json" for some.
fuzz:
	scripts/fuzz.sh

# The gateway in workerd (Miniflare) under steady load while tokens expire every 5 s, are
# revoked at random and the token endpoint fails 10 % of the time; exits 1 unless it
# passes (docs/testing.md, "The soak"). SOAK_S=60 for a short run, SOAK_RATE=req/s.
soak: gateway emulator
	scripts/with-emulator.sh node bench/soak.mjs

clean:
	cargo clean
	rm -rf pkg node_modules worker/build worker/site worker/.wrangler screenshots

# The gateway's wasm (worker/build/) and its static site (worker/site/: www/ + the npm
# package's browser files, which is why it needs pkg/).
gateway: pkg
	scripts/build-pkg.sh --gateway
	scripts/build-site.sh

test-gateway: gateway emulator
	scripts/with-emulator.sh node --test --test-concurrency=1 --test-reporter=spec tests/gateway/

# The demo page in Chromium against the demo stack, and make demo's script (Ctrl-C).
# The outer emulator stands in for "real VCC" in the settings test. Screenshots: screenshots/.
test-demo: setup gateway emulator
	scripts/with-emulator.sh node --test --test-concurrency=1 --test-reporter=spec tests/demo/
