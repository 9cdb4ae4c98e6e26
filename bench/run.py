#!/usr/bin/env python3
"""Run the port-access micro-benchmarks on the vanilla twin and the fork.

Both builds run the same guest (bench/guest) in the same invocation,
interleaved (vanilla, fork, vanilla, fork, ...) so that drift on the host
hits both alike.  Each guest run reports the median of its rounds; this
script reports the median over runs, and the fork/vanilla ratio.

  bench/run.py --guest build/bench/bench-guest.elf --reps 3 \
      [--configs tcg-smp1,tcg-smp2,kvm-smp1] [--markdown OUT.md]
"""
import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import benchstats

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("QT_BUILD_DIR", os.path.join(TOP, "build"))

# name: (accel options, smp, machine, ops per round).  Rounds are short
# (~10 ms under TCG, ~25 ms under KVM) and many, so that the minimum over
# rounds finds the undisturbed cost on a noisy host (see HISTORY.md).
ROUNDS = 25
CONFIGS = {
    "tcg-smp1": ("tcg", 1, "pc", 50000),
    "tcg-smp2": ("tcg", 2, "pc", 50000),
    "kvm-smp1": ("kvm", 1, "pc", 2000),
    # PIT/PIC in userspace.  (kernel-irqchip=off needs a userspace APIC,
    # which the nested KVM of our development machines refuses.)
    "kvm-irqchip-split-smp1": ("kvm,kernel-irqchip=split", 1, "pc", 2000),
}


def route_args(n):
    """-object arguments for n routes; the first covers the PIC."""
    args = ["-object", "exit-route,id=pic,event=pio,start=0x20,size=2,"
            "handler=device"]
    for i in range(1, n):
        args += ["-object", "exit-route,id=r%d,event=pio,start=%d,"
                 "handler=device" % (i, 0x1300 + 5 * i)]
    return args


# Router configurations: the fork gets extra arguments, the vanilla twin
# none.  name: (accel, smp, machine, ops per round, workloads, fork args)
#  - routes-N: lookup cost with N routes (one "device" route on the PIC's
#    0x20-0x21, the rest elsewhere); pic_imr hits, unassigned misses.
#  - device-route: the same misses with a device route over them.
#  - ignore-write: a write-only port routed to "ignore", which KVM
#    absorbs in the kernel (ioeventfd) instead of exiting to QEMU.
ROUTE_CONFIGS = {
    "tcg-smp1-routes-10": ("tcg", 1, "pc", 50000, ["pic_imr", "unassigned"],
                           route_args(10)),
    "tcg-smp1-routes-1000": ("tcg", 1, "pc", 50000,
                             ["pic_imr", "unassigned"], route_args(1000)),
    "tcg-smp1-routes-10000": ("tcg", 1, "pc", 50000,
                              ["pic_imr", "unassigned"], route_args(10000)),
    # device: the router's cost for an explicit device route, on ports
    # whose model has no device lock (the unassigned ports 0x1234-0x1237):
    # what a route that only counts costs a serial, RTC or PCI access.
    "tcg-smp1-device-route": ("tcg", 1, "pc", 50000,
                              ["unassigned", "unassigned_write"],
                              ["-object", "exit-route,id=dev,event=pio,"
                               "start=0x1234,size=4,handler=device"]),
    "kvm-smp1-ignore-write": ("kvm", 1, "pc", 2000, ["unassigned_write"],
                              ["-object", "exit-route,id=sink,event=pio,"
                               "start=0x1236,direction=write,"
                               "handler=ignore"]),
}
# Cross-device configurations: the APs run another workload than the one
# the BSP measures (the guest's ap= option), so the measured device
# contends with a different device's accesses only: what the BQL costs a
# device that another vCPU is not using.
#   name: (accel, smp, machine, ops per round, BSP workloads, AP workload)
AP_CONFIGS = {
    "tcg-smp2-ap-pic": ("tcg", 2, "pc", 50000,
                        ["pit_latch_read", "pit_count_read", "port61",
                         "pm_timer", "i8042_status", "elcr", "port80_write"],
                        "pic_imr"),
}
# The q35 PM timer lives at another port; the guest finds it in the FADT.
Q35_WORKLOADS = ["pm_timer"]

BENCH_RE = re.compile(r"^BENCH workload=(\S+) cpus=(\d+) n=(\d+)(?: ap=\S+)? "
                      r"cycles=([\d.]+) min=([\d.]+)")


def report(lines, markdown=None):
    """Prints a bench's report (a list of lines) and writes it to
    @markdown if given."""
    text = "\n".join(lines)
    print(text)
    if markdown:
        with open(markdown, "w") as f:
            f.write(text + "\n")


def qemu_binary(which):
    return os.path.join(BUILD, "qemu-" + which, "qemu-system-x86_64")


def wait_handler_up(qmp_path, route_id, timeout=10):
    """A before_start for run_guest: 'cont' once every handler of route
    @route_id is up (else the guest's first accesses take the fallback).
    Returns the QMP connection."""
    sys.path.insert(0, os.path.join(TOP, "scripts"))
    from qmp import QMP  # pylint: disable=import-outside-toplevel
    q = QMP(qmp_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in q.cmd("query-exit-stats"):
            if r["id"] == route_id and all(h["up"] for h in r["handlers"]):
                q.cmd("cont")
                return q
        time.sleep(0.02)
    raise RuntimeError("the external handler did not come up")


def run_guest(which, guest, accel, smp, machine, n, only, timeout,
              fork_args=(), before_start=None, after_done=None,
              guest_args=""):
    """Boot the bench guest once; return {workload: (median, min)}.

    before_start(qmp_path): the guest is started paused (-S) with a QMP
    socket at qmp_path (one client at a time); this must 'cont' it.
    after_done(): called after the guest's last result, before QEMU is
    stopped."""
    cmd = [qemu_binary(which), "-machine", machine, "-accel", accel, "-smp", str(smp),
           "-m", "64", "-nodefaults", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", guest,
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-append", ("n=%d rounds=%d smp=%d only=%s %s" %
                       (n, ROUNDS, smp, ",".join(only), guest_args)).strip()]
    if which == "fork":
        cmd += list(fork_args)
    qmp_dir = tempfile.TemporaryDirectory() if before_start else None
    if qmp_dir:
        qmp_path = os.path.join(qmp_dir.name, "qmp.sock")
        cmd += ["-S", "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True)
    results, lines, done = {}, [], False
    deadline = time.monotonic() + timeout
    try:
        if qmp_dir:
            before_start(qmp_path)
        for line in proc.stdout:
            line = line.strip()
            lines.append(line)
            m = BENCH_RE.match(line)
            if m:
                results[m.group(1)] = (float(m.group(4)), float(m.group(5)))
            if line.startswith("BENCH-ERROR"):
                sys.stderr.write("%s %s: %s\n" % (which, accel, line))
            if line == "BENCH-DONE":
                done = True
                if after_done:
                    after_done()
                break
            if time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait()
        if qmp_dir:
            qmp_dir.cleanup()
    if not done:
        raise RuntimeError("%s %s smp%d %s: guest did not finish; output:\n%s"
                           % (which, accel, smp, machine,
                              "\n".join(lines[-20:])))
    return results


def describe_machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    kvm = "usable" if os.access("/dev/kvm", os.W_OK) else "absent"
    return ("%s, %d CPUs, Linux %s, /dev/kvm %s"
            % (cpu, os.cpu_count(), platform.release(), kvm))


def host_tsc_ghz():
    """The host TSC rate: the kernel's calibration, else cpu MHz."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True,
                             text=True).stdout
        m = re.findall(r"tsc: Refined TSC clocksource calibration: "
                       r"([\d.]+) MHz", out) or \
            re.findall(r"tsc: Detected ([\d.]+) MHz", out)
        if m:
            return float(m[-1]) / 1000
    except OSError:
        pass
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1]) / 1000
    return 1.0


def clock_read_cycles():
    """TSC cycles of one bare virtual-clock read (bench/clockread)."""
    tool = os.path.join(BUILD, "tiers", "bench", "clockread")
    out = subprocess.run([tool], capture_output=True, text=True,
                         check=True).stdout
    return float(out.split()[1])


# Ports that read the clock: (workload, clock reads, accesses) per op.
CLOCK_WORKLOADS = [("pm_timer", 1, 1), ("pm_timer (q35)", 1, 1),
                   ("pit_count_read", 2, 2), ("pit_latch_read", 1, 3)]


def smp1_mins(rows):
    """{(config, workload): (vanilla min, fork min)} of the table rows,
    and the helper-call floor: port80_write's pair under TCG smp1 (a port
    whose device does nothing), or None when it was not measured."""
    mins = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    return mins, mins.get(("tcg-smp1", "port80_write"))


def measured_smp1(mins, workloads):
    """(workload, clock reads, accesses, (vanilla min, fork min)) for
    each of @workloads measured under TCG smp1."""
    for w, nclock, nacc in workloads:
        m = mins.get(("tcg-smp1", w))
        if m:
            yield w, nclock, nacc, m


def clock_goal_lines(rows, clock):
    """The kernel tier's clock-port goal, TCG smp1: the fork within 1.2x
    of the bare clock reads plus the vanilla helper-call floor, i.e. what
    vanilla pays for a port whose device does nothing (port 0x80)."""
    mins, floor = smp1_mins(rows)
    if not floor:
        return []
    lines = ["", "Clock ports, TCG smp1 (goal: fork min <= 1.2 x (clock "
             "reads + accesses x vanilla helper-call floor)); one bare "
             "virtual-clock read (bench/clockread, clock_gettime) %.1f "
             "cycles, vanilla helper-call floor (port80_write, vanilla min) "
             "%.1f cycles:" % (clock, floor[0]), "",
             "| workload | clock reads + accesses | bound | fork min | "
             "fork / (clock + floor) |", "|---|---|---:|---:|---:|"]
    for w, nclock, nacc, m in measured_smp1(mins, CLOCK_WORKLOADS):
        base = nclock * clock + nacc * floor[0]
        lines.append("| %s | %d + %d | %.1f | %.1f | **%.2f** |"
                     % (w, nclock, nacc, 1.2 * base, m[1], m[1] / base))
    return lines


# Ports the smp1 "<= 0.5x" goal names as needing only device state:
# (workload, clock reads, accesses) per op.  Port 0x61 carries PIT
# channel 2's OUT and a PIT latch the count at that instant, so both read
# the clock after all.
STATE_WORKLOADS = [("pic_imr", 0, 1), ("elcr", 0, 1), ("i8042_status", 0, 1),
                   ("port80_write", 0, 1), ("port61", 1, 1),
                   ("pit_latch_read", 1, 3)]


def state_goal_lines(rows, clock):
    """The kernel tier's smp1 goal for state-only ports (fork <= 0.5x
    vanilla), with the best ratio a device model that costs nothing could
    reach in this fork: its own helper-call floor (port 0x80's fork min)
    per access plus the bare clock reads."""
    mins, floor = smp1_mins(rows)
    if not floor:
        return []
    lines = ["", "State-only ports, TCG smp1 (goal: fork/vanilla <= 0.5); "
             "'reachable' is (accesses x fork helper-call floor (port80_write,"
             " fork min, %.1f cycles) + clock reads x %.1f) / vanilla min, "
             "the ratio of a device model that costs nothing:"
             % (floor[1], clock), "",
             "| workload | clock reads + accesses | vanilla min | fork min | "
             "fork/vanilla | reachable |", "|---|---|---:|---:|---:|---:|"]
    for w, nclock, nacc, m in measured_smp1(mins, STATE_WORKLOADS):
        best = nacc * floor[1] + nclock * clock
        lines.append("| %s | %d + %d | %.1f | %.1f | **%.2f** | %.2f |"
                     % (w, nclock, nacc, m[0], m[1], m[1] / m[0],
                        best / m[0]))
    return lines


def version_of(which):
    out = subprocess.run([qemu_binary(which), "--version"],
                         capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--configs", default=",".join(
        list(CONFIGS) + list(ROUTE_CONFIGS) + list(AP_CONFIGS)))
    ap.add_argument("--markdown", help="also write the table here")
    ap.add_argument("--timeout", type=int, default=300)
    args = ap.parse_args()

    workloads = ["pit_latch_read", "pit_count_read", "pic_imr", "elcr",
                 "i8042_status", "port61", "pm_timer", "port80_write",
                 "unassigned", "unassigned_write", "hpet_cap", "empty"]
    configs = []
    all_configs = dict(CONFIGS)
    all_configs.update(ROUTE_CONFIGS)
    all_configs.update(AP_CONFIGS)
    for name in args.configs.split(","):
        if name not in all_configs:
            sys.exit("bench: unknown config '%s' (known: %s)"
                     % (name, ", ".join(all_configs)))
        if all_configs[name][0].startswith("kvm") and \
                not os.access("/dev/kvm", os.W_OK):
            print("bench: skipping %s: /dev/kvm is not usable" % name)
            continue
        configs.append(name)

    rows, failed = [], []
    tsc_ghz = host_tsc_ghz()
    for name in configs:
        fork_args = ()
        guest_args = ""
        if name in AP_CONFIGS:
            accel, smp, machine, n, only, ap = AP_CONFIGS[name]
            runs = [(machine, only)]
            guest_args = "ap=" + ap
        elif name in ROUTE_CONFIGS:
            accel, smp, machine, n, only, fork_args = ROUTE_CONFIGS[name]
            runs = [(machine, only)]
        else:
            accel, smp, machine, n = CONFIGS[name]
            # (machine, workloads to run in that guest)
            runs = [(machine, workloads)]
            if machine == "pc":
                runs.append(("q35", Q35_WORKLOADS))
        samples = {}
        try:
            for rep in range(args.reps):
                for which in ("vanilla", "fork"):
                    for mach, only in runs:
                        res = run_guest(which, args.guest, accel, smp, mach,
                                        n, only, args.timeout, fork_args,
                                        guest_args=guest_args)
                        for w, cyc in res.items():
                            key = w if mach == machine else \
                                "%s (%s)" % (w, mach)
                            samples.setdefault((key, which), []).append(cyc)
                print("bench: %s rep %d/%d done" % (name, rep + 1, args.reps),
                      file=sys.stderr)
        except (RuntimeError, OSError) as e:
            # One configuration the host cannot run must not lose the rest.
            print("bench: %s not measured: %s" % (name, e), file=sys.stderr)
            failed.append(name)
            continue
        keys = []
        for mach, only in runs:
            for w in only:
                keys.append(w if mach == machine else "%s (%s)" % (w, mach))
        for key in keys:
            v = samples.get((key, "vanilla"))
            f = samples.get((key, "fork"))
            if not v or not f:
                continue
            vmin, fmin = min(x[1] for x in v), min(x[1] for x in f)
            vmed = statistics.median(x[0] for x in v)
            fmed = statistics.median(x[0] for x in f)
            # Paired: each repetition's fork run against its own vanilla
            # run, which ran just before it.
            pmed, pci, _ = benchstats.paired([x[0] for x in f],
                                             [x[0] for x in v])
            pns = statistics.median((a[0] - b[0]) / tsc_ghz
                                    for a, b in zip(f, v))
            rows.append((name, key, vmin, fmin, fmin / vmin,
                         (fmin - vmin) / tsc_ghz, vmed, fmed, pmed,
                         "[%.2f, %.2f]" % pci if pci else "-", pns))

    head = ["| config | workload | vanilla min | fork min | fork/vanilla "
            "(min) | fork-vanilla ns (min) | vanilla median | fork median | "
            "paired fork/vanilla (median) | 95 % interval | paired "
            "fork-vanilla ns (median) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    body = ["| %s | %s | %.1f | %.1f | **%.2f** | %+.1f | %.1f | %.1f | "
            "**%.2f** | %s | %+.1f |" % r for r in rows]
    meta = ["", "Machine: " + describe_machine(),
            "Vanilla: " + version_of("vanilla"),
            "Fork: " + version_of("fork"),
            "Date: %s; %d guest runs per build, interleaved vanilla/fork; "
            "each run times %d rounds per workload.  Cycles are TSC cycles "
            "per op.  'min' is the fastest round over all runs (the "
            "undisturbed cost), 'median' the median over runs of each run's "
            "median round; 'paired' pairs each repetition's fork run with "
            "the vanilla run just before it (ratio and difference of their "
            "median rounds), with a distribution-free 95 %% interval for "
            "the median ratio."
            % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               args.reps, ROUNDS),
            "pit_latch_read is one op of three accesses (0x43 latch, two "
            "0x40 reads), pit_count_read of two (0x40 low and high byte); "
            "every other op is one access; 'empty' is the loop with no "
            "access (each workload is a tight loop in the guest).  "
            "ns = TSC cycles / "
            "%.3f GHz (the host's TSC, which TCG and KVM guests read)."
            % tsc_ghz, ""]
    if "tcg-smp1" in configs:
        clock = clock_read_cycles()
        meta += clock_goal_lines(rows, clock)
        meta += state_goal_lines(rows, clock)
    if failed:
        meta.append("Not measured (failed on this host): " +
                    ", ".join(failed) + ".")
    report(head + body + meta, args.markdown)
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(main())
