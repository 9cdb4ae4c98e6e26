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
   none, and the route counts it;
 - an external platform handler (exit-handler-post --events) decides per
   event: an SRAO error for vCPU 0 is delivered to vCPU 1 (retargeted),
   a corrected one is handled (not logged in the guest's bank), an NMI
   suppressed; once the handler is SIGKILLed, the route's fallback
   delivers the next SRAO error to vCPU 0 within the route's timeout, and
   EXIT_HANDLER_DOWN is emitted.

test-platform-guest.py [tcg|kvm]: one accelerator (default tcg); the KVM
run is skipped (exit 77) where KVM is not usable (scripts/kvm-usable).
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

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


HANDLER = os.environ["QT_EXIT_HANDLER"]
TIMEOUT_MS = 500


def handler_up(g):
    for r in g.qmp.cmd("query-exit-stats"):
        if r["id"] == "ext-mce":
            return r["handlers"][0]["up"]
    return False


def run_external(accel):
    with tempfile.TemporaryDirectory() as tmp:
        sock, log = os.path.join(tmp, "h.sock"), os.path.join(tmp, "h.log")
        handler = subprocess.Popen(
            [HANDLER, "--socket", sock, "--quiet", "--log", log, "--events",
             "mce:srao=deliver@1,mce:corrected=handled,nmi=suppress"])
        g = Guest("fork", accel, tmp, extra=[
            "-chardev", "socket,id=c,path=%s,reconnect-ms=20" % sock,
            "-object", "exit-handler,id=h,chardev=c",
            "-object", "exit-route,id=ext-mce,event=mce,handler=external,"
            "handlers=h,timeout-ms=%d,fallback=device" % TIMEOUT_MS,
            "-object", "exit-route,id=ext-nmi,event=nmi,handler=external,"
            "handlers=h,timeout-ms=%d,fallback=device" % TIMEOUT_MS])
        try:
            deadline = time.monotonic() + 20
            while not handler_up(g):
                if time.monotonic() > deadline:
                    raise RuntimeError("the handler did not come up")
                time.sleep(0.02)

            g.qmp.cmd("inject-mce", **{"cpu-index": 0, "addr": 0x5000})
            st = g.wait(lambda s: g.cpu(s, 1)[1] == 1, "#MC on vCPU 1")
            st = g.settle()
            check("%s: external: an SRAO error for vCPU 0 retargeted to "
                  "vCPU 1" % accel, g.cpu(st, 1)[1] == 1 and
                  g.cpu(st, 0)[1] == 0 and g.cpu(st, 1)[3] == SRAO, st)

            g.qmp.cmd("inject-mce", **{"cpu-index": 0, "class": "corrected",
                                     "addr": 0x6000})
            g.qmp.cmd("inject-nmi", **{"cpu-index": 0})
            st2 = g.settle()
            stats = {r["id"]: r for r in g.qmp.cmd("query-exit-stats")}
            check("%s: external: a corrected error handled (not in the "
                  "bank), an NMI suppressed" % accel,
                  g.cpu(st2, 0)[2] != CORRECTED and g.cpu(st2, 0)[0] == 0 and
                  stats["ext-mce"]["handled"] == 1 and
                  stats["ext-nmi"]["suppressed"] == 1,
                  "%s %s" % (st2, stats))
            with open(log) as f:
                lines = [ln for ln in f if ln.startswith("E ")]
            check("%s: external: the handler saw the 3 events with their "
                  "fields" % accel, len(lines) == 3 and
                  "mce source=2 cpu=0 class=srao bank=9 addr=0x5000"
                  in lines[0] and "-> deliver cpu=1" in lines[0], lines)

            handler.send_signal(signal.SIGKILL)
            handler.wait()
            t0 = time.monotonic()
            g.qmp.cmd("inject-mce", **{"cpu-index": 0, "addr": 0x7000})
            took = time.monotonic() - t0
            st3 = g.wait(lambda s: g.cpu(s, 0)[1] == 1, "#MC on vCPU 0")
            down = g.qmp.wait_event("EXIT_HANDLER_DOWN", timeout=5)
            check("%s: external: killed, the fallback delivers to vCPU 0 "
                  "within the route's timeout (%.0f ms <= %d ms + 100)"
                  % (accel, took * 1000, TIMEOUT_MS),
                  g.cpu(st3, 0)[1] == 1 and took * 1000 <= TIMEOUT_MS + 100,
                  st3)
            check("%s: external: EXIT_HANDLER_DOWN emitted" % accel,
                  down is not None and down["data"]["id"] == "h", down)
        finally:
            g.stop()
            if handler.poll() is None:
                handler.kill()
                handler.wait()


def main():
    accel = sys.argv[1] if len(sys.argv) > 1 else "tcg"
    skip = kvm_skip(accel)
    if skip:
        print("SKIP: " + skip)
        return 77
    try:
        run(accel)
        run_external(accel)
    except RuntimeError as e:
        check("%s: the guest answered" % accel, False, e)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
