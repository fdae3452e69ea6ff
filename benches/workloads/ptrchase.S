# Pointer chasing over 64 MiB: a full-period LCG permutation of 8 Mi slots, each holding the
# address of the next; every load depends on the previous one and misses the TLB often.
.include "exit.inc"
.globl _start
_start:
    lea table(%rip), %rbx
    mov $0x7fffff, %r10          # mask: 2^23 slots
    xor %ecx, %ecx               # i
    mov $0x800000, %r11          # count
1:  lea 12345(%rcx,%rcx,4), %rdx # next = (5*i + 12345) mod 2^23: full period (a = 1 mod 4, c odd)
    and %r10, %rdx
    lea (%rbx,%rdx,8), %rax
    mov %rax, (%rbx,%rcx,8)
    mov %rdx, %rcx
    dec %r11
    jnz 1b
    mov %rbx, %rax
    mov $1000000, %rcx
2:  mov (%rax), %rax
    mov (%rax), %rax
    mov (%rax), %rax
    mov (%rax), %rax
    dec %rcx
    jnz 2b
    xor %edi, %edi
    EXIT
.bss
.align 4096
table: .skip 8 * 0x800000
