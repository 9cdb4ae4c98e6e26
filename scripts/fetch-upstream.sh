#!/usr/bin/env bash
# Fetch Debian's qemu source package (pinned, sha256-checked), unpack it with
# Debian's patches applied, and lay out two trees:
#   build/src-vanilla   the source exactly as Debian ships it (the vanilla twin)
#   qemu/               the same source + patches/*.patch + links to our folders
# Idempotent: a stamp records the inputs; nothing is redone when they match.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mkdir -p "$DL" "$BUILD"
src_dir=$DL/qemu-src

# 1. Download (apt-get source --download-only), then verify every file.
need_dl=0
while read -r sha file; do
    [ -n "$file" ] || continue
    if [ ! -f "$src_dir/$file" ] || [ "$(sha256sum "$src_dir/$file" | cut -d' ' -f1)" != "$sha" ]; then
        need_dl=1
    fi
done <<< "$QEMU_SRC_FILES"
if [ $need_dl = 1 ]; then
    rm -rf "$src_dir"; mkdir -p "$src_dir"
    # The sizes apt will fetch, for the progress line.
    total=$( (cd "$src_dir" && apt-get source -q --print-uris "$QEMU_SRC_PKG=$QEMU_SRC_VERSION" 2>/dev/null) |
             awk "/^'/ { s += \$3 } END { print s + 0 }")
    run_step "downloading source package $QEMU_SRC_PKG=$QEMU_SRC_VERSION ($QEMU_SRC_SUITE)" \
        "$src_dir/apt.log" "dir_progress $src_dir $total" \
        env -C "$src_dir" apt-get source -q --download-only "$QEMU_SRC_PKG=$QEMU_SRC_VERSION" ||
        die "apt-get source $QEMU_SRC_PKG=$QEMU_SRC_VERSION failed: $(grep -E '^(E|W):' "$src_dir/apt.log" | head -n2 | tr '\n' ' ') (run 'make setup' to add the deb-src entry)"
fi
while read -r sha file; do
    [ -n "$file" ] || continue
    check_sha256 "$src_dir/$file" "$sha"
done <<< "$QEMU_SRC_FILES"
dsc=$(ls "$src_dir"/*.dsc)

# 2. Pristine tree (Debian patches applied by dpkg-source).
pristine_stamp=$BUILD/src-vanilla/.qemu-tiers-stamp
pristine_key="$QEMU_SRC_VERSION"
if [ ! -f "$pristine_stamp" ] || [ "$(cat "$pristine_stamp")" != "$pristine_key" ]; then
    say "unpacking $(basename "$dsc") into build/src-vanilla"
    rm -rf "$BUILD/src-vanilla" "$BUILD/src-vanilla.tmp"
    command -v dpkg-source >/dev/null || die "dpkg-source not found (package dpkg-dev; run 'make setup')"
    dpkg-source --no-check -x "$dsc" "$BUILD/src-vanilla.tmp" >"$BUILD/unpack.log" 2>&1 ||
        die "dpkg-source -x failed, see $BUILD/unpack.log"
    mv "$BUILD/src-vanilla.tmp" "$BUILD/src-vanilla"
    echo "$pristine_key" > "$pristine_stamp"
fi

# 3. Fork tree: pristine + our patch series + links to our folders.  The key
#    covers the patch contents, so a changed patch re-creates qemu/ (a few
#    seconds); unpatched files keep their pristine mtimes.
patch_key=$( (echo "$pristine_key"; cat "$TOP"/patches/*.patch 2>/dev/null) | sha256sum | cut -d' ' -f1)
fork_stamp=$TOP/qemu/.qemu-tiers-stamp
if [ ! -f "$fork_stamp" ] || [ "$(cat "$fork_stamp")" != "$patch_key" ]; then
    say "preparing qemu/ (pristine + $(ls "$TOP"/patches/*.patch 2>/dev/null | wc -l) patches)"
    rm -rf "$TOP/qemu.tmp"
    cp -a "$BUILD/src-vanilla" "$TOP/qemu.tmp"
    rm -f "$TOP/qemu.tmp/.qemu-tiers-stamp"
    for p in "$TOP"/patches/*.patch; do
        [ -f "$p" ] || continue
        patch -d "$TOP/qemu.tmp" -p1 --quiet --forward --no-backup-if-mismatch < "$p" ||
            die "patch $(basename "$p") does not apply to $QEMU_SRC_VERSION"
    done
    # Our folders become part of QEMU's tree (meson refuses '..' in subdir()).
    ln -s ../../hw/split "$TOP/qemu.tmp/hw/split"
    ln -s ../../accel/route "$TOP/qemu.tmp/accel/route"
    ln -s ../../tests "$TOP/qemu.tmp/tests/tiers"
    ln -s ../accel/route/exit-route.json "$TOP/qemu.tmp/qapi/exit-route.json"
    ln -s ../../hw/ras "$TOP/qemu.tmp/hw/ras"
    ln -s ../hw/ras/ras.json "$TOP/qemu.tmp/qapi/ras.json"
    ln -s ../../hw/ivq "$TOP/qemu.tmp/hw/ivq"
    ln -s ../hw/ivq/ivq.json "$TOP/qemu.tmp/qapi/ivq.json"
    # cp -a kept pristine mtimes, so ninja and ccache redo only what changed.
    rm -rf "$TOP/qemu"
    mv "$TOP/qemu.tmp" "$TOP/qemu"
    echo "$patch_key" > "$fork_stamp"
fi
say "upstream $QEMU_UPSTREAM_VERSION ready: qemu/ (fork), build/src-vanilla (vanilla twin)"
