# Echoes what arrives on the serial port until a 'q' (then exit status 1, code 0): a guest that
# runs as long as its input, for the serial console's Ctrl-A tests (conformance/tests/monitor.rs).
.include "common.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    lea msg, %esi
    call puts
.globl poll
poll:                               # wait for a received byte (LSR bit 0, data ready)
    mov $0x3fd, %dx
    in %dx, %al
    test $1, %al
    jz poll
    mov $0x3f8, %dx
    in %dx, %al
    out %al, %dx
    cmp $'q', %al
    jne poll
    EXIT 0
DEFINE_PUTS
.data
msg: .asciz "echo ready\n"
