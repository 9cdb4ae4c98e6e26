#!/usr/bin/env python3
"""A synthetic host memory error under TCG, on the fork and on the
vanilla twin, in one test.

The bench guest in platform mode (2 vCPUs, an Intel vCPU model: QEMU
builds an Intel machine check for memory errors the way Linux expects)
runs with its RAM in a /dev/shm file, so the test finds the host address
of a guest page in /proc/PID/maps.  tests/boot/sigbus-inject.c, preloaded
into QEMU, queues the SIGBUS (si_code BUS_MCEERR_AO, si_addr that host
address) from inside QEMU, as the kernel's memory-failure code does:

 - fork, to vCPU thread 1 (rt_tgsigqueueinfo): QEMU keeps running, the
   route memory-error (deliver) reports the guest address in
   PLATFORM_EVENT, and the guest takes a #MC with the SRAO status KVM's
   path builds (kvm_mce_inject());
 - fork, to the process (the main thread, through signalfd): the same;
 - fork, routed to ignore: an AO error raises no #MC and is counted; an
   AR error is delivered all the same (SRAR status);
 - fork, an AR error at an address outside guest RAM: QEMU stops with a
   clear message, as before;
 - vanilla, to the process: QEMU dies.  Built without KVM it re-raises
   the SIGBUS (the KVM stubs); built with KVM, as here, it hands the
   error to KVM's code under TCG, which aborts on KVM's uninitialised
   memslot lock (kvm_physical_memory_addr_from_host()).  A SIGBUS sent to
   a vanilla TCG vCPU thread stays pending (those threads block it),
   which is reported, not asserted.
"""
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import platformguest  # noqa: E402
from platformguest import (SRAO, Guest, check, failures,  # noqa: E402
                           sigbus_env, thread_of)

BUS_MCEERR_AR, BUS_MCEERR_AO = 4, 5
GPA = 0x3000000             # 48 MiB: guest RAM the bench guest leaves alone
CPU = "qemu64,vendor=GenuineIntel"
SRAR = 0xbd80000000000134   # SRAO's bits, AR, MCA code 0x134


def ram_hva(pid, path):
    """The host address at which QEMU maps the guest RAM file @path."""
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            if line.rstrip().endswith(path):
                fields = line.split()
                if int(fields[2], 16) == 0:
                    return int(fields[0].split("-")[0], 16)
    raise RuntimeError("guest RAM %s not mapped in %d" % (path, pid))


def start(which, tmp):
    ram = "/dev/shm/qt-memerr-%d-%s" % (os.getpid(), which)
    env = sigbus_env(os.path.join(tmp, which + ".req"))
    g = Guest(which, "tcg", tmp, env=env, extra=[
        "-cpu", CPU,
        "-object", "memory-backend-file,id=ram,size=64M,share=on,"
                   "mem-path=" + ram,
        "-machine", "memory-backend=ram"])
    g.ram, g.req = ram, env["QT_SIGBUS_REQUEST"]
    return g


def send_sigbus(g, tid, code, addr):
    return platformguest.send_sigbus(g.proc.pid, g.req, tid, code, addr)


def wait_exit(proc, timeout=10):
    try:
        return proc.wait(timeout)
    except Exception:
        return None


def fork_part(tmp):
    g = start("fork", tmp)
    try:
        g.qmp.cmd("exit-route-add", **{"id": "memerr",
                                     "event": "memory-error",
                                     "handler": "deliver"})
        hva = ram_hva(g.proc.pid, g.ram) + GPA
        ans = send_sigbus(g, thread_of(g.qmp, 1), BUS_MCEERR_AO, hva)
        check("fork: the SIGBUS was queued to vCPU 1's thread", ans == "ok",
              ans)
        st = g.wait(lambda s: g.cpu(s, 1)[1] >= 1, "#MC on vCPU 1")
        ev = g.qmp.wait_event("PLATFORM_EVENT", timeout=10)
        check("fork: the guest got its vMCE on vCPU 1, with the SRAO "
              "status of KVM's path",
              g.cpu(st, 1)[3] == SRAO and g.proc.poll() is None, st)
        check("fork: the route saw a memory error, class ao, at the guest "
              "address 0x%x, from vCPU 1" % GPA,
              ev is not None and ev["data"]["type"] == "memory-error" and
              ev["data"].get("class") == "ao" and
              ev["data"].get("addr") == GPA and
              ev["data"].get("cpu") == 1 and
              ev["data"]["verdict"] == "deliver", ev)

        before = g.cpu(st, 0)[1]
        ans = send_sigbus(g, 0, BUS_MCEERR_AO, hva + 0x1000)
        st = g.wait(lambda s: g.cpu(s, 0)[1] > before,
                    "#MC after a process-wide SIGBUS")
        stats = {s["id"]: s for s in g.qmp.cmd("query-exit-stats")}
        check("fork: a SIGBUS to the process (main thread) is routed too; "
              "the route counted 2, delivered 2",
              ans == "ok" and g.proc.poll() is None and
              stats["memerr"]["count"] == 2 and
              stats["memerr"]["delivered"] == 2, stats.get("memerr"))

        # Routed to ignore, an AO error raises no #MC and is counted; an
        # AR error cannot be ignored (the access would fault again): its
        # vMCE is delivered, with the SRAR status.
        g.qmp.cmd("exit-route-del", id="memerr")
        g.qmp.cmd("exit-route-add", **{"id": "memerr-ignore",
                                     "event": "memory-error",
                                     "handler": "ignore"})
        st = g.settle()
        send_sigbus(g, thread_of(g.qmp, 1), BUS_MCEERR_AO, hva + 0x2000)
        st2 = g.settle()
        stats = {s["id"]: s for s in g.qmp.cmd("query-exit-stats")}
        check("fork: an AO error routed to ignore raises no #MC, counted",
              st2 == st and stats["memerr-ignore"]["suppressed"] == 1,
              "%s %s %s" % (st, st2, stats.get("memerr-ignore")))
        ans = send_sigbus(g, thread_of(g.qmp, 1), BUS_MCEERR_AR, hva + 0x3000)
        st = g.wait(lambda s: g.cpu(s, 1)[1] > g.cpu(st2, 1)[1],
                    "#MC on vCPU 1 for an AR error")
        check("fork: an AR error routed to ignore is delivered all the same "
              "(SRAR status)", ans == "ok" and g.cpu(st, 1)[3] == SRAR, st)

        # Action required, outside guest RAM (the stack of this helper's
        # own address space is as good as any): QEMU must stop, saying so.
        ans = send_sigbus(g, 0, BUS_MCEERR_AR, 0x1000)
        rc = wait_exit(g.proc)
        err = g.stop()
        check("fork: an action-required error in QEMU's own memory stops "
              "QEMU with a clear message",
              rc == 1 and "Hardware memory error" in err, "%s %s" % (rc, err))
    finally:
        g.stop()
        os.unlink(g.ram)


def vanilla_part(tmp):
    v = start("vanilla", tmp)
    try:
        hva = ram_hva(v.proc.pid, v.ram) + GPA
        send_sigbus(v, thread_of(v.qmp, 1), BUS_MCEERR_AO, hva)
        time.sleep(0.5)
        print("info: vanilla, SIGBUS to vCPU thread 1: %s" %
              ("QEMU died" if v.proc.poll() is not None else
               "still running, the signal pending (TCG vCPU threads block "
               "SIGBUS)"))
        if v.proc.poll() is None:
            send_sigbus(v, 0, BUS_MCEERR_AO, hva)
        rc = wait_exit(v.proc)
        err = v.stop()
        check("vanilla: the same memory error kills QEMU (%s)" %
              (signal.Signals(-rc).name if rc and rc < 0 else rc),
              rc in (-signal.SIGBUS, -signal.SIGABRT), "%s %s" % (rc, err))
        if rc == -signal.SIGABRT:
            print("info: vanilla's stderr: %s" % err.strip())
    finally:
        v.stop()
        os.unlink(v.ram)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for part in (fork_part, vanilla_part):
            try:
                part(tmp)
            except RuntimeError as e:
                check("%s: the guest answered" % part.__name__, False, e)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
