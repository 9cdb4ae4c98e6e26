#!/usr/bin/env bash
# Install what qemu-tiers needs on Debian 12, and nothing when it is there.
#  - apt source entries derived with sed from the machine's own Debian entry
#    (/etc/apt/sources.list.d/debian.sources): trixie deb-src for QEMU's
#    source package, bookworm-backports for meson >= 1.5, pycotap and
#    libvirt 11.3 (pinned in pins.env).
#  - the build and test packages, installed non-interactively.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

base=/etc/apt/sources.list.d/debian.sources
src_list=/etc/apt/sources.list.d/qemu-tiers-trixie-src.sources
bpo_list=/etc/apt/sources.list.d/qemu-tiers-bookworm-backports.sources

PKGS="gcc gcc-multilib make patch xz-utils dpkg-dev python3 python3-venv ninja-build flex bison
      libglib2.0-dev libpixman-1-dev libslirp-dev libfdt-dev pkgconf seabios ccache"
BPO_PKGS="meson python3-pycotap"

need_update=0
if [ ! -f "$src_list" ] || [ ! -f "$bpo_list" ]; then
    [ -f "$base" ] || die "$base not found: cannot derive apt source entries (is this Debian 12?)"
    grep -q '^Suites: bookworm' "$base" || die "$base has no bookworm entry to derive from"
    say "adding apt entries derived from $base: trixie deb-src, bookworm-backports"
    # deb-src for trixie, from both stanzas (main archive and security).
    sed -e 's/^Types: .*/Types: deb-src/' \
        -e 's/^Suites: bookworm-security$/Suites: trixie-security/' \
        -e 's/^Suites: bookworm .*/Suites: trixie trixie-updates/' \
        -e 's/^Suites: bookworm$/Suites: trixie/' "$base" | as_root tee "$src_list" >/dev/null
    # bookworm-backports, from the main-archive stanza only.
    awk 'BEGIN { RS = ""; ORS = "\n\n" } /Suites: bookworm( |$|\n)/ && !/security/ { print; exit }' "$base" |
        sed -e 's/^Types: .*/Types: deb/' -e 's/^Suites: .*/Suites: bookworm-backports/' |
        as_root tee "$bpo_list" >/dev/null
    need_update=1
fi

# shellcheck disable=SC2086
mapfile -t missing < <(missing_pkgs $PKGS)
# shellcheck disable=SC2086
mapfile -t bpo_missing < <(missing_pkgs $BPO_PKGS)
# libvirt: exactly the pinned version of each of its packages.
lv_missing=()
for p in $LIBVIRT_PKGS; do
    [ "$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null)" = "install ok installed $LIBVIRT_VERSION" ] ||
        lv_missing+=("$p=$LIBVIRT_VERSION")
done
# Its Python binding (bookworm's), after libvirt so that it does not pull
# in bookworm's libvirt0 first.
[ -z "$(missing_pkgs python3-libvirt)" ] || lv_missing+=(python3-libvirt)
mv=$(dpkg-query -W -f='${Version}' meson 2>/dev/null || true)
if [ -n "$mv" ] && dpkg --compare-versions "$mv" lt 1.5; then
    bpo_missing+=(meson)
fi
# The pinned downloads need up-to-date lists, too.  (sed reads all of
# apt-cache's output: grep would stop at the first match and, under
# pipefail, fail the pipeline with apt-cache's SIGPIPE.)
src_listed() {
    apt-cache showsrc "$QEMU_SRC_PKG" 2>/dev/null | sed -n 's/^Version: //p' |
        grep -Fx "$QEMU_SRC_VERSION" >/dev/null
}
if ! src_listed ||
   ! apt-cache show "$GUEST_KERNEL_PKG=$GUEST_KERNEL_VERSION" >/dev/null 2>&1; then
    need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#bpo_missing[@]} -gt 0 ] || [ ${#lv_missing[@]} -gt 0 ]; then
    need_update=1
fi

export DEBIAN_FRONTEND=noninteractive
if [ $need_update = 1 ]; then
    say "apt-get update"
    as_root apt-get update -q >"$BUILD.apt-update.log" 2>&1 || {
        tail -n 5 "$BUILD.apt-update.log" >&2
        die "apt-get update failed (see $BUILD.apt-update.log)"
    }
    rm -f "$BUILD.apt-update.log"
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "installing: ${missing[*]}"
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed"
fi
if [ ${#bpo_missing[@]} -gt 0 ]; then
    say "installing from bookworm-backports: ${bpo_missing[*]}"
    as_root apt-get install -y -q --no-install-recommends -t bookworm-backports "${bpo_missing[@]}" ||
        die "apt-get install -t bookworm-backports ${bpo_missing[*]} failed"
fi
if [ ${#lv_missing[@]} -gt 0 ]; then
    # Pinned to backports package by package: their other dependencies
    # come from bookworm itself (not -t, which would pull backports' too).
    say "installing libvirt $LIBVIRT_VERSION from bookworm-backports: ${lv_missing[*]%%=*}"
    as_root apt-get install -y -q --no-install-recommends "${lv_missing[@]}" ||
        die "apt-get install libvirt $LIBVIRT_VERSION (${lv_missing[*]}) failed"
fi
src_listed ||
    die "source package $QEMU_SRC_PKG=$QEMU_SRC_VERSION is not in the apt lists (check $src_list)"
say "host ready"
