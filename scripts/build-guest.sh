#!/usr/bin/env bash
# Builds Strata's test guest from Debian packages, reproducibly:
#   OUT/vmlinuz                 Debian's kernel (linux-image-amd64)
#   OUT/initramfs-marker.cpio.gz  busybox-static; /init prints the marker line and powers off
#   OUT/initramfs-shell.cpio.gz   the same, but /init starts an interactive shell on the console
#   OUT/root.qcow2              an ext4 root (busybox-static, made by `mke2fs -d`, converted by
#                               `qemu-img`) whose /sbin/init prints the marker and powers off
# Both carry Debian's virtio-pci, virtio-blk, ext4 and 9p modules from the same kernel package.
# When a virtio PCI device (vendor 0x1af4) is present, /init loads them, mounts /dev/vda at
# /mnt/disk if it holds a filesystem, and runs /strata-run (added by `strata run --run FILE`)
# before the marker; the marker image unmounts the disk before powering off. Given `root=/dev/vda`
# on the kernel command line, /init mounts /dev/vda as the root instead (with /strata-run copied
# to a tmpfs at /run), moves the share mounted at /mnt/share (if any) to the disk's /mnt/share,
# and `switch_root`s to its /sbin/init, which runs /run/strata-run, prints the marker and powers off.
# Usage: scripts/build-guest.sh [--i386] [OUT]   (default build/guest). Needs apt-get (for `download`,
# no root needed for that part), dpkg-deb, gzip, GNU cpio, mke2fs (e2fsprogs) and qemu-img.
# --- issue 14, 32-bit guests ---
# --i386 (default OUT build/guest-i386) builds the same guest from Debian's i386 packages:
# linux-image-686-pae as OUT/vmlinuz (the modules come from it), the non-PAE
# linux-image-686 as OUT/vmlinuz-686, and the i386 busybox-static. apt must know the i386
# architecture (`dpkg --add-architecture i386 && apt-get update`; install-deps.sh --guest does it).
set -euo pipefail
arch=amd64
if [ "${1:-}" = --i386 ]; then arch=i386; shift; fi
out=$(realpath -m "${1:-build/guest$([ $arch = i386 ] && echo -i386)}")
# --- end issue 14 ---
marker="STRATA-GUEST-MARKER: userspace reached"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# --- issue 14, 32-bit guests: the package names per architecture ---
if [ $arch = i386 ]; then kmeta=linux-image-686-pae:i386 bbpkg=busybox-static:i386; else kmeta=linux-image-amd64 bbpkg=busybox-static; fi
kpkg=$(apt-cache depends "$kmeta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve $kmeta (run apt-get update$([ $arch = i386 ] && echo ' after dpkg --add-architecture i386'))" >&2; exit 1; }
apt-get download -q "$kpkg" "$bbpkg" >/dev/null
if [ $arch = i386 ]; then
    # The non-PAE flavour (2-level paging), kernel only: its modules would not load in it.
    npkg=$(apt-cache depends linux-image-686:i386 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    apt-get download -q "$npkg" >/dev/null
    dpkg-deb -x "${npkg%:i386}"_*.deb kernel-686
    cp kernel-686/boot/vmlinuz-* "$out/vmlinuz-686"
    rm -rf kernel-686 "${npkg%:i386}"_*.deb
    kpkg=${kpkg%:i386}
fi
# --- end issue 14 ---
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb bb
cp kernel/boot/vmlinuz-* "$out/vmlinuz"
echo "$kpkg" > "$out/kernel-package"

kver=$(ls kernel/lib/modules)
# Load order: dependencies first (each module's "depends=" in its .modinfo).
modules="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
    drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk
    lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4
    fs/netfs/netfs fs/fscache/fscache net/9p/9pnet net/9p/9pnet_virtio fs/9p/9p"

make_initramfs() { # $1 = name, $2 = what /init does after the marker
    local root="$work/root-$1"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules,mnt/disk,mnt/share}
    cp bb/bin/busybox "$root/bin/busybox"
    for app in sh mount umount echo cat ls poweroff reboot sleep uname dmesg mkdir sha256sum \
        insmod sync fstrim rm cp mv grep dd test touch df head tail wc cmp sed stat; do
        ln -s busybox "$root/bin/$app"
    done
    local list=""
    for m in $modules; do
        cp "kernel/lib/modules/$kver/kernel/$m.ko" "$root/lib/modules/"
        list="$list ${m##*/}"
    done
    cat > "$root/init" <<INIT
#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
if /bin/busybox grep -qs 0x1af4 /sys/bus/pci/devices/*/vendor; then
    for m in$list; do /bin/busybox insmod /lib/modules/\$m.ko; done
    # devtmpfs creates the node shortly after the driver registers the disk.
    for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] || [ ! -d /sys/block/vda ] && break; sleep 0.2; done
    [ -b /dev/vda ] && /bin/busybox mount -t ext4 /dev/vda /mnt/disk 2>/dev/null
    # Shared folder (issue 13): the virtio-9p device tagged "share" (strata run --share PATH,tag=share).
    /bin/busybox grep -qsw share /sys/bus/virtio/drivers/9pnet_virtio/virtio*/mount_tag &&
        /bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /mnt/share
fi
case " \$(cat /proc/cmdline) " in *" root=/dev/vda "*)
    # Boot from the disk: mount it, hand /strata-run over on a tmpfs, and switch to its init.
    /bin/busybox umount /mnt/disk 2>/dev/null
    /bin/busybox mkdir -p /newroot
    if /bin/busybox mount -t ext4 /dev/vda /newroot; then
        if [ -x /strata-run ]; then
            /bin/busybox mount -t tmpfs run /newroot/run && /bin/busybox cp /strata-run /newroot/run/
        fi
        # The shared folder (issue 13) goes along to the disk's root, at the same place.
        /bin/busybox grep -qs ' /mnt/share 9p ' /proc/mounts && [ -d /newroot/mnt/share ] &&
            /bin/busybox mount -o move /mnt/share /newroot/mnt/share
        /bin/busybox umount /proc /sys /dev 2>/dev/null
        exec /bin/busybox switch_root /newroot /sbin/init
    fi
    echo "STRATA-GUEST: cannot mount /dev/vda as the root";;
esac
[ -x /strata-run ] && /strata-run
echo "$marker"
$2
INIT
    chmod 755 "$root/init"
    # Reproducible archive: fixed timestamps, root owner, sorted names, and (GNU cpio's
    # --reproducible) no host inode or device numbers.
    find "$root" -exec touch -h -d @0 {} +
    (cd "$root" && find . | LC_ALL=C sort | cpio --quiet --reproducible -o -H newc -R 0:0) | gzip -n -9 > "$out/initramfs-$1.cpio.gz"
}
make_initramfs marker '/bin/busybox umount /mnt/disk 2>/dev/null; /bin/busybox poweroff -f'
make_initramfs shell 'echo "Strata guest shell: type poweroff -f to stop."; exec /bin/busybox setsid /bin/busybox cttyhack /bin/sh'

# The disk root: the same busybox, its own /sbin/init; mke2fs -d makes the ext4 image from the
# tree (no root or loop device needed), qemu-img converts it to qcow2.
disk="$work/disk-root"
mkdir -p "$disk"/{bin,sbin,dev,proc,sys,tmp,run,etc,mnt/share}
cp bb/bin/busybox "$disk/bin/busybox"
for app in $(bb/bin/busybox --list); do [ -e "$disk/bin/$app" ] || ln -s busybox "$disk/bin/$app"; done
cat > "$disk/sbin/init" <<INIT
#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
echo "STRATA-GUEST: root is \$(/bin/busybox awk '\$2 == "/" && \$1 != "rootfs" {print \$1; exit}' /proc/mounts)"
[ -x /run/strata-run ] && /run/strata-run
echo "$marker"
/bin/busybox sync
/bin/busybox mount -o remount,ro /
/bin/busybox poweroff -f
INIT
chmod 755 "$disk/sbin/init"
find "$disk" -exec touch -h -d @0 {} +
mke2fs -q -F -t ext4 -U 5a7a0000-0000-4000-8000-000000000001 -E hash_seed=5a7a0000-0000-4000-8000-000000000002 \
    -L strata-root -d "$disk" "$work/root.raw" 64M
qemu-img convert -O qcow2 "$work/root.raw" "$out/root.qcow2"

echo "$marker" > "$out/marker"
# The modules the initramfs carries (tests look for this file to know the guest has them).
for m in $modules; do echo "${m##*/}"; done > "$out/modules"
ls -l "$out"
