#!/usr/bin/env bash
# The bench guest works on the fork: every workload reports, the PM timer
# is found in the FADT on pc and q35, the second vCPU comes up.  (SeaBIOS
# puts the PM block at 0x600 on both machines, so the timer is at 0x608.)  Small n:
# this checks function, not speed (speed lives in `make bench`).
# test-bench-guest.sh kvm: the same under KVM (skipped where KVM is not
# usable).
set -uo pipefail
b=${QT_BUILD_DIR:?}
guest=${QT_BENCH_GUEST:?}
. "$QT_TOP/scripts/qemu-env.sh"
fail=0
qemu=$(qemu_binary fork)

run() {     # run MACHINE ACCEL SMP [GUEST-OPTION...]
    local m=$1 a=$2 smp=$3
    shift 3
    timeout 120 "$qemu" -machine "$m" -accel "$a" -smp "$smp" -m 64 \
        -nodefaults -display none -serial stdio -no-reboot -kernel "$guest" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -append "n=2000 rounds=3 smp=$smp $*" < /dev/null 2>&1 | tr -d '\r' |
        sed '/^BENCH-DONE/q'
}
check() {   # check LABEL OUTPUT CPUS
    local label=$1 out=$2 cpus=$3 w
    for w in pit_latch_read pit_count_read pic_imr elcr i8042_status port61 pm_timer port80_write unassigned unassigned_write hpet_cap empty; do
        grep -Eq "^BENCH workload=$w cpus=$cpus n=2000 cycles=[0-9]+\.[0-9] " <<< "$out" ||
            { echo "FAIL: $label: no result for $w"; fail=1; }
    done
    grep -Eq "pm_timer=0x0000[0-9a-f]{3}[1-9a-f]" <<< "$out" ||
        { echo "FAIL: $label: no PM timer port found in the FADT"; fail=1; }
    grep -q "^BENCH-ERROR" <<< "$out" && { echo "FAIL: $label: $(grep '^BENCH-ERROR' <<< "$out")"; fail=1; }
    grep -q "^BENCH-DONE" <<< "$out" || { echo "FAIL: $label: guest did not finish"; fail=1; }
    [ $fail = 0 ] && echo "ok: $label"
}
if [ "${1:-tcg}" = kvm ]; then
    require_kvm
    check "kvm pc smp1" "$(run pc kvm 1)" 1
    exit $fail
fi
check "tcg pc smp1" "$(run pc tcg 1)" 1
check "tcg q35 smp1" "$(run q35 tcg 1)" 1
check "tcg pc smp2" "$(run pc tcg 2)" 2
# apm_smi (an SMI per write to port 0xb2) runs only when named: on pc and
# q35 (SMI_EN.APMC_EN) the firmware's SMM handler returns to the loop.
for m in pc q35; do
    out=$(run $m tcg 1 only=apm_smi)
    grep -Eq "^BENCH workload=apm_smi cpus=1 n=2000 cycles=[0-9]+\.[0-9] " <<< "$out" &&
        grep -q "^BENCH-DONE" <<< "$out" && echo "ok: tcg $m smp1 only=apm_smi" ||
        { echo "FAIL: tcg $m smp1 only=apm_smi: $out"; fail=1; }
done
# ap=: the second vCPU runs another workload than the measured one.
out=$(run pc tcg 2 ap=pic_imr only=pit_count_read)
grep -Eq "^BENCH workload=pit_count_read cpus=2 n=2000 ap=pic_imr cycles=[0-9]+\.[0-9] " <<< "$out" &&
    ! grep -q "^BENCH-ERROR" <<< "$out" && echo "ok: tcg pc smp2 ap=pic_imr" ||
    { echo "FAIL: tcg pc smp2 ap=pic_imr: $out"; fail=1; }
out=$(run pc tcg 2 ap=nosuch only=pic_imr)
grep -q "^BENCH-ERROR unknown ap= workload" <<< "$out" && echo "ok: ap= names an unknown workload" ||
    { echo "FAIL: ap=nosuch was not refused: $out"; fail=1; }
# ivq= and ivshmem=: messages to itself through the ivq device (with an
# ivq-broker) and QEMU's ivshmem-doorbell (bench/ivq.py's server), each
# doorbell, 64 B and 64 KiB, every message checked.
python3 "$QT_TOP/bench/ivq.py" --smoke || fail=1
exit $fail
