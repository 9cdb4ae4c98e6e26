#!/usr/bin/env python3
"""The kernel tier under a real guest: Debian's kernel asking for the time.

Boots the Debian kernel (build/guest) under TCG on the vanilla twin and on
the fork, interleaved, with an initramfs whose init runs bench/linux/
clockloop: on every vCPU at once, rounds of clock_gettime() timed with the
TSC.  The machine is `pc,hpet=off` (what libvirt's usual domain XML gives:
`<timer name='hpet' present='no'/>`), where Linux has no HPET and, with
two vCPUs under TCG, marks the TSC unstable: its clocksource is then the
ACPI PM timer, and every CLOCK_MONOTONIC read is a system call that reads
port 0x608.  CLOCK_MONOTONIC_COARSE, which reads memory only, is the
control.  With one vCPU Linux keeps the TSC, so `smp1` is a control too:
no port read, the same cost in both builds; so is `tcg-smp2-hpet`
(QEMU's default machine, where Linux reads the HPET).

Prints cycles per call (median over runs of each vCPU's median round, and
the fastest round) and fork/vanilla, per config and clock; the fork runs
with its defaults (kernel tier on).
"""
import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import run as bench_run  # noqa: E402
from qmp import QMP  # noqa: E402

# name: (machine, vCPUs).  With the HPET (QEMU's default) Linux reads it
# (MMIO, not a kernel-tier device): a control.
CONFIGS = {
    "tcg-smp1-nohpet": ("pc,hpet=off", 1),
    "tcg-smp2-nohpet": ("pc,hpet=off", 2),
    "tcg-smp2-q35-nohpet": ("q35,hpet=off", 2),
    "tcg-smp2-hpet": ("pc", 2),
}
LOOP_RE = re.compile(r"^CLOCKLOOP clock=(\S+) cpu=(\d+) n=\d+ "
                     r"cycles=([\d.]+) min=([\d.]+)")
START_RE = re.compile(r"^CLOCKLOOP-START clocksource=(\S+) cpus=(\d+)")


def guest_kernel_release():
    with open(os.path.join(bench_run.TOP, "scripts", "pins.env")) as f:
        for line in f:
            if line.startswith("GUEST_KERNEL_RELEASE="):
                return line.split("=", 1)[1].strip()
    return "(unknown)"


def make_initramfs(out):
    """The bench guest's initramfs: busybox, clockloop and our init."""
    clockloop = os.path.join(bench_run.BUILD, "tiers", "bench", "clockloop")
    busybox = os.path.join(bench_run.BUILD, "guest", "busybox")
    for f in (clockloop, busybox):
        if not os.path.exists(f):
            sys.exit("linux: %s is missing (make build)" % f)
    subprocess.run([sys.executable,
                    os.path.join(bench_run.TOP, "scripts", "mkinitramfs.py"),
                    out, "init=" + os.path.join(bench_run.TOP, "bench",
                                                "linux", "init"),
                    "bin/busybox=" + busybox, "bin/clockloop=" + clockloop],
                   check=True)


def boot(which, machine, smp, initrd, n, rounds, timeout, pin):
    """One boot; returns (clocksource, {clock: [(median, min) per vCPU]}).

    pin: vCPU i runs on host CPU i (libvirt's <vcpupin>).  Left to the
    scheduler, the two busy vCPU threads were seen on one CPU now and
    then; pinning takes that away, not the host's own noise (HISTORY.md)."""
    kernel = os.path.join(bench_run.BUILD, "guest", "vmlinuz")
    cmd = [bench_run.qemu_binary(which), "-machine", machine, "-accel", "tcg",
           "-smp", str(smp), "-m", "512", "-nodefaults", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", kernel,
           "-initrd", initrd, "-append",
           "console=ttyS0 panic=-1 quiet qt.n=%d qt.rounds=%d" % (n, rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        qmp_path = os.path.join(tmp, "qmp.sock")
        cmd += ["-S", "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True,
                                errors="replace")
        try:
            q = QMP(qmp_path)
            if pin:
                for c in q.cmd("query-cpus-fast"):
                    os.sched_setaffinity(c["thread-id"],
                                         {c["cpu-index"] % os.cpu_count()})
            q.cmd("cont")
            out, _ = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
            proc.wait()
    clocksource, loops, done = None, {}, False
    for line in out.replace("\r", "").splitlines():
        m = START_RE.match(line)
        if m:
            clocksource = m.group(1)
            if int(m.group(2)) != smp:
                sys.exit("linux: %s: the guest saw %s CPUs, not %d"
                         % (which, m.group(2), smp))
        m = LOOP_RE.match(line)
        if m:
            loops.setdefault(m.group(1), []).append(
                (float(m.group(3)), float(m.group(4))))
        done |= line == "CLOCKLOOP-DONE"
    if not done or any(len(v) != smp for v in loops.values()) or \
            set(loops) != {"monotonic", "coarse"}:
        sys.exit("linux: %s did not finish the clock loops; last lines:\n%s"
                 % (which, "\n".join(out.splitlines()[-15:])))
    return clocksource, loops


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--n", type=int, default=50000,
                    help="clock_gettime() calls per round")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--no-pin", action="store_true",
                    help="leave the vCPU threads to the host's scheduler")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    configs = args.configs.split(",")
    for c in configs:
        if c not in CONFIGS:
            sys.exit("linux: unknown config '%s' (known: %s)"
                     % (c, ", ".join(CONFIGS)))
    initrd = os.path.join(bench_run.BUILD, "bench-linux.cpio.gz")
    make_initramfs(initrd)
    ghz = bench_run.host_tsc_ghz()
    # (config, clock, which) -> [per-run median over vCPUs], [mins]
    med, mins, sources = {}, {}, {}
    for rep in range(args.reps):
        for cfg in configs:
            machine, smp = CONFIGS[cfg]
            for which in ("vanilla", "fork"):
                cs, loops = boot(which, machine, smp, initrd, args.n,
                                 args.rounds, 600, not args.no_pin)
                sources.setdefault((cfg, which), set()).add(cs)
                for clock, per_cpu in loops.items():
                    key = (cfg, clock, which)
                    med.setdefault(key, []).append(
                        statistics.median(x[0] for x in per_cpu))
                    mins.setdefault(key, []).append(
                        min(x[1] for x in per_cpu))
        print("linux: rep %d/%d done" % (rep + 1, args.reps), file=sys.stderr)

    lines = ["| config | clocksource (vanilla / fork) | clock | vanilla "
             "median | fork median | fork/vanilla (median) | vanilla min | "
             "fork min | fork/vanilla (min) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for cfg in configs:
        src = " / ".join(",".join(sorted(sources[(cfg, w)]))
                         for w in ("vanilla", "fork"))
        for clock in ("monotonic", "coarse"):
            v = statistics.median(med[(cfg, clock, "vanilla")])
            f = statistics.median(med[(cfg, clock, "fork")])
            vm = min(mins[(cfg, clock, "vanilla")])
            fm = min(mins[(cfg, clock, "fork")])
            lines.append("| %s | %s | %s | %.0f | %.0f | **%.2f** | %.0f | "
                         "%.0f | %.2f |" % (cfg, src, clock, v, f, f / v,
                                            vm, fm, fm / vm))
    lines += ["", "Per run, CLOCK_MONOTONIC, vanilla/fork: " + "; ".join(
        "%s %s" % (cfg, ", ".join(
            "%.0f/%.0f" % r for r in zip(med[(cfg, "monotonic", "vanilla")],
                                         med[(cfg, "monotonic", "fork")])))
        for cfg in configs)]
    lines += ["",
              "Cycles (TSC) per clock_gettime() call in the guest, every "
              "vCPU calling at once; median over runs of the median over "
              "vCPUs of each vCPU's median round, and the fastest round of "
              "any vCPU. %d runs per build and config, interleaved, each "
              "%d rounds of %d calls; ns = cycles / %.3f GHz."
              % (args.reps, args.rounds, args.n, ghz),
              "Placement: " + ("vCPU i on host CPU i (as libvirt's "
                               "<vcpupin>)" if not args.no_pin else
                               "left to the scheduler"),
              "Guest: Debian kernel %s (scripts/pins.env), busybox "
              "initramfs with bench/linux/init" % guest_kernel_release(),
              "Machine: " + bench_run.describe_machine(),
              "Vanilla: " + bench_run.version_of("vanilla"),
              "Fork: " + bench_run.version_of("fork"),
              "Date: " + datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
              ""]
    bench_run.report(lines, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
