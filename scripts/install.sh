#!/usr/bin/env bash
# Install the fork from this checkout's build (make install):
#   PREFIX   where to install (default /usr/local)
#   DESTDIR  a staging root prepended to every path (default none)
#   LIBDIR   the library directory, relative to PREFIX (default lib;
#            the Debian package uses lib/x86_64-linux-gnu)
#   DOCDIR   the documentation directory (default PREFIX/share/doc/qemu-tiers)
#   STRIP=1  strip the binaries and the static library (the Debian package)
#   QT_INSTALL_PARTS  "system", "dev" or both (default): what to install
#   QT_INSTALL_MANIFEST=0  write no uninstall manifest (dpkg keeps its own)
#   QT_INSTALL_APPARMOR=1  also the AppArmor rule that lets libvirt's
#            domains read the data directory (the Debian package; outside
#            PREFIX, in /etc/apparmor.d/abstractions/libvirt-qemu.d/)
#
# Layout: everything of QEMU's under PREFIX/lib/qemu-tiers, a private
# prefix that Debian's qemu-system-x86 (/usr/bin, /usr/share/qemu) never
# uses, and one link in PREFIX/bin whose name cannot shadow Debian's:
#   PREFIX/bin/qemu-tiers-system-x86_64 -> ../lib/qemu-tiers/bin/qemu-system-x86_64
#   PREFIX/lib/qemu-tiers/bin/qemu-system-x86_64        (system)
#   PREFIX/lib/qemu-tiers/bin/ivq-broker                (system) the
#       inter-VM queues' broker, linked as PREFIX/bin/qemu-tiers-ivq-broker
#   PREFIX/lib/qemu-tiers/share/qemu/                   (system) SeaBIOS links,
#       the option ROMs of this build, trace-events-all
#   PREFIX/share/man/man1/qemu-tiers-{system-x86_64,ivq-broker}.1 (system)
#   DOCDIR/examples/libvirt/*.xml                       (system) docs/libvirt/
#       with this install's emulator path
#   PREFIX/lib/qemu-tiers/bin/exit-handler-post         (dev) the example handler
#   PREFIX/include/qemu-tiers/exit-handler-{lib,proto}.h (dev)
#   PREFIX/LIBDIR/libqemu-tiers-exithandler.a           (dev)
#   PREFIX/LIBDIR/pkgconfig/qemu-tiers-exithandler.pc   (dev)
#   DOCDIR/examples/exit-handler-post.c                 (dev)
# QEMU finds its data directory relative to its own binary (a relocatable
# build: bin/../share/qemu), so the installed binary needs no -L.
# An install writes PREFIX/lib/qemu-tiers/installed-files, which
# scripts/uninstall.sh (make uninstall) reads.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
libdir=$prefix/${LIBDIR:-lib}
docdir=${DOCDIR:-$prefix/share/doc/qemu-tiers}
parts=${QT_INSTALL_PARTS:-system dev}
pkglib=$prefix/lib/qemu-tiers
case $prefix in
/*) ;;
*) die "PREFIX must be an absolute path (got '$prefix')" ;;
esac
[ -z "$destdir" ] || destdir=$(realpath -m "$destdir")

fork=$BUILD/qemu-fork
tiers=$BUILD/tiers
[ -x "$fork/qemu-system-x86_64" ] || die "no fork build in ${fork#"$TOP"/} (run 'make build')"
[ -x "$tiers/accel/route/libexithandler/exit-handler-post" ] &&
    [ -x "$tiers/hw/ivq/broker/ivq-broker" ] ||
    die "no build/tiers (run 'make build')"

manifest=$pkglib/installed-files
# Paths installed, and directories this install created (for uninstall).
declare -a files=() dirs=()
if [ -f "$destdir$manifest" ]; then
    # A re-install keeps the directories the first install created.
    mapfile -t dirs < <(sed -n 's/^d //p' "$destdir$manifest")
fi

# mkdir_p DIR: create DIR (a path without DESTDIR) and remember what was new.
mkdir_p() {
    local d=$1
    [ -d "$destdir$d" ] && return 0
    if [ "$d" = / ]; then mkdir -p "$destdir"; return 0; fi
    mkdir_p "$(dirname "$d")"
    mkdir -m 0755 "$destdir$d"
    dirs+=("$d")
}
# put MODE SRC DEST: install one file (DEST without DESTDIR).
put() {
    mkdir_p "$(dirname "$3")"
    install -m "$1" "$2" "$destdir$3"
    files+=("$3")
}
# link TARGET DEST: a relative symbolic link DEST -> TARGET (both absolute,
# without DESTDIR), as Debian's policy wants within one top-level directory.
link() {
    local rel
    mkdir_p "$(dirname "$2")"
    rel=$(realpath -ms --relative-to="$(dirname "$2")" "$1")
    ln -sfn "$rel" "$destdir$2"
    files+=("$2")
}
strip_bin() {
    [ "${STRIP:-0}" = 1 ] || return 0
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$destdir$1"
}

if [[ " $parts " = *" system "* ]]; then
    put 0755 "$fork/qemu-system-x86_64" "$pkglib/bin/qemu-system-x86_64"
    strip_bin "$pkglib/bin/qemu-system-x86_64"
    link "$pkglib/bin/qemu-system-x86_64" "$prefix/bin/qemu-tiers-system-x86_64"
    # The inter-VM queues' broker (docs/intervm-queues.rst).
    put 0755 "$tiers/hw/ivq/broker/ivq-broker" "$pkglib/bin/ivq-broker"
    strip_bin "$pkglib/bin/ivq-broker"
    link "$pkglib/bin/ivq-broker" "$prefix/bin/qemu-tiers-ivq-broker"
    # Firmware: SeaBIOS from Debian's package (linked, as in the build),
    # the option ROMs this build compiled (copied), QEMU's trace events.
    [ -f /usr/share/seabios/bios-256k.bin ] || die "SeaBIOS missing (package seabios; run 'make setup')"
    for f in /usr/share/seabios/*.bin; do
        link "$f" "$pkglib/share/qemu/${f##*/}"
    done
    for f in linuxboot_dma.bin linuxboot.bin multiboot_dma.bin multiboot.bin kvmvapic.bin pvh.bin; do
        put 0644 "$fork/pc-bios/optionrom/$f" "$pkglib/share/qemu/$f"
    done
    put 0644 "$fork/trace/trace-events-all" "$pkglib/share/qemu/trace-events-all"
    if [ "${QT_INSTALL_APPARMOR:-0}" = 1 ]; then
        # libvirt's AppArmor abstraction for QEMU reads /usr/share/qemu and
        # /usr/share/seabios (the SeaBIOS links resolve there), and includes
        # this directory for what other packages need.
        aa=/etc/apparmor.d/abstractions/libvirt-qemu.d/qemu-tiers-system-x86
        mkdir_p "$(dirname "$aa")"
        printf '%s\n' "# qemu-tiers: domains whose <emulator> is $pkglib/bin/qemu-system-x86_64" \
            "# read its option ROMs from its own data directory." \
            "  $pkglib/share/qemu/** r," > "$destdir$aa"
        chmod 0644 "$destdir$aa"
        files+=("$aa")
    fi
    for page in qemu-tiers-system-x86_64.1 qemu-tiers-ivq-broker.1; do
        man=$prefix/share/man/man1/$page
        if [ "${STRIP:-0}" = 1 ]; then
            # Debian's form: compressed, reproducibly.
            mkdir_p "$(dirname "$man")"
            gzip -9n < "$TOP/docs/$page" > "$destdir$man.gz"
            chmod 0644 "$destdir$man.gz"
            files+=("$man.gz")
        else
            put 0644 "$TOP/docs/$page" "$man"
        fi
    done
    # The libvirt examples with this install's emulator; the guest (any
    # kernel and initramfs, e.g. build/guest's) goes where libvirt keeps
    # boot images (docs/libvirt.rst).
    mkdir_p "$docdir/examples/libvirt"
    for x in "$TOP"/docs/libvirt/*.xml; do
        n=$(basename "$x" .xml)
        sed -e "s#@EMULATOR@#$pkglib/bin/qemu-system-x86_64#g" \
            -e "s#@GUEST@#/var/lib/libvirt/boot/qemu-tiers#g" \
            -e "s#@LOG@#/var/log/libvirt/qemu/$n.serial.log#g" "$x" > "$destdir$docdir/examples/libvirt/${x##*/}"
        chmod 0644 "$destdir$docdir/examples/libvirt/${x##*/}"
        files+=("$docdir/examples/libvirt/${x##*/}")
    done
fi

if [[ " $parts " = *" dev "* ]]; then
    lh=$TOP/accel/route/libexithandler
    put 0755 "$tiers/accel/route/libexithandler/exit-handler-post" "$pkglib/bin/exit-handler-post"
    strip_bin "$pkglib/bin/exit-handler-post"
    put 0644 "$lh/exit-handler-lib.h" "$prefix/include/qemu-tiers/exit-handler-lib.h"
    put 0644 "$TOP/accel/route/exit-handler-proto.h" "$prefix/include/qemu-tiers/exit-handler-proto.h"
    # meson makes a thin archive (members by reference) of a library it
    # does not install itself: a real one from its members.
    lib=$libdir/libqemu-tiers-exithandler.a
    mkdir_p "$libdir"
    rm -f "$destdir$lib"
    mapfile -t members < <(cd "$tiers/accel/route/libexithandler" && ar t libexithandler.a)
    (cd "$tiers/accel/route/libexithandler" && ar rcsD "$destdir$lib" "${members[@]}") ||
        die "could not write $destdir$lib"
    chmod 0644 "$destdir$lib"
    files+=("$lib")
    if [ "${STRIP:-0}" = 1 ]; then
        strip --strip-debug --remove-section=.comment --remove-section=.note \
            --enable-deterministic-archives "$destdir$lib"
    fi
    mkdir_p "$libdir/pkgconfig"
    cat > "$destdir$libdir/pkgconfig/qemu-tiers-exithandler.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/qemu-tiers
libdir=$libdir

Name: qemu-tiers-exithandler
Description: qemu-tiers external exit handlers: the handler's side of the protocol
Version: $QEMU_UPSTREAM_VERSION
Cflags: -I\${includedir}
Libs: -L\${libdir} -lqemu-tiers-exithandler
PC
    chmod 0644 "$destdir$libdir/pkgconfig/qemu-tiers-exithandler.pc"
    files+=("$libdir/pkgconfig/qemu-tiers-exithandler.pc")
    put 0644 "$lh/exit-handler-post.c" "$docdir/examples/exit-handler-post.c"
fi

if [ "${QT_INSTALL_MANIFEST:-1}" = 1 ]; then
    mkdir_p "$pkglib"
    files+=("$manifest")
    {
        printf '# written by qemu-tiers scripts/install.sh; read by scripts/uninstall.sh\n'
        printf 'f %s\n' "${files[@]}" | sort -u
        [ ${#dirs[@]} = 0 ] || printf 'd %s\n' "${dirs[@]}" | sort -u
    } > "$destdir$manifest"
fi
say "installed $(printf '%s\n' "${files[@]}" | sort -u | wc -l) files (PREFIX=$prefix${destdir:+, DESTDIR=$destdir}; $parts)"
if [[ " $parts " = *" system "* ]]; then
    say "  $prefix/bin/qemu-tiers-system-x86_64 -> $pkglib/bin/qemu-system-x86_64 (libvirt's <emulator>)"
fi
if [[ " $parts " = *" dev "* ]]; then
    say "  handler library: pkg-config qemu-tiers-exithandler ($libdir/pkgconfig); example: $pkglib/bin/exit-handler-post"
fi
if [ "${QT_INSTALL_MANIFEST:-1}" = 1 ]; then
    say "  the list: $manifest (make uninstall${PREFIX:+ PREFIX=$prefix}${DESTDIR:+ DESTDIR=$DESTDIR} removes it all)"
fi
