#!/usr/bin/env python3
"""Guest pages retired under a running guest (TCG, 2 vCPUs), through
the fork's ras-policy.

The bench guest in memcheck mode checks and rewrites a pattern in every
word of its pages, over and over, on both vCPUs.  Meanwhile the test
retires its pages: over QMP (ras-retire-page), by storms of corrected
machine checks (inject-mce, a route mce -> platform) that reach the
policy's threshold, and by synthetic host memory errors (SIGBUS
BUS_MCEERR_AO queued to a vCPU thread by tests/boot/sigbus-inject.c, a
route memory-error -> platform: a predicted failure).  Once every
retired page has been checked again by the guest, the guest's own
verdict must be: no word lost, no #MC.  The same run with
x-skip-copy=on (a retirement that loses the contents, broken on
purpose) must be caught by the guest.

smccheck: the guest rewrites and calls a function in each of 64 pages
while they are retired; a call that runs the old instruction (TCG
kept code it translated before the move and missed the write) fails.

Then migration: 1000 pages retired, 3 probe pages poisoned (uncorrected
errors, forwarded), the guest migrated to a second fork.  There its
pattern is intact (no word lost over the next passes) and its reads of
the poisoned pages still raise #MC, as on the source.

  test-ras-guest.py [tcg|kvm] [RETIREMENTS]  (10000; QT_RAS_RETIREMENTS)

Under KVM (ras-guest-kvm) the same runs prove that KVM follows the new
host page through its MMU notifier; skipped (exit 77) where KVM is not
usable.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from platformguest import (BUILD, GUEST, QMP, check, failures,  # noqa: E402
                           kvm_skip, send_sigbus, sigbus_env, thread_of)

CPU = "qemu64,vendor=GenuineIntel,family=6,model=85"
ACCEL = "tcg"               # main() sets it from the command line
BASE = 0x1000000            # MEMCHECK_BASE in bench/guest/bench.c
CORRECTED = 0x9c0000000000009f
CE_THRESHOLD = 4
SRAO = 0xbd000000000000c0
BUS_MCEERR_AO = 5
LINE = re.compile(r"BENCH-MEMCHECK pass=(\d+) passes=(\d+) bad=(\d+) "
                  r"mce=(\d+)")


class MemcheckGuest:
    def __init__(self, tmp, pages, pool, extra="", probes=0, name="src",
                 incoming=None, append=None):
        self.serial = os.path.join(tmp, name + ".serial")
        self.req = os.path.join(tmp, name + ".req")
        sock = os.path.join(tmp, name + ".qmp")
        # A file, not a pipe: every host memory error prints a line, and
        # a full pipe would stop QEMU's main loop.
        self.err = os.path.join(tmp, name + ".err")
        self.err_file = open(self.err, "w")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64"),
             "-machine", "pc", "-accel", ACCEL, "-smp", "2",
             "-m", str(16 + (pages + probes) * 4 // 1024 + 16), "-cpu", CPU,
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + self.serial, "-kernel", GUEST,
             "-append", append or
             "smp=2 memcheck=%d memprobe=%d" % (pages, probes),
             "-object", "ras-policy,id=ras,pool-pages=%d,ce-threshold=%d%s"
             % (pool, CE_THRESHOLD, extra),
             "-object", "exit-route,id=ras-mce,event=mce,handler=platform",
             "-object", "exit-route,id=ras-memerr,event=memory-error,"
                        "handler=platform",
             "-qmp", "unix:%s,server=on,wait=off" % sock] +
            (["-incoming", incoming] if incoming else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.err_file, env=sigbus_env(self.req))
        self.qmp = QMP(sock)

    def hva(self, gpa):
        """The host address of guest RAM at @gpa (HMP gpa2hva)."""
        out = self.qmp.cmd("human-monitor-command",
                           **{"command-line": "gpa2hva %#x" % gpa})
        m = re.search(r" is (0x[0-9a-f]+)", out)
        if not m:
            raise RuntimeError("gpa2hva %#x: %s" % (gpa, out))
        return int(m.group(1), 16)

    def last(self):
        """(pass, passes, bad, mce) of the guest's last report, or None."""
        with open(self.serial, errors="replace") as f:
            found = LINE.findall(f.read())
        return tuple(int(x) for x in found[-1]) if found else None

    def wait_passes(self, passes, timeout):
        """Until every vCPU has made @passes passes; the last report."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.last()
            if st and st[1] >= passes:
                return st
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("the guest did not reach %d passes: %s"
                           % (passes, self.last()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err_file.close()
        with open(self.err, errors="replace") as f:
            return f.read()


def run(retirements, skip_copy):
    """Retires @retirements pages under the guest; its last report and
    the retired pages' pause times."""
    pages = retirements
    with tempfile.TemporaryDirectory() as tmp:
        g = MemcheckGuest(tmp, pages, pages,
                          ",x-skip-copy=on" if skip_copy else "")
        try:
            g.wait_passes(1, 120)
            by_ce = by_sigbus = 0
            hva = g.hva(BASE)
            vcpu_tids = [thread_of(g.qmp, 0), thread_of(g.qmp, 1)]
            t0 = time.monotonic()
            for i in range(retirements):
                addr = BASE + i * 4096
                if i % 4 == 1:
                    # A host memory error, action optional, in a vCPU
                    # thread: the policy retires the page at once.
                    ans = send_sigbus(g.proc.pid, g.req, vcpu_tids[i % 2],
                                      BUS_MCEERR_AO,
                                      hva + i * 4096 + (i % 4096))
                    if ans != "ok":
                        raise RuntimeError("SIGBUS %d: %s" % (i, ans))
                    by_sigbus += 1
                elif i % 4 == 3:
                    # A storm of corrected errors on the page: retired at
                    # the threshold, in the policy's bottom half.
                    for _ in range(CE_THRESHOLD):
                        g.qmp.cmd("inject-mce", **{
                            "cpu-index": i % 2, "bank": 9,
                            "status": CORRECTED, "mcg-status": 0,
                            "addr": addr + 8 * (i % 512)})
                    by_ce += 1
                else:
                    g.qmp.cmd("ras-retire-page", addr=addr + (i % 4096))
            retired = g.qmp.cmd("query-retired-pages")
            while len(retired) < retirements and \
                    time.monotonic() - t0 < 600:
                time.sleep(0.1)
                retired = g.qmp.cmd("query-retired-pages")
            took = time.monotonic() - t0
            # Every page checked again after its retirement: two more
            # passes of every vCPU.
            now = g.last()
            st = g.wait_passes(now[1] + 2, 300)
            pool = g.qmp.cmd("query-ras-pool")
        finally:
            err = g.stop()
    return st, retired, (by_ce, by_sigbus), took, pool, err


def migrate_run(retirements):
    """@retirements pages retired and 3 probe pages poisoned under the
    guest, which is then migrated to a second fork.  The source's last
    report before migrating and the destination's reports."""
    pages, probes = retirements + 64, 3
    with tempfile.TemporaryDirectory() as tmp:
        uri = "unix:" + os.path.join(tmp, "mig")
        src = MemcheckGuest(tmp, pages, retirements, probes=probes)
        dst = None
        try:
            src.wait_passes(1, 120)
            for i in range(0, retirements, 8):
                if i % 16:
                    src.qmp.cmd("ras-retire-pages", addr=BASE + i * 4096,
                                pages=8)
                else:
                    for j in range(8):
                        src.qmp.cmd("ras-retire-page",
                                    addr=BASE + (i + j) * 4096)
            for k in range(probes):
                src.qmp.cmd("inject-mce", **{
                    "cpu-index": 0, "bank": 9, "status": SRAO,
                    "mcg-status": 0x5,      # MCIP RIPV
                    "addr": BASE + (pages + k) * 4096 + 0x40})
                time.sleep(0.2)             # one #MC at a time
            before = src.last()
            src_st = src.wait_passes(before[1] + 4 * probes, 300)
            src_poisoned = src.qmp.cmd("query-poisoned-pages")
            dst = MemcheckGuest(tmp, pages, retirements, probes=probes,
                                name="dst", incoming="defer")
            dst.qmp.cmd("migrate-incoming", uri=uri)
            src.qmp.cmd("migrate", uri=uri)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                st = src.qmp.cmd("query-migrate").get("status")
                if st in ("completed", "failed"):
                    break
                time.sleep(0.1)
            if st != "completed":
                raise RuntimeError("migration %s" % st)
            # The destination's serial starts empty: its reports are
            # the migrated guest's, counts carried over.
            first = dst.wait_passes(0, 120)
            dst_st = dst.wait_passes(first[1] + 4 * probes + 2, 300)
            dst_poisoned = dst.qmp.cmd("query-poisoned-pages")
        finally:
            src_err = src.stop()
            dst_err = dst.stop() if dst else ""
    return (before, src_st, src_poisoned, first, dst_st, dst_poisoned,
            src_err + dst_err)


SMC_LINE = re.compile(r"BENCH-SMCCHECK pass=(\d+) stale=(\d+)")


def smc_run(pages):
    """Retires @pages pages whose code the guest keeps rewriting and
    calling; (pass, stale) before and after, and the retirements."""
    with tempfile.TemporaryDirectory() as tmp:
        g = MemcheckGuest(tmp, pages, pages, append="smccheck=%d" % pages)

        def last():
            with open(g.serial, errors="replace") as f:
                found = SMC_LINE.findall(f.read())
            return tuple(int(x) for x in found[-1]) if found else None

        def wait(passes):
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                st = last()
                if st and st[0] >= passes:
                    return st
                time.sleep(0.05)
            raise RuntimeError("smccheck: no pass %d: %s" % (passes, last()))

        try:
            before = wait(64)
            for i in range(pages):
                g.qmp.cmd("ras-retire-page", addr=BASE + i * 4096)
                time.sleep(0.01)
            retired = g.qmp.cmd("query-retired-pages")
            after = wait(last()[0] + 128)
        finally:
            g.stop()
    return before, after, retired


def main():
    global ACCEL
    args = sys.argv[1:]
    if args and args[0] in ("tcg", "kvm"):
        ACCEL = args.pop(0)
    skip = kvm_skip(ACCEL)
    if skip:
        print("SKIP: " + skip)
        return 77
    n = int(args[0]) if args else \
        int(os.environ.get("QT_RAS_RETIREMENTS", "10000"))
    print("accelerator: %s" % ACCEL)

    st, retired, (by_ce, by_sigbus), took, pool, err = run(n, False)
    pauses = sorted(r["pause-ns"] for r in retired)
    print("%d retirements in %.1f s (%d by corrected-error storms, %d by "
          "host memory errors); vCPUs stopped median %.0f us, max %.0f us; "
          "guest: %d passes, %d words bad, %d #MC"
          % (len(retired), took, by_ce, by_sigbus,
             statistics.median(pauses) / 1000, pauses[-1] / 1000,
             st[1], st[2], st[3]))
    check("%d pages retired under the running guest" % n,
          len(retired) == n and pool["used"] == n,
          "retired %d, pool %s" % (len(retired), pool))
    check("%d by their corrected errors" % by_ce,
          sum(r["reason"] == "corrected-errors" for r in retired) == by_ce)
    check("%d by host memory errors (SIGBUS BUS_MCEERR_AO to a vCPU "
          "thread), none lost" % by_sigbus,
          sum(r["reason"] == "predicted" and not r["lost"]
              for r in retired) == by_sigbus)
    check("the guest lost no byte: every word of every page as written",
          st[2] == 0, "bad words: %d" % st[2])
    check("no #MC reached the guest", st[3] == 0, "#MC: %d" % st[3])

    before, after, retired = smc_run(64)
    print("smccheck: %d code pages retired; guest (pass, stale) %s -> %s"
          % (len(retired), before, after))
    check("code rewritten in a retired page runs new: TCG still sees the "
          "writes to pages it translated (%d stale calls)" % after[1],
          len(retired) == 64 and before[1] == 0 and after[1] == 0,
          (before, after))

    small = min(n, 64)
    st, retired, _, _, _, err = run(small, True)
    check("a retirement that skips the copy is caught by the guest "
          "(x-skip-copy=on: %d words bad)" % st[2], st[2] > 0, err)

    m = min(n, 1000)
    before, src_st, src_p, first, dst_st, dst_p, err = migrate_run(m)
    print("migration after %d retirements: source %s -> %s, destination "
          "%s -> %s (pass, passes, bad, #MC)" % (m, before, src_st, first,
                                                dst_st))
    check("on the source, reads of the 3 poisoned pages raise #MC "
          "(3 injected + at least one per poisoned page read)",
          src_st[3] >= before[3] + 3 and before[3] >= 3, (before, src_st))
    check("the destination has the source's poisoned pages", dst_p == src_p
          and len(dst_p) == 3, (src_p, dst_p))
    check("after migration the guest lost no byte", dst_st[2] == 0,
          (dst_st, err[-2000:]))
    check("after migration, reads of the poisoned pages still raise #MC",
          dst_st[3] >= first[3] + 3, (first, dst_st))

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
