# An x87 long-double loop: multiply-add and square root on the register stack.
.include "exit.inc"
.globl _start
_start:
    mov $5000000, %rcx
    fninit
    fld1                         # st0 = acc = 1
    fldt k(%rip)                 # st0 = k, st1 = acc
1:  fmul %st(0), %st(1)          # acc *= k
    fld %st(1)
    fsqrt
    faddp %st(0), %st(2)         # acc += sqrt(acc)
    fld1
    fdivr %st(2), %st(0)         # 1/acc... (st0 = acc / 1)
    fstp %st(0)
    dec %rcx
    jnz 1b
    fstp %st(0)
    fstp %st(0)
    xor %edi, %edi
    EXIT
.data
k: .tfloat 0.999999
