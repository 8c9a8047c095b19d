#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for FUZZ_S seconds each (default 60), or
# those named in FUZZ_TARGETS ("scope json"). Nightly Rust and cargo-fuzz are installed
# when missing; the product itself never needs nightly.
#
# Each target starts from its committed seeds (fuzz/seeds/<target>/) plus whatever earlier
# runs found (fuzz/corpus/<target>/, not committed). A failing input is saved under
# fuzz/artifacts/<target>/; copy it into fuzz/seeds/<target>/ once fixed, and the stable
# corpus test (tests/fuzz_corpus.rs) keeps it fixed. FUZZ_MINIMIZE=1 adds to each
# target's seeds the corpus inputs that reach new code (what to commit after a long run).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_S=${FUZZ_S:-60}
say() { printf '[fuzz] %s\n' "$*" >&2; }

if ! rustup toolchain list | grep -q '^nightly'; then
  say "installing the nightly toolchain (cargo-fuzz needs it; the product does not)"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null; then
  say "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^vcc-auth-fuzz$')}
say "building the targets"
(cd fuzz && cargo +nightly fuzz build -O)

summary=()
status=0
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  say "$t: ${FUZZ_S}s (log: fuzz/artifacts/$t/run.log)"
  set +e
  # -print_final_stats: the execution count for the report. Progress lines go to the log;
  # the last one is shown every 10 s so a long run is visibly alive.
  (cd fuzz && cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$FUZZ_S" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
      >"artifacts/$t/run.log" 2>&1) &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 10
    line=$(grep -a -E '#[0-9]+' "fuzz/artifacts/$t/run.log" | tail -1 | cut -c1-110)
    [ -n "$line" ] && say "$t: $line"
  done
  wait "$pid"
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/artifacts/$t/run.log" | tail -1)
  if [ "$rc" -ne 0 ]; then
    status=1
    say "$t FAILED (exit $rc): see fuzz/artifacts/$t/run.log and the crash-* file there"
    grep -a -m3 -E 'panicked at|^thread|SUMMARY' "fuzz/artifacts/$t/run.log" >&2 || true
    summary+=("$(printf '%-16s FAILED after %s executions' "$t" "${execs:-?}")")
  else
    summary+=("$(printf '%-16s ok  %12s executions in %ss, corpus %s inputs' "$t" "${execs:-?}" "$FUZZ_S" "$(ls "fuzz/corpus/$t" | wc -l)")")
  fi
  if [ "${FUZZ_MINIMIZE:-0}" = 1 ] && [ "$rc" -eq 0 ]; then
    # Keeps every seed, and adds the corpus inputs that cover an edge the seeds do not
    # (edges only: counters and comparison features would keep thousands).
    say "$t: adding the corpus's new edges to fuzz/seeds/$t"
    (cd fuzz && cargo +nightly fuzz run -O "$t" "seeds/$t" "corpus/$t" -- -merge=1 \
        -use_counters=0 -use_value_profile=0 -use_cmp=0 >/dev/null 2>&1)
  fi
done
printf '%s\n' "fuzz summary (FUZZ_S=$FUZZ_S per target):" "${summary[@]}"
exit $status
