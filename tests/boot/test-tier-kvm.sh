#!/usr/bin/env bash
# The kernel tier and the router under KVM, with the bench guest (skipped,
# exit 77, where KVM is not usable: scripts/kvm-usable):
#  1. Port 0x61 with KVM's in-kernel PIT (kvm-pit, the default
#     kernel-irqchip=on): the tier leaves the port to QEMU's path (no
#     tier-port61 route), and with two vCPUs, one toggling channel 2's gate
#     and reading it back while the other reads port 0x61 in a loop, no
#     gate write is lost (gatecheck).  With kernel-irqchip=split the PIT is
#     QEMU's i8254: the tier serves the port, and no write is lost either.
#  2. A word write at port 0x81 straddles a byte "ignore" route on 0x81
#     that has no access-size: KVM must not absorb it in its ioeventfd;
#     the DMA page registers read back what TCG gives (0x5a, 0xa5).
#  3. kernel-irqchip=split: with the tier on, vCPUs enter the guest
#     without the BQL when no PIC interrupt is pending (trace
#     kvm_enter_without_bql); with kernel-tier=off never, as vanilla QEMU.
set -uo pipefail
. "$QT_TOP/scripts/qemu-env.sh"
require_kvm
guest=${QT_BENCH_GUEST:?}
qemu=$(qemu_binary fork)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# run NAME APPEND QEMU-ARGS...: boots the guest (halts after BENCH-DONE),
# leaves its serial in $tmp/NAME.serial, the routes in $tmp/NAME.routes
# and QEMU's log (trace events) in $tmp/NAME.log.
run() {
    local name=$1 append=$2 sock=$tmp/$1.qmp pid
    shift 2
    "$qemu" -machine pc -m 64 -nodefaults -display none -no-reboot \
        -serial file:"$tmp/$name.serial" -kernel "$guest" -append "$append" \
        -qmp unix:"$sock",server=on,wait=off -D "$tmp/$name.log" "$@" \
        < /dev/null > "$tmp/$name.stderr" 2>&1 &
    pid=$!
    for _ in $(seq 1200); do
        grep -q '^BENCH-DONE' "$tmp/$name.serial" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^BENCH-DONE' "$tmp/$name.serial" 2>/dev/null; then
        bad "$name: the guest did not finish: $(cat "$tmp/$name.stderr")"
        kill $pid 2>/dev/null
        return
    fi
    python3 "$QT_TOP/scripts/qmp.py" "$sock" query-exit-routes > "$tmp/$name.routes"
    python3 "$QT_TOP/scripts/qmp.py" "$sock" quit > /dev/null
    wait $pid
}
has_route() {   # has_route NAME ROUTE-ID
    python3 -c 'import json,sys; sys.exit(0 if any(r["id"] == sys.argv[2] for r in json.load(open(sys.argv[1]))) else 1)' "$tmp/$1.routes" "$2"
}

# 1. port 0x61, in-kernel PIT and userspace PIT
for irqchip in on split; do
    name=gate-$irqchip
    run $name "smp=2 only=none gatecheck=200000" -smp 2 \
        -accel kvm,kernel-irqchip=$irqchip -trace split_port61_skip
    line=$(tr -d '\r' < "$tmp/$name.serial" | grep '^BENCH-GATE')
    [ "$line" = "BENCH-GATE writes=200000 mismatches=0" ] ||
        bad "kernel-irqchip=$irqchip: gate writes lost: $line"
    if [ $irqchip = on ]; then
        has_route $name tier-port61 && bad "kvm-pit: port 0x61 served inline"
        grep -q "split_port61_skip.*kvm-pit" "$tmp/$name.log" ||
            bad "kvm-pit: no trace of the tier leaving port 0x61 alone"
    else
        has_route $name tier-port61 || bad "i8254: port 0x61 not served inline"
    fi
    [ $fail = 0 ] && echo "ok: port 0x61 with kernel-irqchip=$irqchip: $line"
done

# 2. the straddling word write, KVM against TCG
route=exit-route,id=s,event=pio,start=0x81,direction=write,handler=ignore
for accel in tcg kvm; do
    run straddle-$accel "only=none straddle=1" -accel $accel -object $route
done
t=$(tr -d '\r' < "$tmp/straddle-tcg.serial" | grep '^BENCH-STRADDLE')
k=$(tr -d '\r' < "$tmp/straddle-kvm.serial" | grep '^BENCH-STRADDLE')
[ "$t" = "BENCH-STRADDLE p81=0x0000005a p82=0x000000a5" ] || bad "tcg: $t"
[ "$k" = "$t" ] || bad "a word write straddling a byte route: kvm '$k', tcg '$t'"
grep -q '"no-exit": true' "$tmp/straddle-kvm.routes" ||
    bad "the byte route is no longer a no-exit path under KVM"
[ $fail = 0 ] && echo "ok: the straddling write reaches the device under KVM as under TCG ($k)"

# 3. BQL-free entry only with the tier on
for tier in on off; do
    run entry-$tier "only=pic_imr n=2000 rounds=3" \
        -accel kvm,kernel-irqchip=split,kernel-tier=$tier \
        -trace kvm_enter_without_bql
done
on=$(grep -c kvm_enter_without_bql "$tmp/entry-on.log")
off=$(grep -c kvm_enter_without_bql "$tmp/entry-off.log")
[ "$on" -gt 0 ] || bad "kernel-tier=on: no BQL-free entry"
[ "$off" = 0 ] || bad "kernel-tier=off: $off BQL-free entries (vanilla takes the BQL)"
[ $fail = 0 ] && echo "ok: BQL-free entries: $on with the tier on, $off with it off"
exit $fail
