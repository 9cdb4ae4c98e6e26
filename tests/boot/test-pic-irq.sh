#!/usr/bin/env bash
# Interrupts through the kernel tier's PIC: the bench guest's IRQ test
# (bench/guest/bench.c, irq=N) programs the i8259 pair and the PIT at
# 1 kHz and takes N timer interrupts, sending an EOI (OCW2) from each
# handler.  On the fork the tier serves those EOIs and IMR writes and
# drives the INT line under the BQL only on an edge; the same guest runs
# on the vanilla twin.  Both must take every tick with no spurious vector,
# and on the fork the tier's PIC route must have served the EOIs inline
# (query-exit-stats).  TCG only: this host's nested KVM fails to emulate
# the guest's IRET (an internal error on the vanilla twin too).
set -uo pipefail
b=${QT_BUILD_DIR:?}
guest=${QT_BENCH_GUEST:?}
. "$QT_TOP/scripts/qemu-env.sh"
ticks=200
out=$b/test-pic-irq
rm -rf "$out"; mkdir -p "$out"
fail=0

for which in vanilla fork; do
    for smp in 1 2; do
        log=$out/$which-smp$smp.log qmp=$out/$which-smp$smp.qmp
        # No isa-debug-exit: the guest halts after its report and QEMU
        # stays up for the query.
        timeout 120 "$(qemu_binary $which)" -machine pc -accel tcg -smp $smp -m 64 \
            -nodefaults -display none -serial "file:$log" -no-reboot \
            -qmp "unix:$qmp,server=on,wait=off" -kernel "$guest" \
            -append "irq=$ticks only=none" < /dev/null > "$log.stderr" 2>&1 &
        pid=$!
        for _ in $(seq 1 600); do
            grep -q '^BENCH-DONE' "$log" 2>/dev/null && break
            kill -0 $pid 2>/dev/null || break
            sleep 0.1
        done
        line=$(tr -d '\r' < "$log" | grep '^BENCH-IRQ')
        if [ "$which" = fork ]; then
            python3 "$QT_TOP/scripts/qmp.py" "$qmp" query-exit-stats > "$out/fork-smp$smp.stats" 2>&1
        fi
        python3 "$QT_TOP/scripts/qmp.py" "$qmp" quit >/dev/null 2>&1
        wait $pid 2>/dev/null
        if ! grep -q "^BENCH-IRQ ticks=$ticks spurious=0 cycles_per_tick=[0-9]" <<< "$line"; then
            echo "FAIL: $which smp$smp: ${line:-no BENCH-IRQ line} (console: $log)"; fail=1
            continue
        fi
        echo "ok: $which smp$smp: $line"
        [ "$which" = fork ] || continue
        python3 - "$out/fork-smp$smp.stats" $ticks <<'PY' || fail=1
import json, sys
stats = {s["id"]: s for s in json.load(open(sys.argv[1]))}
ticks = int(sys.argv[2])
pic = stats.get("tier-pic1")
if not pic:
    sys.exit("FAIL: no tier-pic1 route in query-exit-stats")
# ICW1..4 and OCW1 of both chips, then one EOI per tick (+ the warm-up
# tick and the final mask): all served inline, none declined.
if pic["count"] < ticks or pic["declines"]:
    sys.exit("FAIL: tier-pic1 served %d (declined %d) of the >= %d EOIs"
             % (pic["count"], pic["declines"], ticks))
print("ok: the tier served %d master-PIC accesses inline (EOIs included), "
      "declined %d" % (pic["count"], pic["declines"]))
PY
    done
done
exit $fail
