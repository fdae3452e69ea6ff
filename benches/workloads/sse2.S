# An SSE2 loop: packed double multiply-add and packed integer adds over a small array.
.include "exit.inc"
.globl _start
_start:
    mov $5000000, %rcx
    movapd c1(%rip), %xmm0
    movapd c2(%rip), %xmm1
    movapd c1(%rip), %xmm2
    movdqa i1(%rip), %xmm4
    movdqa i2(%rip), %xmm5
1:  mulpd %xmm1, %xmm2
    addpd %xmm0, %xmm2
    paddd %xmm5, %xmm4
    pxor %xmm4, %xmm5
    movapd %xmm2, %xmm3
    sqrtpd %xmm3, %xmm3
    addpd %xmm3, %xmm2
    dec %rcx
    jnz 1b
    xor %edi, %edi
    EXIT
.data
.align 16
c1: .double 0.5, 0.25
c2: .double 0.999, 0.998
i1: .long 1, 2, 3, 4
i2: .long 5, 6, 7, 8
