#!/usr/bin/env bash
# Fetch the guest (Debian 12 kernel + busybox-static, pinned and
# sha256-checked) and build build/guest/{vmlinuz,initramfs.cpio.gz}.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=$BUILD/guest
mkdir -p "$out"
kdeb=$(fetch_deb "$GUEST_KERNEL_PKG" "$GUEST_KERNEL_VERSION" "$GUEST_KERNEL_SHA256" "$DL")
bdeb=$(fetch_deb "$BUSYBOX_PKG" "$BUSYBOX_VERSION" "$BUSYBOX_SHA256" "$DL")

if [ ! -f "$out/vmlinuz" ] || [ "$kdeb" -nt "$out/vmlinuz" ]; then
    say "extracting kernel $GUEST_KERNEL_RELEASE"
    rm -rf "$out/kernel.tmp"
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$out" --transform 's,.*/,kernel.tmp/,' \
        "./boot/vmlinuz-$GUEST_KERNEL_RELEASE" || die "no vmlinuz-$GUEST_KERNEL_RELEASE in $kdeb"
    mv "$out/kernel.tmp/vmlinuz-$GUEST_KERNEL_RELEASE" "$out/vmlinuz"
    touch "$out/vmlinuz"
    rmdir "$out/kernel.tmp"
fi
if [ ! -f "$out/busybox" ] || [ "$bdeb" -nt "$out/busybox" ]; then
    dpkg-deb --fsys-tarfile "$bdeb" | tar -xO ./bin/busybox > "$out/busybox.tmp" ||
        die "no bin/busybox in $bdeb"
    mv "$out/busybox.tmp" "$out/busybox"
fi
if [ ! -f "$out/initramfs.cpio.gz" ] || [ "$TOP/guest/init" -nt "$out/initramfs.cpio.gz" ] ||
   [ "$out/busybox" -nt "$out/initramfs.cpio.gz" ]; then
    say "building initramfs"
    python3 "$TOP/scripts/mkinitramfs.py" "$out/initramfs.cpio.gz" \
        "init=$TOP/guest/init" "bin/busybox=$out/busybox"
fi
