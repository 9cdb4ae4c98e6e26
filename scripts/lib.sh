# Shared helpers for qemu-tiers scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${QT_BUILD_DIR:-$TOP/build}
DL=${QT_DOWNLOAD_DIR:-$BUILD/downloads}
# shellcheck source=pins.env
. "${QT_PINS:-$TOP/scripts/pins.env}"

say()  { printf '[qemu-tiers] %s\n' "$*" >&2; }
die()  { printf '[qemu-tiers] ERROR: %s\n' "$*" >&2; exit 1; }

# missing_pkgs PKG...: those dpkg does not have installed, one a line.
missing_pkgs() {
    local p
    for p; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
    done
}

# as_root CMD...: run CMD as root, through sudo unless already root.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# check_sha256 FILE EXPECTED: stop with a message naming the file on mismatch.
check_sha256() {
    local f=$1 want=$2 got
    [ -f "$f" ] || die "missing download: $f"
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        die "sha256 mismatch for $(basename "$f"): expected $want, got $got (delete it and retry, or fix scripts/pins.env)"
    fi
}

# fetch_deb PKG VERSION SHA256 OUTDIR: download one binary package with apt,
# pinned by version and hash; reuse a verified copy.
fetch_deb() {
    local pkg=$1 ver=$2 sha=$3 out=$4 f
    mkdir -p "$out"
    f=$(ls "$out/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -n "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ]; then
        echo "$f"; return 0
    fi
    rm -f "$out/${pkg}_"*.deb
    say "downloading $pkg=$ver"
    (cd "$out" && apt-get download -q "$pkg=$ver" >/dev/null 2>"$out/$pkg.err") ||
        die "apt-get download $pkg=$ver failed: $(tail -n1 "$out/$pkg.err") (is the pinned version still in the archive? run 'make setup' first)"
    f=$(ls "$out/${pkg}_"*.deb 2>/dev/null | head -n1)
    check_sha256 "$f" "$sha"
    echo "$f"
}
