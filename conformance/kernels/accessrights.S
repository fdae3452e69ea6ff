# Page access rights beyond U/S, R/W and NX, in IA-32e paging (SDM Vol. 3, 4.6 and 4.7; SDM
# Vol. 2, STAC/CLAC, RDPKRU/WRPKRU): SMEP, SMAP with EFLAGS.AC and implicit supervisor
# accesses, protection keys for user pages (CR4.PKE, PKRU) and for supervisor pages (CR4.PKS,
# IA32_PKRS), and the #PF error codes they give (P, W, I/D, PK). Needs a CPU that reports
# SMEP, SMAP, PKU and PKS (Strata: --cpu sapphirerapids; QEMU: -cpu max).
#
# The checks run ROUNDS times over the same code, so an engine that compiles hot blocks (the
# JIT) runs them compiled too, and a cached translation that outlives a change of AC, PKRU,
# IA32_PKRS or CR4 shows up as a wrong outcome in a later round. Each check counts the rounds
# it failed in; one PASS/FAIL line per check at the end.
.include "common.inc"
MULTIBOOT_HEADER
.set TEST_VA, 0x40000000          # 1 GiB: the test pages, 4 KiB each (`pt`)
.set ROUNDS, 24
.set CR4_SMEP, 1 << 20
.set CR4_SMAP, 1 << 21
.set CR4_PKE, 1 << 22
.set CR4_PKS, 1 << 24
.set IA32_PKRS, 0x6e1
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    # The first GiB: supervisor 2 MiB pages (the kernel, its stack, the page tables). The test
    # GiB: tables with U/S set, so each leaf decides.
    mov $pdpt + 7, %eax ; mov %eax, pml4
    mov $pd + 3, %eax ; mov %eax, pdpt
    mov $pd2 + 7, %eax ; mov %eax, pdpt + 8
    mov $pt + 7, %eax ; mov %eax, pd2
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                  # P | RW | PS
    mov %eax, pd(,%ecx,8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    # Test pages (frames at 0x800000 + 4K*n; protection key in PTE bits 62:59):
    #  pt[0] user RW, key 0       pt[1] supervisor RW, key 1    pt[2] user RW, key 2
    #  pt[3] user RW (code)       pt[5] supervisor RW, pt[6] user RW (a GDT across them)
    movl $0x800000 + 0x0000 + 7, pt + 0*8
    movl $0x800000 + 0x1000 + 3, pt + 1*8
    movl $1 << 27, pt + 1*8 + 4
    movl $0x800000 + 0x2000 + 7, pt + 2*8
    movl $2 << 27, pt + 2*8 + 4
    movl $0x800000 + 0x3000 + 7, pt + 3*8
    movl $0x800000 + 0x5000 + 3, pt + 5*8
    movl $0x800000 + 0x6000 + 7, pt + 6*8
    mov %cr4, %eax ; or $0x20, %eax ; mov %eax, %cr4          # PAE
    mov $pml4, %eax ; mov %eax, %cr3
    mov $0xc0000080, %ecx ; rdmsr ; or $0x900, %eax ; wrmsr   # EFER.LME | NXE
    mov %cr0, %eax ; or $0x80010000, %eax ; mov %eax, %cr0    # PG | WP
    lgdt gdtr64
    ljmp $0x08, $long_mode

# Arms the #PF handler to resume at `label`, with pf_error -1 ("no fault").
.macro TRY label
    lea \label(%rip), %rax
    mov %rax, resume(%rip)
    movq $-1, pf_error(%rip)
.endm
# Counts a failed round for check `k` unless the condition holds (flags already set).
.macro CHECK k, cond
    j\cond ok\@
    incq errs + 8 * \k(%rip)
ok\@:
.endm
.macro EXPECT_PF k, err
    cmpq $\err, pf_error(%rip)
    CHECK \k, e
.endm
.macro CR4_SET bits
    mov %cr4, %rax ; or $\bits, %rax ; mov %rax, %cr4
.endm
.macro CR4_CLEAR bits
    mov %cr4, %rax ; and $~(\bits), %rax ; mov %rax, %cr4
.endm
.macro WP on
    mov %cr0, %rax
    .if \on
    or $0x10000, %rax
    .else
    and $~0x10000, %rax
    .endif
    mov %rax, %cr0
.endm
.macro WRPKRU_EAX value
    mov $\value, %eax ; xor %ecx, %ecx ; xor %edx, %edx
    wrpkru
.endm
.macro WRPKRS value
    mov $IA32_PKRS, %ecx ; mov $\value, %eax ; xor %edx, %edx
    wrmsr
.endm

.code64
long_mode:
    mov $0x10, %ax
    mov %ax, %ds ; mov %ax, %es ; mov %ax, %ss
    lea stack_top(%rip), %rsp
    # IDT: #PF (14) -> pf_handler; everything else -> other_handler.
    xor %ecx, %ecx
2:  lea other_handler(%rip), %rax
    cmp $14, %ecx
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
    # The code page (a RET) and the GDT copy on user pages.
    movb $0xc3, TEST_VA + 0x3000
    lea gdt64(%rip), %rsi
    movabs $TEST_VA + 0x6000 - 24, %rdi
    mov $4, %ecx
    rep movsq

    mov $ROUNDS, %r15d
round:
    call checks
    dec %r15d
    jnz round

    lea names(%rip), %rbx           # one line per check, in the order of `names`
    xor %r14d, %r14d
report:
    cmpb $0, (%rbx)
    je done
    lea errs(%rip), %rax
    cmpq $0, (%rax,%r14,8)
    lea pass_word(%rip), %rsi
    je 4f
    incq failures(%rip)
    lea fail_word(%rip), %rsi
4:  call puts64
    mov %rbx, %rsi
    call puts64
    mov %rsi, %rbx                  # past the name's NUL
    mov $'\n', %al
    call putc64
    inc %r14d
    jmp report
done:
    mov failures(%rip), %eax
    mov $EXIT_PORT, %dx
    out %al, %dx
    cli
    hlt

checks:
    # 0: CPUID.(7,0) reports SMEP (EBX 7), SMAP (EBX 20), PKU (ECX 3), PKS (ECX 31).
    mov $7, %eax ; xor %ecx, %ecx ; cpuid
    and $(1 << 7 | 1 << 20), %ebx
    cmp $(1 << 7 | 1 << 20), %ebx
    CHECK 0, e
    and $(1 << 3 | 1 << 31), %ecx
    cmp $(1 << 3 | 1 << 31), %ecx
    CHECK 0, e

    # 1: OSPKE (CPUID.(7,0):ECX 4) follows CR4.PKE.
    CR4_CLEAR CR4_PKE
    mov $7, %eax ; xor %ecx, %ecx ; cpuid
    test $1 << 4, %ecx
    CHECK 1, z
    CR4_SET CR4_PKE
    mov $7, %eax ; xor %ecx, %ecx ; cpuid
    test $1 << 4, %ecx
    CHECK 1, nz
    CR4_CLEAR CR4_PKE

    # 2: SMAP off: a supervisor read of a user page with AC clear is allowed.
    CR4_CLEAR CR4_SMAP
    clac
    TRY 10f
    mov TEST_VA, %rax
10: EXPECT_PF 2, -1

    # 3-6: SMAP on. AC set: reads and writes of a user page are allowed; AC clear: #PF with
    # P (1) for a read, P|W (3) for a write; the allowed access just before must not leave a
    # translation behind that lets the next one through.
    CR4_SET CR4_SMAP
    stac
    TRY 11f
    mov TEST_VA, %rax
11: EXPECT_PF 3, -1
    clac
    TRY 12f
    mov TEST_VA, %rax
12: EXPECT_PF 4, 1
    stac
    TRY 13f
    movq $5, TEST_VA
13: EXPECT_PF 6, -1
    clac
    TRY 14f
    movq $6, TEST_VA
14: EXPECT_PF 5, 3
    cmpq $5, 0x800000               # the faulted write left the page as it was (read
    CHECK 5, e                      # through the supervisor identity mapping)

    # 7: an implicit supervisor access (a segment load reading the GDT) to a user page faults
    # even with AC set: #PF, P (1), CR2 the descriptor. The GDT copy ends a supervisor page
    # (null, code, data: what delivering the #PF reads) and its entry 0x18 starts a user page.
    stac
    lgdt gdtr64_user(%rip)
    TRY 16f
    mov $0x18, %ax
    mov %ax, %ds
16: lgdt gdtr64(%rip)
    mov $0x10, %ax
    mov %ax, %ds
    EXPECT_PF 7, 1
    movabs $TEST_VA + 0x6000, %rax
    cmp pf_cr2(%rip), %rax
    CHECK 7, e
    clac
    CR4_CLEAR CR4_SMAP

    # 8-9: SMEP on: a supervisor fetch from a user page is #PF, P|I/D (0x11); off: it runs.
    CR4_SET CR4_SMEP
    TRY 17f
    movabs $TEST_VA + 0x3000, %rax
    jmp *%rax                       # (a JMP: the fault leaves nothing pushed)
17: EXPECT_PF 8, 0x11
    CR4_CLEAR CR4_SMEP
    TRY 18f
    movabs $TEST_VA + 0x3000, %rax
    call *%rax
18: EXPECT_PF 9, -1

    # 10-15: protection keys for user pages (CR4.PKE, PKRU; supervisor accesses to user pages).
    CR4_SET CR4_PKE
    WRPKRU_EAX 0
    TRY 19f
    mov TEST_VA + 0x2000, %rax      # key 2, rights all allowed: fine (and cached, maybe)
19: EXPECT_PF 10, -1
    WRPKRU_EAX 0x10                 # key 2 access-disable
    TRY 20f
    mov TEST_VA + 0x2000, %rax
20: EXPECT_PF 10, 0x21              # P|PK
    TRY 21f
    mov TEST_VA, %rax               # key 0: unaffected
21: EXPECT_PF 14, -1
    WRPKRU_EAX 0x20                 # key 2 write-disable
    TRY 22f
    mov TEST_VA + 0x2000, %rax
22: EXPECT_PF 13, -1
    WP 1
    TRY 23f
    movq $7, TEST_VA + 0x2000
23: EXPECT_PF 11, 0x23              # P|W|PK
    WP 0
    TRY 24f
    movq $8, TEST_VA + 0x2000       # write-disable binds supervisors only with CR0.WP
24: EXPECT_PF 12, -1
    WP 1
    xor %ecx, %ecx
    rdpkru
    cmp $0x20, %eax
    CHECK 15, e
    WRPKRU_EAX 0
    CR4_CLEAR CR4_PKE

    # 16-20: protection keys for supervisor pages (CR4.PKS, IA32_PKRS).
    CR4_SET CR4_PKS
    WRPKRS 0
    TRY 25f
    mov TEST_VA + 0x1000, %rax      # key 1, all allowed
25: EXPECT_PF 16, -1
    WRPKRS 0x4                      # key 1 access-disable
    TRY 26f
    mov TEST_VA + 0x1000, %rax
26: EXPECT_PF 16, 0x21
    WRPKRS 0x8                      # key 1 write-disable
    TRY 27f
    movq $9, TEST_VA + 0x1000
27: EXPECT_PF 17, 0x23
    WP 0
    TRY 28f
    movq $10, TEST_VA + 0x1000
28: EXPECT_PF 18, -1
    WP 1
    mov $IA32_PKRS, %ecx
    rdmsr
    cmp $0x8, %eax
    CHECK 19, e
    WRPKRS 0x30                     # key 2 access-disable: not for a user page's key 2
    TRY 29f
    mov TEST_VA + 0x2000, %rax
29: EXPECT_PF 20, -1
    WRPKRS 0
    CR4_CLEAR CR4_PKS
    ret

pf_handler:
    pop %rax                        # error code
    mov %rax, pf_error(%rip)
    mov %cr2, %rax
    mov %rax, pf_cr2(%rip)
    lgdt gdtr64(%rip)               # (the implicit-access check points GDTR at a user page)
    mov resume(%rip), %rax
    mov %rax, (%rsp)                # return to the resume point
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
        .quad 0x00cf93000000ffff    # 0x18: data (only in the copy across pt[5] and pt[6])
gdtr64: .word 23
        .long gdt64, 0
gdtr64_user: .word 31
        .quad TEST_VA + 0x6000 - 24
idtr64: .word 32 * 16 - 1
        .long idt64, 0
pass_word: .asciz "PASS "
fail_word: .asciz "FAIL "
names:
    .asciz "cpuid_reports_smep_smap_pku_pks"
    .asciz "ospke_follows_cr4_pke"
    .asciz "smap_off_supervisor_reads_user_page"
    .asciz "smap_ac1_supervisor_reads_user_page"
    .asciz "smap_ac0_read_of_user_page_is_pf_p"
    .asciz "smap_ac0_write_of_user_page_is_pf_pw_and_writes_nothing"
    .asciz "smap_ac1_supervisor_writes_user_page"
    .asciz "smap_implicit_gdt_read_on_user_page_faults_with_ac1"
    .asciz "smep_fetch_from_user_page_is_pf_p_id"
    .asciz "smep_off_fetch_from_user_page_runs"
    .asciz "pkru_ad_read_is_pf_p_pk_after_an_allowed_read"
    .asciz "pkru_wd_wp1_write_is_pf_p_w_pk"
    .asciz "pkru_wd_wp0_supervisor_write_allowed"
    .asciz "pkru_wd_read_allowed"
    .asciz "pkru_ad_of_another_key_leaves_key0_alone"
    .asciz "rdpkru_reads_what_wrpkru_wrote"
    .asciz "pkrs_ad_read_is_pf_p_pk_after_an_allowed_read"
    .asciz "pkrs_wd_wp1_write_is_pf_p_w_pk"
    .asciz "pkrs_wd_wp0_write_allowed"
    .asciz "rdmsr_pkrs_reads_what_wrmsr_wrote"
    .asciz "pkrs_does_not_apply_to_user_pages"
    .byte 0
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
resume: .quad 0
errs: .skip 8 * 32
.skip 8192
stack_top:
