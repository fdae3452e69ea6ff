/* The smallest program: write(1, ...) then exit(0), plus a loop and a call, with no libc. */
    .globl _start
_start:
    mov $1, %edi
    lea msg(%rip), %rsi
    mov $len, %edx
    mov $1, %eax
    syscall
    xor %ecx, %ecx
    mov $100000, %r8
1:  add $3, %rcx
    sub $1, %r8
    jne 1b
    cmp $300000, %rcx
    jne bad
    call f
    xor %edi, %edi
    mov $231, %eax          /* exit_group */
    syscall
f:  ret
bad:
    mov $1, %edi
    mov $60, %eax
    syscall
    .data
msg: .ascii "hello from a -nostdlib program\n"
len = . - msg
