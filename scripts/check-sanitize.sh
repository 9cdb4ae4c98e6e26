#!/usr/bin/env bash
# Build the fork with sanitizers and run the kernel tier's tests on it:
#   check-sanitize.sh asan    AddressSanitizer + UndefinedBehaviorSanitizer
#   check-sanitize.sh tsan    ThreadSanitizer
# (make check-sanitize SANITIZE=asan|tsan).  The build goes to
# build/qemu-fork-asan or -tsan-clang, beside the normal one.  Runs the
# qtests (the differential test with QT_DIFF_OPS, default 20000 here),
# then a stress run: the bench guest with 2 vCPUs hammering the PIT, the
# PIC and the PM timer under TCG (MTTCG) while the PIT's IRQ0 fires.
# Fails on any sanitizer report.
#
# TSan builds with Debian 12's clang 16 (installed here when missing):
# GCC 12's TSan runtime fails an internal CHECK in its stack depot
# (StackDepotNode::store) once two MTTCG vCPUs have run a while, and then
# hangs (seen 2026-11-30).  -O0 as QEMU's testing guide has it: at -O2
# clang's TSan lost track of the vCPU thread's call stack across TCG's
# siglongjmp() and crashed within seconds of the stress run.  The option
# ROMs (16-bit code) are still built with gcc: QEMU's configure does not
# take clang for them.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
kind=${1:?usage: check-sanitize.sh asan|tsan}
case $kind in
asan) extra="--enable-asan --enable-ubsan --disable-werror" ;;
tsan) extra="--cc=clang-16 --cxx=clang++-16 --host-cc=clang-16 --cross-prefix-i386=x86_64-linux-gnu- --enable-tsan --disable-werror --extra-cflags=-O0"
    mapfile -t missing < <(missing_pkgs clang-16 libclang-rt-16-dev)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]} (TSan builds with clang)"
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" > "$BUILD/tsan-apt.log" 2>&1 ||
            die "apt-get install ${missing[*]} failed (see $BUILD/tsan-apt.log)"
    fi
    # ccache's masquerade directory learns clang-16 here.
    command -v update-ccache-symlinks > /dev/null && { update-ccache-symlinks 2>/dev/null || true; }
    kind_dir=tsan-clang ;;
*) die "check-sanitize.sh: unknown sanitizer '$kind' (asan or tsan)" ;;
esac
export QT_BUILD_SUFFIX=-${kind_dir:-$kind} QT_CONFIGURE_EXTRA=$extra
tests="legacy-ports-test exit-route-test tier-diff-test exit-handler-test"
# shellcheck disable=SC2086  # one word per test
QT_BUILD_TARGETS="qemu-system-x86_64 $(printf 'tests/tiers/qtest/%s ' $tests)"
export QT_BUILD_TARGETS
"$TOP/scripts/build-qemu.sh" fork || exit 1
out=$BUILD/qemu-fork-${kind_dir:-$kind}

logs=$out/sanitize-logs
rm -rf "$logs"; mkdir -p "$logs"
export QTEST_QEMU_BINARY=$out/qemu-system-x86_64
export QT_DIFF_OPS=${QT_DIFF_OPS:-20000}
# External handlers: the example handler (not instrumented), 20 kills.
export QT_EXIT_HANDLER=$BUILD/tiers/accel/route/libexithandler/exit-handler-post
export QT_EXIT_KILLS=${QT_EXIT_KILLS:-20}
# UBSan: report and stop; TSan: report to stderr (QEMU's RCU and
# coroutine tricks need no suppressions for what these tests run).
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS=detect_leaks=0
# The qtest programs fork QEMU after starting threads; QEMU's own TSan
# suppressions (tests/tsan/) cover what upstream knows to be benign.
# exitcode=0: a QEMU with reports would exit 66, which libqtest treats as
# a crash and aborts the test; the reports are in the logs and judged
# below.
# tests/tsan/startup.supp adds upstream start-up races (see there).
cat "$TOP/qemu/tests/tsan/suppressions.tsan" "$TOP/tests/tsan/startup.supp" > "$logs/tsan.supp"
export TSAN_OPTIONS="die_after_fork=0 exitcode=0 suppressions=$logs/tsan.supp"
fail=0
for t in $tests; do
    if "$out/tests/tiers/qtest/$t" --tap -k > "$logs/$t.log" 2>&1; then
        say "$kind: $t ok"
    else
        echo "FAIL: $kind: $t (see $logs/$t.log)"; fail=1
    fi
done

stress_n=${QT_STRESS_N:-20000}
guest=$BUILD/tiers/bench/bench-guest.elf
[ -f "$guest" ] || die "no bench guest at $guest (run 'make tiers')"
timeout 900 "$out/qemu-system-x86_64" -machine pc -accel tcg -smp 2 -m 64 \
    -nodefaults -display none -serial stdio -no-reboot -kernel "$guest" \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -append "n=$stress_n rounds=3 smp=2 only=pit_latch_read,pit_count_read,pic_imr,elcr,i8042_status,pm_timer,port61,port80_write" \
    < /dev/null > "$logs/stress.log" 2>&1
grep -q '^BENCH-DONE' "$logs/stress.log" ||
    { echo "FAIL: $kind: stress guest did not finish (see $logs/stress.log)"; fail=1; }

if grep -lE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer" "$logs"/*.log; then
    echo "FAIL: $kind: sanitizer reports in the logs above"; fail=1
fi
# QEMU 10.0 itself is not clean under TSan (e.g. interrupt_request is
# written non-atomically under the BQL and read atomically by vCPUs; the
# dirty bitmap; glib is not instrumented): a race counts against us when
# either racing access is in the router, the tier, or the device code
# our patches lock (the access's top frame).
python3 - "$logs" <<'PY' || fail=1
import glob, re, sys
ours = re.compile(r"accel/route/|hw/split/|hw/intc/i8259\.c|hw/timer/i8254|hw/audio/pcspk\.c|hw/acpi/core\.c|hw/input/pckbd\.c")
bad = upstream = 0
for log in glob.glob(sys.argv[1] + "/*.log"):
    for rep in open(log, errors="replace").read().split("WARNING: ThreadSanitizer")[1:]:
        tops = re.findall(r"\n    #0 \S+ (\S+)", rep.split("SUMMARY")[0])
        if any(ours.search(t) for t in tops):
            bad += 1
            print("FAIL: TSan report in qemu-tiers code (%s):%s" % (log, rep[:1500]))
        else:
            upstream += 1
print("TSan: %d report(s) in qemu-tiers code, %d in upstream QEMU only" % (bad, upstream))
sys.exit(1 if bad else 0)
PY
[ $fail = 0 ] && say "$kind: no sanitizer report in qemu-tiers code; logs in ${logs#"$TOP"/}"
exit $fail
