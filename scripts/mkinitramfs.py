#!/usr/bin/env python3
"""Write a gzip'd newc cpio initramfs from (archive path, host file) pairs.

Deterministic: fixed mtimes, uid/gid 0, sorted entries, so the same inputs
give the same bytes.  Usage:
  mkinitramfs.py OUT.cpio.gz init=guest/init bin/busybox=/path/busybox
"""
import gzip
import os
import sys


def entry(name, mode, data=b"", ino=1):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08x" % v for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out = hdr.encode() + name_b
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out, pairs = argv[1], [a.split("=", 1) for a in argv[2:]]
    files = {}
    for dst, src in pairs:
        with open(src, "rb") as f:
            files[dst] = f.read()
    dirs = {"dev", "proc", "sys", "bin", "sbin", "tmp", "usr", "usr/bin",
            "usr/sbin"}
    for dst in files:
        parts = dst.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    blob = b""
    ino = 1
    for d in sorted(dirs):
        blob += entry(d, 0o040755, ino=ino)
        ino += 1
    for dst in sorted(files):
        blob += entry(dst, 0o100755, files[dst], ino=ino)
        ino += 1
    blob += entry("TRAILER!!!", 0)
    with open(out + ".tmp", "wb") as f:
        f.write(gzip.compress(blob, mtime=0))
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv)
