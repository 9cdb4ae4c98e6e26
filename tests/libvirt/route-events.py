#!/usr/bin/python3
# Debian's python3-libvirt lives in the system interpreter's dist-packages.
"""The router's QMP events through libvirt, seen by a management client.

    route-events.py URI DOMAIN.xml

Registers for EXIT_ROUTE_CHANGED (what `virsh qemu-monitor-event --event
EXIT_ROUTE_CHANGED` does) *before* it creates the domain, so nothing is
missed: the firmware maps the ACPI PM timer and the kernel tier's route
follows it (tier-pm-timer added); then a route added with
exit-route-add through libvirt's QMP pass-through must be announced.
Exits non-zero, saying what is missing, otherwise.
"""
import json
import sys
import threading
import time

import libvirt
import libvirt_qemu


def main(uri, xml_path):
    libvirt.virEventRegisterDefaultImpl()
    conn = libvirt.open(uri)
    seen = []
    lock = threading.Lock()

    def on_event(_conn, dom, event, _sec, _usec, details, _opaque):
        with lock:
            seen.append((dom.name(), event, json.loads(details or "{}")))

    libvirt_qemu.qemuMonitorEventRegister(conn, None, "EXIT_ROUTE_CHANGED",
                                          on_event, None, 0)

    def run_loop():
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run_loop, daemon=True).start()

    def wait_for(route, added, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                if any(d.get("id") == route and d.get("added") == added
                       for _, _, d in seen):
                    return True
            time.sleep(0.1)
        return False

    dom = conn.createXML(open(xml_path).read(), 0)
    ok = True
    try:
        if not wait_for("tier-pm-timer", True):
            print("FAIL: no EXIT_ROUTE_CHANGED for tier-pm-timer while the "
                  "firmware set the guest up")
            ok = False
        cmd = {"execute": "exit-route-add",
               "arguments": {"id": "libvirt-probe", "event": "pio",
                             "start": 0x3f8, "size": 8, "handler": "log"}}
        libvirt_qemu.qemuMonitorCommand(dom, json.dumps(cmd), 0)
        if not wait_for("libvirt-probe", True, 10):
            print("FAIL: no EXIT_ROUTE_CHANGED for a route added over QMP")
            ok = False
    finally:
        dom.destroy()
    with lock:
        for name, event, data in seen:
            print("event %s on %s: %s" % (event, name, json.dumps(data)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
