# Integer add chain: dependent register adds, the best case for any engine.
.include "exit.inc"
.globl _start
_start:
    mov $100000000, %rcx
    xor %eax, %eax
    xor %edx, %edx
1:  add %rcx, %rax
    add $7, %rax
    add %rax, %rdx
    dec %rcx
    jnz 1b
    mov %edx, %edi
    and $0, %edi
    EXIT
