#!/usr/bin/env python3
"""Two Debian guests under TCG talk through inter-VM queues: ivq-broker
and two forks, each with an ivq device (4 MiB send area, 8 MiB receive
queue: a 2 MiB message fits), and our Linux program guest/ivqctl.c in
their initramfs, which drives the device from userspace through its PCI
sysfs resources (guest/init's qt.ivq=).

Guest A (vm-a) sends 10^4 messages of 64 B to 2 MiB (log-uniform by
octave, every 1000th of 2 MiB; contents drawn from a seed and the
index, tag = index; by DB_EXIT and DB_NOEXIT in turn, QUEUE_FULL
retried) to B, its records at offset 4064 of the send area so that the
payload sits on a page; with flip-threshold=4096 the messages of whole
pages go by page flip, the rest by copy; B checks every one: size,
contents, tag order and the sender id the VMMs stamped.  Then B sends 100 (64 B to 64 KiB) back to A,
which checks them.  Must show: both verdicts perfect, and query-ivq on
both sides agreeing with them and with the sizes this test computes
(messages and payload bytes each way, by copy and by flip: every
message of whole pages flipped or counted as a fallback, the rest
copied; queues empty, no refused operation but QUEUE_FULL, as many of
those as the guest retried).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from platformguest import (BUILD, QMP, check,  # noqa: E402
                           debian_initramfs, failures)

RAM_MIB = 256
SEND_SIZE, QUEUE_SIZE = 4 << 20, 8 << 20
# QT_IVQ_MESSAGES changes A's count (a quicker run while debugging).
AB = dict(count=int(os.environ.get("QT_IVQ_MESSAGES", 10000)), lo=64,
          hi=2 << 20, seed=20261206)
BA = dict(count=100, lo=64, hi=64 << 10, seed=20261207)
AB_OFF = 4096 - 32          # A's payloads on a page: they can flip
TIMEOUT = 840
M64 = (1 << 64) - 1
SEND = re.compile(r"IVQCTL send dest=(\d+) sent=(\d+) failed=(\d+) "
                  r"queue_full=(\d+) exit=(\d+) noexit=(\d+) bytes=(\d+) "
                  r"secs=([\d.]+)")
RECV = re.compile(r"IVQCTL recv src=(\d+) ok=(\d+) bad=(\d+) src_bad=(\d+) "
                  r"missing=(\d+) bytes=(\d+) left=(\d+) secs=([\d.]+) "
                  r"flip=(\d+)")


def mix(x):
    """splitmix64's finalizer, as guest/ivqctl.c's mix()."""
    x = (x + 0x9e3779b97f4a7c15) & M64
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M64
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def msg_size(seed, idx, lo, hi):
    """guest/ivqctl.c's msg_size()."""
    r = mix((seed * 0x2545f4914f6cdd1d + idx) & M64)
    blo, bhi = lo.bit_length() - 1, hi.bit_length() - 1
    if idx % 1000 == 0:
        return hi
    if idx % 1000 == 1 or lo == hi:
        return lo
    b = blo if blo == bhi else blo + r % (bhi - blo)
    size = (1 << b) + ((r >> 32) & ((1 << b) - 1))
    return min(max(size, lo), hi)


def total_bytes(p):
    return sum(msg_size(p["seed"], i, p["lo"], p["hi"])
               for i in range(p["count"]))


def flippable(p):
    """Messages of whole pages: those flip-threshold=4096 flips."""
    return sum(msg_size(p["seed"], i, p["lo"], p["hi"]) % 4096 == 0
               for i in range(p["count"]))


def step(mode, peer, p, off=None):
    s = "%s:%d:%d:%d:%d:%d" % (mode, peer, p["count"], p["lo"], p["hi"],
                               p["seed"])
    return s if off is None else s + ":%d" % off


class VM:
    def __init__(self, name, tmp, initrd, broker_sock, steps):
        self.name = name
        self.serial = os.path.join(tmp, name + ".serial")
        sock = os.path.join(tmp, name + ".qmp")
        self.err = open(os.path.join(tmp, name + ".err"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-fork", "qemu-system-x86_64"),
             "-machine", "pc", "-accel", "tcg", "-m", str(RAM_MIB),
             "-nodefaults", "-display", "none", "-no-reboot",
             "-no-shutdown", "-serial", "file:" + self.serial,
             "-kernel", os.path.join(BUILD, "guest", "vmlinuz"),
             "-initrd", initrd,
             "-append", "console=ttyS0 panic=-1 qt.ivq=" + ",".join(steps),
             "-chardev", "socket,id=brk,path=" + broker_sock,
             "-device", "ivq,id=ivq0,chardev=brk,name=%s,send-size=%d,"
                        "queue-size=%d,flip-threshold=4096"
                        % (name, SEND_SIZE, QUEUE_SIZE),
             "-qmp", "unix:%s,server=on,wait=off" % sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.err)
        self.qmp = QMP(sock)

    def ivq(self):
        return self.qmp.cmd("query-ivq")[0]

    def wait_connected(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.ivq()
            if info["connected"]:
                return info["peer-id"]
            time.sleep(0.05)
        return None

    def log(self):
        with open(self.serial, errors="replace") as f:
            return f.read()

    def done(self):
        return self.proc.poll() is not None or \
            self.qmp.cmd("query-status")["status"] == "shutdown"

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (OSError, EOFError, RuntimeError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self.err.seek(0)
        return self.err.read()


def check_side(vm, sent, got, flips):
    """query-ivq of @vm against (messages, bytes) @sent and @got, and
    (flippable messages sent, messages received by flip) @flips."""
    info = vm.ivq()
    tx, rx, err = info["sent"], info["received"], info["errors"]
    print("%s query-ivq: sent %d/%d B by copy, %d/%d B by flip (%d fell "
          "back to copy); received %d/%d B by copy, %d/%d B by flip; depth "
          "%d, errors %s" % (vm.name, tx["copy-messages"], tx["copy-bytes"],
                             tx["flip-messages"], tx["flip-bytes"],
                             info["flip-fallbacks"], rx["copy-messages"],
                             rx["copy-bytes"], rx["flip-messages"],
                             rx["flip-bytes"], info["queue-depth"], err))

    def both(t):
        return (t["copy-messages"] + t["flip-messages"],
                t["copy-bytes"] + t["flip-bytes"])
    check("%s: query-ivq counts %d messages, %d bytes sent" % ((vm.name,)
                                                              + sent),
          both(tx) == sent, tx)
    check("%s: query-ivq counts %d messages, %d bytes received"
          % ((vm.name,) + got), both(rx) == got, rx)
    check("%s: %d of its messages could flip: each flipped or fell back "
          "to copy" % (vm.name, flips[0]),
          tx["flip-messages"] + info["flip-fallbacks"] == flips[0], info)
    check("%s: %d received by flip, as its guest saw" % (vm.name, flips[1]),
          rx["flip-messages"] == flips[1], rx)
    check("%s: its queue empty" % vm.name,
          info["queue-depth"] == 0 and info["queue-bytes"] == 0, info)
    check("%s: no refused operation but QUEUE_FULL" % vm.name,
          all(v == 0 for k, v in err.items() if k != "queue-full"), err)
    return tx["flip-messages"]


def main():
    bytes_ab, bytes_ba = total_bytes(AB), total_bytes(BA)
    print("A->B: %d messages, %d bytes (%d of 2 MiB); B->A: %d, %d bytes"
          % (AB["count"], bytes_ab,
             sum(msg_size(AB["seed"], i, AB["lo"], AB["hi"]) == AB["hi"]
                 for i in range(AB["count"])), BA["count"], bytes_ba))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        initrd = os.path.join(tmp, "initramfs.cpio.gz")
        debian_initramfs(initrd, ivqctl=os.environ["QT_GUEST_IVQCTL"])
        bsock = os.path.join(tmp, "broker.sock")
        berr = open(os.path.join(tmp, "broker.err"), "w+")
        broker = subprocess.Popen([os.environ["QT_IVQ_BROKER"], "-s", bsock,
                                   "-u", str(os.getuid()), "-q"],
                                  stdin=subprocess.DEVNULL, stdout=berr,
                                  stderr=berr)
        vms = []
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(bsock) and time.monotonic() < deadline:
                time.sleep(0.05)
            # The broker gives the lowest free id: A 0, then B 1.
            a = VM("vm-a", tmp, initrd, bsock,
                   [step("send", 1, AB, AB_OFF), step("recv", 1, BA)])
            vms.append(a)
            ida = a.wait_connected()
            b = VM("vm-b", tmp, initrd, bsock,
                   [step("recv", 0, AB), step("send", 0, BA)])
            vms.append(b)
            idb = b.wait_connected()
            check("peer ids from the broker: vm-a 0, vm-b 1",
                  (ida, idb) == (0, 1), (ida, idb))
            if failures:
                return 1
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline and \
                    not all(vm.done() for vm in vms):
                time.sleep(1)
            took = time.monotonic() - t0
            la, lb = a.log(), b.log()
            for vm, log in ((a, la), (b, lb)):
                lines = [ln for ln in log.splitlines()
                         if ln.startswith(("IVQCTL", "QT-IVQ", "ivqctl"))]
                print("%s:\n  %s" % (vm.name, "\n  ".join(lines)))
            print("both guests done in %.0f s (boot included)" % took)
            for vm, log in ((a, la), (b, lb)):
                check("%s powered off after its steps" % vm.name,
                      "QT-IVQ done" in log and vm.done(), log[-1500:])

            sa, ra = SEND.search(la), RECV.search(la)
            sb, rb = SEND.search(lb), RECV.search(lb)
            check("A sent %d messages (%d bytes) to B, none failed"
                  % (AB["count"], bytes_ab),
                  sa is not None and sa.group(1, 2, 3, 7) ==
                  ("1", str(AB["count"]), "0", str(bytes_ab)),
                  sa and sa.group(0))
            check("A used both doorbells",
                  sa is not None and int(sa.group(5)) > 0 and
                  int(sa.group(6)) > 0, sa and sa.group(0))
            check("B received all %d from A, every one checked: size, "
                  "contents, tag order, sender id 0" % AB["count"],
                  rb is not None and rb.group(1, 2, 3, 4, 5, 6, 7) ==
                  ("0", str(AB["count"]), "0", "0", "0", str(bytes_ab),
                   "0"), rb and rb.group(0))
            check("B sent %d messages back to A" % BA["count"],
                  sb is not None and sb.group(1, 2, 3, 7) ==
                  ("0", str(BA["count"]), "0", str(bytes_ba)),
                  sb and sb.group(0))
            check("A received all %d from B, every one checked, sender "
                  "id 1" % BA["count"],
                  ra is not None and ra.group(1, 2, 3, 4, 5, 6, 7) ==
                  ("1", str(BA["count"]), "0", "0", "0", str(bytes_ba),
                   "0"), ra and ra.group(0))
            rb_flips = int(rb.group(9)) if rb else -1
            flipped = check_side(a, (AB["count"], bytes_ab),
                                 (BA["count"], bytes_ba),
                                 (flippable(AB), 0))
            check_side(b, (BA["count"], bytes_ba), (AB["count"], bytes_ab),
                       (0, rb_flips))
            check("B's guest saw %d messages by flip (A's QEMU flipped %d, "
                  "of %d that could)" % (rb_flips, flipped, flippable(AB)),
                  rb_flips == flipped and flipped > 0, rb and rb.group(0))
            for vm, m in ((a, sa), (b, sb)):
                full = vm.ivq()["errors"]["queue-full"]
                check("%s: query-ivq's QUEUE_FULL count is the number of "
                      "retries its guest made (%d)" % (vm.name, full),
                      m is not None and int(m.group(4)) == full,
                      m and m.group(0))
        finally:
            for vm in vms:
                err = vm.stop()
                if err.strip():
                    print("%s stderr: %s" % (vm.name, err.strip()[-1000:]))
            broker.terminate()
            broker.wait()
            berr.close()
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
