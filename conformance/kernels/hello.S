# The smallest test kernel: a line on the serial port, then exit status 1 (code 0).
.include "common.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    cmp $0x2badb002, %eax          # the loader must say it is Multiboot
    jne fail
    lea msg, %esi
    call puts
    EXIT 0
fail:
    EXIT 1
DEFINE_PUTS
.data
msg: .asciz "hello from a Multiboot kernel\n"
