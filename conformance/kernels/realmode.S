# A boot that starts in real mode, the way a PC hands over to a boot sector: CS:IP = 0:7C00,
# 16-bit code. It checks real-mode segmentation (a far pointer through DS, a push/pop through
# SS:SP), enters 32-bit protected mode (GDT, CR0.PE, far jump), then IA-32e mode (PAE tables,
# EFER.LME, CR0.PG, far jump to a 64-bit segment), printing a line from each mode. References:
# SDM Vol. 3, 9.1 (reset state), 9.9 (switching to protected mode), 9.8.5 (initializing IA-32e
# mode). Loaded as a flat image at 0x7C00 by `strata run` (0x55AA boot signature).
.include "common.inc"
.code16
.section .text
.globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    # Real-mode segmentation: ES = 0x07c0 addresses the image at offset 0 (0x07c0 << 4 = 0x7c00).
    mov $0x07c0, %ax
    mov %ax, %es
    mov %es:(msg16 - _start), %al           # the first byte of msg16 through ES
    cmp msg16, %al
    jne fail16
    push $0x1234
    pop %bx
    cmp $0x1234, %bx
    jne fail16
    lea msg16, %si
    call puts16
    # Protected mode.
    lgdt gdtr
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x08, $pm32
fail16:
    mov $1, %al
    out %al, $EXIT_PORT
    hlt

puts16:
    lodsb
    test %al, %al
    jz 2f
    mov %al, %ah
    mov $COM1 + 5, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov %ah, %al
    mov $COM1, %dx
    out %al, %dx
    jmp puts16
2:  ret

.code32
pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x90000, %esp
    lea msg32, %esi
    call puts
    # Identity-map the first 2 MiB: PML4 at 0x70000, PDPT 0x71000, PD 0x72000.
    mov $0x70000, %edi
    xor %eax, %eax
    mov $0x3000 / 4, %ecx
    rep stosl
    movl $0x71003, 0x70000
    movl $0x72003, 0x71000
    movl $0x00083, 0x72000
    mov %cr4, %eax ; or $0x20, %eax ; mov %eax, %cr4
    mov $0x70000, %eax ; mov %eax, %cr3
    mov $0xc0000080, %ecx ; rdmsr ; or $0x100, %eax ; wrmsr
    mov %cr0, %eax ; or $0x80000000, %eax ; mov %eax, %cr0
    ljmp $0x18, $lm64

.code64
lm64:
    lea msg64(%rip), %rsi
    call puts64
    xor %eax, %eax
    mov $EXIT_PORT, %dx
    out %al, %dx                             # status 1: all good
    hlt

puts64:
    lodsb
    test %al, %al
    jz 2f
    mov %al, %ah
    mov $COM1 + 5, %dx
1:  in %dx, %al
    test $0x20, %al
    jz 1b
    mov %ah, %al
    mov $COM1, %dx
    out %al, %dx
    jmp puts64
2:  ret

.code32
DEFINE_PUTS

.align 8
gdt: .quad 0, 0x00cf9b000000ffff, 0x00cf93000000ffff, 0x00af9b000000ffff
gdtr: .word 31
      .long gdt
msg16: .asciz "PASS real_mode_segments_and_stack\n"
msg32: .asciz "PASS protected_mode_entered\n"
msg64: .asciz "PASS long_mode_entered\n"
.org 510
.byte 0x55, 0xaa
