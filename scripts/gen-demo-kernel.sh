#!/usr/bin/env bash
# Regenerates src/generated/demo_kernel.elf, the built-in demo guest that `strata` runs with no
# arguments, from conformance/kernels/demo.S (our own source). Needs gcc with 32-bit support.
set -euo pipefail
cd "$(dirname "$0")/.."
k=conformance/kernels
gcc -m32 -nostdlib -static -ffreestanding -Wa,-I$k -Wl,-T,$k/link.ld -Wl,--build-id=none \
    -Wl,--no-warn-rwx-segments -o src/generated/demo_kernel.elf $k/demo.S
strip src/generated/demo_kernel.elf
