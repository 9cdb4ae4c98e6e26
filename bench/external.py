#!/usr/bin/env python3
"""The cost of an externally handled exit (handler=external).

One run, on the fork: the bench guest's `unassigned` workload (a 1-byte
IN from port 0x1234) handled

  in-process   by QEMU (no route: the unassigned-port path), the exit cost
  blocking     by exit-handler-post over the ring, both sides sleeping on
               their eventfd doorbells
  polling      the same with poll-us=50 and --poll: both sides spin first

next to the floor of two processes signalling each other: bench/pingpong
(eventfd ping-pong, blocking; shared-memory counter, spinning).  Reported
as ns per access (medians over runs, min over rounds) and as ratios:
polling / in-process (goal <= 1.1 under KVM) and the blocking mode's extra
cost over in-process / the blocking ping-pong (goal <= 1.1).

Placement: with two or more CPUs, QEMU runs on CPU 0 and the handler on
CPU 1, and so do the ping-pong's two processes (--pin): left to the
scheduler, the two sides sometimes share a CPU, where a wake-up costs a
tenth of a cross-CPU one, and the floor and the handler would not be
measured under the same placement.  The host's wake-up cost drifts by
+-20% from minute to minute (nested virtualization), so the blocking
ratio is taken per repetition, against the mean of ping-pongs run just
before and just after that repetition's handler runs, and its median is
reported; once against the plain ping-pong and once against one whose
parent is busy for one in-process exit between round trips (--work-ns).

Under KVM, each repetition also runs bench/kvmwake: the same eventfd
ping-pong from a bare KVM vCPU thread (no QEMU), right after a KVM_RUN
exit, after a busy gap as long as the exit, and back to back.  What a
wake-up costs right after leaving the guest is the platform's, not the
router's; the blocking mode's extra cost is reported against it too.

  bench/external.py --guest build/tiers/bench/bench-guest.elf [--reps 5]
      [--accels kvm,tcg] [--no-pin] [--markdown OUT.md]
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import run as bench_run  # noqa: E402
from benchstats import median_ci  # noqa: E402

TIERS = os.path.join(bench_run.BUILD, "tiers")
HANDLER = os.path.join(TIERS, "accel", "route", "libexithandler",
                       "exit-handler-post")
PINGPONG = os.path.join(TIERS, "bench", "pingpong")
KVMWAKE = os.path.join(TIERS, "bench", "kvmwake")
PORT = 0x1234
OPS = {"kvm": 2000, "tcg": 2000}
MODES = ["in-process", "blocking", "polling"]


def handler_args(tmp, mode):
    # The guest's exit (isa-debug-exit) is ignored: QEMU stays up for
    # query-exit-stats after the last result.
    keep = ["-object", "exit-route,id=keep,event=pio,start=0xf4,size=4,"
            "direction=write,handler=ignore"]
    if mode == "in-process":
        return keep
    poll = ",poll-us=50" if mode == "polling" else ""
    return keep + [
            "-chardev", "socket,id=ehc,path=%s/h.sock,reconnect-ms=20" % tmp,
            "-object", "exit-handler,id=eh,chardev=ehc%s" % poll,
            "-object", "exit-route,id=ext,event=pio,start=0x%x,"
            "handler=external,handlers=eh" % PORT]


def wait_up(qmp_path):
    """Starts the guest once the handler is up (else: the fallback)."""
    return bench_run.wait_handler_up(qmp_path, "ext")


def on_cpu(cpu):
    """preexec_fn: runs the child on @cpu only."""
    return lambda: os.sched_setaffinity(0, {cpu})


def run_mode(guest, accel, mode, tmp, pin):
    proc = None
    if mode != "in-process":
        proc = subprocess.Popen([HANDLER, "--socket", tmp + "/h.sock",
                                 "--quiet"] +
                                (["--poll"] if mode == "polling" else []),
                                preexec_fn=on_cpu(1) if pin else None)
    checked = {}

    def before_start(qmp_path):
        checked["qmp"] = wait_up(qmp_path)

    def after_done():
        if mode == "in-process":
            return
        for r in checked["qmp"].cmd("query-exit-stats"):
            if r["id"] == "ext":
                checked["fallbacks"] = r["fallbacks"]
                checked["requests"] = r["handlers"][0]["requests"]
    try:
        res = bench_run.run_guest(
            "fork", guest, accel, 1, "pc", OPS[accel], ["unassigned"], 600,
            handler_args(tmp, mode),
            before_start=before_start if proc else None,
            after_done=after_done)
    finally:
        if proc:
            proc.kill()
            proc.wait()
    if proc and (checked.get("fallbacks") != 0 or
                 checked.get("requests", 0) < OPS[accel]):
        raise RuntimeError("%s %s: the handler did not serve every access "
                           "(%s)" % (accel, mode, checked))
    return res["unassigned"]


def pingpong(kind, pin, work_ns=0):
    """One bench/pingpong run: kind is blocking, poll or spin."""
    out = subprocess.run([PINGPONG] +
                         {"blocking": [], "poll": ["--poll"],
                          "spin": ["--spin"]}[kind] +
                         (["--pin"] if pin else []) +
                         (["--work-ns=%d" % work_ns] if work_ns else []) +
                         ["200000" if kind == "spin" else "4000"],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[2])


def kvmwake():
    """One bench/kvmwake run: {mode: (iteration ns, write ns)}."""
    out = subprocess.run([KVMWAKE, "-n", "4000", "-b", "4"],
                         capture_output=True, text=True, check=True).stdout
    return {f[0]: (float(f[1]), float(f[2])) for f in
            (line.split() for line in out.splitlines())
            if len(f) == 3 and f[0] in ("run", "exit+pp", "gap+pp", "pp")}


def ci_text(xs):
    ci = median_ci(xs) if xs else None
    if not ci:
        return "too few repetitions for a 95 % interval"
    return "95 %% interval for the median [%.2f, %.2f], %d repetitions" % (
        ci[0], ci[1], len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--guest", required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-pin", action="store_true",
                    help="leave QEMU, the handler and the ping-pong to the "
                    "scheduler")
    ap.add_argument("--accels", default="kvm,tcg")
    ap.add_argument("--modes", default=",".join(MODES),
                    help="a subset of " + ",".join(MODES))
    ap.add_argument("--markdown")
    args = ap.parse_args()
    ghz = bench_run.host_tsc_ghz()
    pin = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    if pin:
        # QEMU (started by bench_run) inherits CPU 0.
        os.sched_setaffinity(0, {0})
    modes = args.modes.split(",")
    if "in-process" not in modes or not set(modes) <= set(MODES):
        sys.exit("external: --modes must include in-process (known: %s)"
                 % ", ".join(MODES))
    rows = []
    kvm_wake = None
    for accel in args.accels.split(","):
        if accel == "kvm" and not os.access("/dev/kvm", os.W_OK):
            print("external: skipping kvm: /dev/kvm is not usable")
            continue
        samples = {m: [] for m in modes}
        paired, paired_gap, paired_kvm = [], [], []
        wake = []
        floors = {"blocking": [], "gap": [], "poll": [], "spin": []}
        for rep in range(args.reps):
            with tempfile.TemporaryDirectory() as tmp:
                samples["in-process"].append(run_mode(
                    args.guest, accel, "in-process", tmp, pin))
            exit_ns = round(samples["in-process"][-1][0] / ghz)
            # This repetition's floors: ping-pongs just before and just
            # after the handler's runs, plain and with the parent busy
            # for one in-process exit between round trips.
            before = (pingpong("blocking", pin),
                      pingpong("blocking", pin, exit_ns))
            for mode in modes[1:]:
                with tempfile.TemporaryDirectory() as tmp:
                    samples[mode].append(run_mode(args.guest, accel, mode,
                                                  tmp, pin))
            after = (pingpong("blocking", pin),
                     pingpong("blocking", pin, exit_ns))
            floor = (before[0] + after[0]) / 2
            floor_gap = (before[1] + after[1]) / 2
            floors["blocking"].append(floor)
            floors["gap"].append(floor_gap)
            floors["poll"].append(pingpong("poll", pin))
            floors["spin"].append(pingpong("spin", pin))
            # The same ping-pong from a bare KVM vCPU thread, without
            # QEMU: its round trip right after a KVM_RUN exit.
            if accel == "kvm" and pin and os.path.exists(KVMWAKE):
                w = kvmwake()
                wake.append((w["exit+pp"][0] - w["run"][0],
                             w["gap+pp"][0] - w["run"][0], w["pp"][0]))
            if "blocking" in modes:
                extra = (samples["blocking"][-1][0] -
                         samples["in-process"][-1][0]) / ghz
                paired.append(extra / floor)
                paired_gap.append(extra / floor_gap)
                if accel == "kvm" and wake:
                    paired_kvm.append(extra / wake[-1][0])
            print("external: %s rep %d/%d done" % (accel, rep + 1, args.reps),
                  file=sys.stderr)
        med = {m: statistics.median(x[0] for x in samples[m]) / ghz
               for m in modes}
        mn = {m: min(x[1] for x in samples[m]) / ghz for m in modes}
        for m in MODES:
            med.setdefault(m, float("nan"))
            mn.setdefault(m, float("nan"))
        rows.append((accel, med, mn, paired, paired_gap,
                     {k: statistics.median(v) for k, v in floors.items()}))
        if wake:
            kvm_wake = (wake, paired_kvm)

    def med_or_nan(xs):
        return statistics.median(xs) if xs else float("nan")

    lines = ["| accel | in-process ns | blocking ns | polling ns | "
             "polling / in-process | (blocking - in-process) / ping-pong "
             "| same, ping-pong with the exit's gap |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for accel, med, mn, paired, paired_gap, _ in rows:
        lines.append("| %s (median) | %.0f | %.0f | %.0f | **%.2f** | "
                     "**%.2f** | **%.2f** |"
                     % (accel, med["in-process"], med["blocking"],
                        med["polling"], med["polling"] / med["in-process"],
                        med_or_nan(paired), med_or_nan(paired_gap)))
        lines.append("| %s (min) | %.0f | %.0f | %.0f | %.2f | | |"
                     % (accel, mn["in-process"], mn["blocking"],
                        mn["polling"], mn["polling"] / mn["in-process"]))
    lines += ["", "Blocking ratios per repetition (plain / with the "
              "exit's gap), each against the mean of the ping-pongs just "
              "before and after it: " +
              "; ".join("%s %s" % (accel, ", ".join(
                  "%.2f/%.2f" % r for r in zip(p, pg)))
                        for accel, _, _, p, pg, _ in rows if p),
              "", "Blocking ratio, median and its distribution-free "
              "interval (order statistics): " +
              "; ".join("%s plain %.2f (%s), with the exit's gap %.2f (%s)"
                        % (accel, med_or_nan(p), ci_text(p),
                           med_or_nan(pg), ci_text(pg))
                        for accel, _, _, p, pg, _ in rows if p) + ".",
              "", ("Floors (bench/pingpong%s, medians of %d runs per "
                   "accelerator): " % (" --pin" if pin else "", args.reps)) +
              "eventfd ping-pong between two processes; "
              "the same with the parent busy for one in-process exit "
              "between round trips (--work-ns, subtracted); sleeping in "
              "poll() on the doorbell and a socket, as QEMU and the "
              "handler do (--poll); shared-memory spin. " +
              "; ".join("%s: %.0f, %.0f, %.0f, %.0f ns" %
                        (accel, f["blocking"], f["gap"], f["poll"],
                         f["spin"]) for accel, _, _, _, _, f in rows) + ".",
              ] + ([] if not kvm_wake else [
              "", "The ping-pong from a bare KVM vCPU thread "
              "(bench/kvmwake, no QEMU; one run per repetition; round trip "
              "in ns after a KVM_RUN exit / after a busy gap as long as the "
              "exit / back to back): " +
              "; ".join("%.0f / %.0f / %.0f" % w for w in kvm_wake[0]) +
              ". After an exit the round trip is %.2fx the plain one "
              "(medians). Blocking mode's extra cost over in-process, "
              "against the round trip after an exit, per repetition: %s "
              "(median **%.2f**; %s)." % (
                  statistics.median(w[0] / w[2] for w in kvm_wake[0]),
                  ", ".join("%.2f" % r for r in kvm_wake[1]),
                  med_or_nan(kvm_wake[1]), ci_text(kvm_wake[1])), ""]) + [
              "Placement: " + ("QEMU on CPU 0, the handler on CPU 1"
                               if pin else "left to the scheduler"),
              "Machine: " + bench_run.describe_machine(),
              "Fork: " + bench_run.version_of("fork"),
              "Date: %s; %d guest runs per mode, each %d rounds of %s "
              "accesses; ns = TSC cycles / %.3f GHz."
              % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                 args.reps, bench_run.ROUNDS,
                 "/".join("%s %d" % kv for kv in OPS.items()), ghz), ""]
    bench_run.report(lines, args.markdown)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
