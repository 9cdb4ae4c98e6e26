#!/usr/bin/env bash
# Configure (once) and build our own meson project in build/tiers: the
# bench guest and the host-side unit tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ ! -f "$BUILD/tiers/build.ninja" ]; then
    run_step "configuring build/tiers" "$BUILD/tiers-setup.log" last_line \
        meson setup "$BUILD/tiers" "$TOP" ||
        die "meson setup of build/tiers failed:
$(tail -n 15 "$BUILD/tiers-setup.log")"
fi
run_step "building build/tiers" "$BUILD/tiers-build.log" ninja_progress ninja -C "$BUILD/tiers" ||
    die "build of build/tiers failed:
$(grep -E 'error|FAILED' "$BUILD/tiers-build.log" | head -n 20)"
