#!/usr/bin/env bash
# Remove what scripts/install.sh installed (make uninstall): the files of
# PREFIX/lib/qemu-tiers/installed-files, then the directories that install
# created, if they are empty.  PREFIX and DESTDIR as for install.sh.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}
[ -z "$destdir" ] || destdir=$(realpath -m "$destdir")
manifest=$prefix/lib/qemu-tiers/installed-files
[ -f "$destdir$manifest" ] ||
    die "nothing to uninstall: no $destdir$manifest (was it installed with another PREFIX or DESTDIR?)"

# Read it all first: it lists itself.
mapfile -t entries < <(grep -v '^#' "$destdir$manifest")
n=0
for e in "${entries[@]}"; do
    kind=${e%% *} path=${e#* }
    [ "$kind" = f ] || continue
    case $path in
    "$prefix"/*) ;;
    *) die "$manifest names $path, outside $prefix: refusing" ;;
    esac
    if [ -e "$destdir$path" ] || [ -L "$destdir$path" ]; then
        rm -f "$destdir$path"
        n=$((n + 1))
    fi
done
# Deepest first; a directory that holds something else stays.
left=()
while read -r path; do
    rmdir "$destdir$path" 2>/dev/null || { [ ! -d "$destdir$path" ] || left+=("$path"); }
done < <(printf '%s\n' "${entries[@]}" | sed -n 's/^d //p' | sort -r)
say "removed $n files from ${destdir:+$destdir}$prefix${left[*]:+; kept (not empty): ${left[*]}}"
