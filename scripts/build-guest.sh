#!/usr/bin/env bash
# Builds Strata's test guest from Debian packages, reproducibly:
#   OUT/vmlinuz                 Debian's kernel (linux-image-amd64)
#   OUT/initramfs-marker.cpio.gz  busybox-static; /init prints the marker line and powers off
#   OUT/initramfs-shell.cpio.gz   the same, but /init starts an interactive shell on the console
# Usage: scripts/build-guest.sh [OUT]   (default build/guest). Needs apt-get (for `download`,
# no root needed for that part), dpkg-deb, gzip and GNU cpio.
set -euo pipefail
out=$(realpath -m "${1:-build/guest}")
marker="STRATA-GUEST-MARKER: userspace reached"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
apt-get download -q "$kpkg" busybox-static >/dev/null
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb bb
cp kernel/boot/vmlinuz-* "$out/vmlinuz"
echo "$kpkg" > "$out/kernel-package"

make_initramfs() { # $1 = name, $2 = what /init does after the marker
    local root="$work/root-$1"
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,etc}
    cp bb/bin/busybox "$root/bin/busybox"
    for app in sh mount umount echo cat ls poweroff reboot sleep uname dmesg mkdir sha256sum; do
        ln -s busybox "$root/bin/$app"
    done
    cat > "$root/init" <<INIT
#!/bin/sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
echo "$marker"
$2
INIT
    chmod 755 "$root/init"
    # Reproducible archive: fixed timestamps, root owner, sorted names, and (GNU cpio's
    # --reproducible) no host inode or device numbers.
    find "$root" -exec touch -h -d @0 {} +
    (cd "$root" && find . | LC_ALL=C sort | cpio --quiet --reproducible -o -H newc -R 0:0) | gzip -n -9 > "$out/initramfs-$1.cpio.gz"
}
make_initramfs marker '/bin/busybox poweroff -f'
make_initramfs shell 'echo "Strata guest shell: type poweroff -f to stop."; exec /bin/busybox setsid /bin/busybox cttyhack /bin/sh'
echo "$marker" > "$out/marker"
ls -l "$out"
