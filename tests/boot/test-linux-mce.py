#!/usr/bin/env python3
"""Machine checks into the Debian guest under TCG, through the fork's
exit router, with an Intel vCPU model (Linux's recovery paths follow
Intel's machine-check semantics) and a route mce -> deliver.

guest/init, with qt.mce on the kernel command line, sets the banks'
check_interval to 1 s (QEMU models no CMCI: corrected errors are found
by polling) and waits.  Then:

 - a corrected error (inject-mce class corrected) is found by the
   kernel's poll and logged as a machine-check event;
 - an SRAO error on a free guest page (init finds one in
   /proc/kpageflags and prints it) raises #MC, and the guest kernel's
   memory-failure code recovers the page (its own log line says so).
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
from platformguest import check, failures  # noqa: E402

CPU = "qemu64,vendor=GenuineIntel,family=6,model=85,stepping=4"


def wait_for(path, pattern, timeout, proc):
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern, re.M)
    while time.monotonic() < deadline and proc.poll() is None:
        with open(path, errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        time.sleep(0.2)
    return None


def main():
    g = os.path.join(BUILD, "guest")
    with tempfile.TemporaryDirectory() as tmp:
        serial, sock = os.path.join(tmp, "serial"), os.path.join(tmp, "qmp")
        proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64"),
             "-machine", "pc", "-accel", "tcg", "-cpu", CPU, "-m", "512",
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + serial,
             "-kernel", os.path.join(g, "vmlinuz"),
             "-initrd", os.path.join(g, "initramfs.cpio.gz"),
             "-append", "console=ttyS0 panic=-1 qt.mce",
             "-qmp", "unix:%s,server=on,wait=off" % sock,
             "-object", "exit-route,id=mce,event=mce,handler=deliver"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        try:
            q = QMP(sock)
            ready = wait_for(serial, r"^QT-MCE ready check_interval=(\S+) "
                             r"free_pfn=(\S+)", 600, proc)
            if not ready:
                check("the guest booted to init's MCE mode", False,
                      open(serial, errors="replace").read()[-2000:])
                return 1
            check("the guest polls its banks every %s s" % ready.group(1),
                  ready.group(1) == "1")
            check("the guest found a free page (a free buddy block's head "
                  "in /proc/kpageflags)", ready.group(2) != "none")
            if ready.group(2) == "none":
                return 1
            free_page = int(ready.group(2), 16) << 12

            q.cmd("inject-mce", **{"cpu-index": 0, "class": "corrected",
                                 "addr": 0x1000000})
            m = wait_for(serial, r"Machine check events logged|"
                         r"\[Hardware Error\]:.*Bank 9", 60, proc)
            check("a corrected error is logged by the guest kernel as a "
                  "machine-check event", m is not None,
                  open(serial, errors="replace").read()[-1500:])
            if m:
                print("   guest: %s" % m.group(0))

            q.cmd("inject-mce", **{"cpu-index": 0, "class": "srao",
                                 "addr": free_page})
            m = wait_for(serial, r"Memory failure: %#x: .*" %
                         (free_page >> 12), 60, proc)
            check("an SRAO error on a free page is recovered by the guest "
                  "kernel's memory-failure code",
                  m is not None and "Recovered" in m.group(0),
                  m.group(0) if m else
                  open(serial, errors="replace").read()[-1500:])
            if m:
                print("   guest: %s" % m.group(0))
            stats = {r["id"]: r for r in q.cmd("query-exit-stats")}
            check("the route delivered both", stats["mce"]["delivered"] == 2,
                  stats["mce"])
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
