# Paths of the two builds.  Source it.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# qemu_binary fork|vanilla
qemu_binary() {
    local b=$BUILD/qemu-$1${QT_BUILD_SUFFIX:-}/qemu-system-x86_64
    [ -x "$b" ] || die "no $1 build at ${b#"$TOP"/} (run 'make build')"
    echo "$b"
}
