#!/usr/bin/env bash
# The Debian packages as a user gets them (scripts/make-deb.sh, make deb):
#  1. built from this build, lintian without errors or warnings;
#  2. no file of theirs belongs to an installed package (here that
#     includes Debian's own qemu-system-x86, which libvirt pulls in);
#  3. installed with dpkg into a scratch root whose dpkg database holds the
#     host's entries of their dependencies (so dpkg checks the Depends;
#     SeaBIOS's files are copied in), or, with QT_DEB_TEST_ROOT=/, into the
#     real root with apt (CI);
#  4. the installed qemu-tiers-system-x86_64: --version, its data directory
#     under /usr/lib/qemu-tiers (no -L), a TCG boot of the bench guest;
#     libvirt accepts the installed libvirt example with it;
#  5. the -dev package: the example handler's source, compiled against the
#     installed headers and library through pkg-config, answers the guest's
#     port 0x80 read through the installed QEMU;
#  6. purged: every file is gone and the scratch root is as before.
set -uo pipefail
top=${QT_TOP:?}
b=${QT_BUILD_DIR:?}
guest=${QT_BENCH_GUEST:?}
. "$top/scripts/pins.env"
real=0
[ "${QT_DEB_TEST_ROOT:-}" = / ] && real=1
tmp=$(mktemp -d)
pids=()
cleanup() {
    [ ${#pids[@]} = 0 ] || kill "${pids[@]}" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok()  { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# 1. Build.
if ! "$top/scripts/make-deb.sh" > "$tmp/make-deb.log" 2>&1; then
    echo "FAIL: make-deb.sh:"; cat "$tmp/make-deb.log"; exit 1
fi
debs=("$b"/deb/*.deb)
[ ${#debs[@]} = 2 ] || { echo "FAIL: expected 2 packages, got: ${debs[*]}"; exit 1; }
grep '^\[qemu-tiers\] built' "$tmp/make-deb.log" | sed 's/^\[qemu-tiers\] /   /'
if grep -q 'lintian: no errors or warnings' "$tmp/make-deb.log"; then
    ok "lintian: no errors or warnings ($(grep -c '^I:' "$b/deb/lintian.log") notes: $(sed -n 's/^I: [^:]*: \([a-z-]*\).*/\1/p' "$b/deb/lintian.log" | sort -u | tr '\n' ' '))"
else
    bad "lintian did not run (make check installs it: scripts/setup-host.sh check)"
fi

# Every path of the packages (directories end in /).
for deb in "${debs[@]}"; do dpkg-deb -c "$deb"; done | awk '{ print $6 }' | sed 's#^\./#/#' |
    grep -v '^/$' | sort -u > "$tmp/paths"
grep -v '/$' "$tmp/paths" > "$tmp/files"

# 2. Beside Debian's QEMU.
owned=0
while read -r f; do
    if o=$(dpkg-query -S "$f" 2>/dev/null); then
        bad "$f is already a file of ${o%%:*}"; owned=1
    fi
done < "$tmp/files"
deb_qemu=$(dpkg-query -W -f='${db:Status-Abbrev} ${Version}' qemu-system-x86 2>/dev/null | sed -n 's/^.i. //p')
note=
[ -z "$deb_qemu" ] || note=" (Debian's qemu-system-x86 $deb_qemu is installed here)"
[ $owned = 1 ] || ok "none of the $(wc -l < "$tmp/files") files belongs to an installed package$note"

# 3. Install.
names=()
for deb in "${debs[@]}"; do names+=("$(dpkg-deb -f "$deb" Package)"); done
if [ $real = 1 ]; then
    root=
    while read -r f; do
        [ ! -e "$f" ] && [ ! -L "$f" ] || { echo "FAIL: $f exists before the install; not touching this root"; exit 1; }
    done < "$tmp/files"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}" > "$tmp/install.log" 2>&1; then
        echo "FAIL: apt-get install:"; tail -n 20 "$tmp/install.log"; exit 1
    fi
    ok "installed into / with apt-get: ${names[*]}"
else
    root=$tmp/root
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
    : > "$root/var/lib/dpkg/available"
    # The dependencies as the host has them: dpkg checks the Depends
    # against these entries; SeaBIOS's firmware itself is copied in.
    for deb in "${debs[@]}"; do dpkg-deb -f "$deb" Depends; done | tr ',|' '\n\n' |
        sed 's/^ *//; s/[ (].*//; /^$/d' | sort -u > "$tmp/deps"
    while read -r p; do
        dpkg-query -s "$p" 2>/dev/null || { bad "dependency $p is not installed on this host"; continue; }
        echo
    done < "$tmp/deps" > "$root/var/lib/dpkg/status"
    mkdir -p "$root/usr/share/seabios"
    cp /usr/share/seabios/*.bin "$root/usr/share/seabios/"
    snapshot() { (cd "$root" && find . -path ./var/lib/dpkg -prune -o -print | sort); }
    snapshot > "$tmp/before"
    if ! dpkg --root="$root" -i "${debs[@]}" > "$tmp/install.log" 2>&1; then
        echo "FAIL: dpkg -i into the scratch root:"; cat "$tmp/install.log"; exit 1
    fi
    ok "installed into a scratch root with dpkg (Depends satisfied by the host's $(tr '\n' ' ' < "$tmp/deps"))"
fi
missing=0
while read -r f; do
    [ -e "$root$f" ] || [ -L "$root$f" ] || { bad "$f not installed"; missing=1; }
done < "$tmp/files"
[ $missing = 1 ] || ok "all $(wc -l < "$tmp/files") files in place"

# 4. The installed QEMU.
q=$root/usr/bin/qemu-tiers-system-x86_64
want="QEMU emulator version $QEMU_UPSTREAM_VERSION (qemu-tiers, Debian $QEMU_SRC_VERSION)"
v=$("$q" --version 2>&1 | head -n1)
[ "$v" = "$want" ] && ok "installed --version: $v" || bad "installed --version: '$v', want '$want'"
datadir=$(realpath -m "$root/usr/lib/qemu-tiers/share/qemu")
if "$q" -L help 2>&1 | while read -r d; do realpath -m "$d"; done | grep -qx "$datadir"; then
    ok "data directory without -L: ${datadir#"$root"}"
else
    bad "the installed QEMU does not search ${datadir#"$root"}: $("$q" -L help 2>&1 | tr '\n' ' ')"
fi
# The bench guest (multiboot: SeaBIOS and multiboot_dma.bin from that
# directory), under TCG.
out=$(timeout 120 "$q" -machine pc -accel tcg -m 64 -nodefaults -display none \
        -serial stdio -no-reboot -kernel "$guest" -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -append "n=2000 rounds=3 only=pit_latch_read,pm_timer" < /dev/null 2>&1 | tr -d '\r')
if grep -q '^BENCH-DONE' <<< "$out" && [ "$(grep -c '^BENCH workload=' <<< "$out")" = 2 ] &&
   ! grep -q '^BENCH-ERROR' <<< "$out"; then
    ok "TCG boot of the bench guest on the installed QEMU: $(grep -m1 '^BENCH workload=pm_timer' <<< "$out")"
else
    bad "the bench guest on the installed QEMU:"; tail -n 5 <<< "$out"
fi
# libvirt takes the installed example (its emulator, probed by libvirt).
x=$tmp/tiers-tcg.xml
sed "s#<emulator>/usr/#<emulator>$root/usr/#" \
    "$root/usr/share/doc/qemu-tiers-system-x86/examples/libvirt/tiers-tcg.xml" > "$x"
mkdir -p "$tmp/lv/etc"
cp "$b/libvirt/embed/etc/qemu.conf" "$tmp/lv/etc/qemu.conf"
if argv=$(virsh -c "qemu:///embed?root=$tmp/lv" domxml-to-native qemu-argv "$x" 2>&1) &&
   grep -q "^LC_ALL=C .* $root/usr/lib/qemu-tiers/bin/qemu-system-x86_64 .*-object .\?exit-route,id=post-codes" <<< "$argv"; then
    ok "libvirt turns the installed example into a command line for the installed emulator"
else
    bad "virsh domxml-to-native of the installed tiers-tcg.xml: $argv"
fi

# 5. A handler built against the -dev package answers the guest.
pc=(env PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/pkgconfig")
[ $real = 1 ] && pc=(env)
# shellcheck disable=SC2046  # pkg-config's flags, one word each
if ! cc -O2 -Wall -o "$tmp/handler" "$root/usr/share/doc/qemu-tiers-exit-handler-dev/examples/exit-handler-post.c" \
        $("${pc[@]}" pkg-config --cflags --libs qemu-tiers-exithandler) > "$tmp/cc.log" 2>&1; then
    bad "the example handler does not build against the installed library:"; cat "$tmp/cc.log"
else
    ok "the example handler builds with: pkg-config --cflags --libs qemu-tiers-exithandler"
    "$tmp/handler" --socket "$tmp/h.sock" --tag 0x5a --quiet &
    pids+=($!)
    timeout 120 "$q" -machine pc -accel tcg -m 64 -nodefaults -display none \
        -serial "file:$tmp/serial" -no-reboot -kernel "$guest" -S \
        -device isa-debug-exit,iobase=0xf4,iosize=4 -append "n=2000 rounds=1 only=port80_write" \
        -qmp "unix:$tmp/qmp.sock,server=on,wait=off" \
        -chardev "socket,id=c,path=$tmp/h.sock,reconnect-ms=20" -object exit-handler,id=h,chardev=c \
        -object exit-route,id=post,event=pio,start=0x80,priority=1,handler=external,handlers=h,timeout-ms=2000 \
        < /dev/null > "$tmp/qemu.log" 2>&1 &
    qpid=$!
    pids+=("$qpid")
    up=0
    for _ in $(seq 1 100); do
        if python3 "$top/scripts/qmp.py" "$tmp/qmp.sock" query-exit-stats 2>/dev/null |
           python3 -c 'import json,sys; r=[s for s in json.load(sys.stdin) if s["id"]=="post"]; sys.exit(0 if r and r[0]["handlers"][0]["up"] else 1)'; then
            up=1; break
        fi
        sleep 0.1
    done
    [ $up = 1 ] || bad "the handler did not come up"
    python3 "$top/scripts/qmp.py" "$tmp/qmp.sock" cont > /dev/null 2>&1
    wait "$qpid"
    if grep -q 'port80=0x0000005a' "$tmp/serial" && grep -q '^BENCH-DONE' "$tmp/serial"; then
        ok "the guest's port 0x80 read answered by that handler: $(grep -o 'port80=0x[0-9a-f]*' "$tmp/serial")"
    else
        bad "the handler did not answer the guest: $(tr -d '\r' < "$tmp/serial" | head -n 3) $(cat "$tmp/qemu.log")"
    fi
    kill "${pids[0]}" 2>/dev/null
fi
"$root/usr/lib/qemu-tiers/bin/exit-handler-post" --help > /dev/null 2>&1 &&
    ok "the packaged exit-handler-post runs" || bad "the packaged exit-handler-post does not run"
"$root/usr/bin/qemu-tiers-ivq-broker" -h 2>&1 | grep -q usage &&
    ok "the packaged qemu-tiers-ivq-broker runs" || bad "the packaged qemu-tiers-ivq-broker does not run"

# 6. Purge.
if [ $real = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${names[@]}" > "$tmp/purge.log" 2>&1 ||
        { bad "apt-get purge:"; tail -n 20 "$tmp/purge.log"; }
else
    dpkg --root="$root" -P "${names[@]}" > "$tmp/purge.log" 2>&1 ||
        { bad "dpkg -P:"; cat "$tmp/purge.log"; }
fi
# Every file, and every directory of ours (/usr, /usr/share... stay).
left=0
while read -r f; do
    if [ -e "$root$f" ] || [ -L "$root$f" ]; then bad "$f is left after the purge"; left=1; fi
done < <(grep -E -v '/$' "$tmp/paths"; grep -E 'qemu-tiers[^/]*/$' "$tmp/paths")
if [ $real = 0 ]; then
    if ! diff -u "$tmp/before" <(snapshot) > "$tmp/diff"; then
        bad "the scratch root differs from before the install:"; cat "$tmp/diff"; left=1
    fi
    known=$(find "$root/var/lib/dpkg/info" -name 'qemu-tiers*' -printf '%f ')
    [ -z "$known" ] || { bad "dpkg still has: $known"; left=1; }
fi
[ $left = 1 ] || ok "purged: nothing of the packages is left${root:+ (the scratch root is as before the install)}"
exit $fail
