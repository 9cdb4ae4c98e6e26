#!/usr/bin/env bash
# Run one of our qtests (built inside the fork's tree) against a build:
#   run-qtest.sh fork|vanilla TEST [GTEST-ARGS, e.g. -p PATH]
# The same test binary drives both QEMUs: compatibility is the point.
set -euo pipefail
which=$1 test=$2
b=${QT_BUILD_DIR:?}
exe=$b/qemu-fork/tests/tiers/qtest/$test
[ -x "$exe" ] || { echo "Bail out! $exe not built"; exit 1; }
export QTEST_QEMU_BINARY=$b/qemu-$which/qemu-system-x86_64
# Tests that run both builds (migration between them) find the twin here.
export QT_VANILLA_QEMU=$b/qemu-vanilla/qemu-system-x86_64
case $which in
fork) export QT_EXPECT_PACKAGE="qemu-tiers, Debian" ;;
vanilla) export QT_EXPECT_PACKAGE="qemu-tiers vanilla twin" ;;
esac
exec "$exe" --tap -k "${@:3}"
