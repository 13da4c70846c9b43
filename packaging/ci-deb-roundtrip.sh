#!/usr/bin/env bash
# The .deb round trip, as CI runs it (as root, with no systemd as PID 1):
# build release binaries, check the man pages and completions, build the
# .deb, lintian (no E or W), systemd-analyze verify (no output), dpkg -i,
# start the installed daemon the way the unit would (as far as that is
# possible without systemd), invoke the installed examples through the
# installed client, deploy a function, stop it with SIGTERM; dpkg -r keeps
# /etc/paddock and the deployed function, and a reinstalled daemon serves
# it again; dpkg -P, and check nothing is left.
# Every step is bounded in time; an EXIT trap stops the daemon and purges the
# package whatever failed.
#
# Usage: packaging/ci-deb-roundtrip.sh [--no-build]
# Env:   PADDOCK_ROUNDTRIP_PLAIN=1  start paddockd without the unit's
#                                   capability bounding set and namespaces
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

build=1
[ "${1:-}" = "--no-build" ] && build=0

step() { printf '\n== %s\n' "$*"; }
die() { echo "ci-deb-roundtrip: FAIL: $*" >&2; exit 1; }
note() { echo "ci-deb-roundtrip: $*"; }

[ "$(id -u)" -eq 0 ] || die "needs root (dpkg -i, and paddockd creates namespaces and cgroups)"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
socket_path=/run/paddock/paddockd.sock
unit=packaging/systemd/paddockd.service

if dpkg-query -W -f '${Status}' paddock 2>/dev/null | grep -q 'installed'; then
    die "the paddock package is already installed here; refusing to purge it"
fi
# Processes running the installed daemon (also once its file is deleted).
# Other paddockd binaries, such as the test suite's, are not ours to judge.
installed_daemons() {
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        case $exe in /usr/sbin/paddockd | "/usr/sbin/paddockd (deleted)") echo "${p#/proc/}" ;; esac
    done
}
[ -z "$(installed_daemons)" ] || die "/usr/sbin/paddockd is already running (pid $(installed_daemons | tr '\n' ' '))"
[ ! -S "$socket_path" ] || ! "$py" -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$socket_path" 2>/dev/null ||
    die "something already listens on $socket_path"

work=$(mktemp -d "${TMPDIR:-/tmp}/paddock-roundtrip.XXXXXX")
installed=0
daemon_pid=""
group_existed=0
getent group paddock >/dev/null && group_existed=1

# What mentions paddock in the mount table and cgroupfs before we start, so
# that only what this run leaves behind fails it.
snapshot() {
    { grep paddock /proc/self/mountinfo | cut -d' ' -f5 || true; } | sort >"$work/mounts.$1"
    { timeout 30 find /sys/fs/cgroup -type d -name '*paddock*' 2>/dev/null || true; } | sort >"$work/cgroups.$1"
}
snapshot before

stop_daemon() {
    [ -n "$daemon_pid" ] || return 0
    if kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$daemon_pid" 2>/dev/null; then
            echo "ci-deb-roundtrip: paddockd ignored SIGTERM for 20 s; SIGKILL" >&2
            kill -KILL "$daemon_pid" 2>/dev/null || true
        fi
    fi
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=""
}

cleanup() {
    rc=$?
    set +e
    stop_daemon
    if [ "$installed" = 1 ]; then
        echo "ci-deb-roundtrip: cleaning up: dpkg -P paddock" >&2
        timeout 300 dpkg -P paddock >/dev/null 2>&1
    fi
    if [ "$group_existed" = 0 ] && getent group paddock >/dev/null; then
        timeout 30 delgroup --quiet --system paddock >/dev/null 2>&1 || groupdel paddock
    fi
    if [ "$rc" -ne 0 ] && [ -s "$work/paddockd.log" ]; then
        echo "--- paddockd log" >&2
        tail -n 50 "$work/paddockd.log" >&2
    fi
    rm -rf "$work"
    [ "$rc" -eq 0 ] && echo "ci-deb-roundtrip: OK" || echo "ci-deb-roundtrip: FAILED (rc $rc)" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The tools the round trip needs, from Debian when missing.
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v dpkg-shlibdeps >/dev/null || need+=(dpkg-dev)
command -v man >/dev/null || need+=(man-db)
command -v setpriv >/dev/null || need+=(util-linux)
if [ "${#need[@]}" -gt 0 ]; then
    step "installing ${need[*]}"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "$build" = 1 ]; then
    step "cargo build --release --workspace --bins"
    timeout 1800 cargo build --release --workspace --bins
fi

step "man pages and completions against --help"
timeout 120 packaging/check-docs.sh target/release

step "build the .deb"
deb=$(timeout 300 packaging/build-deb.sh "$work/out")

step "lintian (fails on any error or warning, and if lintian itself fails)"
# Exit status 2 is a tag --fail-on names, 1 (or a timeout) lintian itself
# failing: both fail. Not with --show-overrides: lintian 2.116 then counts
# the overridden warning (packaging/debian/lintian-overrides) as a warning.
lrc=0
timeout 600 lintian -I -E --pedantic --fail-on error,warning "$deb" \
    >"$work/lintian.txt" 2>&1 || lrc=$?
# lintian complains about running as root; that line is not a finding.
grep -v 'running with root privileges is not recommended' "$work/lintian.txt" || true
[ "$lrc" -eq 0 ] || die "lintian exited with status $lrc: errors or warnings (2), or lintian failed (above)"
# Belt and braces, should --fail-on ever stop meaning what it says.
if grep -qE '^(E|W): ' "$work/lintian.txt"; then
    die "lintian reported errors or warnings (above) but exited 0"
fi

step "dpkg -i"
installed=1
timeout 300 dpkg -i "$deb"
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$' >"$work/files"
for f in /usr/sbin/paddockd /usr/bin/paddock /usr/lib/paddock/paddock-wasm \
    /usr/share/man/man8/paddockd.8.gz /usr/share/man/man1/paddock.1.gz \
    /usr/share/man/man1/paddock-wasm.1.gz; do
    grep -qx -- "$f" "$work/files" || die "the package lacks $f"
done
while read -r f; do
    [ -e "$f" ] || die "$f is in the package but not installed"
done <"$work/files"
getent group paddock >/dev/null || die "postinst did not create the paddock group"
[ -d /var/lib/paddock ] || die "postinst did not create /var/lib/paddock"
[ -L /etc/systemd/system/multi-user.target.wants/paddockd.service ] ||
    die "postinst did not enable paddockd.service"

step "systemd-analyze verify (fails on any output)"
for u in "$unit" /usr/lib/systemd/system/paddockd.service; do
    vrc=0
    out=$(timeout 60 systemd-analyze verify "$u" 2>&1) || vrc=$?
    [ -z "$out" ] || die "systemd-analyze verify $u: $out"
    [ "$vrc" -eq 0 ] || die "systemd-analyze verify $u exited with status $vrc"
    note "$u: clean"
done

step "paddockd check of the installed policies"
timeout 60 /usr/sbin/paddockd check

# Starts the installed daemon in the background and waits for its socket.
start_daemon() {
    if [ "${PADDOCK_ROUNDTRIP_PLAIN:-0}" = 1 ]; then
        note "PADDOCK_ROUNDTRIP_PLAIN=1: plain start, without the unit's restrictions"
        /usr/sbin/paddockd serve >>"$work/paddockd.log" 2>&1 &
    else
        # What the unit does, as far as it can be done without systemd: the
        # capability bounding set and no_new_privs (setpriv), ProtectSystem=full,
        # ProtectHome=yes and PrivateTmp=yes (a private mount namespace with
        # read-only /usr, /etc and /boot and empty /home, /root and /tmp), and
        # PrivateNetwork=yes (clients still reach the pathname socket).
        local caps
        caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
        note "bounding set from the unit: $caps"
        # shellcheck disable=SC2016
        unshare --mount --propagation slave --net -- sh -c '
            for d in /usr /etc /boot; do
                [ ! -d "$d" ] || { mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" "$d"; } || exit 1
            done
            for d in /home /root /tmp; do
                [ ! -d "$d" ] || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$d" || exit 1
            done
            umask 022
            exec setpriv --bounding-set=-all,'"$caps"' --inh-caps=-all --no-new-privs \
                /usr/sbin/paddockd serve' >>"$work/paddockd.log" 2>&1 &
    fi
    daemon_pid=$!
    timeout 30 "$py" packaging/roundtrip-client.py "$socket_path" wait 20 ||
        die "paddockd did not accept on $socket_path within 20 s"
    kill -0 "$daemon_pid" 2>/dev/null || die "paddockd exited"
    note "paddockd (pid $daemon_pid) accepts on $socket_path"
    [ "$(perm "$socket_path")" = "660 root:paddock" ] || die "socket is $(perm "$socket_path"), not 660 root:paddock"
    [ "$(perm /run/paddock)" = "750 root:paddock" ] || die "/run/paddock is $(perm /run/paddock), not 750 root:paddock"
}
perm() { stat -c '%a %U:%G' "$1"; }

# SIGTERM; the daemon must exit 0 within 20 s and remove its socket.
stop_daemon_checked() {
    kill -TERM "$daemon_pid"
    for _ in $(seq 1 200); do
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$daemon_pid" 2>/dev/null && die "paddockd still runs 20 s after SIGTERM"
    local drc=0
    wait "$daemon_pid" || drc=$?
    daemon_pid=""
    [ "$drc" -eq 0 ] || die "paddockd exited with status $drc after SIGTERM"
    [ ! -e "$socket_path" ] || die "paddockd left its socket $socket_path"
    note "paddockd stopped cleanly"
}

# Every file under /etc/paddock and /var/lib/paddock with its checksum.
kept_manifest() {
    find /etc/paddock /var/lib/paddock -type f -print0 | sort -z | xargs -0 sha256sum
}

step "start /usr/sbin/paddockd serve"
start_daemon

step "invoke hello-python and echo-wat (WASM) through the installed client"
out=$(timeout 60 /usr/bin/paddock invoke hello-python --input '{"name":"Ada"}') ||
    die "paddock invoke hello-python failed: $out"
echo "$out"
grep -q 'Hello, Ada!' <<<"$out" || die "paddock invoke hello-python did not greet Ada"
out=$(timeout 60 /usr/bin/paddock invoke echo-wat --input 'through the installed runner') ||
    die "paddock invoke echo-wat failed: $out"
echo "$out"
[ "$out" = 'through the installed runner' ] || die "echo-wat did not echo its input"

step "the other examples, deploys into /var/lib/paddock, stats"
timeout 120 "$py" packaging/roundtrip-client.py "$socket_path" checks

step "stop paddockd with SIGTERM"
stop_daemon_checked

step "dpkg -r paddock: configuration and deployed functions stay"
[ -f /var/lib/paddock/functions/roundtrip-kept/current ] || die "the deployed roundtrip-kept is not in /var/lib/paddock"
kept_manifest >"$work/kept.before"
timeout 300 dpkg -r paddock
st=$(dpkg-query -W -f '${Status}' paddock 2>/dev/null || true)
[ "$st" = "deinstall ok config-files" ] || die "after dpkg -r the package is '$st', not 'deinstall ok config-files'"
for f in /usr/sbin/paddockd /usr/bin/paddock /usr/lib/paddock/paddock-wasm; do
    [ ! -e "$f" ] || die "dpkg -r left $f"
done
kept_manifest >"$work/kept.after"
diff -u "$work/kept.before" "$work/kept.after" >&2 ||
    die "dpkg -r changed or removed files under /etc/paddock or /var/lib/paddock (diff above)"
note "kept: $(wc -l <"$work/kept.after") files under /etc/paddock and /var/lib/paddock, unchanged"

step "dpkg -i again: the deployed function is served again"
timeout 300 dpkg -i "$deb"
# postrm masked the unit on remove; postinst must unmask it.
[ ! -e /etc/systemd/system/paddockd.service ] && [ ! -L /etc/systemd/system/paddockd.service ] ||
    die "paddockd.service is still masked after the reinstall"
[ -L /etc/systemd/system/multi-user.target.wants/paddockd.service ] ||
    die "paddockd.service is not enabled after the reinstall"
start_daemon
out=$(timeout 60 /usr/bin/paddock invoke roundtrip-kept --input 'again') ||
    die "paddock invoke roundtrip-kept after the reinstall failed: $out"
echo "$out"
[ "$out" = AGAIN ] || die "roundtrip-kept answered '$out' after the reinstall, not AGAIN"
stop_daemon_checked

step "dpkg -P paddock"
timeout 300 dpkg -P paddock
installed=0
touch "$work/purged"

step "nothing left"
left=0
leftover() { echo "ci-deb-roundtrip: left behind: $*" >&2; left=1; }
while read -r f; do
    [ ! -e "$f" ] || leftover "$f"
done <"$work/files"
# `paddockd run` from any build (the test suite's, say) makes /run/paddock/slots
# on its own; a /run/paddock younger than the purge is theirs, not a leftover.
if [ -e /run/paddock ] && [ /run/paddock -nt "$work/purged" ] && [ ! -e "$socket_path" ]; then
    note "/run/paddock was created again after the purge by another paddockd run; not a leftover"
else
    [ ! -e /run/paddock ] || leftover /run/paddock
fi
for p in /etc/paddock /var/lib/paddock /usr/lib/paddock /usr/share/doc/paddock \
    /etc/systemd/system/multi-user.target.wants/paddockd.service /etc/systemd/system/paddockd.service \
    /var/lib/systemd/deb-systemd-helper-enabled/paddockd.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/paddockd.service \
    /var/lib/systemd/deb-systemd-helper-masked/paddockd.service; do
    [ ! -e "$p" ] && [ ! -L "$p" ] || leftover "$p"
done
if dpkg-query -W -f '${Status}' paddock 2>/dev/null | grep -q 'installed\|config-files'; then
    leftover "the package is still known to dpkg: $(dpkg-query -W -f '${Status}' paddock)"
fi
[ -z "$(installed_daemons)" ] || leftover "a /usr/sbin/paddockd process: $(installed_daemons | tr '\n' ' ')"
snapshot after
comm -13 "$work/mounts.before" "$work/mounts.after" | while read -r m; do leftover "mount $m"; done
comm -13 "$work/cgroups.before" "$work/cgroups.after" | while read -r c; do leftover "cgroup $c"; done
if [ -n "$(comm -13 "$work/mounts.before" "$work/mounts.after")$(comm -13 "$work/cgroups.before" "$work/cgroups.after")" ]; then
    left=1
fi
[ "$left" = 0 ] || die "the purge left something behind (above)"
if getent group paddock >/dev/null; then
    note "the paddock group is kept by purge (as Debian keeps system groups; see packaging/README.md)"
fi
note "nothing left: no package files, /etc/paddock, /var/lib/paddock, /run/paddock, unit links, process, mount or cgroup"
