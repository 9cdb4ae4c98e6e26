#!/usr/bin/env python3
"""A minimal QMP client for our scripts (no dependency on QEMU's python/).

  qmp.py SOCKET wait-shutdown [TIMEOUT]   wait until the guest has shut down
  qmp.py SOCKET profile [N]               print the exit profile (top N)
  qmp.py SOCKET quit
  qmp.py SOCKET COMMAND [JSON-ARGS]       run one command, print the reply
"""
import json
import socket
import sys
import time


class QMP:
    def __init__(self, path, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.file = self.sock.makefile("rw")
        self.events = []                        # unclaimed, oldest first
        self._read()                            # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.file.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg
            self.events.append(msg)

    def wait_event(self, name, timeout=10.0):
        """The oldest unclaimed event @name, waiting up to @timeout s for
        it; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                line = self.file.readline()
            except (socket.timeout, OSError):
                return None
            finally:
                self.sock.settimeout(None)
            if not line:
                return None
            msg = json.loads(line)
            if "event" in msg:
                self.events.append(msg)

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        rsp = self._read()
        if "error" in rsp:
            raise RuntimeError("%s: %s" % (name, rsp["error"]["desc"]))
        return rsp["return"]


# The profile routes of scripts/run-guest.sh that cover the ports of the
# kernel tier's devices (PIT, PIC pair and ELCR, i8042, PM timer, 0x61,
# 0x80).
TIER_DEVICE_ROUTES = {"pit", "port61", "kbd-data", "kbd-cmd", "pic1", "pic2",
                      "elcr", "port80", "pm-timer"}


def profile(q, top):
    stats = [s for s in q.cmd("query-exit-stats") if s["count"]]
    total = sum(s["count"] for s in stats) or 1
    print("== exit profile: %d exits that reached QEMU (port I/O, MMIO, "
          "MSR)" % total)
    inline = sum(s["count"] for s in stats if s["id"].startswith("tier-"))
    # run-guest.sh's per-device routes below the tier's: what the tier's
    # devices left to QEMU's models (declined, or not served inline yet).
    left = sum(s["count"] for s in stats if s["id"] in TIER_DEVICE_ROUTES)
    print("   served inline by the kernel tier (tier-* routes): %d, %.1f%% "
          "of all exits, %.1f%% of the accesses to its devices' ports"
          % (inline, 100.0 * inline / total,
             100.0 * inline / max(inline + left, 1)))
    for key, label in (("count", "by count"), ("time-ns", "by time")):
        print("   top %s:" % label)
        print("   %-14s %10s %6s %12s %9s" % ("route", "count", "share",
                                             "time-ns", "ns/exit"))
        for s in sorted(stats, key=lambda s: -s[key])[:top]:
            print("   %-14s %10d %5.1f%% %12d %9d"
                  % (s["id"], s["count"], 100.0 * s["count"] / total,
                     s["time-ns"], s["time-ns"] // max(s["count"], 1)))


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    q = QMP(argv[1])
    what = argv[2]
    if what == "wait-shutdown":
        deadline = time.monotonic() + float(argv[3] if len(argv) > 3 else 600)
        while q.cmd("query-status")["status"] != "shutdown":
            if time.monotonic() > deadline:
                sys.exit("guest did not shut down in time")
            time.sleep(0.2)
    elif what == "profile":
        profile(q, int(argv[3]) if len(argv) > 3 else 8)
    elif what == "quit":
        try:
            q.cmd("quit")
        except EOFError:
            pass
    else:
        args = json.loads(argv[3]) if len(argv) > 3 else {}
        print(json.dumps(q.cmd(what, **args), indent=2))


if __name__ == "__main__":
    main(sys.argv)
