# Deep call/return: recursive Fibonacci (fib(34) = 5,702,887; about 18 million calls).
.include "exit.inc"
.globl _start
_start:
    mov $34, %edi
    call fib
    cmp $5702887, %rax
    setne %dil
    movzbl %dil, %edi
    EXIT
fib:
    cmp $2, %rdi
    jb 1f
    push %rbx
    push %rdi
    dec %rdi
    call fib
    mov %rax, %rbx
    pop %rdi
    sub $2, %rdi
    call fib
    add %rbx, %rax
    pop %rbx
    ret
1:  mov %rdi, %rax
    ret
