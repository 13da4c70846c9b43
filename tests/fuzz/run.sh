#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each; FUZZ_SECONDS
# overrides), starting from the checked-in corpus. A crash fails the run and
# leaves its input under tests/fuzz/artifacts/. Targets:
#   protocol  one request line through the protocol parser and answer builder
#   policy    any text through policy parsing and validation (ceilings hold)
#   framing   any byte stream, split anywhere, through the connection framer
# Long mode: FUZZ_SECONDS=3600 tests/fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${FUZZ_SECONDS:-30}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal || {
        echo "tests/fuzz/run.sh: SKIPPED: no nightly toolchain could be installed (libFuzzer needs it)" >&2
        exit 0
    }
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

for t in protocol policy framing; do
    mkdir -p "tests/fuzz/corpus/$t"
    # A scratch copy, so a run does not grow the checked-in corpus.
    work=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    echo "fuzz: $t for ${secs}s"
    cargo +nightly fuzz run --fuzz-dir tests/fuzz -O "$t" "$work" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked)' || true
    status=${PIPESTATUS[0]}
    rm -rf "$work"
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $t FAILED (see tests/fuzz/artifacts/$t)" >&2
        exit 1
    fi
done
echo "fuzz: all targets ran ${secs}s each without a crash"
