# SSE arithmetic with a memory operand in MMIO space, which KVM's instruction emulator does not
# implement (it has SSE moves, not SSE arithmetic): KVM exits with an emulation failure, on
# hardware and on kvm_pvm alike, and the KVM engine must hand the instruction to tier 0 and go
# on. The operand is an unclaimed address in the PCI hole, where a PC reads all ones (a master
# abort). POR into a zeroed register (SDM Vol. 2, POR) must give all ones, PADDB of 0x01 bytes
# (SDM Vol. 2, PADDB: wrap-around) all zeros; a RAM operand is the control.
.include "common.inc"
MULTIBOOT_HEADER
.code32
.globl _start
.set UNCLAIMED, 0xe0000000
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    # SSE on: CR0.EM=0, CR0.MP=1, CR4.OSFXSR|OSXMMEXCPT.
    mov %cr0, %eax
    and $~0x4, %eax
    or $0x2, %eax
    mov %eax, %cr0
    mov %cr4, %eax
    or $0x600, %eax
    mov %eax, %cr4

    pxor %xmm0, %xmm0
    por UNCLAIMED, %xmm0
    call low_and_high_dwords
    cmp $0xffffffff, %eax
    jne 1f
    cmp $0xffffffff, %edx
1:  REPORT e, por_from_unclaimed_mmio_reads_all_ones

    movdqa ones, %xmm0
    paddb UNCLAIMED + 0x10, %xmm0
    call low_and_high_dwords
    or %edx, %eax
    REPORT z, paddb_from_unclaimed_mmio_wraps_to_zero

    pxor %xmm0, %xmm0
    por pattern, %xmm0
    call low_and_high_dwords
    cmp pattern, %eax
    jne 2f
    cmp pattern + 12, %edx
2:  REPORT e, por_from_ram_reads_memory
    EXIT_WITH_FAILURES

# EAX = bits 31:0 of XMM0, EDX = bits 127:96 (PSHUFD 0xff brings dword 3 down).
low_and_high_dwords:
    movd %xmm0, %eax
    pshufd $0xff, %xmm0, %xmm7
    movd %xmm7, %edx
    ret

DEFINE_PUTS

.data
.align 16
ones: .fill 16, 1, 0x01
pattern: .long 0x12345678, 0, 0, 0x9abcdef0
.bss
failures: .long 0
.align 16
.skip 8192
stack_top:
