#!/usr/bin/env bash
# Boot the Debian kernel to init and power-off under TCG on the vanilla twin
# and on the fork (in parallel), then compare what the kernel saw of the
# legacy devices: the PIT/PIC/IOAPIC/i8042/clocksource lines of dmesg and
# the port values init reads through /dev/port.  $1 (or QT_BOOT_SMP) sets the vCPU
# count (default 1).  The fork runs with its defaults, i.e. the kernel tier
# on: at least 95% of the accesses to the tier's devices' ports must have
# been served inline (the exit profile's count).
set -uo pipefail
smp=${1:-${QT_BOOT_SMP:-1}}
top=${QT_TOP:?}
b=${QT_BUILD_DIR:?}
. "$top/scripts/pins.env"
out=$b/test-boot-smp$smp
rm -rf "$out"; mkdir -p "$out"
fail=0

for which in vanilla fork; do
    QT_QEMU=$which ACCEL=tcg SMP=$smp QT_QUIET=1 QT_TIMEOUT=600 QT_LOG="$out/$which.log" \
        "$top/scripts/run-guest.sh" > "$out/$which.summary" 2>&1 &
done
wait
for which in vanilla fork; do
    cat "$out/$which.summary"
    grep -q '^QT-INIT poweroff' "$out/$which.log" ||
        { echo "FAIL: $which did not reach init's power-off; console: $out/$which.log"; fail=1; }
    grep -qx "QT-INIT uname=$GUEST_KERNEL_RELEASE" "$out/$which.log" ||
        { echo "FAIL: $which: init did not report uname $GUEST_KERNEL_RELEASE"; fail=1; }
done
[ $fail = 0 ] || exit 1

# Lines whose text depends only on the device models: compared verbatim.
strict='i8042:|serio:|\.\.TIMER:|IOAPIC\[|INT_SRC_OVR|PM-Timer IO Port|NR_IRQS|hpet0:|hpet: [0-9]|clocksource: (refined-jiffies|hpet|acpi_pm|jiffies):|APIC: Switch|rtc_cmos .*alarms'
# Lines whose presence depends on host timing under TCG (how fast the PIT
# appears to run against the TSC while the host is busy): shown, not failed.
# check_timer()'s IRQ0 probe counts PIT ticks over a TSC-timed busy wait;
# on a busy host it can fail, and Linux then routes IRQ0 through the 8259A
# (the master's IMR bit 0 stays clear): host timing too (seen once, on
# vanilla, with the machine's two cores shared with another test run).
irq0_8259='MP-BIOS bug: 8254 timer not connected|through the 8259A'
# "hpet: Lost N RTC interrupts": the HPET's RTC emulation missed ticks
# while the host was busy (seen once, on vanilla, beside another make check).
timing="tsc:|clocksource: (tsc|tsc-early):|Switched to clocksource|hpet: Lost|$irq0_8259"
extract() {     # extract LOG REGEX
    sed -n '/^QT-DMESG-BEGIN/,/^QT-DMESG-END/p' "$1" | sed 's/^\[[ 0-9.]*\] //' |
        grep -E "$2" | sort -u
}
for which in vanilla fork; do
    extract "$out/$which.log" "$strict" > "$out/$which.strict"
    # TSC frequencies and cycle counts vary run to run: fold the numbers.
    extract "$out/$which.log" "$timing" |
        sed -E 's/0x[0-9a-fA-F]+/HEX/g; s/[0-9]+(\.[0-9]+)?/N/g' | sort -u > "$out/$which.timing"
    grep '^QT-PORTS pic1_imr' "$out/$which.log" > "$out/$which.ports"
done
n=$(wc -l < "$out/vanilla.strict")
if [ "$n" -lt 10 ]; then
    echo "FAIL: only $n device lines found in vanilla's dmesg"; fail=1
elif diff -u "$out/vanilla.strict" "$out/fork.strict"; then
    echo "ok: $n PIT/PIC/IOAPIC/i8042/HPET/PM-timer/clocksource lines match"
else
    echo "FAIL: device lines of dmesg differ (vanilla -, fork +)"; fail=1
fi
if diff -u "$out/vanilla.ports" "$out/fork.ports"; then
    echo "ok: $(cat "$out/fork.ports")"
elif [ "$(extract "$out/vanilla.log" "$irq0_8259" | wc -l)" != \
       "$(extract "$out/fork.log" "$irq0_8259" | wc -l)" ] &&
     diff <(sed 's/pic1_imr=[0-9]*//' "$out/vanilla.ports") \
          <(sed 's/pic1_imr=[0-9]*//' "$out/fork.ports") > /dev/null; then
    # Only the master's IMR differs, and the boots took different IRQ0 paths.
    echo "note: the master PIC's IMR differs because one kernel routed IRQ0 through the 8259A (host timing; not a failure); the other port values match"
else
    echo "FAIL: port values read by init differ"; fail=1
fi
share=$(sed -n "s/.*, \([0-9.]*\)% of the accesses to its devices' ports.*/\1/p" "$out/fork.summary")
if [ -z "$share" ]; then
    echo "FAIL: the fork's exit profile has no kernel-tier line"; fail=1
elif awk -v s="$share" 'BEGIN { exit !(s >= 95) }'; then
    echo "ok: the kernel tier served $share% of its devices' port accesses inline"
else
    echo "FAIL: the kernel tier served only $share% of its devices' port accesses inline (want >= 95%)"; fail=1
fi
diff -u "$out/vanilla.timing" "$out/fork.timing" > "$out/timing.diff" &&
    echo "ok: timing-dependent lines match too" ||
    { echo "note: timing-dependent lines differ (not a failure):"; cat "$out/timing.diff"; }
exit $fail
