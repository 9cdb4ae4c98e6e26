#!/usr/bin/env bash
# Set-up by need: scripts/setup-host.sh --dry-run, on a fresh machine (an
# empty dpkg database: QT_DPKG_ADMINDIR), against this machine's apt lists.
#  - run (what `make run` and every other target ask for): apt would
#    install the build dependencies and no libvirt package, no QEMU of
#    Debian's, no test-only package;
#  - check (what `make check` adds): libvirt's client and QEMU driver at
#    the pinned version, python3-libvirt, lintian; and still no libvirtd
#    (the tests use the embedded driver);
#  - on this machine, after `make check`'s set-up, neither asks for anything.
set -uo pipefail
top=${QT_TOP:?}
. "$top/scripts/pins.env"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok()  { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

mkdir -p "$tmp/dpkg/info" "$tmp/dpkg/updates"
: > "$tmp/dpkg/status"
dry() {     # dry NEED: the Inst lines of a dry run on a fresh machine
    QT_DPKG_ADMINDIR=$tmp/dpkg "$top/scripts/setup-host.sh" --dry-run "$1" > "$tmp/$1.out" 2> "$tmp/$1.err" ||
        { bad "setup-host.sh --dry-run $1 failed: $(cat "$tmp/$1.err")"; return 1; }
    if grep -q '^E:' "$tmp/$1.out"; then
        bad "apt could not resolve the $1 set: $(grep '^E:' "$tmp/$1.out")"; return 1
    fi
    sed -n 's/^Inst \([^ ]*\) .*/\1/p' "$tmp/$1.out" | sort -u > "$tmp/$1.pkgs"
}
has()  { grep -qx "$2" "$tmp/$1.pkgs"; }

if dry run; then
    n=$(wc -l < "$tmp/run.pkgs")
    for p in gcc gcc-multilib ninja-build seabios meson libglib2.0-dev; do
        has run "$p" || bad "run: apt would not install $p"
    done
    grep -q "^Inst meson (.*[Bb]ackports" "$tmp/run.out" || bad "run: meson not from bookworm-backports"
    unwanted=$(grep -E '^(libvirt|python3-libvirt$|qemu-system|qemu-kvm$|lintian$|python3-pycotap$)' "$tmp/run.pkgs" | tr '\n' ' ')
    if [ -z "$unwanted" ]; then
        ok "run: apt would install $n packages on a fresh machine, no libvirt package, no Debian QEMU, no test-only package"
    else
        bad "run: apt would install $unwanted"
    fi
fi

if dry check; then
    for p in libvirt-clients libvirt-daemon-driver-qemu python3-libvirt lintian python3-pycotap; do
        has check "$p" || bad "check: apt would not install $p"
    done
    grep -q "^Inst libvirt-daemon-driver-qemu ($LIBVIRT_VERSION " "$tmp/check.out" ||
        bad "check: libvirt-daemon-driver-qemu not at the pinned $LIBVIRT_VERSION"
    if has check libvirt-daemon || has check libvirt-daemon-system; then
        bad "check: apt would install libvirtd (libvirt-daemon)"
    else
        ok "check: adds libvirt $LIBVIRT_VERSION (client, QEMU driver), python3-libvirt, lintian, pycotap; no libvirtd"
    fi
fi

# This machine is set up (make check ran setup-host.sh check first).
for need in run check; do
    "$top/scripts/setup-host.sh" --dry-run "$need" > "$tmp/here.out" 2>&1
    if grep -q "dry run ($need): nothing to install" "$tmp/here.out" && ! grep -q '^Inst' "$tmp/here.out"; then
        ok "$need: nothing to install on this machine"
    else
        bad "$need on this machine: $(cat "$tmp/here.out")"
    fi
done
exit $fail
