#!/usr/bin/env bash
# Configure (once) and build our own meson project in build/tiers: the
# bench guest and the host-side unit tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ ! -f "$BUILD/tiers/build.ninja" ]; then
    meson setup "$BUILD/tiers" "$TOP" >"$BUILD/tiers-setup.log" 2>&1 ||
        die "meson setup of build/tiers failed:
$(tail -n 15 "$BUILD/tiers-setup.log")"
fi
ninja -C "$BUILD/tiers" >"$BUILD/tiers-build.log" 2>&1 ||
    die "build of build/tiers failed:
$(grep -E 'error|FAILED' "$BUILD/tiers-build.log" | head -n 20)"
