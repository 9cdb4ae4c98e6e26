#!/usr/bin/env bash
# Boot the Debian guest under one build and summarise the boot.
#   QT_QEMU=fork|vanilla  ACCEL=tcg|kvm  SMP=N  MACHINE=pc|q35
#   QT_LOG=FILE  (console copy; default build/run/<qemu>-<accel>-smp<N>.log)
#   QT_QUIET=1   (do not echo the console, for tests)
set -euo pipefail
. "$(dirname "$0")/qemu-env.sh"

which=${QT_QEMU:-fork}
accel=${ACCEL:-tcg}
smp=${SMP:-1}
machine=${MACHINE:-pc}
case $accel in
tcg|kvm) ;;
*) die "ACCEL=$accel is not supported (use ACCEL=tcg or ACCEL=kvm)" ;;
esac
case $smp in
''|*[!0-9]*|0) die "SMP=$smp is not a positive number" ;;
esac
if [ "$accel" = kvm ] && [ ! -w /dev/kvm ]; then
    die "ACCEL=kvm but /dev/kvm is not usable here"
fi

qemu=$(qemu_binary "$which")
g=$BUILD/guest
[ -f "$g/vmlinuz" ] && [ -f "$g/initramfs.cpio.gz" ] || die "no guest in build/guest (run scripts/fetch-guest.sh)"
mkdir -p "$BUILD/run"
log=${QT_LOG:-$BUILD/run/$which-$accel-smp$smp.log}

cmd=("$qemu" -machine "$machine" -accel "$accel" -smp "$smp" -m 512
     -nodefaults -display none -serial stdio -no-reboot
     -kernel "$g/vmlinuz" -initrd "$g/initramfs.cpio.gz"
     -append "console=ttyS0 panic=-1 ${QT_APPEND:-}")
# The fork: one "device" route per legacy device, so that the exit
# profile printed at the end says which device took the exits; QEMU
# stays up after the guest powers off (-no-shutdown) to answer QMP.
# Priority -2: below the kernel tier's own routes (-1), so that what the
# tier serves inline shows up under its tier-* routes.
qmp=$BUILD/run/$which-$accel-smp$smp.qmp
profile_routes="pit:0x40:4 port61:0x61:1 kbd-data:0x60:1 kbd-cmd:0x64:1 pic1:0x20:2
                pic2:0xa0:2 elcr:0x4d0:2 port80:0x80:1 rtc:0x70:2 com1:0x3f8:8
                acpi-pm:0x600:8 pm-timer:0x608:4 fw-cfg:0x510:12 pci-cfg:0xcf8:8"
if [ "$which" = fork ]; then
    rm -f "$qmp"
    cmd+=(-qmp "unix:$qmp,server=on,wait=off" -no-shutdown)
    for r in $profile_routes; do
        IFS=: read -r id start size <<< "$r"
        cmd+=(-object "exit-route,id=$id,event=pio,start=$start,size=$size,priority=-2,handler=device")
    done
fi
say "booting $GUEST_KERNEL_RELEASE: $which, accel=$accel, smp=$smp, machine=$machine"
start=$(date +%s.%N)
timeout "${QT_TIMEOUT:-600}" "${cmd[@]}" < /dev/null > "$log" 2>&1 &
qpid=$!
if [ -z "${QT_QUIET:-}" ]; then
    tail -n +1 -f --pid=$qpid "$log" &
fi
profile=
if [ "$which" = fork ]; then
    if python3 "$TOP/scripts/qmp.py" "$qmp" wait-shutdown "${QT_TIMEOUT:-600}"; then
        profile=$(python3 "$TOP/scripts/qmp.py" "$qmp" profile 8 2>&1) || true
    fi
    python3 "$TOP/scripts/qmp.py" "$qmp" quit 2>/dev/null || true
fi
set +e
wait $qpid
rc=$?
wait
set -e
end=$(date +%s.%N)
tr -d '\r' < "$log" > "$log.tmp" && mv "$log.tmp" "$log"

get() { sed -n "s/^QT-INIT $1=//p" "$log" | head -n1; }
echo "== summary: $which ($("$qemu" --version | head -n1)), accel=$accel smp=$smp"
if grep -q '^QT-INIT poweroff' "$log"; then
    printf '   kernel %s reached init at %ss of guest uptime; %s CPUs; clocksource %s\n' \
        "$(get uname)" "$(get uptime)" "$(get cpus)" "$(get clocksource)"
    awk -v s="$start" -v e="$end" -v rc="$rc" \
        'BEGIN { printf "   host wall time %.1fs from start to power-off (exit %d)\n", e - s, rc }'
    [ -z "$profile" ] || echo "$profile"
else
    echo "   the guest did not reach its power-off (exit $rc); console in ${log#"$TOP"/}"
    exit 1
fi
