#!/usr/bin/env bash
# The Linux clock bench works (bench/linux.py, part of `make bench`): the
# Debian kernel boots on pc,hpet=off with two vCPUs under both builds,
# picks the ACPI PM timer as its clocksource (what the bench is about),
# and clockloop reports both clocks on both vCPUs.  Small n: this checks
# function, not speed.  Also: clockloop refuses bad arguments.
set -uo pipefail
top=${QT_TOP:?}
b=${QT_BUILD_DIR:?}
clockloop=$b/tiers/bench/clockloop
fail=0

for args in "1 1 1 realtime" "0 1 1 coarse" "1 0 1 coarse" "1 1001 1 coarse" "1 1 x coarse" "1 1 1"; do
    # shellcheck disable=SC2086
    if out=$("$clockloop" $args 2>&1); then
        echo "FAIL: clockloop accepted '$args': $out"; fail=1
    fi
done
out=$("$clockloop" 1000 3 1 coarse) ||
    { echo "FAIL: clockloop 1000 3 1 coarse failed: $out"; fail=1; }
grep -Eq '^CLOCKLOOP clock=coarse cpu=0 n=1000 cycles=[0-9.]+ min=[0-9.]+$' <<< "$out" ||
    { echo "FAIL: clockloop on the host: $out"; fail=1; }

table=$(python3 "$top/bench/linux.py" --reps 1 --n 2000 --rounds 3 \
        --configs tcg-smp2-nohpet 2>&1) ||
    { echo "FAIL: bench/linux.py failed:"; echo "$table"; exit 1; }
echo "$table"
for clock in monotonic coarse; do
    grep -Eq "^\| tcg-smp2-nohpet \| acpi_pm / acpi_pm \| $clock \| [0-9]+ \| [0-9]+ \|" <<< "$table" ||
        { echo "FAIL: no $clock row with the acpi_pm clocksource in both builds"; fail=1; }
done
[ $fail = 0 ] && echo "ok: the Linux clock bench runs (acpi_pm on both builds)"
exit $fail
