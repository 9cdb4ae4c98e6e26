#!/usr/bin/env python3
"""Platform events on a running guest (the bench guest's platform=1:
every vCPU counts its NMIs and machine checks, and reports its bank 9,
where QEMU logs the errors it injects), with 2 vCPUs:

 - inject-nmi cpu-index=1 reaches vCPU 1 only; inject-nmi (no index)
   reaches both, on the fork as on the vanilla twin;
 - a corrected machine check is logged in vCPU 1's bank 9 and raises no
   #MC;
 - an SRAO machine check routed to deliver (no route) raises #MC on the
   chosen vCPU with QEMU's status layout; routed to ignore it raises
   none, and the route counts it.

test-platform-guest.py [tcg|kvm]: one accelerator (default tcg); the KVM
run is skipped (exit 77) where KVM is not usable (scripts/kvm-usable).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

TOP = os.environ["QT_TOP"]
BUILD = os.environ["QT_BUILD_DIR"]
sys.path.insert(0, os.path.join(TOP, "scripts"))
from qmp import QMP  # noqa: E402

GUEST = os.environ["QT_BENCH_GUEST"]
LINE = re.compile(r"BENCH-PLATFORM cpu=(\d) nmi=(\d+) mce=(\d+) "
                  r"bank9=0x([0-9a-f]{16}) mc=0x([0-9a-f]{16})")
failures = []


def check(what, ok, detail=""):
    print("%s %s" % ("ok" if ok else "FAIL:", what))
    if not ok:
        print("   %s" % detail)
        failures.append(what)


class Guest:
    """The bench guest in platform mode, with QMP; state read off COM1."""

    def __init__(self, which, accel, tmp):
        self.serial = os.path.join(tmp, which + ".serial")
        sock = os.path.join(tmp, which + ".qmp")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-" + which, "qemu-system-x86_64"),
             "-machine", "pc", "-accel", accel, "-smp", "2", "-m", "64",
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + self.serial, "-kernel", GUEST,
             "-append", "smp=2 only=none platform=1",
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.qmp = QMP(sock)
        self.wait(lambda s: s["ready"], "the guest did not come up")

    def state(self):
        """{cpu: (nmi, mce, bank9, status at the last #MC)} as last
        reported, and 'ready'."""
        with open(self.serial, errors="replace") as f:
            text = f.read()
        st = {"ready": "BENCH-PLATFORM ready cpus=2" in text}
        for m in LINE.finditer(text):
            st[int(m.group(1))] = (int(m.group(2)), int(m.group(3)),
                                   int(m.group(4), 16), int(m.group(5), 16))
        return st

    def wait(self, cond, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.state()
            if cond(st):
                return st
            time.sleep(0.05)
        raise RuntimeError("%s: %s" % (what, self.state()))

    def cpu(self, st, c):
        return st.get(c, (0, 0, 0, 0))

    def settle(self):
        """The state once nothing has changed for half a second."""
        last, t = self.state(), time.monotonic()
        while time.monotonic() - t < 0.5:
            time.sleep(0.1)
            now = self.state()
            if now != last:
                last, t = now, time.monotonic()
        return last

    def stop(self):
        self.proc.kill()
        self.proc.wait()


SRAO = 0xbd000000000000c0   # VAL UC EN MISCV ADDRV S, MCA code 0xc0
CORRECTED = 0x9c0000000000009f


def run(accel):
    with tempfile.TemporaryDirectory() as tmp:
        g = Guest("fork", accel, tmp)
        try:
            g.qmp.cmd("inject-nmi", **{"cpu-index": 1})
            st = g.wait(lambda s: g.cpu(s, 1)[0] == 1, "NMI to vCPU 1")
            st = g.settle()
            check("%s: inject-nmi cpu-index=1 reaches vCPU 1 only" % accel,
                  g.cpu(st, 1)[0] == 1 and g.cpu(st, 0)[0] == 0, st)
            g.qmp.cmd("inject-nmi")
            st = g.wait(lambda s: g.cpu(s, 0)[0] == 1 and
                        g.cpu(s, 1)[0] == 2, "NMI to every vCPU")
            check("%s: inject-nmi reaches every vCPU" % accel, True)

            g.qmp.cmd("inject-mce", **{"cpu-index": 1, "class": "corrected",
                                     "addr": 0x2000})
            st = g.wait(lambda s: g.cpu(s, 1)[2] == CORRECTED,
                        "the corrected error in vCPU 1's bank 9")
            st = g.settle()
            check("%s: a corrected error is logged in the bank, no #MC"
                  % accel, g.cpu(st, 1)[1] == 0 and g.cpu(st, 0)[1] == 0, st)

            g.qmp.cmd("inject-mce", **{"cpu-index": 0, "addr": 0x3000})
            st = g.wait(lambda s: g.cpu(s, 0)[1] == 1, "#MC on vCPU 0")
            st = g.settle()
            check("%s: an SRAO error (no route: delivered) raises #MC on "
                  "vCPU 0 only, with QEMU's status" % accel,
                  g.cpu(st, 0)[1] == 1 and g.cpu(st, 0)[3] == SRAO and
                  g.cpu(st, 1)[1] == 0,
                  st)

            g.qmp.cmd("exit-route-add", **{"id": "srao", "event": "mce",
                                         "class": "srao",
                                         "handler": "ignore"})
            g.qmp.cmd("inject-mce", **{"cpu-index": 0, "addr": 0x3000})
            g.qmp.cmd("inject-mce", **{"cpu-index": 1, "addr": 0x4000})
            st = g.settle()
            stats = {s["id"]: s for s in g.qmp.cmd("query-exit-stats")}
            check("%s: SRAO errors routed to ignore raise no #MC, counted"
                  % accel, g.cpu(st, 0)[1] == 1 and g.cpu(st, 1)[1] == 0 and
                  stats["srao"]["suppressed"] == 2,
                  "%s %s" % (st, stats["srao"]))
        finally:
            g.stop()

        # The vanilla twin: the same NMIs to every vCPU (it has no index).
        v = Guest("vanilla", accel, tmp)
        try:
            v.qmp.cmd("inject-nmi")
            st = v.wait(lambda s: v.cpu(s, 0)[0] == 1 and
                        v.cpu(s, 1)[0] == 1, "vanilla NMI to every vCPU")
            check("%s: vanilla's inject-nmi reaches every vCPU too" % accel,
                  True)
        finally:
            v.stop()


def main():
    accel = sys.argv[1] if len(sys.argv) > 1 else "tcg"
    if accel == "kvm":
        usable = subprocess.run([os.path.join(TOP, "scripts", "kvm-usable")],
                                stdout=subprocess.PIPE, text=True)
        if usable.returncode:
            print("SKIP: " + usable.stdout.strip())
            return 77
    try:
        run(accel)
    except RuntimeError as e:
        check("%s: the guest answered" % accel, False, e)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
