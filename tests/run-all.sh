#!/usr/bin/env bash
# Runs every Paddock test: unit tests, policy checks, and the root integration
# suite against the real kernel. Needs root (the sandbox tests create
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
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

cargo build --workspace --bins
./target/debug/paddockd check policies/examples/*.toml
cargo test --workspace --features integration-tests/root-tests -- --test-threads=2
