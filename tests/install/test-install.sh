#!/usr/bin/env bash
# make install / make uninstall (scripts/install.sh, scripts/uninstall.sh):
#  1. PREFIX=<scratch>: the installed qemu-tiers-system-x86_64 prints the
#     fork's version, searches PREFIX/lib/qemu-tiers/share/qemu (no -L) and
#     boots the bench guest under TCG; a second install changes nothing;
#  2. uninstall removes every file and the directories install created,
#     but keeps a directory that holds a file of the user's;
#  3. DESTDIR staging (PREFIX=/usr/local): everything lands under DESTDIR,
#     and uninstall with the same DESTDIR leaves it empty;
#  4. uninstall where nothing is installed says so and fails.
set -uo pipefail
top=${QT_TOP:?}
guest=${QT_BENCH_GUEST:?}
. "$top/scripts/pins.env"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
ok()  { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# 1. Install into a prefix of our own.
p=$tmp/prefix
if ! PREFIX=$p "$top/scripts/install.sh" > "$tmp/install.log" 2>&1; then
    echo "FAIL: install.sh:"; cat "$tmp/install.log"; exit 1
fi
ok "$(sed -n "s/^\[qemu-tiers\] installed/installed/p" "$tmp/install.log" | sed "s#$tmp#<scratch>#g")"
q=$p/bin/qemu-tiers-system-x86_64
[ -L "$q" ] && [ "$(readlink "$q")" = ../lib/qemu-tiers/bin/qemu-system-x86_64 ] &&
    ok "bin/qemu-tiers-system-x86_64 -> $(readlink "$q")" || bad "bin/qemu-tiers-system-x86_64 is not the relative link"
[ ! -e "$p/bin/qemu-system-x86_64" ] && ok "no bin/qemu-system-x86_64 that would shadow Debian's" ||
    bad "bin/qemu-system-x86_64 installed"
b=$p/bin/qemu-tiers-ivq-broker
[ -L "$b" ] && [ "$(readlink "$b")" = ../lib/qemu-tiers/bin/ivq-broker ] &&
    "$b" -h 2>&1 | grep -q "usage" &&
    ok "bin/qemu-tiers-ivq-broker -> $(readlink "$b"), runs" ||
    bad "bin/qemu-tiers-ivq-broker missing, not the relative link, or does not run"
want="QEMU emulator version $QEMU_UPSTREAM_VERSION (qemu-tiers, Debian $QEMU_SRC_VERSION)"
v=$("$q" --version 2>&1 | head -n1)
[ "$v" = "$want" ] && ok "installed --version: $v" || bad "installed --version: '$v', want '$want'"
if "$q" -L help 2>&1 | while read -r d; do realpath -m "$d"; done | grep -qx "$p/lib/qemu-tiers/share/qemu"; then
    ok "data directory without -L: PREFIX/lib/qemu-tiers/share/qemu"
else
    bad "the installed QEMU does not search $p/lib/qemu-tiers/share/qemu: $("$q" -L help 2>&1 | tr '\n' ' ')"
fi
out=$(timeout 120 "$q" -machine pc -accel tcg -m 64 -nodefaults -display none \
        -serial stdio -no-reboot -kernel "$guest" -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -append "n=2000 rounds=3 only=pic_imr" < /dev/null 2>&1 | tr -d '\r')
if grep -q '^BENCH-DONE' <<< "$out" && grep -q '^BENCH workload=pic_imr' <<< "$out"; then
    ok "TCG boot of the bench guest on the installed QEMU: $(grep -m1 '^BENCH workload=pic_imr' <<< "$out")"
else
    bad "the bench guest on the installed QEMU:"; tail -n 5 <<< "$out"
fi
find "$p" | sort > "$tmp/first"
cp "$p/lib/qemu-tiers/installed-files" "$tmp/manifest"
PREFIX=$p "$top/scripts/install.sh" > "$tmp/install2.log" 2>&1 || bad "a second install failed: $(cat "$tmp/install2.log")"
if diff -q "$tmp/first" <(find "$p" | sort) > /dev/null && cmp -s "$tmp/manifest" "$p/lib/qemu-tiers/installed-files"; then
    ok "a second install installs the same files and keeps the same manifest"
else
    bad "a second install changed the tree or the manifest"
fi

# 2. Uninstall; a file of the user's keeps its directory.
echo mine > "$p/share/doc/qemu-tiers/notes.txt"
if ! PREFIX=$p "$top/scripts/uninstall.sh" > "$tmp/uninstall.log" 2>&1; then
    bad "uninstall.sh: $(cat "$tmp/uninstall.log")"
fi
leftover=$(cd "$tmp" && find prefix | sort | tr '\n' ' ')
if [ "$leftover" = "prefix prefix/share prefix/share/doc prefix/share/doc/qemu-tiers prefix/share/doc/qemu-tiers/notes.txt " ]; then
    ok "uninstall removed every file; kept the user's notes.txt and its directories"
else
    bad "after uninstall: $leftover"
fi
rm -rf "$p"
PREFIX=$p "$top/scripts/install.sh" > /dev/null 2>&1 && PREFIX=$p "$top/scripts/uninstall.sh" > /dev/null 2>&1
[ ! -e "$p" ] && ok "install then uninstall into a new prefix leaves no trace" || bad "left: $(find "$p" | tr '\n' ' ')"

# 3. DESTDIR staging.
d=$tmp/stage
DESTDIR=$d PREFIX=/usr/local "$top/scripts/install.sh" > /dev/null 2>&1 || bad "install.sh with DESTDIR failed"
outside=$(find "$d" -mindepth 1 ! -path "$d/usr" ! -path "$d/usr/local" ! -path "$d/usr/local/*")
if [ -z "$outside" ] && [ -x "$d/usr/local/lib/qemu-tiers/bin/qemu-system-x86_64" ] &&
   [ -f "$d/usr/local/lib/libqemu-tiers-exithandler.a" ]; then
    ok "DESTDIR=<scratch> PREFIX=/usr/local: everything under <scratch>/usr/local"
else
    bad "DESTDIR install: outside PREFIX: '$outside', or the binary or library missing"
fi
DESTDIR=$d PREFIX=/usr/local "$top/scripts/uninstall.sh" > /dev/null 2>&1 || bad "uninstall.sh with DESTDIR failed"
[ -z "$(find "$d" -mindepth 1)" ] && ok "uninstall with the same DESTDIR leaves it empty" ||
    bad "left in DESTDIR: $(find "$d" -mindepth 1 | tr '\n' ' ')"

# 4. Nothing installed.
if out=$(PREFIX=$tmp/none "$top/scripts/uninstall.sh" 2>&1); then
    bad "uninstall.sh succeeded where nothing is installed"
else
    grep -q "nothing to uninstall" <<< "$out" && ok "uninstall where nothing is installed: ${out#*ERROR: }" ||
        bad "uninstall where nothing is installed: $out"
fi
exit $fail
