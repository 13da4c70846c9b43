#!/usr/bin/env bash
# Runs every Paddock test: unit tests, policy checks, and the root integration
# suite against the real kernel, then checks that nothing was left behind on
# the host (tests/host_snapshot.py). Needs root (the sandbox tests create
# namespaces and cgroups); they fail, never skip, without it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run-all.sh: the sandbox tests need root (namespaces, cgroups); run it as root" >&2
    exit 1
fi

# What the tests run inside sandboxes: python3 and node from Debian.
need=()
command -v /usr/bin/python3 >/dev/null || need+=(python3)
command -v /usr/bin/node >/dev/null || need+=(nodejs)
command -v strace >/dev/null || need+=(strace) # traces the WASM runner (root/wasm.rs)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# What the WASM examples are built with: Debian's clang, wasm-ld (lld),
# wasi-libc and the wasm32 compiler-rt builtins, and Rust's wasm32-wasip1.
need=()
command -v clang >/dev/null || need+=(clang)
command -v wasm-ld >/dev/null || need+=(lld)
[ -e /usr/include/wasm32-wasi/stdio.h ] || need+=(wasi-libc)
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null ||
    need+=(libclang-rt-dev-wasm32)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

cargo build --workspace --bins
policies/examples/build-wasm.sh
./target/debug/paddockd check policies/examples/*.toml

# Whatever the tests do, the host must end as it began: no new mount, no
# paddock cgroup in any hierarchy, no process of a sandbox uid (zombies too).
snapshot=$(mktemp)
trap 'rm -f "$snapshot"' EXIT
python3 tests/host_snapshot.py save "$snapshot"
status=0
cargo test --workspace --features integration-tests/root-tests -- --test-threads=2 || status=$?
python3 tests/host_snapshot.py compare "$snapshot" || status=1
exit "$status"
