# Compare-and-branch heavy code: an LCG drives data-dependent branches.
.include "exit.inc"
.globl _start
_start:
    mov $50000000, %rcx
    mov $12345, %rax
    mov $6364136223846793005, %r9
    mov $1442695040888963407, %r10
    xor %edx, %edx
1:  imul %r9, %rax
    add %r10, %rax
    mov %rax, %r8
    shr $60, %r8
    cmp $8, %r8
    jb 2f
    add $3, %rdx
    cmp $12, %r8
    jae 3f
    sub $1, %rdx
    jmp 3f
2:  xor $5, %rdx
3:  test $1, %r8
    jz 4f
    inc %rdx
4:  dec %rcx
    jnz 1b
    xor %edi, %edi
    EXIT
