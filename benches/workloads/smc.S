# Self-modifying code: patch the immediate of `mov $imm32, %eax` in a writable+executable
# page, call it, accumulate, repeat.
.include "exit.inc"
.globl _start
_start:
    mov $200000, %rcx
    xor %edx, %edx
    lea patch(%rip), %rbx
1:  mov %ecx, 1(%rbx)            # the imm32 of the B8 opcode below
    call patch
    add %rax, %rdx
    dec %rcx
    jnz 1b
    # sum of 1..200000 = 20000100000
    movabs $20000100000, %rax
    cmp %rax, %rdx
    setne %dil
    movzbl %dil, %edi
    EXIT
.section .smc, "awx"
patch:
    mov $0, %eax
    ret
