# Exceptions in 32-bit protected mode: vectors, error codes and saved EIPs for #DE, #UD, #BP
# (a trap: EIP after INT3), #GP with a selector error code, #GP(0) from WRMSR to an unknown MSR,
# INT n, #NP through a not-present gate (error code = vector*8+2), all delivered through a
# 32-bit IDT. Expected values: SDM Vol. 3, chapter 6 (Table 6-1, 6.13).
.include "common.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    call build_idt
    lidt idtr

    # #DE: DIV by zero, a fault (saved EIP = the DIV).
    EXPECT_BEGIN 0
de_at: xor %ecx, %ecx
    div %ecx
    EXPECT_END
    cmpl $0, got_vector
    REPORT e, de_vector
    cmpl $de_at + 2, got_eip
    REPORT e, de_saved_eip_is_the_div

    EXPECT_BEGIN 6
ud_at: ud2
    EXPECT_END
    cmpl $6, got_vector
    REPORT e, ud_vector
    cmpl $ud_at, got_eip
    REPORT e, ud_saved_eip_is_the_ud2

    EXPECT_BEGIN 3
    int3
bp_after:
    EXPECT_END
    cmpl $3, got_vector
    REPORT e, bp_vector
    cmpl $bp_after, got_eip
    REPORT e, bp_is_a_trap

    EXPECT_BEGIN 13
    mov $0x1234, %ax
    mov %ax, %ds
    EXPECT_END
    cmpl $13, got_vector
    REPORT e, gp_on_bad_selector
    cmpl $0x1234, got_error            # TI=1 (LDT), RPL bits cleared
    REPORT e, gp_error_code_is_the_selector

    EXPECT_BEGIN 13
    mov $0x12345, %ecx
    wrmsr
    EXPECT_END
    cmpl $13, got_vector
    REPORT e, gp_on_unknown_msr
    cmpl $0, got_error
    REPORT e, gp_unknown_msr_error_code_zero

    EXPECT_BEGIN 0x40
    int $0x40
int_after:
    EXPECT_END
    cmpl $0x40, got_vector
    REPORT e, int_n_vector
    cmpl $int_after, got_eip
    REPORT e, int_n_returns_after

    EXPECT_BEGIN 11
np_at:
    int $0x41
    EXPECT_END
    cmpl $11, got_vector
    REPORT e, np_on_absent_gate
    cmpl $0x41 * 8 + 2, got_error
    REPORT e, np_error_code_names_the_idt_entry
    # #NP is a fault: the frame points at the INT, so a handler that makes the gate present
    # can return to it and have it run (SDM Vol. 3, 6.15 "Interrupt 11": "the saved contents
    # of CS and EIP ... point to the instruction that generated the exception").
    cmpl $np_at, got_eip
    REPORT e, np_during_int_n_saved_eip_is_the_int

    # Debug registers (SDM Vol. 3, 18.2.2-18.2.4): DR6 bits 4-11 and 16-31 read as 1, DR7
    # bit 10 reads as 1; with CR4.DE clear DR4 and DR5 are DR6 and DR7 under other names.
    xor %eax, %eax
    mov %eax, %dr6
    mov %dr6, %eax
    cmp $0xffff0ff0, %eax
    REPORT e, dr6_reserved_bits_read_as_ones
    mov $0x4001, %eax
    mov %eax, %dr4
    mov %dr6, %eax
    cmp $0xffff4ff1, %eax
    REPORT e, dr4_is_dr6_with_cr4_de_clear
    xor %eax, %eax
    mov %eax, %dr7
    mov %dr5, %eax
    cmp $0x400, %eax
    REPORT e, dr5_is_dr7_and_bit_10_reads_as_one

    EXIT_WITH_FAILURES

# Every stub pushes its vector (and 0 for vectors without an error code) then joins common.
build_idt:
    xor %ecx, %ecx
1:  mov stubs(,%ecx,4), %eax
    mov %ax, idt(,%ecx,8)
    movw $0x08, idt+2(,%ecx,8)
    movw $0x8e00, idt+4(,%ecx,8)      # present, DPL 0, 32-bit interrupt gate
    shr $16, %eax
    mov %ax, idt+6(,%ecx,8)
    inc %ecx
    cmp $0x41, %ecx
    jb 1b
    movw $0x0e00, idt+0x41*8+4        # vector 0x41: not present
    ret

common:
    mov (%esp), %eax
    mov %eax, got_vector
    mov 4(%esp), %eax
    mov %eax, got_error
    mov 8(%esp), %eax
    mov %eax, got_eip
    mov resume, %eax
    mov %eax, 8(%esp)                 # return to the test's resume point
    add $8, %esp
    iret

.macro STUB n
stub_\n:
    .if (\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17)
    .else
    push $0
    .endif
    push $\n
    jmp common
.endm
.altmacro
.set i, 0
.rept 0x41
    STUB %i
    .set i, i + 1
.endr
.noaltmacro

DEFINE_PUTS

.section .rodata
.align 4
.macro STUBADDR n
    .long stub_\n
.endm
stubs:
.altmacro
.set i, 0
.rept 0x41
    STUBADDR %i
    .set i, i + 1
.endr
.noaltmacro
idtr: .word 0x42 * 8 - 1
      .long idt

.bss
.align 8
idt: .skip 0x42 * 8
failures: .long 0
got_vector: .long 0
got_error: .long 0
got_eip: .long 0
resume: .long 0
.skip 4096
stack_top:
