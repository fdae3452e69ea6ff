# ADD/ADC multi-precision chain: 512-bit additions whose carry feeds the next ADC, and DEC
# (which keeps CF) carries it across iterations. Flags feeding the next instruction.
.include "exit.inc"
.globl _start
_start:
    mov $20000000, %rcx
    lea a(%rip), %rdi
    lea b(%rip), %rsi
    clc
1:  mov (%rsi), %rax
    adc %rax, (%rdi)
    mov 8(%rsi), %rax
    adc %rax, 8(%rdi)
    mov 16(%rsi), %rax
    adc %rax, 16(%rdi)
    mov 24(%rsi), %rax
    adc %rax, 24(%rdi)
    mov 32(%rsi), %rax
    adc %rax, 32(%rdi)
    mov 40(%rsi), %rax
    adc %rax, 40(%rdi)
    mov 48(%rsi), %rax
    adc %rax, 48(%rdi)
    mov 56(%rsi), %rax
    adc %rax, 56(%rdi)
    dec %rcx
    jnz 1b
    xor %edi, %edi
    EXIT
.data
.align 64
a: .quad 1, 2, 3, 4, 5, 6, 7, 8
b: .quad -1, -3, 0x7fffffffffffffff, 9, -5, 1, -1, 3
