/* The exit status reaches the caller: write argc as a digit, then exit(200 + argc). */
    .globl _start
_start:
    mov (%rsp), %rax        /* argc */
    add $'0', %al
    mov %al, digit(%rip)
    mov $1, %edi
    lea digit(%rip), %rsi
    mov $2, %edx
    mov $1, %eax
    syscall
    mov (%rsp), %rdi
    add $200, %rdi
    mov $60, %eax
    syscall
    .data
digit: .ascii "?\n"
