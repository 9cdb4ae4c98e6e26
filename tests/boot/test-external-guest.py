#!/usr/bin/env python3
"""External handlers on real vCPU paths (TCG's port helpers and KVM's
KVM_EXIT_IO, without the BQL), not only qtest's.

The bench guest reads port 0x80 once at start (its BENCH-START line) and
then writes it in a loop (port80_write).  Port 0x80 is routed to
exit-handler-post (--tag 0x5a: a read of a never-written port returns
0x5a); QEMU starts paused and runs the guest once the handler is up.

 - TCG and KVM, 1 vCPU: the guest reads 0x5a; the handler served every
   access (no fallback, never down).
 - TCG, 2 vCPUs hammering the port, a handler taking 40 ms per request
   and a 60 ms timeout: a vCPU that waited behind the other's request has
   less than half of its timeout left and passes the handler by (the
   fallback serves it); the handler is never marked down for it.
 - 4 vCPUs on one handler that hangs (the guest's waitcheck=1): the BSP
   reads a port whose route waits 3 s for it, then the three APs read
   another port of the same handler whose route waits 200 ms.  Each AP
   read is answered by the fallback within its own route's timeout (a
   vCPU used to block on the handler's mutex behind the BSP's request
   for the whole 3 s); only the BSP's request marks the handler down.

test-external-guest.py [tcg|kvm]: one accelerator (default tcg); the KVM
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

QEMU = os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64")
GUEST = os.environ["QT_BENCH_GUEST"]
HANDLER = os.environ["QT_EXIT_HANDLER"]
failures = []


def route_stats(q):
    for r in q.cmd("query-exit-stats"):
        if r["id"] == "post":
            return r
    raise RuntimeError("no route 'post' in query-exit-stats")


def run(accel, smp, n, rounds, delay_us, timeout_ms):
    """Run the guest; return (serial output, route stats at the end)."""
    with tempfile.TemporaryDirectory() as tmp:
        sock, qmp = tmp + "/h.sock", tmp + "/qmp.sock"
        serial = tmp + "/serial"
        handler = subprocess.Popen([HANDLER, "--socket", sock, "--tag", "0x5a",
                                    "--delay-us", str(delay_us), "--quiet"])
        qemu = subprocess.Popen(
            [QEMU, "-machine", "pc", "-accel", accel, "-smp", str(smp),
             "-m", "64", "-nodefaults", "-display", "none",
             "-serial", "file:" + serial, "-no-reboot", "-kernel", GUEST,
             "-append", "n=%d rounds=%d smp=%d only=port80_write"
             % (n, rounds, smp), "-S",
             "-qmp", "unix:%s,server=on,wait=off" % qmp,
             "-chardev", "socket,id=c,path=%s,reconnect-ms=20" % sock,
             "-object", "exit-handler,id=h,chardev=c",
             "-object", "exit-route,id=post,event=pio,start=0x80,priority=1,"
             "handler=external,handlers=h,timeout-ms=%d" % timeout_ms],
            stdin=subprocess.DEVNULL)
        try:
            q = QMP(qmp)
            deadline = time.monotonic() + 20
            while not route_stats(q)["handlers"][0]["up"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the handler did not come up")
                time.sleep(0.02)
            q.cmd("cont")
            # No isa-debug-exit: the guest halts after BENCH-DONE.
            deadline = time.monotonic() + 120
            out = ""
            while "BENCH-DONE" not in out:
                if time.monotonic() > deadline or qemu.poll() is not None:
                    raise RuntimeError("the guest did not finish: " + out)
                time.sleep(0.1)
                with open(serial, errors="replace") as f:
                    out = f.read()
            return out, route_stats(q)
        finally:
            qemu.kill()
            qemu.wait()
            handler.kill()
            handler.wait()


def check(what, ok, detail):
    print("%s %s" % ("ok" if ok else "FAIL:", what))
    if not ok:
        print("   " + detail)
        failures.append(what)


# waitcheck: the routes' timeouts, and what scheduling may add on 2 cores
SLOW_MS, FAST_MS, SLACK_MS = 3000, 200, 150


def wait_check(accel):
    """Four vCPUs on one hung handler; returns (serial, stats by route)."""
    with tempfile.TemporaryDirectory() as tmp:
        sock, qmp = tmp + "/h.sock", tmp + "/qmp.sock"
        serial = tmp + "/serial"
        handler = subprocess.Popen([HANDLER, "--socket", sock, "--tag",
                                    "0x5a", "--delay-us", "20000000",
                                    "--quiet"])
        routes = []
        for rid, port, ms in (("slow", 0x84, SLOW_MS),
                              ("fast", 0x85, FAST_MS)):
            routes += ["-object", "exit-route,id=%s,event=pio,start=%d,"
                       "handler=external,handlers=h,timeout-ms=%d,"
                       "fallback=ignore" % (rid, port, ms)]
        qemu = subprocess.Popen(
            [QEMU, "-machine", "pc", "-accel", accel, "-smp", "4",
             "-m", "64", "-nodefaults", "-display", "none",
             "-serial", "file:" + serial, "-no-reboot", "-kernel", GUEST,
             "-append", "smp=4 only=none waitcheck=1", "-S",
             "-qmp", "unix:%s,server=on,wait=off" % qmp,
             "-chardev", "socket,id=c,path=%s,reconnect-ms=20" % sock,
             "-object", "exit-handler,id=h,chardev=c"] + routes,
            stdin=subprocess.DEVNULL)
        try:
            q = QMP(qmp)
            deadline = time.monotonic() + 20
            while not [r for r in q.cmd("query-exit-stats")
                       if r["id"] == "slow"][0]["handlers"][0]["up"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("the handler did not come up")
                time.sleep(0.02)
            q.cmd("cont")
            deadline = time.monotonic() + 120
            out = ""
            while "BENCH-DONE" not in out:
                if time.monotonic() > deadline or qemu.poll() is not None:
                    raise RuntimeError("the guest did not finish: " + out)
                time.sleep(0.1)
                with open(serial, errors="replace") as f:
                    out = f.read()
            return out, {r["id"]: r for r in q.cmd("query-exit-stats")}
        finally:
            qemu.kill()
            qemu.wait()
            handler.kill()
            handler.wait()


def check_wait(accel):
    out, st = wait_check(accel)
    print("\n".join(x for x in out.splitlines()
                    if x.startswith("BENCH-WAIT")))
    waits = {}
    for line in out.splitlines():
        m = re.match(r"BENCH-WAIT cpu=(\d) reads=(\d+) max_us=(\d+) "
                     r"value=0x([0-9a-f]+)", line)
        if m:
            waits[int(m.group(1))] = (int(m.group(2)), int(m.group(3)),
                                      int(m.group(4), 16))
    check("%s smp4: every CPU reported" % accel, sorted(waits) == [0, 1, 2, 3],
          out)
    aps = [waits[c] for c in (1, 2, 3) if c in waits]
    check("%s smp4: every AP read answered by the fallback within its "
          "route's %d ms (+%d) behind a request of a route that waits %d ms"
          % (accel, FAST_MS, SLACK_MS, SLOW_MS),
          len(aps) == 3 and all(r == 8 and us <= (FAST_MS + SLACK_MS) * 1000
                                and v == 0xff for r, us, v in aps),
          "max waits (reads, us, value): %s" % aps)
    check("%s smp4: the BSP's read waited its own route's timeout, no more"
          % accel, 0 in waits and
          # the guest's clock, calibrated against the PM timer: +-5 %
          SLOW_MS * 950 <= waits[0][1] <= (SLOW_MS + SLACK_MS) * 1000,
          str(waits.get(0)))
    h = st["slow"]["handlers"][0]
    check("%s smp4: exact counts; only the BSP's request marked the "
          "handler down" % accel,
          st["slow"]["count"] == 1 and st["slow"]["fallbacks"] == 1 and
          st["fast"]["count"] == 24 and st["fast"]["fallbacks"] == 24 and
          h["down-count"] == 1 and h["failures"] == 1,
          "slow %s; fast %s" % (st["slow"], st["fast"]))


accel = sys.argv[1] if len(sys.argv) > 1 else "tcg"
if accel == "kvm":
    usable = subprocess.run([os.path.join(TOP, "scripts", "kvm-usable")],
                            stdout=subprocess.PIPE, text=True)
    if usable.returncode:
        print("SKIP: " + usable.stdout.strip())
        sys.exit(77)
out, st = run(accel, 1, 1000, 3, 0, 1000)
h = st["handlers"][0]
check("%s: the guest's IN from port 0x80 answered by the handler" % accel,
      "port80=0x0000005a" in out,
      [x for x in out.splitlines() if x.startswith("BENCH-START")])
check("%s: every access served by the handler" % accel,
      st["fallbacks"] == 0 and h["down-count"] == 0 and
      # BENCH-START's read, the warm-up (n / 10 + 1), rounds * n
      h["requests"] == 1 + (1000 // 10 + 1) + 3 * 1000 and
      h["requests"] == st["count"],
      str(st))
checks = 2
if accel == "tcg":
    out, st = run("tcg", 2, 3, 2, 40000, 60)
    h = st["handlers"][0]
    check("tcg smp2: a vCPU queued behind the other passes a slow handler "
          "by without marking it down",
          h["down-count"] == 0 and st["fallbacks"] > 0 and
          h["failures"] == 0, str(st))
    check("tcg smp2: every access completed", "BENCH-DONE" in out, out)
    checks += 2
check_wait(accel)
checks += 4
print("%d passed, %d failed" % (checks - len(failures), len(failures)))
sys.exit(1 if failures else 0)
