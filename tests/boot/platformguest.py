"""The bench guest in platform mode (platform=1), for the platform-event
tests: every vCPU counts its NMIs and machine checks and reports them,
with its bank 9 (where QEMU logs the errors it injects), on COM1.
"""
import os
import re
import signal
import subprocess
import sys
import time

TOP = os.environ["QT_TOP"]
BUILD = os.environ["QT_BUILD_DIR"]
sys.path.insert(0, os.path.join(TOP, "scripts"))
from qmp import QMP  # noqa: E402

GUEST = os.environ["QT_BENCH_GUEST"]
LINE = re.compile(r"BENCH-PLATFORM cpu=(\d) nmi=(\d+) mce=(\d+) "
                  r"bank9=0x([0-9a-f]{16}) mc=0x([0-9a-f]{16})")

SRAO = 0xbd000000000000c0   # VAL UC EN MISCV ADDRV S, MCA code 0xc0
CORRECTED = 0x9c0000000000009f

failures = []


def check(what, ok, detail=""):
    print("%s %s" % ("ok" if ok else "FAIL:", what))
    if not ok:
        print("   %s" % detail)
        failures.append(what)


def debian_initramfs(out, **bins):
    """The Debian guest's initramfs at @out: guest/init, busybox and
    @bins (name=path: bin/NAME in the guest)."""
    subprocess.run([sys.executable,
                    os.path.join(TOP, "scripts", "mkinitramfs.py"), out,
                    "init=" + os.path.join(TOP, "guest", "init"),
                    "bin/busybox=" + os.path.join(BUILD, "guest", "busybox")] +
                   ["bin/%s=%s" % b for b in sorted(bins.items())],
                   check=True)


def thread_of(qmp, cpu_index):
    """The host thread id of vCPU @cpu_index."""
    for c in qmp.cmd("query-cpus-fast"):
        if c["cpu-index"] == cpu_index:
            return c["thread-id"]
    raise RuntimeError("no vCPU %d" % cpu_index)


def sigbus_env(req):
    """The environment of a QEMU that can be made to take a SIGBUS
    (tests/boot/sigbus-inject.c); @req: its request file."""
    return dict(os.environ, LD_PRELOAD=os.environ["QT_SIGBUS_INJECT"],
                QT_SIGBUS_REQUEST=req)


def send_sigbus(pid, req, tid, code, addr):
    """Has QEMU @pid (started with sigbus_env(@req)) queue SIGBUS @code
    at host @addr to its thread @tid (0: the process); returns the
    helper's answer."""
    done = req + ".done"
    if os.path.exists(done):
        os.unlink(done)
    with open(req, "w") as f:
        f.write("%d %d %x\n" % (tid, code, addr))
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(done):
            with open(done) as f:
                answer = f.read().strip()
            if answer:
                return answer
        time.sleep(0.001)
    return "no answer"


def kvm_skip(accel):
    """The reason to skip an accelerator's run, or None."""
    if accel != "kvm":
        return None
    usable = subprocess.run([os.path.join(TOP, "scripts", "kvm-usable")],
                            stdout=subprocess.PIPE, text=True)
    return usable.stdout.strip() if usable.returncode else None


class Guest:
    """The bench guest in platform mode, 2 vCPUs, with QMP; its state
    read off COM1."""

    def __init__(self, which, accel, tmp, extra=(), env=None):
        self.serial = os.path.join(tmp, which + ".serial")
        sock = os.path.join(tmp, which + ".qmp")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "qemu-" + which, "qemu-system-x86_64"),
             "-machine", "pc", "-accel", accel, "-smp", "2", "-m", "64",
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "file:" + self.serial, "-kernel", GUEST,
             "-append", "smp=2 only=none platform=1",
             "-qmp", "unix:%s,server=on,wait=off" % sock] + list(extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=env)
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

    @staticmethod
    def cpu(st, c):
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
        """Stops QEMU (if it still runs); what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if not self.proc.stderr.closed:
            self.err = self.proc.stderr.read().decode(errors="replace")
            self.proc.stderr.close()
        return self.err
