# Shared helpers for qemu-tiers scripts.  Source it; do not run it.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${QT_BUILD_DIR:-$TOP/build}
DL=${QT_DOWNLOAD_DIR:-$BUILD/downloads}
# shellcheck source=pins.env
. "${QT_PINS:-$TOP/scripts/pins.env}"

say()  { printf '[qemu-tiers] %s\n' "$*" >&2; }
die()  { printf '[qemu-tiers] ERROR: %s\n' "$*" >&2; exit 1; }

# missing_pkgs PKG...: those dpkg does not have installed, one a line.
# (QT_DPKG_ADMINDIR: another dpkg database, for setup-host.sh --dry-run.)
missing_pkgs() {
    local p
    for p; do
        [ -n "$(pkg_version "$p")" ] || echo "$p"
    done
}

# pkg_version PKG: the installed version of PKG, or nothing.
pkg_version() {
    { dpkg-query ${QT_DPKG_ADMINDIR:+"--admindir=$QT_DPKG_ADMINDIR"} -W \
        -f='${db:Status-Abbrev} ${Version}\n' "$1" 2>/dev/null || true; } | sed -nE 's/^.i. (.*)/\1/p'
}

# fmt_secs N: "42s" or "3m07s".
fmt_secs() {
    if [ "$1" -ge 60 ]; then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%ds' "$1"; fi
}

# now_us: microseconds since the epoch (bash's clock, no fork).
now_us() {
    echo "${EPOCHREALTIME//[!0-9]/}"
}

# run_step LABEL LOG PROBE CMD...: run CMD with all its output in LOG and
# show where it is while it runs.  PROBE is a command (word-split, LOG
# appended) that prints the position, e.g. ninja_progress ("[812/2345]
# 35%"), or "-" for the elapsed time only.  On a terminal one status line
# is rewritten every second; otherwise a line is printed every
# QT_PROGRESS_SECS seconds (default 10) when the position changed, or a
# minute passed.  Ends with how long the step took; returns CMD's status
# (the caller says what failed, with LOG).
run_step() {
    local label=$1 log=$2 probe=$3 pid rc=0 start now pos shown='' last=0 ticks=0
    local every=${QT_PROGRESS_SECS:-10} tty=0
    shift 3
    [ -t 2 ] && tty=1
    start=$(now_us)
    "$@" > "$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.25
        ticks=$((ticks + 1))
        [ $((ticks % 4)) = 0 ] || continue
        now=$((($(now_us) - start) / 1000000))
        pos=
        # shellcheck disable=SC2086  # PROBE is a command and its arguments
        [ "$probe" = - ] || pos=$($probe "$log" 2>/dev/null || true)
        if [ $tty = 1 ]; then
            printf '\r\033[K[qemu-tiers] %s: %s%s' "$label" "${pos:+$pos, }" "$(fmt_secs "$now")" >&2
        elif [ $((now - last)) -ge "$every" ] &&
             { [ "$pos" != "$shown" ] || [ $((now - last)) -ge 60 ]; }; then
            say "$label: ${pos:+$pos, }$(fmt_secs "$now")"
            last=$now shown=$pos
        fi
    done
    wait "$pid" || rc=$?
    [ $tty = 0 ] || printf '\r\033[K' >&2
    now=$((($(now_us) - start + 500000) / 1000000))
    if [ $rc = 0 ]; then
        say "$label: done in $(fmt_secs "$now") (log: ${log#"$TOP"/})"
    else
        say "$label: failed after $(fmt_secs "$now") (log: ${log#"$TOP"/})"
    fi
    return $rc
}

# Probes for run_step.
# ninja_progress LOG: ninja's last "[n/N]" in LOG, with its percentage.
ninja_progress() {
    tail -c 16384 "$1" | grep -oE '^\[[0-9]+/[0-9]+\]' | tail -n1 |
        awk -F'[][/]' '{ printf "%s %d%%", $0, $3 ? 100 * $2 / $3 : 0 }'
}
# last_line LOG: the last line of LOG, shortened (configure's "Checking ...").
last_line() {
    tail -n1 "$1" | cut -c1-60
}
# dir_progress DIR TOTAL LOG: bytes in the files of DIR against TOTAL.
dir_progress() {
    local got
    got=$(find "$1" -maxdepth 1 -type f ! -name '*.log' -printf '%s\n' |
          awk '{ s += $1 } END { print s + 0 }')
    awk -v g="$got" -v t="$2" 'BEGIN {
        if (t > 0) printf "%.1f of %.1f MB, %d%%", g / 1e6, t / 1e6, 100 * g / t
        else printf "%.1f MB", g / 1e6 }'
}

# installed_pkgs: every installed package, one a line, sorted.
installed_pkgs() {
    dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk '$1 ~ /^.i/ { print $2 }' | sort
}
# disable_new_units BEFORE: the packages installed since BEFORE (a list
# from installed_pkgs) keep their unit files but none enabled or running
# (Debian enables and starts a package's units when it is installed).
disable_new_units() {
    local p u units=()
    while read -r p; do
        while read -r u; do
            if [ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ]; then units+=("$u"); fi
        done < <(dpkg-query -L "$p" 2>/dev/null |
                 sed -nE 's#^/(usr/)?lib/systemd/system/([^/@]+\.(service|socket|timer|path|target|mount))$#\2#p')
    done < <(comm -13 "$1" <(installed_pkgs))
    [ ${#units[@]} -gt 0 ] || return 0
    say "disabling what the new packages enabled (qemu-tiers runs no daemon): ${units[*]}"
    if [ -d /run/systemd/system ]; then
        as_root systemctl disable --now -q "${units[@]}"
    else
        as_root systemctl disable -q "${units[@]}"
    fi
}

# as_root CMD...: run CMD as root, through sudo unless already root.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# check_sha256 FILE EXPECTED: stop with a message naming the file on mismatch.
check_sha256() {
    local f=$1 want=$2 got
    [ -f "$f" ] || die "missing download: $f"
    got=$(sha256sum "$f" | cut -d' ' -f1)
    if [ "$got" != "$want" ]; then
        die "sha256 mismatch for $(basename "$f"): expected $want, got $got (delete it and retry, or fix scripts/pins.env)"
    fi
}

# fetch_deb PKG VERSION SHA256 OUTDIR: download one binary package with apt,
# pinned by version and hash; reuse a verified copy.
fetch_deb() {
    local pkg=$1 ver=$2 sha=$3 out=$4 f total
    mkdir -p "$out"
    f=$(ls "$out/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
    if [ -n "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$sha" ]; then
        echo "$f"; return 0
    fi
    rm -rf "$out/${pkg}_"*.deb "$out/$pkg.tmp"
    mkdir "$out/$pkg.tmp"
    # The size apt will fetch, for the progress line.
    total=$( (cd "$out/$pkg.tmp" && apt-get download -q --print-uris "$pkg=$ver" 2>/dev/null) |
             awk "/^'/ { s += \$3 } END { print s + 0 }")
    run_step "downloading $pkg=$ver" "$out/$pkg.download.log" "dir_progress $out/$pkg.tmp $total" \
        env -C "$out/$pkg.tmp" apt-get download -q "$pkg=$ver" ||
        die "apt-get download $pkg=$ver failed: $(grep -E '^E:' "$out/$pkg.download.log" | tail -n1) (is the pinned version still in the archive? run 'make setup' first)"
    f=$(ls "$out/$pkg.tmp/${pkg}_"*.deb 2>/dev/null | head -n1)
    check_sha256 "$f" "$sha"
    mv "$f" "$out/"
    rm -rf "$out/$pkg.tmp"
    echo "$out/${f##*/}"
}
