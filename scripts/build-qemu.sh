#!/usr/bin/env bash
# Configure and build QEMU: `build-qemu.sh fork` (qemu/, patched) or
# `build-qemu.sh vanilla` (build/src-vanilla, no patches).  Both use the same
# configure flags; only --with-pkgversion differs, so `--version` tells them
# apart while query-version keeps 10.0.13.  Incremental, and cached by ccache
# through its masquerade directory (QEMU's configure pins the compiler name,
# so meson's own ccache detection does not apply).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

which=${1:?usage: build-qemu.sh fork|vanilla}
case $which in
fork)    src=$TOP/qemu; pkgv="qemu-tiers, Debian $QEMU_SRC_VERSION" ;;
vanilla) src=$BUILD/src-vanilla; pkgv="qemu-tiers vanilla twin, Debian $QEMU_SRC_VERSION" ;;
*) die "build-qemu.sh: unknown build '$which' (expected fork or vanilla)" ;;
esac
out=$BUILD/qemu-$which${QT_BUILD_SUFFIX:-}
[ -x "$src/configure" ] || die "no QEMU source at $src: run scripts/fetch-upstream.sh (make setup)"

# One list for both builds.  QT_CONFIGURE_EXTRA adds flags (e.g. sanitizers)
# to both alike.
flags=(--target-list=x86_64-softmmu --without-default-features
       --enable-kvm --enable-tcg --enable-slirp --enable-fdt=system
       --disable-docs --disable-install-blobs --python=/usr/bin/python3
       "--with-pkgversion=$pkgv")
# shellcheck disable=SC2206
flags+=(${QT_CONFIGURE_EXTRA:-})
key=$(printf '%s\n' "${flags[@]}" | sha256sum | cut -d' ' -f1)

[ -x /usr/lib/ccache/cc ] && export PATH=/usr/lib/ccache:$PATH
# Let a fresh clone elsewhere hit the same cache: paths under the checkout
# are hashed relative to it, and the build directory is not hashed (objects
# from the cache may then carry another clone's path as DW_AT_comp_dir).
export CCACHE_BASEDIR=$TOP CCACHE_NOHASHDIR=true
mkdir -p "$out"
if [ ! -f "$out/build.ninja" ] || [ "$(cat "$out/.qemu-tiers-configure" 2>/dev/null)" != "$key" ]; then
    run_step "configuring $which in ${out#"$TOP"/}" "$out/configure.log" last_line \
        env -C "$out" "$src/configure" "${flags[@]}" ||
        die "configure of $which failed; last lines of ${out#"$TOP"/}/configure.log:
$(tail -n 15 "$out/configure.log")"
    echo "$key" > "$out/.qemu-tiers-configure"
fi
# QT_BUILD_TARGETS: only these ninja targets (and the option ROMs), for
# builds that need a QEMU and a few tests, not the whole tree.
make_qemu() {
    if [ -n "${QT_BUILD_TARGETS:-}" ]; then
        # shellcheck disable=SC2086
        make -C "$out" -j"$(nproc)" pc-bios/optionrom/all &&
            ninja -C "$out" $QT_BUILD_TARGETS
    else
        make -C "$out" -j"$(nproc)"
    fi
}
run_step "building $which" "$out/make.log" ninja_progress make_qemu ||
    die "build of $which failed; last lines of ${out#"$TOP"/}/make.log:
$(grep -E 'error:|FAILED:|Error [0-9]' "$out/make.log" | head -n 20)"
# Our code must build without warnings (QEMU's configure enables -Werror
# only in git checkouts); the log holds what this run compiled.
if grep -E "(accel/route|hw/split|tests/tiers)/[^:]*:[0-9]+:[0-9]+: warning" "$out/make.log" >&2; then
    die "warnings in qemu-tiers code (above); see ${out#"$TOP"/}/make.log"
fi

# Firmware where the build's own data directory is (qemu-bundle, as upstream
# does for its blobs), so every user of the build -- make run, qtests,
# bench, libvirt -- finds it without -L: SeaBIOS from Debian's package, the
# option ROMs this build compiled (linuxboot_dma.bin for -kernel).
datadir=$out/qemu-bundle/usr/local/share/qemu
mkdir -p "$datadir"
[ -f /usr/share/seabios/bios-256k.bin ] || die "SeaBIOS missing (package seabios; run 'make setup')"
for f in /usr/share/seabios/*.bin; do
    ln -sfn "$f" "$datadir/"
done
for f in linuxboot_dma.bin linuxboot.bin multiboot_dma.bin multiboot.bin kvmvapic.bin pvh.bin; do
    [ -f "$out/pc-bios/optionrom/$f" ] ||
        die "option ROM $f was not built (needs gcc-multilib for -m32/-m16; run 'make setup')"
    ln -sfn "../../../../../pc-bios/optionrom/$f" "$datadir/$f"
done
"$out/qemu-system-x86_64" --version | head -n1 >&2
