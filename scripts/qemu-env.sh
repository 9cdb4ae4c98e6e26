# Paths of the two builds and their firmware.  Source it.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# qemu_binary fork|vanilla
qemu_binary() {
    local b=$BUILD/qemu-$1${QT_BUILD_SUFFIX:-}/qemu-system-x86_64
    [ -x "$b" ] || die "no $1 build at ${b#"$TOP"/} (run 'make build')"
    echo "$b"
}

# firmware_dir fork|vanilla: SeaBIOS from Debian, option ROMs from the build.
firmware_dir() {
    local d=$BUILD/firmware-$1 rom f
    rom=$BUILD/qemu-$1${QT_BUILD_SUFFIX:-}/pc-bios/optionrom
    mkdir -p "$d"
    [ -f /usr/share/seabios/bios-256k.bin ] || die "SeaBIOS missing (package seabios; run 'make setup')"
    for f in /usr/share/seabios/*.bin; do
        ln -sf "$f" "$d/"
    done
    for f in linuxboot_dma.bin linuxboot.bin multiboot_dma.bin multiboot.bin kvmvapic.bin pvh.bin; do
        [ -f "$rom/$f" ] || die "option ROM $f was not built in ${rom#"$TOP"/}"
        ln -sf "$rom/$f" "$d/$f"
    done
    echo "$d"
}
