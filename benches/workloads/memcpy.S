# memcpy/memset: REP MOVSB and REP STOSB over 1 MiB buffers (what glibc uses for large sizes).
.include "exit.inc"
.globl _start
_start:
    mov $400, %r12
1:  lea src(%rip), %rdi
    mov $0x5a, %eax
    mov $0x100000, %rcx
    rep stosb
    lea src(%rip), %rsi
    lea dst(%rip), %rdi
    mov $0x100000, %rcx
    rep movsb
    dec %r12
    jnz 1b
    movzbl dst+0xfffff(%rip), %edi
    sub $0x5a, %edi
    EXIT
.bss
.align 4096
src: .skip 0x100000
dst: .skip 0x100000
