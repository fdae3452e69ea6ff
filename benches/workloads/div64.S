# 64-bit DIV throughput/latency: each quotient feeds the next dividend.
.include "exit.inc"
.globl _start
_start:
    mov $20000000, %rcx
    mov $0x123456789abcdef, %r8
    mov $1000003, %rbx
1:  mov %r8, %rax
    xor %edx, %edx
    div %rbx
    lea 0x1234567(%rax,%rdx), %r8
    shl $20, %r8
    dec %rcx
    jnz 1b
    xor %edi, %edi
    EXIT
