# A system-call loop: getpid, one million times.
.include "exit.inc"
.globl _start
_start:
    mov $1000000, %r12
1:  mov $39, %eax
    syscall
    dec %r12
    jnz 1b
    xor %edi, %edi
    EXIT
