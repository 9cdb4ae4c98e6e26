#!/usr/bin/env bash
# Rewrite the diff of one patch of the series from qemu/, keeping its
# header (the lines up to the first "---"):
#   refresh-patch.sh patches/00NN-....patch
# For a patch whose files no other patch of the series touches: each is
# compared with build/src-vanilla.  Edit the files in qemu/, refresh,
# then rebuild (fetch-upstream.sh re-creates qemu/ from the new series).
# A maintainer tool, like make-patch.sh: the build only applies patches.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
p=${1:?usage: refresh-patch.sh PATCH}
[ -f "$p" ] || die "no patch $p"
mapfile -t files < <(sed -n 's#^--- a/##p' "$p")
[ ${#files[@]} -gt 0 ] || die "$p touches no file"
for f in "${files[@]}"; do
    for q in "$TOP"/patches/*.patch; do
        [ "$(readlink -f "$q")" = "$(readlink -f "$p")" ] && continue
        grep -qx -- "--- a/$f" "$q" && die "$f is also in $(basename "$q"): refresh by hand"
    done
done
tmp=$(mktemp)
sed '/^---$/q' "$p" > "$tmp"
for f in "${files[@]}"; do
    (diff -u "$BUILD/src-vanilla/$f" "$TOP/qemu/$f" || true) |
        sed -e "1s#^--- .*#--- a/$f#" -e "2s#^+++ .*#+++ b/$f#"
done >> "$tmp"
mv "$tmp" "$p"
say "refreshed $(basename "$p") (${#files[@]} files)"
