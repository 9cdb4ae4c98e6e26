#!/usr/bin/env bash
# Debian packages of the fork, from this checkout's build (make deb), in
# build/deb/:
#   qemu-tiers-system-x86        the fork under /usr/lib/qemu-tiers, its
#       SeaBIOS links and option ROMs, trace-events-all, the command
#       /usr/bin/qemu-tiers-system-x86_64, a manual page, the libvirt
#       examples, an AppArmor rule for libvirt's domains (a conffile)
#   qemu-tiers-exit-handler-dev  the external-handler library (static),
#       its headers and pkg-config file, the example handler and its source
# Both install beside Debian's qemu-system-x86: no file of theirs is one
# of its (scripts/install.sh has the layout).  Built with dpkg-deb from
# the tree scripts/install.sh stages (PREFIX=/usr, stripped); Depends from
# dpkg-shlibdeps; no maintainer scripts, so removal is dpkg's alone.
# Version: QEMU's, then +tiers.N with N the number of commits of this
# checkout.  Runs lintian on them when it is installed (make check has it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$BUILD/deb
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null) ||
    die "dpkg-architecture failed (package dpkg-dev; run 'make setup')"
if commits=$(git -C "$TOP" rev-list --count HEAD 2>/dev/null); then
    commit=$(git -C "$TOP" rev-parse --short=12 HEAD)
    date=$(git -C "$TOP" log -1 --format=%cD)
    SOURCE_DATE_EPOCH=$(git -C "$TOP" log -1 --format=%ct)
    maint_default=$(git -C "$TOP" log -1 --format='%an <%ae>')
    git -C "$TOP" diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
else
    commits=0 commit="(not a git checkout)" date=$(date -R) SOURCE_DATE_EPOCH=$(date +%s)
    maint_default="qemu-tiers contributors <root@localhost>"
fi
export SOURCE_DATE_EPOCH    # dpkg-deb clamps file times to it
version=$QEMU_UPSTREAM_VERSION+tiers.$commits
maint=${DEBFULLNAME:+$DEBFULLNAME <${DEBEMAIL:-}>}
maint=${maint:-$maint_default}
npatches=$(find "$TOP/patches" -name '*.patch' | wc -l)

rm -rf "$out"
mkdir -p "$out/stage" "$out/src/debian"

# stage PKG PART: the files of one package, as installed under /usr.
stage() {
    PREFIX=/usr DESTDIR=$out/stage/$1 LIBDIR=lib/$multiarch DOCDIR=/usr/share/doc/$1 \
        STRIP=1 QT_INSTALL_MANIFEST=0 QT_INSTALL_APPARMOR=1 QT_INSTALL_PARTS=$2 \
        "$TOP/scripts/install.sh" > "$out/stage-$1.log" 2>&1 ||
        die "staging $1 failed: $(tail -n 3 "$out/stage-$1.log")"
    local doc=$out/stage/$1/usr/share/doc/$1
    mkdir -p "$doc"
    copyright > "$doc/copyright"
    # A native package's changelog (we package our own tree).
    printf '%s (%s) bookworm; urgency=medium\n\n  * Built from qemu-tiers commit %s:\n    QEMU %s, Debian'"'"'s source package %s,\n    with %d patches.\n\n -- %s  %s\n' \
        qemu-tiers "$version" "$commit" "$QEMU_UPSTREAM_VERSION" "$QEMU_SRC_VERSION" "$npatches" \
        "$maint" "$date" | gzip -9n > "$doc/changelog.gz"
    chmod 0644 "$doc/copyright" "$doc/changelog.gz"
}
copyright() {
    cat <<EOF
qemu-tiers: QEMU $QEMU_UPSTREAM_VERSION (x86_64) with a kernel tier and an exit router.

Built from Debian's source package qemu $QEMU_SRC_VERSION and the
qemu-tiers patch series and sources (hw/split, accel/route).

QEMU:
  Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers
  QEMU as a whole is released under the GNU General Public License,
  version 2.  Parts of it may be used under other licences (GPL-2+,
  LGPL-2.1+, BSD, MIT); see the LICENSE file and the source headers of
  QEMU's source package.

qemu-tiers (the patches, hw/split, accel/route, the external-handler
library and example):
  Copyright (c) 2026 qemu-tiers contributors
  Released under the GNU General Public License, version 2 or (at your
  option) any later version.

On Debian systems the complete text of the GNU General Public License
version 2 is in /usr/share/common-licenses/GPL-2.
EOF
}

stage qemu-tiers-system-x86 system
stage qemu-tiers-exit-handler-dev dev

# dpkg-shlibdeps reads debian/control from its working directory.
seabios=$(pkg_version seabios)
[ -n "$seabios" ] || die "seabios is not installed (run 'make setup')"
cat > "$out/src/debian/control" <<EOF
Source: qemu-tiers
Maintainer: $maint

Package: qemu-tiers-system-x86
Architecture: $arch

Package: qemu-tiers-exit-handler-dev
Architecture: $arch
EOF
shlibs() {  # shlibs PKG BINARY: the Depends dpkg-shlibdeps finds for BINARY
    (cd "$out/src" && dpkg-shlibdeps -O -e"$out/stage/$1$2" 2>"$out/shlibdeps.log") |
        sed -n 's/^shlibs:Depends=//p'
}
sys_deps="$(shlibs qemu-tiers-system-x86 /usr/lib/qemu-tiers/bin/qemu-system-x86_64), seabios (>= ${seabios%%-*})"
dev_deps=$(shlibs qemu-tiers-exit-handler-dev /usr/lib/qemu-tiers/bin/exit-handler-post)
if [ -z "$dev_deps" ] || [ "${sys_deps#,}" != "$sys_deps" ]; then
    die "dpkg-shlibdeps found no dependencies (see ${out#"$TOP"/}/shlibdeps.log)"
fi

# control PKG SECTION DEPENDS DESCRIPTION...
control() {
    local pkg=$1 section=$2 deps=$3 root=$out/stage/$1
    shift 3
    mkdir -p "$root/DEBIAN"
    {
        printf 'Package: %s\nSource: qemu-tiers\nVersion: %s\nArchitecture: %s\n' "$pkg" "$version" "$arch"
        printf 'Maintainer: %s\nInstalled-Size: %s\nDepends: %s\n' "$maint" "$(du -sk "$root" | cut -f1)" "$deps"
        printf 'Section: %s\nPriority: optional\n' "$section"
        printf 'Description: %s\n' "$1"
        shift
        printf ' %s\n' "$@"
    } > "$root/DEBIAN/control"
    # Files in /etc are conffiles: dpkg keeps a changed one, purge removes it.
    if [ -d "$root/etc" ]; then
        (cd "$root" && find etc -type f -printf '/%p\n' | LC_ALL=C sort) > "$root/DEBIAN/conffiles"
        chmod 0644 "$root/DEBIAN/conffiles"
    fi
    (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\n' |
        LC_ALL=C sort | xargs -d '\n' md5sum) > "$root/DEBIAN/md5sums"
    find "$root" -type d -exec chmod 0755 {} +
    chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_${version}_$arch.deb" > /dev/null ||
        die "dpkg-deb --build $pkg failed"
}
control qemu-tiers-system-x86 otherosfs "$sys_deps" \
    "QEMU 10.0 for x86_64 with a kernel tier and an exit router" \
    "qemu-tiers is a fork of QEMU $QEMU_UPSTREAM_VERSION (Debian's $QEMU_SRC_VERSION)." \
    "Its kernel tier serves the hot legacy devices (PIT, PIC pair and ELCR," \
    "i8042 status, port 0x61, port 0x80, ACPI PM timer) in the vCPU thread" \
    "without the Big QEMU Lock, and its exit router sends port I/O, MMIO and" \
    "MSR exits to the handlers that routes choose, in QEMU or in handler" \
    "processes." \
    "." \
    "The emulator is /usr/lib/qemu-tiers/bin/qemu-system-x86_64, started as" \
    "qemu-tiers-system-x86_64; it installs beside Debian's qemu-system-x86" \
    "and replaces none of its files.  qemu-tiers-ivq-broker connects the" \
    "inter-VM queue devices (-device ivq) of the guests on one host."
control qemu-tiers-exit-handler-dev libdevel "$dev_deps" \
    "qemu-tiers external exit handlers: library, headers and example" \
    "A static library and its headers for writing the handler processes that" \
    "qemu-tiers' exit router sends exits to (handler=external): the socket," \
    "the handshake and the shared request ring.  Also the example handler" \
    "exit-handler-post (a POST-code device) and its source." \
    "." \
    "Build a handler with: pkg-config --cflags --libs qemu-tiers-exithandler"

for d in "$out"/*.deb; do
    say "built ${d#"$TOP"/} ($(du -h "$d" | cut -f1))"
done
# lintian (make check installs it): errors and warnings fail; its notes
# ("I:", e.g. upstream QEMU's spelling) are listed in build/deb/lintian.log.
if command -v lintian > /dev/null; then
    rc=0
    lintian -I --fail-on error,warning "$out"/*.deb > "$out/lintian.raw" 2>&1 || rc=$?
    grep -v 'running with root privileges' "$out/lintian.raw" > "$out/lintian.log" || true
    rm -f "$out/lintian.raw"
    if [ $rc != 0 ]; then
        cat "$out/lintian.log" >&2
        die "lintian found errors or warnings (above)"
    fi
    say "lintian: no errors or warnings; $(grep -c '^I:' "$out/lintian.log" || true) notes in ${out#"$TOP"/}/lintian.log"
else
    say "lintian is not installed: not run (make setup-check installs it)"
fi
