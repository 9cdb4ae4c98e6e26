#!/usr/bin/env bash
# The patch series: each patch has a commit-style header, applies in order
# to the pinned pristine source without fuzz or offsets, and the hook points
# are live (QEMU's meson read our meson.build files).
set -uo pipefail
top=${QT_TOP:?}
b=${QT_BUILD_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

[ -d "$b/src-vanilla" ] || { echo "FAIL: no pristine tree in $b/src-vanilla"; exit 1; }
n=0
for p in "$top"/patches/*.patch; do
    n=$((n + 1))
    name=$(basename "$p")
    grep -q '^From: ' "$p" || bad "$name has no From: line"
    grep -Eq '^Subject: \[PATCH [0-9]+/[0-9]+\] ' "$p" || bad "$name has no 'Subject: [PATCH n/m]' line"
    files=$(grep -c '^+++ ' "$p")
    [ "$files" -ge 1 ] || bad "$name changes no file"
done
[ $n -ge 1 ] || bad "no patches"
echo "ok: $n patches have headers"

# Apply in order on a copy of only the files the series touches.
for f in $(cat "$top"/patches/*.patch | sed -n 's|^+++ b/||p' | sort -u); do
    mkdir -p "$tmp/src/$(dirname "$f")"
    cp "$b/src-vanilla/$f" "$tmp/src/$f" 2>/dev/null || true
done
for p in "$top"/patches/*.patch; do
    out=$(patch -d "$tmp/src" -p1 --forward --no-backup-if-mismatch < "$p" 2>&1) ||
        bad "$(basename "$p") does not apply: $out"
    if grep -Eq 'fuzz|offset' <<< "$out"; then
        bad "$(basename "$p") applies only with fuzz or offset: $out"
    fi
done
echo "ok: series applies cleanly to the pinned source"

# The fork's tree is exactly pristine + series.
for f in $(cd "$tmp/src" && find . -type f); do
    cmp -s "$tmp/src/$f" "$top/qemu/$f" || bad "qemu/$f differs from pristine + patches"
done
# And the vanilla twin has none of it.
grep -q "subdir('split')" "$b/src-vanilla/hw/meson.build" && bad "vanilla source carries a patch"

# Hook points are live in the fork's meson configuration.
log=$b/qemu-fork/meson-logs/meson-log.txt
for hook in hw/split accel/route tests; do
    grep -q "qemu-tiers: $hook hooked into QEMU's build" "$log" ||
        bad "$hook was not read by QEMU's meson (see $log)"
done
echo "ok: hook points active"
exit $fail
