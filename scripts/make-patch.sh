#!/usr/bin/env bash
# Write one patch of the series from edits made to copies of pristine files.
#   make-patch.sh OUT.patch "N/M" "subject" "body" FILE...
# Each FILE (a path inside QEMU's tree) must have been edited in
# $QT_PATCH_WORK/FILE; the pristine copy is build/src-vanilla/FILE.
# A maintainer tool: the build only applies patches, it never makes them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
out=$1 num=$2 subject=$3 body=$4
shift 4
work=${QT_PATCH_WORK:?set QT_PATCH_WORK to the folder with the edited files}
{
    printf 'From: qemu-tiers <qemu-tiers@localhost>\nSubject: [PATCH %s] %s\n\n%s\n\n---\n' \
        "$num" "$subject" "$body"
    for f in "$@"; do
        (cd "$BUILD" && diff -u "src-vanilla/$f" "$work/$f" || true) |
            sed -e "1s#^--- src-vanilla/.*#--- a/$f#" -e "2s#^+++ .*#+++ b/$f#"
    done
} > "$out"
