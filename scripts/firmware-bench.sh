#!/usr/bin/env bash
# Time from process start to the kernel's first instruction through SeaBIOS, Strata against
# `qemu-system-x86_64 -M pc -accel tcg`, in one invocation (issue 14's figure).
#
# Both get the same BIOS image, QEMU's linuxboot_dma.bin (QEMU loads it itself for -kernel;
# Strata reads Debian's copy), 256 MiB of RAM, no display, and the same stand-in bzImage: a real
# boot-protocol header (version 2.06, LOADED_HIGH) with an 8 MiB kernel part, the size of
# Debian's, plus the test guest's initramfs when there is one, so the option ROM moves as many
# bytes through fw_cfg DMA as for the real guest. The stand-in's first instruction (the setup
# code at 0x10200) writes isa-debug-exit, so each process ends right at the kernel's entry and
# its wall time, measured here for both alike, is the figure. The runs alternate between the
# two, RUNS times each; the median of each and their ratio are printed.
# Usage: scripts/firmware-bench.sh STRATA_BINARY [RUNS] [BIOS]
set -euo pipefail
strata=$(realpath "$1")
runs=${2:-5}
bios=${3:-/usr/share/seabios/bios-256k.bin}
guest=build/guest
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

kernel="$tmp/exit-at-entry.bzImage"
head -c $((1024 + (8 << 20))) /dev/zero > "$kernel"
put() { printf "$2" | dd of="$kernel" bs=1 seek=$(($1)) conv=notrunc status=none; }
put 0x1f1 '\x01'                         # setup_sects: one sector after the boot sector
put 0x1fe '\x55\xaa'
put 0x200 '\xeb\x6e'                     # the entry: jmp 0x270, over the header
put 0x202 'HdrS'
put 0x206 '\x06\x02'                     # boot protocol 2.06
put 0x211 '\x01'                         # loadflags: LOADED_HIGH
put 0x22c '\xff\xff\xff\x37'             # initrd_addr_max
put 0x270 '\xb0\x00\xe6\xf4\xf4\xeb\xfd' # mov al, 0; out 0xf4, al; hlt; jmp $-1

initrd=()
qinitrd=()
if [ -f "$guest/initramfs-marker.cpio.gz" ]; then
    initrd=(--initrd "$guest/initramfs-marker.cpio.gz")
    qinitrd=(-initrd "$guest/initramfs-marker.cpio.gz")
fi

now() { date +%s%N; }
strata_ms=()
qemu_ms=()
for i in $(seq "$runs"); do
    t0=$(now)
    set +e
    "$strata" run --bios "$bios" --kernel "$kernel" "${initrd[@]}" --mem 256M --serial file:/dev/null \
        --timeline-json "$tmp/timeline.json" 2>/dev/null
    s=$?
    t1=$(now)
    qemu-system-x86_64 -M pc -accel tcg -m 256M -nodefaults -display none -serial null \
        -device isa-debug-exit,iobase=0xf4,iosize=0x4 -bios "$bios" -kernel "$kernel" "${qinitrd[@]}"
    q=$?
    t2=$(now)
    set -e
    if [ "$s" != 1 ] || [ "$q" != 1 ]; then
        echo "firmware-bench: a run did not end at the kernel's entry (strata exit $s, qemu exit $q)" >&2
        exit 1
    fi
    strata_ms+=($(( (t1 - t0) / 1000000 )))
    qemu_ms+=($(( (t2 - t1) / 1000000 )))
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sm=$(median "${strata_ms[@]}")
qm=$(median "${qemu_ms[@]}")
echo "process start -> kernel's first instruction through $(basename "$bios"), median of $runs runs:"
echo "  strata (tier 0):               ${sm} ms   (runs: ${strata_ms[*]})"
echo "  qemu-system-x86_64 -accel tcg: ${qm} ms   (runs: ${qemu_ms[*]})"
awk -v s="$sm" -v q="$qm" 'BEGIN { printf "  ratio strata/qemu: %.2f\n", s / q }'
echo "strata's own timeline of the last run (ms since process start):"
grep -E '"(machine ready|reset|first instruction: BIOS start|option ROM|kernel entry)' "$tmp/timeline.json" |
    sed -E 's/.*"label": "([^"]*)", "ns": ([0-9]+).*/\2 \1/' | awk '{ printf "  %10.1f  ", $1 / 1e6; $1 = ""; print substr($0, 2) }'
