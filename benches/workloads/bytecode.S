# A bytecode interpreter loop: one indirect jump per bytecode through a dispatch table.
# Program: acc += 3; acc ^= x; acc -= 1; x += 1; dec counter; jump back if counter != 0.
.include "exit.inc"
.globl _start
_start:
    lea prog(%rip), %rsi
    lea table(%rip), %rbx
    xor %eax, %eax               # acc
    xor %edx, %edx               # x
    mov $10000000, %rcx          # counter
    mov %rsi, %rdi               # pc
next:
    movzbl (%rdi), %r8d
    inc %rdi
    jmp *(%rbx,%r8,8)
op_add3: add $3, %rax
    jmp next
op_xor:  xor %rdx, %rax
    jmp next
op_dec:  dec %rax
    jmp next
op_incx: inc %rdx
    jmp next
op_loop: dec %rcx
    jz done
    mov %rsi, %rdi
    jmp next
done:
    xor %edi, %edi
    EXIT
.section .rodata
.align 8
table: .quad op_add3, op_xor, op_dec, op_incx, op_loop
prog:  .byte 0, 1, 2, 3, 0, 1, 2, 3, 4
