#!/usr/bin/env bash
# Makes a disk image a BIOS boots with a real bootloader (issue 14, boot paths 2 and 3):
# an MBR partition table (sfdisk) with one active FAT partition from sector 2048, Syslinux's
# MBR boot code (syslinux-common's mbr.bin) in the first 440 bytes, Syslinux installed in the
# partition's boot sector (the mtools `syslinux` installer, so no loop mount or root is needed),
# and the given files plus syslinux.cfg copied into the partition with mcopy.
# The configuration sends the bootloader's own console to COM1 (SERIAL 0 115200).
#
# Usage: scripts/make-boot-disk.sh IMAGE CONFIG FILE...
#   IMAGE   the raw image to write (64 MiB); `qemu-img convert -O qcow2` makes a qcow2 of it
#   CONFIG  the syslinux.cfg to install (the files are at the partition's root by their names)
#   FILE    files to copy to the partition's root: kernels, initrds, COM32 modules (mboot.c32
#           and libcom32.c32 from /usr/lib/syslinux/modules/bios for a Multiboot kernel)
# Needs Debian's syslinux, syslinux-common, mtools, fdisk and dosfstools (scripts/install-deps.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 IMAGE CONFIG FILE..." >&2
    exit 1
fi
image=$1
config=$2
shift 2
mbr=/usr/lib/syslinux/mbr/mbr.bin
export PATH="$PATH:/usr/sbin:/sbin" # sfdisk and mkfs.fat, for users whose PATH lacks sbin
for tool in sfdisk mkfs.fat syslinux mcopy; do
    command -v "$tool" >/dev/null || { echo "make-boot-disk: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[ -f "$mbr" ] || { echo "make-boot-disk: $mbr is missing (syslinux-common)" >&2; exit 1; }

size_mib=64
start=2048 # the partition's first sector
part_sectors=$(( (size_mib << 11) - start ))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The partition on its own first, then placed into the disk.
part="$tmp/part.img"
mkfs.fat -F 16 -n STRATA -C "$part" $((part_sectors / 2)) >/dev/null
syslinux --install "$part"
cp "$config" "$tmp/syslinux.cfg"
mcopy -i "$part" "$tmp/syslinux.cfg" ::/syslinux.cfg
for f in "$@"; do
    mcopy -i "$part" "$f" "::/$(basename "$f")"
done

rm -f "$image"
truncate -s "${size_mib}M" "$image"
# One FAT16 (LBA) partition, active: Syslinux's MBR code chain-loads the active partition.
echo "start=$start, size=$part_sectors, type=e, bootable" | sfdisk -q --label dos "$image" >/dev/null
dd if="$mbr" of="$image" bs=440 count=1 conv=notrunc status=none
dd if="$part" of="$image" bs=512 seek="$start" conv=notrunc status=none
