#!/usr/bin/env bash
# Install the libvirt examples of docs/libvirt/ with real paths into
# build/libvirt/, and the configuration of an embedded libvirt QEMU
# driver whose root is build/libvirt/embed (no daemon, no system state):
#   virsh -c 'qemu:///embed?root=build/libvirt/embed' ...
# Run by `make` (target libvirt-examples) and by tests/libvirt/.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$BUILD/libvirt
emulator=$BUILD/qemu-fork/qemu-system-x86_64
mkdir -p "$out/embed/etc"
for x in "$TOP"/docs/libvirt/*.xml; do
    n=$(basename "$x" .xml)
    sed -e "s#@EMULATOR@#$emulator#g" -e "s#@GUEST@#$BUILD/guest#g" \
        -e "s#@LOG@#$out/$n.serial.log#g" "$x" > "$out/$n.xml.tmp"
    mv "$out/$n.xml.tmp" "$out/$n.xml"
done
# The embedded driver runs QEMU as root with no security driver, cgroups
# or namespaces (containers and CI machines have no systemd to ask), and
# writes QEMU's stderr to a file instead of asking virtlogd.
cat > "$out/embed/etc/qemu.conf" <<'CONF'
# written by scripts/libvirt-examples.sh
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
say "libvirt examples in ${out#"$TOP"/}: $(cd "$out" && ls ./*.xml | tr '\n' ' ')"
