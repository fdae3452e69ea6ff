#!/usr/bin/env bash
# Installs the Debian packages Strata's tests need, when they are missing (one list, used by
# scripts/test.sh and .ci/run):
#   cmake, make, gcc   the `c99` crate's build script (a dependency of softfloat-sys, which the
#                      testfloat benchmarks and property tests compare against) runs CMake and make
#   g++                libFuzzer's C++ sources, built by libfuzzer-sys for scripts/fuzz-brief.sh
#   musl-tools         musl-gcc, for the musl half of the program corpus (conformance/tests/programs.rs)
#   busybox-static     /bin/busybox, run natively and under strata (conformance/tests/busybox.rs) and
#                      put in the test guest's initramfs
#   xz-utils, cpio     the test guest (scripts/build-guest.sh)
#   gdb                the reference debugger of the gdb stub tests (conformance/tests/gdb.rs)
#   strace             the reference for strata user's system-call events (conformance/tests/trace.rs)
#   e2fsprogs          mke2fs -d, debugfs, e2fsck: the disk tests' ext4 images (conformance/tests/disk.rs)
#   qemu-utils         qemu-img: makes, checks and compares the disk tests' qcow2 images
#   qemu-system-x86    QEMU as a peer: the test kernels and the SeaBIOS boot also run under
#                      `qemu-system-x86_64 -accel tcg` (conformance/tests/{kernels,bios_boot}.rs)
#   acpica-tools       iasl, which disassembles Strata's ACPI tables (conformance/tests/acpi_tables.rs)
#   seabios, qemu-system-data   bios-256k.bin and QEMU's linuxboot_dma.bin: the guest boot through
#                      SeaBIOS (conformance/tests/bios_boot.rs, scripts/firmware-bench.sh)
#   syslinux, syslinux-common, mtools, fdisk, dosfstools   issue 14's disk boots: an MBR disk
#                      with Syslinux made by scripts/make-boot-disk.sh (conformance/tests/bios_boot.rs)
# Usage: scripts/install-deps.sh [--guest] [--aarch64]
#   --guest    also make sure apt's package lists are present, which scripts/build-guest.sh needs
#              (it downloads Debian's kernel and busybox-static with `apt-get download`), the
#              i386 ones included (dpkg --add-architecture i386, for build-guest.sh --i386)
#   --aarch64  also what CI's aarch64 corpus run needs: qemu-user and the aarch64 cross C library
# Packages are installed with apt-get when the user is root or `sudo -n` works; otherwise one
# line names the missing packages and the script exits 1.
set -euo pipefail

guest=no
aarch64=no
for arg in "$@"; do
    case "$arg" in
        --guest) guest=yes ;;
        --aarch64) aarch64=yes ;;
        *) echo "install-deps: unknown option $arg (use --guest, --aarch64)" >&2; exit 1 ;;
    esac
done

# package:command pairs; a package is missing when its command is not on PATH.
checks=(cmake:cmake make:make gcc:gcc g++:g++ musl-tools:musl-gcc xz-utils:xz cpio:cpio gdb:gdb strace:strace e2fsprogs:debugfs qemu-utils:qemu-img qemu-system-x86:qemu-system-x86_64 acpica-tools:iasl)
if [ "$aarch64" = yes ]; then
    checks+=(qemu-user:qemu-aarch64 gcc-aarch64-linux-gnu:aarch64-linux-gnu-gcc)
fi
need=()
for pkg_cmd in "${checks[@]}"; do
    command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || need+=("${pkg_cmd%%:*}")
done
# The tests run /bin/busybox itself (a static binary), not whatever busybox is on PATH.
[ -x /bin/busybox ] || need+=(busybox-static)
# Firmware files, not commands (issue 14: the SeaBIOS boot).
[ -f /usr/share/seabios/bios-256k.bin ] || need+=(seabios)
[ -f /usr/share/qemu/linuxboot_dma.bin ] || need+=(qemu-system-data)
# --- Issue 14, boot from a disk through SeaBIOS and Syslinux (scripts/make-boot-disk.sh) ---
for pkg_cmd in syslinux:syslinux mtools:mcopy fdisk:sfdisk dosfstools:mkfs.fat; do
    command -v "${pkg_cmd#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pkg_cmd#*:}" ] || [ -x "/sbin/${pkg_cmd#*:}" ] \
        || need+=("${pkg_cmd%%:*}")
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || need+=(syslinux-common)
# --- end issue 14 disk boot ---
if [ "$aarch64" = yes ] && [ ! -d /usr/aarch64-linux-gnu/lib ]; then
    need+=(libc6-dev-arm64-cross)
fi
# build-guest.sh resolves linux-image-amd64 through apt's lists, which a fresh image lacks.
lists=yes
if [ "$guest" = yes ] && ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    lists=no
fi
# --- issue 14, 32-bit guests: build-guest.sh --i386 downloads Debian's i386 packages ---
i386=yes
if [ "$guest" = yes ] && ! apt-cache show linux-image-686-pae:i386 >/dev/null 2>&1; then
    i386=no lists=no
fi
# --- end issue 14 ---
[ ${#need[@]} -eq 0 ] && [ "$lists" = yes ] && exit 0

as_root() {
    if [ "$(id -u)" = 0 ]; then
        env DEBIAN_FRONTEND=noninteractive "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo env DEBIAN_FRONTEND=noninteractive "$@"
    else
        return 1
    fi
}
what="${need[*]:-}"
[ "$lists" = yes ] || what="${what:+$what; }apt package lists (apt-get update)"
if ! command -v apt-get >/dev/null 2>&1 || ! as_root true; then
    echo "install-deps: missing ${what}: install them as root (apt-get update && apt-get install ${need[*]:-}) and run again" >&2
    exit 1
fi
echo "install-deps: installing ${what}"
# QEMU packages come from bookworm-backports on Debian 12 (QEMU 10.0, the version the project's
# figures and peer checks use; bookworm itself has 7.2); elsewhere from the release itself.
qemu=() other=()
for pkg in "${need[@]}"; do
    case "$pkg" in qemu-*) qemu+=("$pkg") ;; *) other+=("$pkg") ;; esac
done
backports=()
if [ ${#qemu[@]} -gt 0 ] && grep -qs '^VERSION_CODENAME=bookworm$' /etc/os-release; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d; then
        printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
            as_root tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
    fi
    backports=(-t bookworm-backports)
fi
[ "$i386" = yes ] || as_root dpkg --add-architecture i386 # issue 14: the i386 guest's packages
as_root apt-get update -qq
if [ ${#other[@]} -gt 0 ]; then
    as_root apt-get install -y -qq "${other[@]}" >/dev/null
fi
if [ ${#qemu[@]} -gt 0 ]; then
    as_root apt-get install -y -qq "${backports[@]}" "${qemu[@]}" >/dev/null
fi
