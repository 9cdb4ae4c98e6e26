#!/usr/bin/env bash
# Install what qemu-tiers needs on Debian 12, by need, and nothing when it
# is there:
#   setup-host.sh run     what builds and runs the fork (make run, build,
#                         bench, install, deb): compilers, QEMU's build
#                         dependencies, SeaBIOS, meson >= 1.5
#   setup-host.sh check   that, and what only the tests need (make check):
#                         libvirt 11.3 from bookworm-backports (pinned in
#                         pins.env, package by package), python3-libvirt,
#                         python3-pycotap, lintian
#  - apt source entries derived with sed from the machine's own Debian entry
#    (/etc/apt/sources.list.d/debian.sources): trixie deb-src for QEMU's
#    source package, bookworm-backports for meson, pycotap and libvirt.
#  - A package installed here comes with none of its systemd units enabled
#    or running: the project runs no daemon (the libvirt tests use
#    libvirt's embedded driver, inside virsh).
# --dry-run: change nothing; say what would be installed and print apt's
# simulation of it ("Inst" lines).  QT_DPKG_ADMINDIR=DIR takes DIR/status
# as the machine's dpkg database (an empty one: a fresh machine).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

dry=0
if [ "${1:-}" = --dry-run ]; then dry=1; shift; fi
need=${1:-run}

base=/etc/apt/sources.list.d/debian.sources
src_list=/etc/apt/sources.list.d/qemu-tiers-trixie-src.sources
bpo_list=/etc/apt/sources.list.d/qemu-tiers-bookworm-backports.sources

PKGS="gcc gcc-multilib make patch xz-utils dpkg-dev python3 python3-venv ninja-build flex bison
      libglib2.0-dev libpixman-1-dev libslirp-dev libfdt-dev pkgconf seabios ccache"
BPO_PKGS="meson"
case $need in
run) ;;
check) PKGS+=" lintian"; BPO_PKGS+=" python3-pycotap" ;;
*) die "setup-host.sh: unknown need '$need' (expected run or check)" ;;
esac

admindir=${QT_DPKG_ADMINDIR:-}
apt_state=()
[ -z "$admindir" ] || apt_state=(-o "Dir::State::status=$admindir/status")

need_update=0
if [ ! -f "$src_list" ] || [ ! -f "$bpo_list" ]; then
    [ -f "$base" ] || die "$base not found: cannot derive apt source entries (is this Debian 12?)"
    grep -q '^Suites: bookworm' "$base" || die "$base has no bookworm entry to derive from"
    if [ $dry = 1 ]; then
        say "dry run: would add apt entries derived from $base: trixie deb-src, bookworm-backports"
    else
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
    fi
    need_update=1
fi

# shellcheck disable=SC2086
mapfile -t missing < <(missing_pkgs $PKGS)
# shellcheck disable=SC2086
mapfile -t bpo_missing < <(missing_pkgs $BPO_PKGS)
mv=$(pkg_version meson)
if [ -n "$mv" ] && dpkg --compare-versions "$mv" lt 1.5; then
    bpo_missing+=(meson)
fi
lv_missing=()
if [ "$need" = check ]; then
    # libvirt: exactly the pinned version of each of its packages.
    for p in $LIBVIRT_PKGS; do
        [ "$(pkg_version "$p")" = "$LIBVIRT_VERSION" ] || lv_missing+=("$p=$LIBVIRT_VERSION")
    done
    # Its Python binding (bookworm's), after libvirt so that it does not
    # pull in bookworm's libvirt0 first.
    [ -z "$(missing_pkgs python3-libvirt)" ] || lv_missing+=(python3-libvirt)
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

# The three installs: bookworm's packages, backports' (-t), and libvirt
# pinned to backports package by package, so that its other dependencies
# come from bookworm itself (-t would pull backports' too).
# apt_install WHAT ARGS...: install, or with --dry-run simulate.
apt_install() {
    local what=$1
    shift
    if [ $dry = 1 ]; then
        say "dry run ($need): would install $what: $(printf '%s ' "$@" | sed 's/-t bookworm-backports //')"
        apt-get install -s -q --no-install-recommends "${apt_state[@]}" "$@" 2>&1 |
            grep -E '^(Inst|E:)' || true
        return 0
    fi
    say "installing $what: $(printf '%s ' "$@" | sed 's/-t bookworm-backports //')"
    as_root apt-get install -y -q --no-install-recommends "$@" ||
        die "apt-get install $* failed"
}

export DEBIAN_FRONTEND=noninteractive
if [ $dry = 1 ]; then
    [ ${#missing[@]} = 0 ] || apt_install "($need)" "${missing[@]}"
    [ ${#bpo_missing[@]} = 0 ] || apt_install "from bookworm-backports" -t bookworm-backports "${bpo_missing[@]}"
    [ ${#lv_missing[@]} = 0 ] || apt_install "libvirt $LIBVIRT_VERSION from bookworm-backports" "${lv_missing[@]}"
    [ ${#missing[@]} -gt 0 ] || [ ${#bpo_missing[@]} -gt 0 ] || [ ${#lv_missing[@]} -gt 0 ] ||
        say "dry run ($need): nothing to install"
    exit 0
fi
if [ $need_update = 1 ]; then
    say "apt-get update"
    as_root apt-get update -q >"$BUILD.apt-update.log" 2>&1 || {
        tail -n 5 "$BUILD.apt-update.log" >&2
        die "apt-get update failed (see $BUILD.apt-update.log)"
    }
    rm -f "$BUILD.apt-update.log"
fi
if [ ${#missing[@]} -gt 0 ] || [ ${#bpo_missing[@]} -gt 0 ] || [ ${#lv_missing[@]} -gt 0 ]; then
    before=$(mktemp)
    trap 'rm -f "$before"' EXIT
    installed_pkgs > "$before"
    [ ${#missing[@]} = 0 ] || apt_install "($need)" "${missing[@]}"
    [ ${#bpo_missing[@]} = 0 ] || apt_install "from bookworm-backports" -t bookworm-backports "${bpo_missing[@]}"
    [ ${#lv_missing[@]} = 0 ] || apt_install "libvirt $LIBVIRT_VERSION from bookworm-backports" "${lv_missing[@]}"
    disable_new_units "$before"
fi
src_listed ||
    die "source package $QEMU_SRC_PKG=$QEMU_SRC_VERSION is not in the apt lists (check $src_list)"
say "host ready ($need)"
