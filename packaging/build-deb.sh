#!/usr/bin/env bash
# Builds the paddock .deb from release binaries that are already built
# (cargo build --release --workspace --bins), without debhelper or cargo-deb:
# a staging tree with the Debian layout, then dpkg-deb --build --root-owner-group.
# packaging/README.md says why and lists what goes where.
#
# Usage: packaging/build-deb.sh [OUT_DIR]      (default: target/debian)
# Env:   PADDOCK_BIN_DIR   where the binaries are (default: target/release)
# Prints the path of the .deb on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
pkg=$top/packaging
bin_dir=${PADDOCK_BIN_DIR:-$top/target/release}
out_dir=${1:-$top/target/debian}

die() { echo "build-deb: $*" >&2; exit 1; }
note() { echo "build-deb: $*" >&2; }

for tool in dpkg-deb dpkg-parsechangelog dpkg-shlibdeps strip gzip md5sum; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev binutils)"
done
# The package is incomplete without any one of its binaries or man pages.
for b in paddockd paddock paddock-wasm; do
    [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: run cargo build --release --workspace --bins"
done
for page in paddockd.8 paddock.1 paddock-wasm.1; do
    [ -s "$pkg/man/$page" ] || die "packaging/man/$page is missing"
done

# The Debian version is the workspace version plus a revision, and the
# changelog's top entry must say so.
cargo_version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
version=$(dpkg-parsechangelog -l "$pkg/debian/changelog" -S Version)
case $version in
    "$cargo_version"-*) ;;
    *) die "packaging/debian/changelog is at $version but Cargo.toml at $cargo_version: add a changelog entry" ;;
esac
arch=$(dpkg --print-architecture)
# Reproducible: every timestamp is the changelog's.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$pkg/debian/changelog" -S Timestamp)
export SOURCE_DATE_EPOCH

stage=$(mktemp -d "${TMPDIR:-/tmp}/paddock-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
umask 022

put() { # put MODE SRC DEST: copy a file into the tree
    install -D -m "$1" "$2" "$root/$3"
}
put_bin() { # put_bin SRC DEST: a stripped executable, as dh_strip does it
    put 0755 "$1" "$2"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/$2"
}
put_man() { # put_man PAGE SECTION
    install -d "$root/usr/share/man/man$2"
    gzip -9n <"$pkg/man/$1.$2" >"$root/usr/share/man/man$2/$1.$2.gz"
    chmod 0644 "$root/usr/share/man/man$2/$1.$2.gz"
}

# Binaries, each with its man page; the client with its completions.
put_bin "$bin_dir/paddockd" usr/sbin/paddockd
put_man paddockd 8
put_bin "$bin_dir/paddock" usr/bin/paddock
put_man paddock 1
put 0644 "$pkg/completions/paddock.bash" usr/share/bash-completion/completions/paddock
put 0644 "$pkg/completions/_paddock" usr/share/zsh/vendor-completions/_paddock
put_bin "$bin_dir/paddock-wasm" usr/lib/paddock/paddock-wasm
put_man paddock-wasm 1

put 0644 "$pkg/systemd/paddockd.service" usr/lib/systemd/system/paddockd.service

# Configuration: the default daemon config and the example functions that
# need no build step (echo-wat's module is WAT text, loaded as it is).
put 0644 policies/paddockd.toml etc/paddock/paddockd.toml
for ex in hello-python hello-node wordcount-sh echo-wat; do
    put 0644 "policies/examples/$ex.toml" "etc/paddock/functions/$ex.toml"
    for f in policies/examples/"$ex"/*; do
        mode=0644
        [ -x "$f" ] && mode=0755
        put "$mode" "$f" "etc/paddock/functions/$ex/${f##*/}"
    done
done

# Documentation.
doc=usr/share/doc/paddock
put 0644 "$pkg/debian/copyright" "$doc/copyright"
install -d "$root/$doc"
gzip -9n <"$pkg/debian/changelog" >"$root/$doc/changelog.Debian.gz"
chmod 0644 "$root/$doc/changelog.Debian.gz"
put 0644 README.md "$doc/README.md"
put 0644 "$pkg/debian/lintian-overrides" usr/share/lintian/overrides/paddock
for f in docs/*.md; do
    put 0644 "$f" "$doc/${f##*/}"
done

# Control area.
control=$root/DEBIAN
install -d "$control"
for script in postinst prerm postrm; do
    install -m 0755 "$pkg/debian/$script" "$control/$script"
done
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$control/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
    xargs -d '\n' md5sum) >"$control/md5sums"

# Depends: what the binaries link (dpkg-shlibdeps reads the ELF files), plus
# adduser for postinst's addgroup.
mkdir -p "$stage/src/debian"
printf 'Source: paddock\n\nPackage: paddock\nArchitecture: any\n' >"$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/sbin/paddockd" "$root/usr/bin/paddock" \
    "$root/usr/lib/paddock/paddock-wasm" | sed -n 's/^shlibs:Depends=//p') ||
    die "dpkg-shlibdeps failed"
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared-library dependency"
depends="adduser, $shlibs"

installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@DEPENDS@/$depends/" \
    "$pkg/debian/control.in" >"$control/control"
chmod 0644 "$control/control" "$control/conffiles" "$control/md5sums"

find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out_dir"
deb=$out_dir/paddock_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
note "built $deb ($(du -h "$deb" | cut -f1)):"
dpkg-deb --contents "$deb" | awk '{print "  " $1 " " $6}' >&2
echo "$deb"
