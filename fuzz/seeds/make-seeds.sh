#!/usr/bin/env bash
# Makes the fuzz targets' seed inputs in fuzz/seeds/TARGET/ (committed; rerun after a change to
# a target's input layout). Every seed is made here from the specs or from Strata's own files,
# nothing copied: bzImage and ELF64 headers written field by field (boot.rst, the ELF spec), a
# Multiboot test kernel (conformance/kernels/hello.S, gcc -m32), qcow2 images from qemu-img and
# qemu-io, and a snapshot strata itself saved of that kernel. Needs python3, gcc (32-bit),
# qemu-img, qemu-io and a built strata (target/ci/strata).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strata=${STRATA:-$root/target/ci/strata}

gcc -m32 -nostdlib -static -ffreestanding -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
    -Wa,-I"$root/conformance/kernels" -Wl,-T "$root/conformance/kernels/link.ld" \
    -o "$tmp/hello.elf" "$root/conformance/kernels/hello.S"
"$strata" run --kernel "$tmp/hello.elf" --mem 16M --save "$tmp/hello.snap" --save-at 300 >/dev/null

for n in 1 2 3; do
    qemu-img create -q -f qcow2 -o cluster_size=512 "$tmp/q$n.qcow2" 64K
done
qemu-io -c 'write -P 0x5a 0 4k' -c 'write -z 8k 2k' "$tmp/q2.qcow2" >/dev/null
qemu-img create -q -f qcow2 -o cluster_size=512 -F qcow2 -b q1.qcow2 "$tmp/q3.qcow2" 64K

python3 - "$here" "$tmp" <<'PY'
import os, struct, sys
out, tmp = sys.argv[1], sys.argv[2]

def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

# bzimage: [cmdline len u8][initrd len u16][cmdline][initrd][image]. The image: one setup
# sector after the boot sector, 4 KiB of protected-mode code, a 2.15 header whose sizes fit.
img = bytearray(1024 + 4096)
img[0x1f1] = 1                                   # setup_sects
struct.pack_into("<I", img, 0x1f4, 4096 // 16)   # syssize
struct.pack_into("<H", img, 0x1fe, 0xaa55)
img[0x200:0x202] = b"\xeb\x66"                   # jmp over the header (ends at 0x268)
img[0x202:0x206] = b"HdrS"
struct.pack_into("<H", img, 0x206, 0x020f)
img[0x211] = 1                                   # LOADED_HIGH
struct.pack_into("<I", img, 0x22c, 0x37ffffff)   # initrd_addr_max
struct.pack_into("<H", img, 0x236, 1)            # XLF_KERNEL_64
struct.pack_into("<I", img, 0x238, 255)          # cmdline_size
struct.pack_into("<II", img, 0x248, 0x100, 0x100)  # payload offset, length
struct.pack_into("<I", img, 0x260, 0x100000)     # init_size
cmd, initrd = b"console=ttyS0", b"070701" + bytes(506)
put("bzimage", "header-2.15", bytes([len(cmd)]) + struct.pack("<H", len(initrd)) + cmd + initrd + bytes(img))
put("bzimage", "no-initrd", bytes([0, 0, 0]) + bytes(img))

# multiboot: [module count][u16 lengths][modules][kernel]
hello = open(os.path.join(tmp, "hello.elf"), "rb").read()
put("multiboot", "hello-elf", bytes([0]) + hello)
put("multiboot", "hello-elf-module", bytes([1]) + struct.pack("<H", 16) + b"module-bytes-16b" + hello)
kludge = bytearray(64)
struct.pack_into("<III", kludge, 0, 0x1badb002, 0x10003, (-(0x1badb002 + 0x10003)) & 0xffffffff)
struct.pack_into("<IIIII", kludge, 12, 0x100000, 0x100000, 0x100040, 0x102000, 0x100020)
kludge[32:34] = b"\xf4\xeb"  # hlt; jmp
put("multiboot", "aout-kludge", bytes([0]) + bytes(kludge))

# elf: a static x86-64 executable: one PT_LOAD of its first page at 0x400000, GNU_STACK.
def elf64(e_type, vaddr):
    e = bytearray(0x1000)
    e[0:16] = b"\x7fELF\x02\x01\x01" + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", e, 16, e_type, 62, 1, vaddr + 0x200, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    struct.pack_into("<IIQQQQQQ", e, 64, 1, 5, 0, vaddr, vaddr, 0x1000, 0x2000, 0x1000)
    struct.pack_into("<IIQQQQQQ", e, 120, 0x6474e551, 6, 0, 0, 0, 0, 0, 16)
    e[0x200:0x209] = b"\xb8\x3c\x00\x00\x00\x31\xff\x0f\x05"  # exit(0)
    return bytes(e)
put("elf", "static", elf64(2, 0x400000))
put("elf", "pie", elf64(3, 0))

# qcow2: [op count][8 bytes per op: kind, offset/512 u32, len-1 u16, fill][image]
ops = b"".join(struct.pack("<BIHB", k, o, l, f) for k, o, l, f in
               [(0, 0, 4095, 0), (1, 1, 1023, 0xa5), (2, 16, 2047, 0), (3, 24, 511, 1), (4, 0, 0, 0), (0, 8, 8191, 0)])
for n in (1, 2, 3):
    put("qcow2", f"image{n}", bytes([len(ops) // 8]) + ops + open(os.path.join(tmp, f"q{n}.qcow2"), "rb").read())

# snapshot: [flags][4 u16 section lengths][sections][first RAM page], from strata's own save.
snap = open(os.path.join(tmp, "hello.snap"), "rb").read()
hlen, count = struct.unpack_from("<II", snap, 12)
secs, ram = {}, b""
for i in range(count):
    kind, _, off, ln, _, _ = struct.unpack_from("<IIQQII", snap, 32 + 32 * i)
    if kind == 4:
        ram = snap[off:off + ln]
    else:
        secs[kind] = snap[off:off + ln]
page = next((ram[p:p + 4096] for p in range(0, len(ram), 4096) if any(ram[p:p + 4096])), b"")
body = [secs.get(k, b"") for k in (1, 2, 3, 5)]
put("snapshot", "hello", bytes([1 if 5 in secs else 0]) + struct.pack("<4H", *map(len, body)) + b"".join(body) + page)
put("snapshot", "whole-file-header", bytes([0x80]) + snap[:hlen + 4])
PY
ls -l "$here"/*/
