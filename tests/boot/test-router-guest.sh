#!/usr/bin/env bash
# The exit router on a real vCPU path (TCG's helpers and MMIO slow path,
# KVM's KVM_EXIT_IO/KVM_EXIT_MMIO), not only qtest's: the bench guest
# prints what one read of the HPET capabilities (MMIO) and of port 0x80
# returns, and what RDMSR of IA32_APIC_BASE returns, then hammers a
# write-only port.
#  - no route: the HPET answers (vendor 0x8086), port 0x80 reads 0xff,
#    the APIC base is 0xfee00900 (BSP, enabled)
#  - an MMIO ignore route on the HPET: the guest reads all-ones
#  - an MSR ignore route on IA32_APIC_BASE: all-ones (under KVM through
#    KVM's MSR filter); an MSR log route: the value, passed on
#  - a write-only ignore route: under KVM it is a no-exit path
#    (ioeventfd) and its count is still exact: warm-up + rounds * n
# test-router-guest.sh [tcg|kvm]: one accelerator (default tcg); the KVM
# run is skipped where KVM is not usable.
set -uo pipefail
. "$QT_TOP/scripts/qemu-env.sh"
guest=${QT_BENCH_GUEST:?}
qemu=$(qemu_binary fork)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# boot ACCEL APPEND ROUTE-ARGS...: prints the guest's BENCH-START line
boot() {
    local accel=$1 append=$2
    shift 2
    timeout 60 "$qemu" -machine pc -accel "$accel" -m 64 -nodefaults \
        -display none -serial stdio -no-reboot -kernel "$guest" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 -append "$append" \
        "$@" < /dev/null 2>&1 | tr -d '\r' | sed -n '/^BENCH-START/p;/^BENCH-DONE/q'
}

accel=${1:-tcg}
[ "$accel" = kvm ] && require_kvm
out=$(boot "$accel" "only=none")
grep -q "hpet_cap=0x8086" <<< "$out" || bad "$accel: HPET not read through the device model: $out"
grep -q "port80=0x000000ff" <<< "$out" || bad "$accel: port 0x80 did not read 0xff: $out"
out=$(boot "$accel" "only=none" -object \
    exit-route,id=cap,event=mmio,start=0xfed00000,size=4,direction=read,handler=ignore)
grep -q "hpet_cap=0xffffffff" <<< "$out" || bad "$accel: MMIO ignore route not applied: $out"
grep -q "apicbase=0xfee00900" <<< "$out" || bad "$accel: RDMSR 0x1b not 0xfee00900: $out"
out=$(boot "$accel" "only=none" -object \
    exit-route,id=ab,event=msr,start=0x1b,direction=read,handler=ignore)
grep -q "apicbase=0xffffffff" <<< "$out" || bad "$accel: MSR ignore route not applied: $out"
out=$(boot "$accel" "only=none" -object \
    exit-route,id=ab,event=msr,start=0x1b,handler=log)
grep -q "apicbase=0xfee00900" <<< "$out" || bad "$accel: MSR log route changed the value: $out"
out=$(boot "$accel" "only=none" -machine kernel-tier=off)
grep -q "port80=0x000000ff" <<< "$out" || bad "$accel: tier off: port 0x80 did not read 0xff: $out"

# Exact counts through a write-only ignore route.  No isa-debug-exit:
# the guest halts and QEMU stays up for the query.
sock=$tmp/qmp-$accel
"$qemu" -machine pc -accel "$accel" -m 64 -nodefaults -display none \
    -serial file:"$tmp/serial-$accel" -no-reboot -kernel "$guest" \
    -append "n=1000 rounds=3 only=unassigned_write" \
    -object exit-route,id=sink,event=pio,start=0x1236,direction=write,handler=ignore \
    -qmp unix:"$sock",server=on,wait=off < /dev/null > "$tmp/log-$accel" 2>&1 &
pid=$!
for _ in $(seq 600); do
    grep -q '^BENCH-DONE' "$tmp/serial-$accel" 2>/dev/null && break
    sleep 0.1
done
grep -q '^BENCH-DONE' "$tmp/serial-$accel" || bad "$accel: guest did not finish"
routes=$(python3 "$QT_TOP/scripts/qmp.py" "$sock" query-exit-routes)
stats=$(python3 "$QT_TOP/scripts/qmp.py" "$sock" query-exit-stats)
python3 "$QT_TOP/scripts/qmp.py" "$sock" quit > /dev/null
wait "$pid"
count=$(python3 -c 'import json,sys; print([s["count"] for s in json.loads(sys.argv[1]) if s["id"] == "sink"][0])' "$stats")
noexit=$(python3 -c 'import json,sys; print([r["no-exit"] for r in json.loads(sys.argv[1]) if r["id"] == "sink"][0])' "$routes")
[ "$count" = 3101 ] || bad "$accel: sink counted $count writes, want 3101"

# Unrouted port accesses are counted exactly, also those TCG's helpers
# count inline: the same guest with and without its unassigned workload
# (1-byte reads of port 0x1234, no route: warm-up + rounds * n = 3101)
# differ by those reads and the serial output of its one BENCH line.
# stats_of ONLY [QEMU-ARGS...]: query-exit-stats once the guest has run
# the workloads ONLY (n=1000 rounds=3: warm-up + rounds * n = 3101 each)
stats_of() {
    local only=$1 s=$tmp/stats.qmp pid
    shift
    "$qemu" -machine pc -accel "$accel" -m 64 -nodefaults -display none \
        -serial file:"$tmp/stats.serial" -no-reboot -kernel "$guest" \
        -append "n=1000 rounds=3 only=$only" "$@" \
        -qmp unix:"$s",server=on,wait=off < /dev/null > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 600); do
        grep -q '^BENCH-DONE' "$tmp/stats.serial" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    python3 "$QT_TOP/scripts/qmp.py" "$s" query-exit-stats
    python3 "$QT_TOP/scripts/qmp.py" "$s" quit > /dev/null
    wait $pid
    rm -f "$tmp/stats.serial"
}
unrouted() {    # unrouted ONLY: the unrouted-pio count of a whole run
    stats_of "$1" |
        python3 -c 'import json,sys; print([s["count"] for s in json.load(sys.stdin) if s["id"] == "unrouted-pio"][0])'
}
base=$(unrouted none)
with=$(unrouted unassigned)
delta=$((with - base))
[ "$delta" -ge 3101 ] && [ "$delta" -le $((3101 + 2 * 200)) ] ||
    bad "$accel: unrouted-pio grew by $delta with 3101 unrouted reads ($base, then $with)"
# Device routes count exactly what they match, by direction, size and
# extent, also where TCG's helpers count inline
# (exit_route_pio_count_only(): issue 17 item 10), and time one access
# in 1024.  The guest reads port 0x1234 and writes 0x1236, 1 byte wide
# (unassigned, unassigned_write) or 2 (unassigned16, unassigned16_write),
# warm-up + rounds * n = 3101 times each, in that order.  Each route
# takes its own accesses first: while its counter is 0 the router times
# (and decides) every access, which would hide a wrong inline decision.
# counts ONLY ROUTE-ARGS...: "id=count/sample-period ..." of its routes
counts() {
    stats_of "$@" |
        python3 -c 'import json,sys; print(" ".join("%s=%d/%d" % (s["id"], s["count"], s["sample-period"]) for s in json.load(sys.stdin) if not s["id"].startswith(("unrouted", "tier-"))))'
}
dev() { echo "-object exit-route,id=$1,event=pio,handler=device,$2"; }
# Direction: the read-only route over both ports counts the reads only.
# shellcheck disable=SC2046  # dev's words are arguments
got=$(counts unassigned,unassigned_write \
      $(dev dir start=0x1234,size=3,direction=read))
[ "$got" = "dir=3101/1024" ] ||
    bad "$accel: a read-only device route counted other accesses: $got"
# Size and extent: 1-byte reads of 0x1234 fit "sz" and 2-byte ones do
# not; 1-byte writes of 0x1236 fit "end", 2-byte ones run past it.
# shellcheck disable=SC2046
got=$(counts unassigned,unassigned_write,unassigned16,unassigned16_write \
      $(dev sz start=0x1234,size=2,access-size=1) $(dev end start=0x1236))
[ "$got" = "sz=3101/1024 end=3101/1024" ] ||
    bad "$accel: device routes counted accesses of another size: $got"

want=False
[ "$accel" = kvm ] && want=True
[ "$noexit" = "$want" ] || bad "$accel: sink no-exit is $noexit, want $want"
[ $fail = 0 ] && echo "ok: $accel"
exit $fail
