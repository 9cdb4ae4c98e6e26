#!/usr/bin/env bash
# Run one of our unit tests (built inside the fork's tree): run-unit.sh TEST
set -euo pipefail
exe=${QT_BUILD_DIR:?}/qemu-fork/tests/tiers/unit/$1
[ -x "$exe" ] || { echo "Bail out! $exe not built"; exit 1; }
exec "$exe" --tap -k
