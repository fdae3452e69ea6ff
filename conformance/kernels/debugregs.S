# Hardware breakpoints and the MOV SS shadow of debug exceptions (SDM Vol. 3, 18.2-18.3 and
# 6.8.3): DR0-DR3 with DR7 enables, R/W and LEN; DR6 B0-B3 and BD; RFLAGS.RF to go past an
# instruction breakpoint; DR7.GD; MOV SS holding off the single-step trap and a data
# breakpoint it hits until after the next instruction. 32-bit protected mode, no paging.
.include "common.inc"
.include "idt32.inc"
MULTIBOOT_HEADER
.set DR7_G0, 1 << 1
.set DR7_G1, 1 << 3
.set DR7_GD, 1 << 13
.set RW1_WRITE_LEN1_4, 0x00d00000
.set RW1_RW_LEN1_4, 0x00f00000
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    call build_idt
    movl $on_db, handlers + 1 * 4

    # Instruction breakpoint (DR0, R/W0 = 00): a fault at the instruction, B0 in DR6; the
    # handler sets RF in the frame and the instruction then runs once.
    call reset
    movl $1, set_rf
    mov $bp1, %eax ; mov %eax, %dr0
    mov $DR7_G0, %eax ; mov %eax, %dr7
bp1: nop
    call disarm
    cmpl $1, db_count
    REPORT e, instruction_breakpoint_raises_one_db
    cmpl $bp1, db_eip
    REPORT e, instruction_breakpoint_is_a_fault_at_the_instruction
    mov db_dr6, %eax ; and $0xf, %eax ; cmp $1, %eax
    REPORT e, instruction_breakpoint_sets_b0

    # Data breakpoint on writes (DR1, R/W1 = 01, LEN1 = 11): a trap after the store, B1 only
    # (B0, left set by software, is cleared: 18.2.3).
    call reset
    mov $watched, %eax ; mov %eax, %dr1
    mov $1, %eax ; mov %eax, %dr6
    mov $(DR7_G1 | RW1_WRITE_LEN1_4), %eax ; mov %eax, %dr7
    movl $5, watched + 2
wp1:
    mov watched, %eax                # a read: no match for a write breakpoint
    call disarm
    cmpl $1, db_count
    REPORT e, write_breakpoint_raises_one_db_and_ignores_reads
    cmpl $wp1, db_eip
    REPORT e, write_breakpoint_is_a_trap_after_the_store
    mov db_dr6, %eax ; and $0xf, %eax ; cmp $2, %eax
    REPORT e, write_breakpoint_sets_b1_and_clears_b0

    # R/W = 11 matches a read that overlaps the 4-byte range.
    call reset
    mov $(DR7_G1 | RW1_RW_LEN1_4), %eax ; mov %eax, %dr7
    mov watched + 3, %al
rp1:
    call disarm
    cmpl $rp1, db_eip
    REPORT e, read_write_breakpoint_matches_an_overlapping_read

    # DR7.GD: a MOV DR is a #DB fault with DR6.BD, and GD is cleared for the handler.
    call reset
    mov $DR7_GD, %eax ; mov %eax, %dr7
gd1: mov %dr0, %eax
    cmpl $gd1, db_eip
    REPORT e, general_detect_faults_at_the_mov_dr
    testl $1 << 13, db_dr6
    REPORT ne, general_detect_sets_dr6_bd
    mov %dr7, %eax
    test $DR7_GD, %eax
    REPORT e, general_detect_clears_dr7_gd

    # MOV SS with TF set: no single-step trap after it; the first comes after the next
    # instruction (6.8.3). Traps: after the NOP, the PUSHF, the AND and the POPF.
    call reset
    mov %ss, %ax
    pushf
    orl $0x100, (%esp)
    popf
    mov %ax, %ss
    nop
ss1:
    pushf
    andl $~0x100, (%esp)
    popf
    cmpl $ss1, db_eip
    REPORT e, mov_ss_holds_off_the_single_step_trap
    cmpl $4, db_count
    REPORT e, single_step_resumes_after_the_shadow

    # A data breakpoint MOV SS hits is reported after the next instruction, once.
    call reset
    movl $0x10, ss_sel
    mov $ss_sel, %eax ; mov %eax, %dr1
    mov $(DR7_G1 | RW1_RW_LEN1_4), %eax ; mov %eax, %dr7
    mov ss_sel, %ss
    nop
ss2:
    call disarm
    cmpl $1, db_count
    REPORT e, mov_ss_data_breakpoint_raises_one_db
    cmpl $ss2, db_eip
    REPORT e, mov_ss_data_breakpoint_waits_for_the_next_instruction

    EXIT_WITH_FAILURES

reset:
    movl $0, db_count
    movl $0, db_eip
    movl $0, db_dr6
    movl $0, set_rf
    xor %eax, %eax
    mov %eax, %dr6
    ret
disarm:
    push %eax
    mov $0x400, %eax
    mov %eax, %dr7
    pop %eax
    ret

# #DB: count, record the first one's EIP and DR6, and set RF in the frame when asked.
on_db:
    incl db_count
    cmpl $1, db_count
    jne 1f
    mov 44(%esp), %eax               # the frame's EIP (past return, pusha, vector, error)
    mov %eax, db_eip
    mov %dr6, %eax
    mov %eax, db_dr6
1:  cmpl $0, set_rf
    je 2f
    orl $0x10000, 52(%esp)           # RF in the frame's EFLAGS
2:  ret

DEFINE_PUTS
DEFINE_IDT32

.bss
.align 4
watched: .long 0
ss_sel: .long 0
failures: .long 0
db_count: .long 0
db_eip: .long 0
db_dr6: .long 0
set_rf: .long 0
.align 16
.skip 8192
stack_top:
