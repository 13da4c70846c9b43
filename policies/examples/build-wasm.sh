#!/usr/bin/env bash
# Builds the example WASM modules of policies/examples/. They are build
# outputs (gitignored); echo-wat needs no build (the runner loads WAT text).
#
# Needs: clang, lld (wasm-ld) and wasi-libc from Debian, and the Rust target
# wasm32-wasip1. tests/run-all.sh installs them when missing. Debian's
# wasi-libc is multiarch, so clang finds it without --sysroot.
set -euo pipefail
cd "$(dirname "$0")"

clang --target=wasm32-wasi -O2 -Wl,--strip-all \
    -o hello-c/hello.wasm hello-c/hello.c
rustc --edition 2021 --target wasm32-wasip1 -C opt-level=2 -C strip=symbols \
    -o hello-rust/hello.wasm hello-rust/hello.rs
ls -l hello-c/hello.wasm hello-rust/hello.wasm
