#!/usr/bin/env bash
# --version: the fork names itself and its upstream; both keep 10.0.13.
set -euo pipefail
b=${QT_BUILD_DIR:?}
. "$QT_TOP/scripts/pins.env"
fail=0
check() {
    local which=$1 want=$2 v
    v=$("$b/qemu-$which/qemu-system-x86_64" --version | head -n1)
    echo "$which: $v"
    case $v in
    "QEMU emulator version $QEMU_UPSTREAM_VERSION ($want, Debian $QEMU_SRC_VERSION)") ;;
    *) echo "FAIL: $which --version should read 'QEMU emulator version $QEMU_UPSTREAM_VERSION ($want, Debian $QEMU_SRC_VERSION)'"; fail=1 ;;
    esac
}
check fork "qemu-tiers"
check vanilla "qemu-tiers vanilla twin"
# VERSION itself is untouched (libvirt parses the numbers).
[ "$(cat "$QT_TOP/qemu/VERSION")" = "$QEMU_UPSTREAM_VERSION" ] ||
    { echo "FAIL: qemu/VERSION changed"; fail=1; }
exit $fail
