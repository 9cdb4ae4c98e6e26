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
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from platformguest import (CORRECTED, SRAO, Guest, check,  # noqa: E402
                           failures, kvm_skip)


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
    skip = kvm_skip(accel)
    if skip:
        print("SKIP: " + skip)
        return 77
    try:
        run(accel)
    except RuntimeError as e:
        check("%s: the guest answered" % accel, False, e)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
