# Operand and address-size forms the interpreter must tell apart, checked against the SDM:
#  - REP OUTSB/INSB with a 16-bit address size in 32-bit code (67h): SI/DI/CX are the index
#    and count registers and are written as 16-bit registers, so bits 31:16 keep their value
#    and SI wraps at 64 KiB (SDM Vol. 1, 3.4.1.1 and 3.3.7; Vol. 2, INS/OUTS);
#  - the same with a 32-bit address size in 64-bit mode: ESI/EDI/ECX, written as 32-bit
#    registers, so bits 63:32 become zero (SDM Vol. 1, 3.4.1.1), in both directions (DF);
#  - LMSW m16 at the absolute address 0 in 64-bit mode (no base, no index, displacement 0)
#    loads the word stored there, LMSW r16 the register; neither clears PE (SDM Vol. 2, LMSW).
# The string I/O goes to port 0x80 (the POST diagnostic port: writing and reading it has no
# effect on a PC); the bytes read are not checked, only where they go.
.include "common.inc"
MULTIBOOT_HEADER
.set PORT, 0x80
.set BUF16, 0x6000                  # below 64 KiB, for 16-bit addressing
.set HI32, 0xbeef0000               # garbage for bits 31:16
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    mov $PORT, %dx

    # 32-bit code, 16-bit address size: REP OUTSB from DS:SI.
    mov $HI32 + BUF16, %esi
    mov $HI32 + 3, %ecx
    addr16 rep outsb
    mov %esi, saved_si ; mov %ecx, saved_cx
    cmpl $HI32 + BUF16 + 3, saved_si
    REPORT e, a16_rep_outsb_advances_si_only
    cmpl $HI32, saved_cx
    REPORT e, a16_rep_outsb_counts_cx_only

    # SI wraps from 0xffff to 0 without carrying into bit 16.
    mov $HI32 + 0xffff, %esi
    mov $HI32 + 2, %ecx
    addr16 rep outsb
    mov %esi, saved_si
    cmpl $HI32 + 1, saved_si
    REPORT e, a16_rep_outsb_wraps_si_at_64k

    # REP INSB to ES:DI.
    mov $HI32 + BUF16 + 0x100, %edi
    mov $HI32 + 4, %ecx
    addr16 rep insb
    mov %edi, saved_di ; mov %ecx, saved_cx
    cmpl $HI32 + BUF16 + 0x104, saved_di
    REPORT e, a16_rep_insb_advances_di_only
    cmpl $HI32, saved_cx
    REPORT e, a16_rep_insb_counts_cx_only

    # Into IA-32e mode: the first GiB identity-mapped with 2 MiB pages.
    mov $pdpt + 3, %eax ; mov %eax, pml4
    mov $pd + 3, %eax ; mov %eax, pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                  # P | RW | PS
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    mov %cr4, %eax ; or $0x20, %eax ; mov %eax, %cr4          # PAE
    mov $pml4, %eax ; mov %eax, %cr3
    mov $0xc0000080, %ecx ; rdmsr ; or $0x100, %eax ; wrmsr   # EFER.LME
    mov %cr0, %eax ; or $0x80000000, %eax ; mov %eax, %cr0    # PG
    lgdt gdtr64
    ljmp $0x08, $long_mode

.code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds ; mov %ax, %es ; mov %ax, %ss
    lea stack_top(%rip), %rsp
    mov $PORT, %dx
    movabs $0xdeadbeef00000000, %r8 # garbage for bits 63:32

    # 64-bit mode, 32-bit address size: REP OUTSB from [ESI], forwards.
    lea buf(%rip), %rsi ; or %r8, %rsi
    mov $3, %rcx ; or %r8, %rcx
    addr32 rep outsb
    mov %rsi, saved_si(%rip) ; mov %rcx, saved_cx(%rip)
    lea buf + 3(%rip), %rax
    cmp saved_si(%rip), %rax
    REPORT64 e, a32_rep_outsb_clears_rsi_63_32
    cmpq $0, saved_cx(%rip)
    REPORT64 e, a32_rep_outsb_clears_rcx_63_32

    # Backwards (DF = 1).
    lea buf + 8(%rip), %rsi ; or %r8, %rsi
    mov $3, %rcx ; or %r8, %rcx
    std
    addr32 rep outsb
    cld
    mov %rsi, saved_si(%rip)
    lea buf + 5(%rip), %rax
    cmp saved_si(%rip), %rax
    REPORT64 e, a32_rep_outsb_backwards_clears_rsi_63_32

    # REP INSB to [EDI].
    lea buf + 16(%rip), %rdi ; or %r8, %rdi
    mov $4, %rcx ; or %r8, %rcx
    addr32 rep insb
    mov %rdi, saved_di(%rip) ; mov %rcx, saved_cx(%rip)
    lea buf + 20(%rip), %rax
    cmp saved_di(%rip), %rax
    REPORT64 e, a32_rep_insb_clears_rdi_63_32
    cmpq $0, saved_cx(%rip)
    REPORT64 e, a32_rep_insb_clears_rcx_63_32

    # Without REP: one element, RCX untouched.
    lea buf + 32(%rip), %rdi ; or %r8, %rdi
    mov $7, %rcx ; or %r8, %rcx
    addr32 insb
    mov %rdi, saved_di(%rip) ; mov %rcx, saved_cx(%rip)
    lea buf + 33(%rip), %rax
    cmp saved_di(%rip), %rax
    REPORT64 e, a32_insb_clears_rdi_63_32
    mov $7, %rax ; or %r8, %rax
    cmp saved_cx(%rip), %rax
    REPORT64 e, a32_insb_leaves_rcx

    # LMSW from the word at linear (= physical) address 0: MP | TS.
    movw $0x000a, 0
    lmsw 0
    mov %cr0, %rax ; and $0xf, %eax
    cmp $0xb, %eax                  # PE stays set
    REPORT64 e, lmsw_m16_at_address_0_loads_the_word
    # The register form with 0: MP, EM, TS cleared, PE kept.
    mov $0xfff0, %ecx
    lmsw %cx
    mov %cr0, %rax ; and $0xf, %eax
    cmp $0x1, %eax
    REPORT64 e, lmsw_r16_loads_the_register_and_keeps_pe

    mov failures(%rip), %eax
    mov $EXIT_PORT, %dx
    out %al, %dx
    cli
    hlt

putc64:
    push %rdx
    push %rax
1:  mov $COM1 + 5, %dx
    in %dx, %al
    test $0x20, %al
    jz 1b
    pop %rax
    mov $COM1, %dx
    out %al, %dx
    pop %rdx
    ret
puts64:
    push %rax
2:  lodsb
    test %al, %al
    jz 3f
    call putc64
    jmp 2b
3:  pop %rax
    ret

.code32
DEFINE_PUTS

.section .rodata
.align 8
gdt64: .quad 0, 0x00af9b000000ffff, 0x00cf93000000ffff
gdtr64: .word 23
        .long gdt64, 0
.bss
.align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
buf: .skip 64
failures: .quad 0
saved_si: .quad 0
saved_di: .quad 0
saved_cx: .quad 0
.skip 8192
stack_top:
