#!/usr/bin/env bash
# Checks the hand-written man pages and shell completions against the
# binaries' own --help output, in both directions:
#   - every subcommand and long option a binary's --help (and each
#     subcommand's --help) prints appears in its man page, and for `paddock`
#     in the bash and zsh completions;
#   - every long option the man page or a completion names is one the binary
#     prints, so a renamed or removed flag cannot linger in the docs.
# Usage: packaging/check-docs.sh [BIN_DIR]   (default: target/release)
# A binary that is not built, or a man page that is missing, fails the check.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-target/release}
man_dir=packaging/man
comp_dir=packaging/completions
fail=0

problem() { echo "check-docs: $*" >&2; fail=1; }

# Subcommands listed under "Commands:" in clap's help.
subcommands() {
    sed -n '/^Commands:/,/^$/p' | sed -n 's/^  \([a-z][a-z0-9-]*\) .*/\1/p; s/^  \([a-z][a-z0-9-]*\)$/\1/p'
}
# Long options in a help text or a document (roff's \- counts as -).
long_opts() {
    sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u || true
}
# Words of a document, roff escapes undone, one per line.
words_of() {
    sed 's/\\-/-/g; s/\\f[BIRP]//g' "$1" | tr -c 'a-z0-9-' '\n' | sort -u
}

check_binary() {
    local name=$1 man=$2; shift 2
    local docs=("$man" "$@")
    local exe=$bin_dir/$name
    if [ ! -x "$exe" ]; then
        problem "$exe is not built (cargo build --release --workspace --bins)"
        return
    fi
    local top help_all subs sub
    top=$(timeout 10 "$exe" --help 2>&1 || true)
    if ! grep -q '^Usage:' <<<"$top"; then
        # paddock-wasm has no --help: only paddockd runs it, with fixed
        # flags; its man page is checked against its source instead.
        echo "check-docs: $name --help prints no usage; skipping its --help check" >&2
        return
    fi
    subs=$(subcommands <<<"$top")
    help_all=$top
    for sub in $subs; do
        [ "$sub" = help ] && continue
        help_all+=$'\n'$(timeout 10 "$exe" "$sub" --help 2>&1 || true)
    done
    local have_opts
    have_opts=$(long_opts <<<"$help_all")
    local doc words opt
    for doc in "${docs[@]}"; do
        words=$(words_of "$doc")
        for sub in $subs; do
            grep -qx -- "$sub" <<<"$words" || problem "$doc: no mention of subcommand '$name $sub'"
        done
        for opt in $have_opts; do
            grep -qx -- "$opt" <<<"$words" || problem "$doc: no mention of option '$opt' ($name --help prints it)"
        done
        for opt in $(long_opts <"$doc"); do
            grep -qx -- "$opt" <<<"$have_opts" || problem "$doc: names '$opt', which $name --help does not print"
        done
    done
    echo "check-docs: $name: $(wc -w <<<"$subs") subcommands, $(wc -w <<<"$have_opts") long options, ${#docs[@]} documents checked" >&2
}

for doc in "$man_dir/paddockd.8" "$man_dir/paddock.1" "$man_dir/paddock-wasm.1" \
    "$comp_dir/paddock.bash" "$comp_dir/_paddock"; do
    [ -s "$doc" ] || { problem "$doc is missing"; exit 1; }
done
check_binary paddockd "$man_dir/paddockd.8"
check_binary paddock "$man_dir/paddock.1" "$comp_dir/paddock.bash" "$comp_dir/_paddock"
check_binary paddock-wasm "$man_dir/paddock-wasm.1"

# paddock-wasm's flags are what paddockd passes (RunnerArgs in
# runtimes/src/wasm/mod.rs), and its man page must name exactly those.
runner_src=runtimes/src/wasm/mod.rs
if [ -f "$runner_src" ]; then
    src_opts=$(grep -oE '"--[a-z][a-z0-9-]*"' "$runner_src" | tr -d '"' | sort -u)
    man_opts=$(long_opts <"$man_dir/paddock-wasm.1")
    for opt in $src_opts; do
        grep -qx -- "$opt" <<<"$man_opts" || problem "$man_dir/paddock-wasm.1: no mention of '$opt' ($runner_src passes it)"
    done
    for opt in $man_opts; do
        grep -qx -- "$opt" <<<"$src_opts" || problem "$man_dir/paddock-wasm.1: names '$opt', which $runner_src does not know"
    done
fi

# The man pages must render without a warning (what lintian checks too).
for page in "$man_dir"/*.[18]; do
    out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null) ||
        problem "$page: man failed"
    [ -z "$out" ] || problem "$page: $out"
done
bash -n "$comp_dir/paddock.bash" || problem "$comp_dir/paddock.bash: syntax error"

exit "$fail"
