#!/usr/bin/env python3
"""Inter-VM messages: the ivq copy path (both doorbells) against QEMU's
ivshmem with its doorbell, 64 B to 2 MiB.

The bench guest (bench/guest/bench.c, modes ivq= and ivshmem=) sends
messages to itself, one at a time, and times each round of n messages
with the TSC; a message is done when the guest's interrupt handler has
seen its MSI-X interrupt and the guest has checked it:

  ivq_exit     copy the payload from guest memory into the send area,
               DB_EXIT (QEMU copies it into the receive queue during the
               MMIO write and rings the queue's doorbell eventfd), the
               main loop raises INT_RX (MSI-X); the guest clears INT_RX,
               checks the record at the queue's head, writes RX_POP.
  ivq_noexit   the same with DB_NOEXIT: an ioeventfd, the send itself
               runs in the main loop.
  ivq_noexit_iothread  the same, the device's iothread serving the
               ioeventfd (-object iothread, iothread=; the send takes the
               BQL there).
  ivshmem      QEMU's ivshmem-doorbell (one vector, a server written
               here in Python: the protocol of docs/specs/ivshmem-spec.rst):
               copy the payload into the shared memory after a small
               descriptor, ring the Doorbell register with the device's
               own IVPosition, wait for the MSI-X interrupt, check.  No
               copy by QEMU: the receiver reads what the sender wrote.
               Run on the fork and on the vanilla twin, paired.

Every message crosses one VMM (one VM sends to itself): the path through
QEMU without a second VM.  µs per message is that one-way latency (send,
delivery, notification, check); messages/s its inverse (one message in
flight).  Each repetition runs every (build, mode) for each size back to
back; reported: the median over repetitions of each run's median round,
[min, max] over repetitions, and paired ratios.

  bench/ivq.py [--reps 3] [--sizes 64,1024,...] [--n N] [--markdown OUT.md]
  bench/ivq.py --pair ...  between two VMs: the sender (peer 1) sends
                           each message to an echo VM (peer 0), which
                           answers with a 4-byte ack; µs per round trip
  bench/ivq.py --flip ...  copy against page flip against the automatic
                           choice (flip-threshold=never, 4096, auto), the
                           payload on a page of the send area (ivqoff=4064)
                           so that it can flip, DB_EXIT, one VM; and ivshmem
  bench/ivq.py --smoke     each mode on the fork once, 64 B and 64 KiB, a
                           few messages (tests/boot/test-bench-guest.sh)
"""
import argparse
import datetime
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as bench_run  # noqa: E402
from benchstats import paired  # noqa: E402

GUEST = os.environ.get("QT_BENCH_GUEST", os.path.join(
    bench_run.BUILD, "tiers", "bench", "bench-guest.elf"))
BROKER = os.environ.get("QT_IVQ_BROKER", os.path.join(
    bench_run.BUILD, "tiers", "hw", "ivq", "broker", "ivq-broker"))
SIZES = [64, 1024, 4096, 65536, 262144, 2 * 1024 * 1024]
ROUNDS = 11
MODES = ["ivq_exit", "ivq_noexit", "ivq_noexit_iothread", "ivshmem"]
# --flip: DB_EXIT with a flip-threshold, the record at FLIP_OFF
FLIP_MODES = {"ivq_exit_copy": "never", "ivq_exit_flip": "4096",
              "ivq_exit_auto": "auto"}
FLIP_OFF = 4096 - 32
LINE_RE = re.compile(r"^BENCH workload=(\S+) cpus=1 n=(\d+) cycles=([\d.]+) "
                     r"min=([\d.]+) size=(\d+) bad=(\d+)")


def pow2_at_least(n):
    p = 4096
    while p < n:
        p *= 2
    return p


def ivq_geometry(size, off=0):
    """(send-size, queue-size): the smallest the device takes for @size
    (a message is at most half the queue less a header).  A small queue
    wraps within the warm-up round: each first write into a page of the
    queue (a memfd mapped shared) is a page fault, several µs on this
    nested host, which an 8 MiB queue for 64-byte messages would charge
    to every measured message."""
    return pow2_at_least(off + size + 32), pow2_at_least(2 * (size + 32))


# ivshmem's shared memory: the smallest power of two for the size and
# the guest's 64-byte descriptor, like ivq's send area.  (Under TCG the
# guest's stores into a window of 4 MiB or more cost ~20x those into a
# small one, for both devices: sizing both windows alike keeps that out
# of the comparison, except at 2 MiB, where both are large.)

def msgs_per_round(size):
    """Messages per round: ~5-20 ms a round under TCG."""
    if size <= 4096:
        return 200
    if size <= 65536:
        return 50
    if size <= 262144:
        return 12
    return 2


class IvshmemServer:
    """An ivshmem server for @clients clients, ids 0, 1, ... in the order
    they connect (docs/specs/ivshmem-spec.rst): to each new client the
    protocol version, its id, the shared memory, every earlier peer's id
    and interrupt eventfd (one vector), then its own; to each earlier
    peer, the new client's id and eventfd."""

    def __init__(self, path, size, clients=1):
        self.path = path
        self.mem = os.memfd_create("ivshmem-bench")
        os.ftruncate(self.mem, size)
        self.clients = clients
        self.peers = []             # (connection, eventfd), by id
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(clients)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for own_id in range(self.clients):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            efd = os.eventfd(0, os.EFD_NONBLOCK)
            conn.sendall(struct.pack("<q", 0))          # version
            conn.sendall(struct.pack("<q", own_id))     # the client's id
            socket.send_fds(conn, [struct.pack("<q", -1)], [self.mem])
            for peer_id, (peer, peer_efd) in enumerate(self.peers):
                socket.send_fds(conn, [struct.pack("<q", peer_id)],
                                [peer_efd])
                socket.send_fds(peer, [struct.pack("<q", own_id)], [efd])
            socket.send_fds(conn, [struct.pack("<q", own_id)], [efd])
            self.peers.append((conn, efd))

    def close(self):
        self.sock.close()
        for conn, efd in self.peers:
            conn.close()
            os.close(efd)
        os.close(self.mem)
        os.unlink(self.path)


class IvqBroker:
    """ivq-broker on a socket in @tmp."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "ivq.sock")
        if os.path.exists(self.path):
            os.unlink(self.path)    # a killed broker's: not a live one
        self.proc = subprocess.Popen([BROKER, "-s", self.path, "-q"])
        deadline = time.monotonic() + 10
        while not os.path.exists(self.path):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("ivq-broker did not start")
            time.sleep(0.01)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def vm_cmd(which, accel, mode, size, path, name="bench"):
    """A bench guest VM with @mode's device, connected to @path; its
    -append is the caller's."""
    cmd = [bench_run.qemu_binary(which), "-machine", "pc", "-accel", accel,
           "-smp", "1", "-m", "64", "-nodefaults", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", GUEST,
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    if mode == "ivshmem":
        return cmd + ["-chardev", "socket,id=ivs,path=" + path,
                      "-device", "ivshmem-doorbell,chardev=ivs,vectors=1"]
    flip = FLIP_MODES.get(mode)
    dev = "ivq,chardev=brk,name=%s,send-size=%d,queue-size=%d" \
        % ((name,) + ivq_geometry(size, FLIP_OFF if flip else 0))
    if flip:
        dev += ",flip-threshold=" + flip
    if mode == "ivq_noexit_iothread":
        cmd += ["-object", "iothread,id=ivqio"]
        dev += ",iothread=ivqio"
    return cmd + ["-chardev", "socket,id=brk,path=" + path, "-device", dev]


def ivq_doorbell(mode):
    return mode.split("_")[1]           # exit, noexit


def guest_result(proc, which, mode, size, timeout):
    """(median cycles, min cycles) from the guest's BENCH line."""
    result, lines = None, []
    deadline = time.monotonic() + timeout
    # A guest waiting in HLT prints nothing when nothing comes: the
    # watchdog ends its output at the deadline.
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    for line in proc.stdout:
        line = line.strip()
        lines.append(line)
        m = LINE_RE.match(line)
        if m:
            if int(m.group(6)):
                raise RuntimeError("%s %s %d: %s messages corrupt"
                                   % (which, mode, size, m.group(6)))
            result = (float(m.group(3)), float(m.group(4)))
        if line == "BENCH-DONE" or line.startswith("BENCH-ERROR") or \
                time.monotonic() > deadline:
            break
    watchdog.cancel()
    if result is None:
        raise RuntimeError("%s %s size %d: no result; output:\n%s"
                           % (which, mode, size, "\n".join(lines[-10:])))
    return result


def stop(*procs):
    for p in procs:
        if p:
            p.kill()
            p.wait()


def run_once(which, accel, mode, size, n, rounds, tmp, timeout=300,
             copy=True):
    """One guest run: (median cycles, min cycles) per message."""
    server = broker = proc = None
    if mode == "ivshmem":
        path = os.path.join(tmp, "ivshmem.sock")
        server = IvshmemServer(path, pow2_at_least(size + 64))
        guest = "ivshmem=%d" % size
    else:
        broker = IvqBroker(tmp)
        path = broker.path
        guest = "ivq=%d ivqdb=%s" % (size, ivq_doorbell(mode))
        if mode in FLIP_MODES:
            guest += " ivqoff=%d" % FLIP_OFF
    if not copy:
        guest += " ivmsgcopy=0"
    cmd = vm_cmd(which, accel, mode, size, path) + [
        "-append", "n=%d rounds=%d only=ivmsg %s" % (n, rounds, guest)]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True)
        return guest_result(proc, which, mode, size, timeout)
    finally:
        stop(proc)
        for x in (server, broker):
            if x:
                x.close()


def run_pair(which, accel, mode, size, n, rounds, tmp, timeout=300):
    """Two VMs: an echo VM that answers each message with a 4-byte ack,
    started first (peer 0), and a VM that sends @size bytes to it and
    waits for the ack (peer 1).  (median cycles, min cycles) per round
    trip, read off the sender."""
    server = broker = echo = proc = None
    if mode == "ivshmem":
        path = os.path.join(tmp, "ivshmem.sock")
        server = IvshmemServer(path, pow2_at_least(size + 64), clients=2)
        echo_guest = "ivshmem=%d ivshmemecho=1" % size
        guest = "ivshmem=%d ivshmemdest=0" % size
    else:
        broker = IvqBroker(tmp)
        path = broker.path
        db = ivq_doorbell(mode)
        echo_guest = "ivq=%d ivqdb=%s ivqecho=1" % (size, db)
        guest = "ivq=%d ivqdb=%s ivqdest=0 ivqack=1" % (size, db)
    try:
        echo = subprocess.Popen(
            vm_cmd(which, accel, mode, size, path, "echo") +
            ["-append", "only=ivmsg ivmsgwait=hlt " + echo_guest],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True)
        watchdog = threading.Timer(60, echo.kill)
        watchdog.daemon = True
        watchdog.start()
        line = "(no output)"
        for line in echo.stdout:
            if "-ECHO ready" in line or "BENCH-ERROR" in line:
                break
        watchdog.cancel()
        if "-ECHO ready" not in line:
            raise RuntimeError("%s %s echo VM: %s" % (which, mode, line))
        # The echo VM's output is not read from here on: a thread drains
        # it so that its reports never block it.
        threading.Thread(target=echo.stdout.read, daemon=True).start()
        proc = subprocess.Popen(
            vm_cmd(which, accel, mode, size, path, "send") +
            ["-append", "n=%d rounds=%d only=ivmsg ivmsgwait=hlt %s"
             % (n, rounds, guest)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True)
        return guest_result(proc, which, mode, size, timeout)
    finally:
        stop(proc, echo)
        for x in (server, broker):
            if x:
                x.close()


PAIR_SETUP = ("Two VMs (run_pair): an echo VM started first, then the "
              "sender; both wait for interrupts in HLT (ivmsgwait=hlt) so "
              "that a waiting VM frees its host CPU; the echo answers "
              "each message with a 4-byte ack (ivq: a message to the "
              "stamped sender; ivshmem: a doorbell), the sender times "
              "send to ack")


def smoke():
    """Each mode works on the fork: messages arrive, intact; between two
    VMs too (the echo's acks come back with the right numbers)."""
    fail = 0
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            for size in (64, 65536):
                try:
                    run_once("fork", "tcg", mode, size, 5, 1, tmp, 60)
                    print("ok: bench guest %s, %s" % (mode, fmt_size(size)))
                except RuntimeError as e:
                    print("FAIL: bench guest %s, %s: %s"
                          % (mode, fmt_size(size), e))
                    fail = 1
            try:
                run_pair("fork", "tcg", mode, 4096, 5, 1, tmp, 60)
                print("ok: two bench guests %s, 4 KiB and its ack" % mode)
            except RuntimeError as e:
                print("FAIL: two bench guests %s: %s" % (mode, e))
                fail = 1
        # Flipped records come after pads that the guest must skip.
        for size in (4096, 65536):
            try:
                run_once("fork", "tcg", "ivq_exit_flip", size, 40, 1, tmp, 60)
                print("ok: bench guest ivq_exit_flip, %s" % fmt_size(size))
            except RuntimeError as e:
                print("FAIL: bench guest ivq_exit_flip, %s: %s"
                      % (fmt_size(size), e))
                fail = 1
    return fail


def fmt_size(size):
    if size >= 1 << 20:
        return "%d MiB" % (size >> 20)
    if size >= 1024:
        return "%d KiB" % (size >> 10)
    return "%d B" % size


def spread(xs, fmt="%.1f"):
    return (fmt + " [" + fmt + ", " + fmt + "]") % (
        statistics.median(xs), min(xs), max(xs))


def setup_lines(args, sizes, ghz, what):
    """The machine, the date and how many runs of how many messages,
    then @what: how this table was measured."""
    return ["Machine: %s; TSC %.3f GHz" % (bench_run.describe_machine(),
                                          ghz),
            "Date: %s; %d repetitions; each run: %d rounds of n messages "
            "(n: %s) after a warm-up round.  %s"
            % (datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
               args.reps, args.rounds, ", ".join(
                   "%d at %s" % (args.n or msgs_per_round(z), fmt_size(z))
                   for z in sizes), what), ""]


def flip_main(args, sizes, ghz, accels):
    """--flip: copy, flip and the automatic choice, one VM, DB_EXIT; and
    ivshmem (vanilla) for scale.  Paired by repetition."""
    runs = [("fork", m) for m in FLIP_MODES] + [("vanilla", "ivshmem")]
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for accel in accels:
                for size in sizes:
                    for which, mode in runs:
                        r = run_once(which, accel, mode, size,
                                     args.n or msgs_per_round(size),
                                     args.rounds, tmp)
                        res.setdefault((accel, size, mode), []).append(
                            r[0] / ghz / 1000)
                    print("rep %d %s %s: %s" % (
                        rep + 1, accel, fmt_size(size), " ".join(
                            "%s %.2f us" % (m, res[(accel, size, m)][-1])
                            for _, m in runs)), flush=True)
    lines = setup_lines(
        args, sizes, ghz, "One VM sending to itself, DB_EXIT, the guest "
        "copying each payload into the send area at offset %d (the payload "
        "on a page, so it can flip).  copy: flip-threshold=never; flip: "
        "4096; auto: measured at start-up.  µs per message: median over "
        "repetitions of each run's median round [min, max]; ratios paired "
        "by repetition." % (FLIP_OFF + 32))
    for accel in accels:
        lines += ["### %s, copy against page flip" % accel.upper(), "",
                  "| size | copy µs | flip µs | auto µs | ivshmem (vanilla) "
                  "µs | flip / copy | auto / better of the two | copy / "
                  "ivshmem |", "|---|---|---|---|---|---|---|---|"]
        worst = 0.0
        for size in sizes:
            c, f, a, v = (res[(accel, size, m)] for m in
                          ("ivq_exit_copy", "ivq_exit_flip", "ivq_exit_auto",
                           "ivshmem"))
            best = [min(x, y) for x, y in zip(c, f)]
            cells = []
            for x, y in ((f, c), (a, best), (c, v)):
                med, _, rs = paired(x, y)
                cells.append("%.2f [%.2f, %.2f]" % (med, min(rs), max(rs)))
            worst = max(worst, paired(a, best)[0])
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                fmt_size(size), spread(c), spread(f), spread(a), spread(v),
                " | ".join(cells)))
        lines += ["", "Goal (auto never more than 5 %% slower than the "
                  "better of copy and flip): worst paired median %.2f: %s."
                  % (worst, "met" if worst <= 1.05 else "not met")]
        if 2 * 1024 * 1024 in sizes:
            med = paired(res[(accel, 2 << 20, "ivq_exit_copy")],
                         res[(accel, 2 << 20, "ivq_exit_flip")])[0]
            lines.append("Goal (flip at 2 MiB at least 2x faster than "
                         "copy): copy / flip %.2f: %s." % (
                             med, "met" if med >= 2 else "not met"))
        lines.append("")
    if "kvm" not in accels:
        lines.append("KVM: skipped (/dev/kvm absent on this machine).")
    bench_run.report(lines, args.markdown)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--n", type=int, help="messages per round (default: "
                    "by size)")
    ap.add_argument("--markdown")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--pair", action="store_true",
                    help="two VMs: round trips to an echo VM (run_pair)")
    ap.add_argument("--flip", action="store_true",
                    help="copy against page flip against auto (flip_main)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.smoke:
        return smoke()

    ghz = bench_run.host_tsc_ghz()
    accels = ["tcg"]
    kvm = os.access("/dev/kvm", os.W_OK)
    if kvm:
        accels.append("kvm")
    if args.flip:
        return flip_main(args, sizes, ghz, accels)
    # (accel, variant, size, which, mode) -> [(median, min) cycles per rep]
    res = {}
    variants = ["copy"] if args.pair else ["copy", "inplace"]
    runner = run_pair if args.pair else run_once
    runs = [("vanilla", "ivshmem"), ("fork", "ivshmem"),
            ("fork", "ivq_exit"), ("fork", "ivq_noexit"),
            ("fork", "ivq_noexit_iothread")]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for accel in accels:
                for var in variants:
                    for size in sizes:
                        for which, mode in runs:
                            kw = {} if args.pair else {"copy": var == "copy"}
                            r = runner(which, accel, mode, size,
                                       args.n or msgs_per_round(size),
                                       args.rounds, tmp, **kw)
                            res.setdefault((accel, var, size, which, mode),
                                           []).append(r)
                        print("rep %d %s %s %s: %s" % (
                            rep + 1, accel, var, fmt_size(size), " ".join(
                                "%s/%s %.2f us" % (
                                    w, m, res[(accel, var, size, w, m)]
                                    [-1][0] / ghz / 1000)
                                for w, m in runs)), flush=True)

    def us(key):
        return [c[0] / ghz / 1000 for c in res[key]]

    lines = setup_lines(
        args, sizes, ghz, "Each repetition runs every (build, mode) for "
        "each size back to back.  %s, TCG, 1 vCPU, pc.  µs per message: "
        "the median over repetitions of each run's median round [min, max "
        "over repetitions]; messages/s from the median.  ivq send area + "
        "queue: the smallest powers of two that take the size (%s); "
        "ivshmem's shared memory: likewise (size + 64)."
        % (PAIR_SETUP if args.pair else "One VM sending to itself",
           ", ".join("%s: %s + %s" % (fmt_size(z),
                                       fmt_size(ivq_geometry(z)[0]),
                                       fmt_size(ivq_geometry(z)[1]))
                     for z in sizes)))
    titles = {"copy": "the guest copies each payload from its own memory "
                      "into the window",
              "inplace": "the payload is built in the window (the guest "
                         "writes its first and last words only): the "
                         "transport alone"}
    if args.pair:
        titles["copy"] += "; two VMs, a round trip (the size one way, " \
            "a 4-byte ack back)"
    for accel, var in [(a, v) for a in accels for v in variants]:
        lines += ["### %s, %s" % (accel.upper(), titles[var]), "",
                  "| size | ivq DB_EXIT µs | ivq DB_NOEXIT µs | DB_NOEXIT, "
                  "iothread µs | ivshmem (fork) µs | ivshmem (vanilla) µs | "
                  "msgs/s exit / noexit / ivshmem | noexit / ivshmem "
                  "(paired) | iothread / ivshmem (paired) | exit / ivshmem "
                  "(paired) | ivshmem fork / vanilla (paired) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for size in sizes:
            e = us((accel, var, size, "fork", "ivq_exit"))
            ne = us((accel, var, size, "fork", "ivq_noexit"))
            nio = us((accel, var, size, "fork", "ivq_noexit_iothread"))
            sf = us((accel, var, size, "fork", "ivshmem"))
            sv = us((accel, var, size, "vanilla", "ivshmem"))
            rates = " / ".join("%.0f" % (1e6 / statistics.median(x))
                               for x in (e, ne, sf))
            ratios = []
            for a, b in ((ne, sf), (nio, sf), (e, sf), (sf, sv)):
                med, _, rs = paired(a, b)
                ratios.append("%.2f [%.2f, %.2f]" % (med, min(rs), max(rs)))
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                fmt_size(size), spread(e), spread(ne), spread(nio),
                spread(sf), spread(sv), rates, " | ".join(ratios)))
        lines.append("")
        for mode, where in (("ivq_noexit", "main loop"),
                            ("ivq_noexit_iothread", "iothread")):
            if 64 not in sizes:
                break
            med, _, rs = paired(us((accel, var, 64, "fork", mode)),
                                us((accel, var, 64, "fork", "ivshmem")))
            lines.append("Goal (64 B latency, DB_NOEXIT no worse "
                         "than ivshmem), sends in the %s: %.2f [%.2f, "
                         "%.2f]: %s." % (where, med, min(rs), max(rs),
                                         "met" if med <= 1.0 else "not met"))
        lines.append("")
    if not kvm:
        lines.append("KVM: skipped (/dev/kvm absent on this machine).")
    bench_run.report(lines, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
