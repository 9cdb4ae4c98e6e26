#!/usr/bin/env python3
"""RAS page retirement: what one retirement costs and how long the guest
is stopped for it, single pages and batches of 512, against the bare
floor of the same copy and remap without QEMU (bench/remapcost).

The fork runs the bench guest in memcheck mode (TCG, 2 vCPUs, both
writing their pages all the time: the vCPUs have to be stopped for
real).  Each repetition retires SINGLES pages one by one over QMP
(ras-retire-page) and BATCHES batches of 512 (ras-retire-pages), then
runs remapcost.  Per repetition, the medians of:

  pause     the vCPUs kept out of guest code (pause-ns: from the
            request for the exclusive section until it ends; an upper
            bound of the guest's pause)
  remap     of that, the copy and the mmap (remap-ns)
  latency   the QMP command's round trip, seen by this script (beside
            a query-status round trip: what the main loop's wait for a
            CPU adds to any command)

Reported: the median over repetitions with the min-max spread, and the
pause over the bare floor as a ratio paired per repetition.  There is no
vanilla column: QEMU has no retirement (a poisoned page stays until
reset).  KVM: where /dev/kvm is usable (not on this machine; skipped).

  bench/ras.py [--reps 5] [--singles 200] [--batches 4] [--markdown OUT]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import run as bench_run  # noqa: E402
from benchstats import paired  # noqa: E402
from qmp import QMP  # noqa: E402

GUEST = os.path.join(bench_run.BUILD, "tiers", "bench", "bench-guest.elf")
REMAPCOST = os.path.join(bench_run.BUILD, "tiers", "bench", "remapcost")
BASE = 0x1000000            # MEMCHECK_BASE in bench/guest/bench.c
BATCH = 512
CPU = "qemu64,vendor=GenuineIntel,family=6,model=85"


def one_rep(accel, singles, batches):
    pages = singles + batches * BATCH
    with tempfile.TemporaryDirectory() as tmp:
        serial, sock = os.path.join(tmp, "serial"), os.path.join(tmp, "qmp")
        proc = subprocess.Popen(
            [bench_run.qemu_binary("fork"), "-machine", "pc", "-accel", accel,
             "-smp", "2", "-m", str(32 + pages * 4 // 1024), "-cpu", CPU,
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + serial, "-kernel", GUEST,
             "-append", "smp=2 memcheck=%d" % pages,
             "-object", "ras-policy,id=ras,pool-pages=%d" % pages,
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            q = QMP(sock)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with open(serial, errors="replace") as f:
                    if "BENCH-MEMCHECK pass=" in f.read():
                        break
                time.sleep(0.1)
            else:
                raise RuntimeError("the guest did not start checking")
            idle = []
            for _ in range(50):
                t0 = time.monotonic_ns()
                q.cmd("query-status")
                idle.append(time.monotonic_ns() - t0)
            single = {"pause": [], "remap": [], "latency": []}
            for i in range(singles):
                t0 = time.monotonic_ns()
                r = q.cmd("ras-retire-page", addr=BASE + i * 4096)
                single["latency"].append(time.monotonic_ns() - t0)
                single["pause"].append(r["pause-ns"])
                single["remap"].append(r["remap-ns"])
            batch = {"pause": [], "remap": [], "latency": []}
            for b in range(batches):
                t0 = time.monotonic_ns()
                r = q.cmd("ras-retire-pages",
                          addr=BASE + (singles + b * BATCH) * 4096,
                          pages=BATCH)
                batch["latency"].append(time.monotonic_ns() - t0)
                batch["pause"].append(r[0]["pause-ns"])
                batch["remap"].append(r[0]["remap-ns"])
            with open(serial, errors="replace") as f:
                bad = re.findall(r"bad=(\d+)", f.read())
        finally:
            proc.kill()
            proc.wait()
    floor = subprocess.run([REMAPCOST, "100"], stdout=subprocess.PIPE,
                           text=True, check=True).stdout
    m = re.search(r"page ([\d.]+) us batch512 ([\d.]+) us", floor)
    us = {k: {f: statistics.median(v) / 1000 for f, v in d.items()}
          for k, d in (("single", single), ("batch", batch))}
    us["floor"] = {"single": float(m.group(1)), "batch": float(m.group(2))}
    us["bad"] = int(bad[-1]) if bad else -1
    us["qmp"] = statistics.median(idle) / 1000
    return us


def spread(values, fmt="%.0f"):
    return ("%s [%s, %s]" % (fmt % statistics.median(values),
                             fmt % min(values), fmt % max(values)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--singles", type=int, default=200)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--markdown")
    args = ap.parse_args()

    out = ["## RAS page retirement (bench/ras.py)", "",
           "Machine: %s.  %d repetitions; each: %d single retirements and "
           "%d batches of %d under the bench guest's memcheck (TCG, 2 "
           "vCPUs writing). Median over repetitions [min, max] of each "
           "repetition's median, in µs." % (
               bench_run.describe_machine(), args.reps, args.singles,
               args.batches, BATCH), ""]
    for accel in ("tcg", "kvm"):
        if accel == "kvm" and not os.access("/dev/kvm", os.W_OK):
            out += ["KVM: skipped (/dev/kvm absent on this machine).", ""]
            continue
        reps = [one_rep(accel, args.singles, args.batches)
                for _ in range(args.reps)]
        floor1 = [r["floor"]["single"] for r in reps]
        floorb = [r["floor"]["batch"] for r in reps]
        out += ["### %s" % accel.upper(), "",
                "| | pause | copy + remap | QMP round trip | bare copy + "
                "remap (remapcost) | pause / bare |",
                "|---|---|---|---|---|---|"]
        for kind, floor in (("single", floor1), ("batch", floorb)):
            pause = [r[kind]["pause"] for r in reps]
            ratio, ci, _ = paired(pause, floor)
            out.append("| %s | %s | %s | %s | %s | %.2f%s |" % (
                "1 page" if kind == "single" else "%d pages" % BATCH,
                spread(pause), spread([r[kind]["remap"] for r in reps]),
                spread([r[kind]["latency"] for r in reps]), spread(floor),
                ratio, " (95%% CI %.2f-%.2f)" % ci if ci else ""))
        per_page = [r["batch"]["pause"] / BATCH for r in reps]
        out += ["", "Per page in a batch of %d: %s µs of pause.  A QMP "
                "query-status round trip under the same guest: %s µs (the "
                "main loop waits for a CPU: 2 busy vCPU threads on 2 "
                "cores).  Guest words lost: %s." % (
                    BATCH, spread(per_page, "%.1f"),
                    spread([r["qmp"] for r in reps]),
                    sorted(set(r["bad"] for r in reps))), ""]
    bench_run.report(out, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
