#!/usr/bin/env python3
"""Platform events through each handler kind, and what event routes add
to the I/O path.

SMIs from the guest: the bench guest's `apm_smi` workload writes the APM
control port (0xb2) in a loop; SeaBIOS enabled APM SMIs, so each write is
an SMI (source apm) on QEMU's path.  Every route matches the workload's
command byte (datamatch=0x5a) only: SeaBIOS's own SMI at boot (SMBASE
relocation, command 0x00) must still reach its SMM handler.  Each repetition runs the vanilla
twin and the fork, back to back, for every handler kind of a route
`event=smi`:

  unrouted     no event route: QEMU's path (the SMI is raised)
  deliver      a route smi -> deliver: the SMI is raised (and reported in
               PLATFORM_EVENT, rate-limited)
  ignore       a route smi -> ignore: no SMI; suppressed and counted
  log          a route smi -> log: traced, then QEMU's path
  external     a route smi -> external: exit-handler-post --events
               smi=suppress decides each over the ring (no SMI)

Reported: guest cycles per `outb 0xb2` (each run's median round; the
minimum and the median over repetitions: an SMI costs ~15k or ~24k
cycles from one run to the next in both builds, so read the minimum), events per second, and the fork/vanilla ratio paired per
repetition with its 95 % interval (bench/benchstats.py).  Where the fork
does not raise the SMI (ignore, external), the ratio is what the route
saves.

The I/O path: port workloads (`unassigned` read, `pic_imr` on the kernel
tier, `port80_write`) on the fork with 8 event routes (every type) and
on the fork without: event routes live in their own lookup spaces, so
the ratio should be 1.

  bench/events.py [--reps 5] [--markdown OUT.md]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import run as bench_run  # noqa: E402
from benchstats import paired  # noqa: E402

GUEST = os.path.join(bench_run.BUILD, "tiers", "bench", "bench-guest.elf")
HANDLER = os.path.join(bench_run.BUILD, "tiers", "accel", "route",
                       "libexithandler", "exit-handler-post")
KINDS = ["unrouted", "deliver", "ignore", "log", "external"]
SMI_OPS = 2000
IO_OPS = 50000
IO_WORKLOADS = ["unassigned", "pic_imr", "port80_write"]
EVENT_ROUTES = [
    "id=e1,event=nmi,handler=ignore",
    "id=e2,event=nmi,source=watchdog,priority=1,handler=log",
    "id=e3,event=mce,class=corrected,handler=log",
    "id=e4,event=mce,class=srao,cpu=0,priority=1,handler=deliver",
    "id=e5,event=mce,start=0x100000,size=0x100000,priority=2,"
    "handler=ignore",
    "id=e6,event=smi,source=tco,handler=log",
    "id=e7,event=smi,datamatch=0xee,priority=1,handler=ignore",
    "id=e8,event=memory-error,class=ao,handler=deliver",
]


def smi_args(kind, tmp):
    if kind == "unrouted":
        return []
    if kind != "external":
        return ["-object", "exit-route,id=ev,event=smi,datamatch=0x5a,"
                "handler=%s" % kind]
    return ["-chardev", "socket,id=ehc,path=%s/h.sock,reconnect-ms=20" % tmp,
            "-object", "exit-handler,id=eh,chardev=ehc",
            "-object", "exit-route,id=ev,event=smi,datamatch=0x5a,"
            "handler=external,handlers=eh"]


def wait_up(qmp_path):
    """Starts the guest once the handler is up (else: the fallback)."""
    return bench_run.wait_handler_up(qmp_path, "ev")


def run_smi(which, kind, tmp):
    """Guest cycles per APM SMI write (median over rounds)."""
    handler = None
    if which == "fork" and kind == "external":
        handler = subprocess.Popen([HANDLER, "--socket", tmp + "/h.sock",
                                    "--quiet", "--events", "smi=suppress"])
    try:
        res = bench_run.run_guest(
            which, GUEST, "tcg", 1, "pc", SMI_OPS, ["apm_smi"], 600,
            fork_args=smi_args(kind, tmp),
            before_start=wait_up if handler else None)
    finally:
        if handler:
            handler.kill()
            handler.wait()
    return res["apm_smi"][0]


def run_io(with_routes):
    args = []
    if with_routes:
        for r in EVENT_ROUTES:
            args += ["-object", "exit-route," + r]
    res = bench_run.run_guest("fork", GUEST, "tcg", 1, "pc", IO_OPS,
                              IO_WORKLOADS, 600, fork_args=args)
    return {w: res[w][0] for w in IO_WORKLOADS}


def ci_text(ci):
    return "[%.3f, %.3f]" % ci if ci else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--markdown")
    args = ap.parse_args()

    ghz = bench_run.host_tsc_ghz()
    fork = {k: [] for k in KINDS}
    vanilla = {k: [] for k in KINDS}
    io_with = {w: [] for w in IO_WORKLOADS}
    io_without = {w: [] for w in IO_WORKLOADS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for kind in KINDS:
                vanilla[kind].append(run_smi("vanilla", kind, tmp))
                fork[kind].append(run_smi("fork", kind, tmp))
            without, with_ = run_io(False), run_io(True)
            for w in IO_WORKLOADS:
                io_without[w].append(without[w])
                io_with[w].append(with_[w])
            print("rep %d: SMI cycles vanilla/fork %s; I/O without/with "
                  "event routes %s" % (rep + 1, " ".join(
                      "%s %.0f/%.0f" % (k, vanilla[k][-1], fork[k][-1])
                      for k in KINDS), " ".join(
                      "%s %.1f/%.1f" % (w, without[w], with_[w])
                      for w in IO_WORKLOADS)), flush=True)

    lines = ["Machine: %s; TSC %s GHz" % (bench_run.describe_machine(),
                                          "%.2f" % ghz if ghz else "?"),
             "", "SMIs from the guest (`outb 0xb2`), TCG, 1 vCPU, "
             "%d repetitions, guest cycles per event:" % args.reps, "",
             "| route smi -> | vanilla min | fork min | fork/vanilla (min) | "
             "vanilla | fork | events/s (fork) | "
             "fork/vanilla (median, paired) | 95 % interval |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for k in KINDS:
        med, ci, _ = paired(fork[k], vanilla[k])
        f, v = statistics.median(fork[k]), statistics.median(vanilla[k])
        rate = "%.0f" % (ghz * 1e9 / f) if ghz else "?"
        fmin, vmin = min(fork[k]), min(vanilla[k])
        lines.append("| %s | %.0f | %.0f | %.3f | %.0f | %.0f | %s | %.3f "
                     "| %s |" % (k, vmin, fmin, fmin / vmin, v, f, rate, med,
                                 ci_text(ci)))
    lines += ["", "The I/O path with 8 event routes (every type) against "
              "none, on the fork, guest cycles per access:", "",
              "| workload | no event routes (min) | 8 event routes (min) | "
              "no event routes | 8 event routes | "
              "with/without (median, paired) | 95 % interval |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for w in IO_WORKLOADS:
        med, ci, _ = paired(io_with[w], io_without[w])
        lines.append("| %s | %.1f | %.1f | %.1f | %.1f | %.3f | %s |" % (
            w, min(io_without[w]), min(io_with[w]),
            statistics.median(io_without[w]),
            statistics.median(io_with[w]), med, ci_text(ci)))
    bench_run.report(lines, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
