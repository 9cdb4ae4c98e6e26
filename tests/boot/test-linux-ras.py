#!/usr/bin/env python3
"""The Debian guest under TCG (2 vCPUs, 512 MiB) runs a memory checker
of ours (guest/memcheck.c) over 320 MiB while the fork retires guest
pages under it: single pages and batches over QMP, and storms of
corrected machine checks that the RAS policy handles (route mce ->
platform).  The pages are chosen at random over all of the guest's RAM
(kernel, page cache, the checker's own): retirement must be invisible to
everything.  Must show: the checker's verdict (no word lost, on every
CPU, after passes that started after the last retirement) and no
machine-check event in the guest kernel's log (it polls its banks every
second).  The control: a corrected error the policy declines (no
address) is delivered, and the same kernel logs it.
"""
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from platformguest import (BUILD, QMP, check,  # noqa: E402
                           debian_initramfs, failures)

CPU = "qemu64,vendor=GenuineIntel,family=6,model=85,stepping=4"
RAM_MIB, CHECK_MIB = 512, 320
SINGLES, BATCHES, BATCH, STORMS = 4000, 8, 64, 500
CE_THRESHOLD = 2
CORRECTED = 0x9c0000000000009f          # VAL EN MISCV ADDRV
CORRECTED_NO_ADDR = 0x980000000000009f  # VAL EN MISCV
LINE = re.compile(r"QT-MEMCHECK cpu=(\d+) pass=(\d+) bad=(\d+)")
KERNEL_MCE = re.compile(r"Machine check events logged|Hardware Error|"
                        r"Memory failure|mce: ")


def reports(serial):
    """{cpu: (pass, bad)} of the checker's last reports."""
    last = {}
    with open(serial, errors="replace") as f:
        for cpu, p, bad in LINE.findall(f.read()):
            last[int(cpu)] = (int(p), int(bad))
    return last


def wait_passes(serial, proc, passes, timeout):
    """Until every CPU's pass count reaches passes[cpu]."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        last = reports(serial)
        if len(last) == 2 and all(last[c][0] >= passes.get(c, 1)
                                  for c in last):
            return last
        time.sleep(0.5)
    return None


def main():
    rng = random.Random(20261205)
    with tempfile.TemporaryDirectory() as tmp:
        initrd = os.path.join(tmp, "initramfs.cpio.gz")
        debian_initramfs(initrd, memcheck=os.environ["QT_GUEST_MEMCHECK"])
        serial, sock = os.path.join(tmp, "serial"), os.path.join(tmp, "qmp")
        err = open(os.path.join(tmp, "err"), "w")
        pool = SINGLES + BATCHES * BATCH + STORMS
        proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64"),
             "-machine", "pc", "-accel", "tcg", "-smp", "2", "-cpu", CPU,
             "-m", str(RAM_MIB), "-nodefaults", "-display", "none",
             "-no-reboot", "-serial", "file:" + serial,
             "-kernel", os.path.join(BUILD, "guest", "vmlinuz"),
             "-initrd", initrd,
             "-append", "console=ttyS0 panic=-1 qt.memcheck=%d" % CHECK_MIB,
             "-object", "ras-policy,id=ras,pool-pages=%d,ce-threshold=%d"
                        % (pool, CE_THRESHOLD),
             "-object", "exit-route,id=ras-mce,event=mce,handler=platform",
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            q = QMP(sock)
            first = wait_passes(serial, proc, {}, 600)
            if not first:
                check("the guest's checker runs on both vCPUs", False,
                      open(serial, errors="replace").read()[-2000:])
                return 1
            # Every page of RAM is fair game, kernel's included; the
            # legacy hole (640 KiB - 1 MiB) is not RAM.
            pages = rng.sample(range(256, RAM_MIB * 256 - BATCH),
                               SINGLES + BATCHES + STORMS)
            t0 = time.monotonic()
            retired = set()
            for pfn in pages[:SINGLES]:
                q.cmd("ras-retire-page", addr=pfn << 12)
                retired.add(pfn)
            for pfn in pages[SINGLES:SINGLES + BATCHES]:
                # A batch must find BATCH pages of which none is retired.
                while any(p in retired for p in range(pfn, pfn + BATCH)):
                    pfn = rng.randrange(256, RAM_MIB * 256 - BATCH)
                q.cmd("ras-retire-pages", addr=pfn << 12, pages=BATCH)
                retired.update(range(pfn, pfn + BATCH))
            storms = [p for p in pages[SINGLES + BATCHES:]
                      if p not in retired]
            for pfn in storms:
                for _ in range(CE_THRESHOLD):
                    q.cmd("inject-mce", **{
                        "cpu-index": pfn % 2, "bank": 9,
                        "status": CORRECTED, "mcg-status": 0,
                        "addr": (pfn << 12) + 0x80})
            total = len(retired) + len(storms)
            while len(q.cmd("query-retired-pages")) < total and \
                    time.monotonic() - t0 < 300:
                time.sleep(0.2)
            took = time.monotonic() - t0
            done = q.cmd("query-retired-pages")
            # Two full passes on every CPU that started after the last
            # retirement.
            now = reports(serial)
            last = wait_passes(serial, proc,
                               {c: now[c][0] + 2 for c in now}, 900)
            log = open(serial, errors="replace").read()
            print("%d pages retired in %.1f s (%d singles, %d batches of "
                  "%d, %d by corrected-error storms); checker: %s"
                  % (len(done), took, SINGLES, BATCHES, BATCH, len(storms),
                     last))
            check("%d pages retired under the running Debian guest"
                  % total, len(done) == total, len(done))
            check("the guest's memory checker lost no word on any CPU "
                  "(%d MiB, two passes after the last retirement)"
                  % CHECK_MIB,
                  last is not None and all(v[1] == 0
                                           for v in last.values()),
                  last)
            mce = KERNEL_MCE.findall(log)
            check("the guest kernel logged no machine-check event", not mce,
                  mce[:5])

            # The control: an error the policy declines is delivered,
            # and this kernel, polling every second, logs it.
            q.cmd("inject-mce", **{"cpu-index": 0, "bank": 9,
                                 "status": CORRECTED_NO_ADDR,
                                 "mcg-status": 0})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not KERNEL_MCE.search(
                    open(serial, errors="replace").read()):
                time.sleep(0.5)
            check("control: a delivered corrected error is logged by the "
                  "same kernel", KERNEL_MCE.search(
                      open(serial, errors="replace").read()) is not None)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            err.close()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
