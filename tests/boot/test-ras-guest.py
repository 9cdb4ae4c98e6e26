#!/usr/bin/env python3
"""Guest pages retired under a running guest (TCG, 2 vCPUs), through
the fork's ras-policy.

The bench guest in memcheck mode checks and rewrites a pattern in every
word of its pages, over and over, on both vCPUs.  Meanwhile the test
retires its pages: over QMP (ras-retire-page), and by storms of
corrected machine checks (inject-mce, a route mce -> platform) that
reach the policy's threshold.  Once every retired page has been checked
again by the guest, the guest's own verdict must be: no word lost, no
#MC.  The same run with x-skip-copy=on (a retirement that loses the
contents, broken on purpose) must be caught by the guest.

  test-ras-guest.py [RETIREMENTS]    (default 10000; QT_RAS_RETIREMENTS)
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from platformguest import BUILD, GUEST, QMP, check, failures  # noqa: E402

CPU = "qemu64,vendor=GenuineIntel,family=6,model=85"
BASE = 0x1000000            # MEMCHECK_BASE in bench/guest/bench.c
CORRECTED = 0x9c0000000000009f
CE_THRESHOLD = 4
LINE = re.compile(r"BENCH-MEMCHECK pass=(\d+) passes=(\d+) bad=(\d+) "
                  r"mce=(\d+)")


class MemcheckGuest:
    def __init__(self, tmp, pages, pool, extra=""):
        self.serial = os.path.join(tmp, "serial")
        sock = os.path.join(tmp, "qmp")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64"),
             "-machine", "pc", "-accel", "tcg", "-smp", "2",
             "-m", str(16 + pages * 4 // 1024 + 16), "-cpu", CPU,
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + self.serial, "-kernel", GUEST,
             "-append", "smp=2 memcheck=%d" % pages,
             "-object", "ras-policy,id=ras,pool-pages=%d,ce-threshold=%d%s"
             % (pool, CE_THRESHOLD, extra),
             "-object", "exit-route,id=ras-mce,event=mce,handler=platform",
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        self.qmp = QMP(sock)

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
        return self.proc.stderr.read().decode(errors="replace")


def run(retirements, skip_copy):
    """Retires @retirements pages under the guest; its last report and
    the retired pages' pause times."""
    pages = retirements
    with tempfile.TemporaryDirectory() as tmp:
        g = MemcheckGuest(tmp, pages, pages,
                          ",x-skip-copy=on" if skip_copy else "")
        try:
            g.wait_passes(1, 120)
            by_ce = 0
            t0 = time.monotonic()
            for i in range(retirements):
                addr = BASE + i * 4096
                if i % 4 == 3:
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
    return st, retired, by_ce, took, pool, err


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else \
        int(os.environ.get("QT_RAS_RETIREMENTS", "10000"))

    st, retired, by_ce, took, pool, err = run(n, False)
    pauses = sorted(r["pause-ns"] for r in retired)
    print("%d retirements in %.1f s (%d by corrected-error storms); vCPUs "
          "stopped median %.0f us, max %.0f us; guest: %d passes, %d words "
          "bad, %d #MC" % (len(retired), took, by_ce,
                           statistics.median(pauses) / 1000,
                           pauses[-1] / 1000, st[1], st[2], st[3]))
    check("%d pages retired under the running guest" % n,
          len(retired) == n and pool["used"] == n,
          "retired %d, pool %s" % (len(retired), pool))
    check("%d by their corrected errors" % by_ce,
          sum(r["reason"] == "corrected-errors" for r in retired) == by_ce)
    check("the guest lost no byte: every word of every page as written",
          st[2] == 0, "bad words: %d" % st[2])
    check("no #MC reached the guest", st[3] == 0, "#MC: %d" % st[3])

    small = min(n, 64)
    st, retired, _, _, _, err = run(small, True)
    check("a retirement that skips the copy is caught by the guest "
          "(x-skip-copy=on: %d words bad)" % st[2], st[2] > 0, err)

    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
