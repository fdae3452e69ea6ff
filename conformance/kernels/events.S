# Events the local APIC and the CPU raise by themselves, as the software engines model them:
# self-IPIs taken at the next instruction boundary, NMIs by IPI with NMI blocking until IRET,
# and single-stepping with RFLAGS.TF. References: SDM Vol. 3, 11.6.1, 11.8.3-11.8.4 (IPIs and
# their dispatch), 6.7.1 (NMI blocking), 17.3.1.4 and 17.2.3 (single-step #DB, DR6.BS); SDM
# Vol. 2, STI (only STI and MOV SS open an interrupt shadow). Each check also passes on QEMU's
# TCG. Not run on the KVM engine (kernel_support::SOFTWARE_ENGINE_KERNELS): Strata does not
# inject NMIs into KVM, and under kvm_pvm KVM takes interrupt windows at its own exits.
.include "common.inc"
.include "idt32.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    call build_idt
    mov $0xff, %al ; out %al, $0x21 ; out %al, $0xa1     # the 8259s stay masked
    movl $0x1ff, 0xfee000f0                              # LAPIC SVR: software-enabled

    # Self-IPIs through the ICR (SDM Vol. 3, 11.6.1: destination shorthand 01b "self", fixed
    # delivery; 11.8.4: an interrupt in the IRR above the processor priority is dispatched at
    # the next instruction boundary with IF set). With IF set the IPI is taken while the loop
    # right after the ICR write runs, not at some later event. Two self-IPIs sent with IF
    # clear are both taken in the window STI; NOP opens, the higher vector first (11.8.3):
    # the handler's EOI lets the second through right after its IRET, which opens no
    # interrupt shadow (only STI and MOV SS do: SDM Vol. 2, STI; Vol. 3, 6.8.3).
    movl $on_ipi_41, handlers + 0x41 * 4
    movl $on_ipi_42, handlers + 0x42 * 4
    sti
    nop                                                  # past STI's interrupt shadow
    movl $0x44041, 0xfee00300                            # self, fixed, vector 0x41
    mov $200, %ecx
6:  loop 6b
    cli
    cmpl $1, ipi_count
    REPORT e, self_ipi_taken_right_after_the_icr_write
    movl $0, ipi_count
    movl $0x44041, 0xfee00300
    movl $0x44042, 0xfee00300
    sti                                                  # the shadow covers the NOP; then
    nop                                                  # 0x42, its IRET, and 0x41 come
    cli                                                  # before CLI (IRET opens no shadow)
    cmpl $2, ipi_count
    REPORT e, two_pending_self_ipis_both_taken
    cmpw $0x4142, ipi_log                                # log[0] = 0x42, log[1] = 0x41
    REPORT e, two_pending_self_ipis_higher_vector_first

    # NMI by self-IPI (ICR delivery mode 100b): taken with IF clear; a second NMI sent from
    # the handler waits for its IRET (NMI blocking, SDM Vol. 3, 6.7.1), then is taken.
    movl $on_nmi, handlers + 2 * 4
    movl $0x44400, 0xfee00300                            # self, NMI
    mov $200, %ecx
8:  loop 8b
    cmpl $2, nmi_count
    REPORT e, nmi_ipi_taken_with_if_clear_and_again_after_iret
    cmpl $1, nmi_count_inside
    REPORT e, nmi_blocked_inside_the_nmi_handler

    # Single-step (SDM Vol. 3, 17.3.1.4): while TF is set, a #DB trap with DR6.BS (17.2.3)
    # follows each instruction; the POPF that sets TF is not itself followed by one, the POPF
    # that clears it is.
    movl $on_db, handlers + 1 * 4
    xor %eax, %eax
    mov %eax, %dr6
    pushf
    orl $0x100, (%esp)
    popf
    nop
ss_first:
    nop
    pushf
    andl $~0x100, (%esp)
    popf
    movl $0, handlers + 1 * 4
    cmpl $5, db_count
    REPORT e, single_step_traps_after_each_instruction
    cmpl $ss_first, db_first_eip
    REPORT e, single_step_first_trap_follows_the_instruction_after_popf
    testl $0x4000, db_dr6
    REPORT ne, single_step_sets_dr6_bs

    EXIT_WITH_FAILURES

on_ipi_41:
    mov $0x41, %al
    jmp log_ipi
on_ipi_42:
    mov $0x42, %al
log_ipi:
    mov ipi_count, %edx
    and $3, %edx
    mov %al, ipi_log(%edx)
    incl ipi_count
    movl $0, 0xfee000b0                                  # LAPIC EOI
    ret

on_db:
    incl db_count
    cmpl $1, db_count
    jne 1f
    mov 44(%esp), %eax                # the frame's EIP (past pusha, vector, error, return)
    mov %eax, db_first_eip
    mov %dr6, %eax
    mov %eax, db_dr6
1:  ret

on_nmi:
    incl nmi_count
    cmpl $1, nmi_count
    jne 1f
    movl $0x44400, 0xfee00300                            # another NMI: blocked until IRET
    mov $200, %ecx
2:  loop 2b
    mov nmi_count, %eax
    mov %eax, nmi_count_inside
1:  ret

DEFINE_PUTS
DEFINE_IDT32

.bss
failures: .long 0
ipi_count: .long 0
ipi_log: .long 0
nmi_count: .long 0
nmi_count_inside: .long 0
db_count: .long 0
db_first_eip: .long 0
db_dr6: .long 0
.align 16
.skip 8192
stack_top:
