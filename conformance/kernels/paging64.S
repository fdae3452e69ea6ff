# IA-32e paging and #PF, from a Multiboot entry: build 4-level tables, enable PAE, LME, NXE, WP
# and paging, far-jump to 64-bit code, then check (SDM Vol. 3, 4.7 and 4.8):
#  - a read of a not-present page: #PF, error 0, CR2 = the address;
#  - a store to a read-only page: error P|W (3);
#  - a read-modify-write (ADD to memory) on a read-only page: the same write fault, W = 1;
#  - a fetch from an NX page: error P|I/D (0x11);
#  - an 8-byte store crossing into a read-only page: #PF with CR2 = the second page, and the
#    bytes in the first (writable) page unchanged;
#  - accessed and dirty bits: a read sets A only, a write sets D;
#  - INVLPG: after changing a PTE, the new translation is used.
.include "common.inc"
MULTIBOOT_HEADER
.set TEST_VA, 0x40000000          # 1 GiB: mapped with 4 KiB pages by `pt`
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    # PML4[0] -> PDPT; PDPT[0] -> PD (first GiB in 2 MiB pages), PDPT[1] -> PD2 -> PT (test area).
    mov $pdpt + 3, %eax ; mov %eax, pml4
    mov $pd + 3, %eax ; mov %eax, pdpt
    mov $pd2 + 3, %eax ; mov %eax, pdpt + 8
    mov $pt + 3, %eax ; mov %eax, pd2
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                  # P | RW | PS
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    # Test pages (frames at 0x800000 + 4K*n):
    #  pt[0] RW (for A/D), pt[1] not present, pt[2] RO, pt[3] RW NX, pt[4] RW, pt[5] RO
    movl $0x800000 + 0x0000 + 3, pt + 0*8
    movl $0x800000 + 0x2000 + 1, pt + 2*8
    movl $0x800000 + 0x3000 + 3, pt + 3*8
    movl $0x80000000, pt + 3*8 + 4  # NX
    movl $0x800000 + 0x4000 + 3, pt + 4*8
    movl $0x800000 + 0x5000 + 1, pt + 5*8
    mov %cr4, %eax ; or $0x20, %eax ; mov %eax, %cr4          # PAE
    mov $pml4, %eax ; mov %eax, %cr3
    mov $0xc0000080, %ecx ; rdmsr ; or $0x900, %eax ; wrmsr   # EFER.LME | NXE
    mov %cr0, %eax ; or $0x80010000, %eax ; mov %eax, %cr0    # PG | WP
    lgdt gdtr64
    ljmp $0x08, $long_mode

.code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds ; mov %ax, %es ; mov %ax, %ss
    lea stack_top(%rip), %rsp
    # IDT: #PF (14) -> pf_handler; #GP (13) -> gp_handler; everything else -> other_handler.
    xor %ecx, %ecx
2:  lea other_handler(%rip), %rax
    cmp $13, %ecx
    jne 7f
    lea gp_handler(%rip), %rax
7:  cmp $14, %ecx
    jne 3f
    lea pf_handler(%rip), %rax
3:  mov %rcx, %rdx
    shl $4, %rdx
    lea idt64(%rip), %rbx
    add %rdx, %rbx
    mov %ax, (%rbx)
    movw $0x08, 2(%rbx)
    movw $0x8e00, 4(%rbx)
    shr $16, %rax
    mov %ax, 6(%rbx)
    shr $16, %rax
    mov %eax, 8(%rbx)
    movl $0, 12(%rbx)
    inc %ecx
    cmp $32, %ecx
    jb 2b
    lidt idtr64(%rip)

    # Not-present read.
    lea 4f(%rip), %rax ; mov %rax, resume(%rip)
    mov TEST_VA + 0x1000, %rax
4:  cmpq $0, pf_error(%rip)
    REPORT64 e, not_present_read_error_0
    movabs $TEST_VA + 0x1000, %rax
    cmp pf_cr2(%rip), %rax
    REPORT64 e, cr2_holds_the_address

    # Store to read-only.
    lea 5f(%rip), %rax ; mov %rax, resume(%rip)
    movl $1, TEST_VA + 0x2000
5:  cmpq $3, pf_error(%rip)
    REPORT64 e, store_to_read_only_error_p_w

    # Read-modify-write on read-only: must report the write fault.
    movq $0, pf_error(%rip)
    lea 6f(%rip), %rax ; mov %rax, resume(%rip)
    addl $1, TEST_VA + 0x2008
6:  cmpq $3, pf_error(%rip)
    REPORT64 e, rmw_on_read_only_reports_w1

    # Fetch from an NX page: put a RET there first (the page is writable).
    movb $0xc3, TEST_VA + 0x3000
    lea 7f(%rip), %rax ; mov %rax, resume(%rip)
    movabs $TEST_VA + 0x3000, %rax
    call *%rax
7:  cmpq $0x11, pf_error(%rip)
    REPORT64 e, fetch_from_nx_error_p_id

    # Page-crossing store into a read-only second page: nothing written.
    movabs $0x1111111111111111, %rax
    mov %rax, TEST_VA + 0x4ff8
    lea 8f(%rip), %rax ; mov %rax, resume(%rip)
    movabs $0x2222222222222222, %rax
    mov %rax, TEST_VA + 0x4ffc
8:  movabs $TEST_VA + 0x5000, %rax
    cmp pf_cr2(%rip), %rax
    REPORT64 e, crossing_store_faults_on_the_second_page
    movabs $0x1111111111111111, %rax
    cmp TEST_VA + 0x4ff8, %rax
    REPORT64 e, crossing_store_wrote_nothing

    # Accessed and dirty bits on pt[0].
    andq $~0x60, pt(%rip)
    invlpg TEST_VA
    mov TEST_VA, %rax
    mov pt(%rip), %rax
    and $0x60, %rax
    cmp $0x20, %rax
    REPORT64 e, read_sets_accessed_only
    movl $5, TEST_VA
    mov pt(%rip), %rax
    and $0x60, %rax
    cmp $0x60, %rax
    REPORT64 e, write_sets_dirty

    # INVLPG: remap TEST_VA to page 4's frame and see its contents.
    movl $0x800000 + 0x4000 + 3, pt(%rip)
    invlpg TEST_VA
    movabs $0x1111111111111111, %rax
    cmp TEST_VA + 0xff8, %rax
    REPORT64 e, invlpg_uses_the_new_pte

    # LTR and LLDT of a descriptor whose 64-bit base is not canonical: #GP(selector) (SDM
    # Vol. 2, LTR and LLDT, 64-bit mode exceptions), and TR/LDTR stay as they were.
    lea 5f(%rip), %rax ; mov %rax, resume(%rip)
    movq $-1, gp_error(%rip)
    mov $0x18, %ax
    ltr %ax
5:  cmpq $0x18, gp_error(%rip)
    REPORT64 e, ltr_of_non_canonical_base_is_gp_selector
    lea 6f(%rip), %rax ; mov %rax, resume(%rip)
    movq $-1, gp_error(%rip)
    mov $0x28, %ax
    lldt %ax
6:  cmpq $0x28, gp_error(%rip)
    REPORT64 e, lldt_of_non_canonical_base_is_gp_selector

    mov failures(%rip), %eax
    mov $EXIT_PORT, %dx
    out %al, %dx
    cli
    hlt

pf_handler:
    pop %rax                        # error code
    mov %rax, pf_error(%rip)
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)                # return to the resume point
    iretq
gp_handler:
    pop %rax                        # error code
    mov %rax, gp_error(%rip)
    mov resume(%rip), %rax
    mov %rax, (%rsp)
    iretq
other_handler:
    mov $0xee, %al                  # an unexpected exception: exit with code 0xee
    mov $EXIT_PORT, %dx
    out %al, %dx
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

.section .rodata
.align 8
gdt64: .quad 0, 0x00af9b000000ffff, 0x00cf93000000ffff
        # 0x18: available 64-bit TSS, 0x28: LDT; both with base 0x8000000000000000.
        .quad 0x0000890000000067, 0x80000000
        .quad 0x0000820000000067, 0x80000000
gdtr64: .word 55
        .long gdt64, 0
idtr64: .word 32 * 16 - 1
        .long idt64, 0
.bss
.align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
pd2: .skip 4096
pt: .skip 4096
idt64: .skip 32 * 16
failures: .quad 0
pf_error: .quad 0
pf_cr2: .quad 0
gp_error: .quad 0
resume: .quad 0
.skip 8192
stack_top:
