#!/usr/bin/env bash
# The fork under a real libvirt (Debian 12's bookworm-backports libvirt,
# the version pinned in scripts/pins.env), through the embedded QEMU
# driver (qemu:///embed: libvirt's QEMU driver inside virsh, no daemon):
#  1. docs/libvirt/tiers-{tcg,kvm}.xml turned into a QEMU command line
#     (domxml-to-native) equals the golden files in tests/libvirt/golden/
#     (paths and the environment replaced by placeholders);
#  2. tiers-tcg.xml boots the Debian guest to init under TCG; libvirt's
#     QMP pass-through answers query-exit-routes / query-exit-stats, which
#     show the XML's route and the kernel tier's inline hits;
#     a libvirt client registered for EXIT_ROUTE_CHANGED sees the tier's
#     PM-timer route follow the firmware and a route added over QMP;
#  3. tiers-bad-route.xml fails `virsh create` with the fork's error in
#     libvirt's message, and leaves no QEMU running.
# QT_LIBVIRT_UPDATE_GOLDEN=1 rewrites the golden files instead of 1.
# test-libvirt.sh kvm: only 1. for tiers-kvm.xml; libvirt refuses a
# type='kvm' domain on a host without usable KVM, so it is skipped there
# (scripts/kvm-usable).
set -uo pipefail
top=${QT_TOP:?}
b=${QT_BUILD_DIR:?}
. "$top/scripts/qemu-env.sh"
mode=${1:-tcg}
[ "$mode" = kvm ] && require_kvm
"$top/scripts/libvirt-examples.sh" || exit 1
lv=$b/libvirt
uri="qemu:///embed?root=$lv/embed"
fail=0
# meson test puts the build's shared modules (libsigbus-inject.so) on
# LD_LIBRARY_PATH; libvirt passes it to QEMU's environment, so the
# command line would differ from what a user's libvirt generates.
unset LD_LIBRARY_PATH

command -v virsh >/dev/null || { echo "FAIL: virsh not installed (make setup-check)"; exit 1; }
have=$(virsh --version)
[ "$have" = "${LIBVIRT_VERSION%%-*}" ] ||
    { echo "FAIL: virsh $have, expected ${LIBVIRT_VERSION%%-*} (make setup-check)"; exit 1; }

# 1. domxml-to-native against the golden files.
normalize() {
    # one option per line, for a readable diff
    sed -e "s#$b#@BUILD@#g" -e 's#^LC_ALL=C PATH=[^ ]* #LC_ALL=C PATH=@PATH@ #' |
        perl -pe 's/ (?=-[a-zA-Z])/\n/g'
}
for n in tiers-$mode; do
    if ! virsh -c "$uri" domxml-to-native qemu-argv "$lv/$n.xml" > "$lv/$n.argv.raw" 2> "$lv/$n.argv.err"; then
        echo "FAIL: domxml-to-native $n: $(cat "$lv/$n.argv.err")"; fail=1; continue
    fi
    normalize < "$lv/$n.argv.raw" > "$lv/$n.argv"
    golden=$top/tests/libvirt/golden/$n.argv
    if [ -n "${QT_LIBVIRT_UPDATE_GOLDEN:-}" ]; then
        cp "$lv/$n.argv" "$golden"; echo "updated $golden"
    elif diff -u "$golden" "$lv/$n.argv"; then
        echo "ok: $n: libvirt's QEMU command line matches the golden file"
    else
        echo "FAIL: $n: libvirt's QEMU command line differs from $golden"; fail=1
    fi
done

[ "$mode" = kvm ] && exit $fail

# 2. A TCG boot under libvirt; one virsh process (the embedded driver
# lives in it) reads commands from this loop.
log=$lv/tiers-tcg.serial.log
session=$lv/tiers-tcg.virsh.out
rm -f "$log"
{
    echo "create $lv/tiers-tcg.xml"
    for _ in $(seq 1 300); do
        grep -q '^QT-INIT \(hold\|poweroff\)' "$log" 2>/dev/null && break
        sleep 1
    done
    echo "echo QT-BEGIN-ROUTES"
    echo "qemu-monitor-command tiers-tcg '{\"execute\":\"query-exit-routes\"}'"
    echo "echo QT-BEGIN-STATS"
    echo "qemu-monitor-command tiers-tcg '{\"execute\":\"query-exit-stats\"}'"
    echo "echo QT-END"
    echo "destroy tiers-tcg"
} | timeout 600 virsh -q -c "$uri" > "$session" 2>&1
grep -q '^QT-INIT hold' "$log" ||
    { echo "FAIL: the guest did not reach init under libvirt; console: $log, virsh: $session"; fail=1; }
python3 - "$session" <<'PY' || fail=1
import json, re, sys
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", open(sys.argv[1], errors="replace").read())
def block(begin, end):
    part = text.split(begin, 1)[1].split(end, 1)[0]
    line = [l for l in part.splitlines() if l.startswith('{"return"')][0]
    return json.loads(line)["return"]
try:
    routes = block("QT-BEGIN-ROUTES", "QT-BEGIN-STATS")
    stats = block("QT-BEGIN-STATS", "QT-END")
except (IndexError, ValueError) as e:
    sys.exit("FAIL: no QMP answer through virsh qemu-monitor-command (%s); see %s" % (e, sys.argv[1]))
ids = {r["id"] for r in routes}
if "post-codes" not in ids:
    sys.exit("FAIL: the XML's route post-codes is not in query-exit-routes: %s" % sorted(ids))
tier = {s["id"]: s["count"] for s in stats if s["id"].startswith("tier-")}
hits = sum(tier.values())
print("ok: query-exit-stats through virsh: %d inline-tier hits (%s)" %
      (hits, ", ".join("%s %d" % kv for kv in sorted(tier.items()))))
if hits == 0 or tier.get("tier-pit", 0) == 0:
    sys.exit("FAIL: no inline-tier hits in query-exit-stats under libvirt")
PY
pgrep -f "guest=tiers-tcg" >/dev/null &&
    { echo "FAIL: the tiers-tcg QEMU outlived virsh destroy"; pkill -f "guest=tiers-tcg"; fail=1; }

# 2b. The router's QMP events reach a libvirt client (virsh
# qemu-monitor-event can only listen while it runs, so a client of
# libvirt's Python binding registers first, then creates the domain).
if /usr/bin/python3 "$top/tests/libvirt/route-events.py" "$uri" "$lv/tiers-tcg.xml" \
        > "$lv/route-events.out" 2>&1; then
    echo "ok: EXIT_ROUTE_CHANGED through libvirt:"; grep '^event' "$lv/route-events.out"
else
    echo "FAIL: router events through libvirt:"; grep -v '^20[0-9-]* [0-9:.+]*: [0-9]*: warning' "$lv/route-events.out"; fail=1
fi
pgrep -f "guest=tiers-tcg" >/dev/null &&
    { echo "FAIL: the tiers-tcg QEMU outlived destroy"; pkill -f "guest=tiers-tcg"; fail=1; }

# 3. A bad route: a clear error, nothing left running.
if virsh -c "$uri" create "$lv/tiers-bad-route.xml" > "$lv/bad.out" 2>&1; then
    echo "FAIL: virsh create accepted a route with handler=teleport"; fail=1
    virsh -c "$uri" destroy tiers-bad-route >/dev/null 2>&1
elif grep -q "Parameter 'handler' does not accept value 'teleport'" "$lv/bad.out"; then
    echo "ok: a bad route fails virsh create with the fork's error:"
    grep -m1 "teleport" "$lv/bad.out"
else
    echo "FAIL: virsh create failed without the fork's error:"; cat "$lv/bad.out"; fail=1
fi
pgrep -f "guest=tiers-bad-route" >/dev/null &&
    { echo "FAIL: a QEMU of tiers-bad-route is still running"; fail=1; }
exit $fail
