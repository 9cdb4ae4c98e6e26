# Paths of the two builds.  Source it.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# qemu_binary fork|vanilla
qemu_binary() {
    local b=$BUILD/qemu-$1${QT_BUILD_SUFFIX:-}/qemu-system-x86_64
    [ -x "$b" ] || die "no $1 build at ${b#"$TOP"/} (run 'make build')"
    echo "$b"
}

# require_kvm: a test's KVM part runs only where KVM is usable
# (scripts/kvm-usable); elsewhere it says why and exits 77, which meson
# counts as skipped.
require_kvm() {
    local why
    why=$("$TOP/scripts/kvm-usable") || { echo "SKIP: $why"; exit 77; }
}
