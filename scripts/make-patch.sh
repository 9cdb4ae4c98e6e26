#!/usr/bin/env bash
# Write one patch of the series from edits made to copies of files.
#   make-patch.sh OUT.patch "N/M" "subject" "body" FILE...
# Each FILE (a path inside QEMU's tree) must have been edited in
# $QT_PATCH_WORK/FILE; the base it is compared with is $QT_PATCH_BASE/FILE
# (default build/src-vanilla/FILE, the pristine tree; point it at a copy
# of the patched tree when the file is already touched by an earlier
# patch of the series).
# A maintainer tool: the build only applies patches, it never makes them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$1 num=$2 subject=$3 body=$4
shift 4
work=${QT_PATCH_WORK:?set QT_PATCH_WORK to the folder with the edited files}
base=${QT_PATCH_BASE:-$BUILD/src-vanilla}
{
    printf 'From: qemu-tiers <qemu-tiers@localhost>\nSubject: [PATCH %s] %s\n\n%s\n\n---\n' \
        "$num" "$subject" "$body"
    for f in "$@"; do
        (diff -u "$base/$f" "$work/$f" || true) |
            sed -e "1s#^--- .*#--- a/$f#" -e "2s#^+++ .*#+++ b/$f#"
    done
} > "$out"
