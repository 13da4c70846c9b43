#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each; FUZZ_SECONDS
# overrides), starting from the checked-in corpus. A crash fails the run and
# leaves its input under tests/fuzz/artifacts/. Targets:
#   protocol  one request line through the protocol parser and answer builder
#   policy    any text through policy parsing and validation (ceilings hold)
#   framing   any byte stream, split anywhere, through the connection framer
#   registry  up to 8 request lines; deploys and removes carried out on a
#             registry in a scratch state dir, which must reload the same
#             functions and versions
# FUZZ_TARGETS="protocol" runs only the targets named.
# Long mode: FUZZ_SECONDS=3600 tests/fuzz/run.sh
#
# Self-check, first and in a few seconds: this script runs itself on
# `selftest_crash`, a target built only for this (feature `selftest`) that
# panics on its checked-in seed, and fails unless that run exits non-zero,
# names the target as FAILED, shows the panic and leaves the crashing input
# under artifacts/. So a failure path that cannot fail (a lost exit status)
# turns this script red instead of passing in silence. FUZZ_SELFTEST=0 skips
# it, FUZZ_SELFTEST=only runs nothing else.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."
secs="${FUZZ_SECONDS:-30}"
targets="${FUZZ_TARGETS:-protocol policy framing registry}"
selftest="${FUZZ_SELFTEST:-1}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal || {
        echo "tests/fuzz/run.sh: FAILED: no nightly toolchain could be installed (libFuzzer needs it)" >&2
        exit 1
    }
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# One bounded run of target $1 from a scratch copy of its corpus (so a run
# does not grow the checked-in one); returns cargo fuzz's own exit status.
fuzz_one() {
    local t=$1 work status
    local -a features=()
    if [ "$t" = selftest_crash ]; then features=(--features selftest); fi
    mkdir -p "tests/fuzz/corpus/$t"
    work=$(mktemp -d)
    cp -r "tests/fuzz/corpus/$t/." "$work/"
    echo "fuzz: $t for ${secs}s"
    # Not under errexit, and PIPESTATUS read by the very next command: after
    # `| grep ... || true` it would hold true's status, never cargo's.
    set +e
    cargo +nightly fuzz run "${features[@]}" --fuzz-dir tests/fuzz -O "$t" "$work" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+ +DONE|Done|stat::number_of_executed_units|==[0-9]+==|SUMMARY|thread .* panicked|error|Failing input)'
    status=${PIPESTATUS[0]}
    set -e
    rm -rf "$work" /dev/shm/paddock-fuzz-registry-* "${TMPDIR:-/tmp}"/paddock-fuzz-registry-*
    return "$status"
}

if [ "$selftest" != 0 ]; then
    echo "fuzz: self-check: a crashing input must fail this script"
    rm -rf tests/fuzz/artifacts/selftest_crash
    st=0
    out=$(FUZZ_TARGETS=selftest_crash FUZZ_SELFTEST=0 FUZZ_SECONDS=10 "$self" 2>&1) || st=$?
    why=""
    if [ "$st" -eq 0 ]; then
        why="it exited 0"
    elif ! grep -q '^fuzz: selftest_crash FAILED' <<<"$out"; then
        why="it did not report selftest_crash as FAILED"
    elif ! grep -q 'panicked' <<<"$out"; then
        why="it failed without the deliberate panic (a build error?)"
    elif ! compgen -G 'tests/fuzz/artifacts/selftest_crash/crash-*' >/dev/null; then
        why="it left no crash-* input under tests/fuzz/artifacts/selftest_crash"
    fi
    if [ -n "$why" ]; then
        printf '%s\n' "$out" >&2
        echo "fuzz: self-check FAILED: on a crashing input $why (exit status $st)" >&2
        exit 1
    fi
    rm -rf tests/fuzz/artifacts/selftest_crash
    echo "fuzz: self-check passed: the crashing input failed the run (exit status $st)"
    if [ "$selftest" = only ]; then exit 0; fi
fi

for t in $targets; do
    if ! fuzz_one "$t"; then
        echo "fuzz: $t FAILED (see tests/fuzz/artifacts/$t)" >&2
        exit 1
    fi
done
echo "fuzz: all targets ran ${secs}s each without a crash"
