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
say "booting $GUEST_KERNEL_RELEASE: $which, accel=$accel, smp=$smp, machine=$machine"
start=$(date +%s.%N)
set +e
if [ -n "${QT_QUIET:-}" ]; then
    timeout "${QT_TIMEOUT:-600}" "${cmd[@]}" < /dev/null > "$log" 2>&1
else
    timeout "${QT_TIMEOUT:-600}" "${cmd[@]}" < /dev/null 2>&1 | tee "$log"
fi
rc=${PIPESTATUS[0]}
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
else
    echo "   the guest did not reach its power-off (exit $rc); console in ${log#"$TOP"/}"
    exit 1
fi
