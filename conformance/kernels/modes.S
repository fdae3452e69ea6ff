# A round trip through the x86 operating modes, starting from real mode as a PC hands over to a
# boot sector (0:7C00): real-mode segment arithmetic (linear = segment * 16 + offset, 16-bit
# offsets wrapping at 64 KiB, FFFF:xxxx reaching past 1 MiB with A20 on, as after the BIOS and
# on Strata, which never masks A20), interrupts through the IVT (INT n; IRQ 0 from the PIT through
# the 8259A; IRET), far calls and returns, then real mode -> 16-bit protected mode -> 32-bit
# protected mode -> IA-32e (long) mode -> compatibility mode -> paging off, 32-bit protected mode
# -> a 16-bit segment with 64 KiB limits -> real mode again, where the IVT works as before. Each
# check prints PASS/FAIL; the exit port gets the failure count.
# References: SDM Vol. 3, 9.1 (reset state), 9.9.1 (switching to protected mode), 9.9.2
# (switching back to real-address mode), 9.8.5 and 9.8.5.4 (initializing and leaving IA-32e
# mode), 6.1-6.4 and 20.1.4 (the real-mode IVT, INT/IRET); the 8259A and 8254 datasheets.
# Four sectors: a BIOS loads only the first, which reads the other three with INT 13h if they
# are not there yet (Strata's direct boot loads the whole image).
.include "common.inc"
.set MAGIC, 0x5a5a1234
.set CODE32, 0x08
.set DATA32, 0x10
.set CODE64, 0x18
.set CODE16, 0x20
.set DATA16, 0x28
.set DATA16_HI, 0x30               # base 0x10000, 64 KiB
.set FAILS, 0x600                  # the failure count (below the image)

.code16
.section .text
.globl _start
_start:
    cli
    ljmp $0, $1f                   # CS = 0 whatever CS:IP the BIOS used for 0x7C00
1:  xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    movw $0, FAILS
    cmpl $MAGIC, image_magic
    je loaded
    mov $0x7e00, %bx               # the next three sectors from the boot drive (DL)
    mov $0x0203, %ax
    mov $0x0002, %cx
    xor %dh, %dh
    int $0x13
    cmpl $MAGIC, image_magic
    je loaded
    mov $0x7f, %al
    out %al, $EXIT_PORT
    hlt
loaded:
    cli
    lidt ivt_desc                  # the real-mode IVT at 0 (SDM Vol. 3, 20.1.4)
    jmp main16

# report16: AL = 0 for PASS, anything else FAIL; SI = the check's name.
report16:
    push %si
    test %al, %al
    lea s_pass, %si
    jz 1f
    lea s_fail, %si
    incw FAILS
1:  call puts16
    pop %si
    call puts16
    lea s_nl, %si
    jmp puts16

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

s_pass: .asciz "PASS "
s_fail: .asciz "FAIL "
s_nl: .asciz "\n"
ivt_desc: .word 0x3ff
          .long 0
.org 510
.byte 0x55, 0xaa

# ---- sector 2 on: real mode ----
main16:
    # Linear = segment * 16 + offset: a word stored through 1234:5678 reads back through
    # 179B:0008 (both 0x179B8).
    mov $0x1234, %ax
    mov %ax, %ds
    movw $0xbeef, 0x5678
    mov $0x179b, %ax
    mov %ax, %es
    mov %es:0x0008, %bx
    xor %ax, %ax
    mov %ax, %ds
    cmp $0xbeef, %bx
    setne %al
    lea n_linear, %si
    call report16

    # 16-bit effective addresses wrap at 64 KiB: [BX+SI] with FFF0h + 0020h is offset 0010h.
    mov $0x2000, %ax
    mov %ax, %ds
    movw $0x1111, 0x0010           # 0x20010
    mov $0x3000, %ax
    mov %ax, %es
    movw $0x2222, %es:0x0010       # 0x30010, where an unwrapped sum would land
    mov $0x2000, %ax
    mov %ax, %ds
    mov $0xfff0, %bx
    mov $0x0020, %si
    mov (%bx,%si), %cx
    xor %ax, %ax
    mov %ax, %ds
    cmp $0x1111, %cx
    setne %al
    lea n_wrap, %si
    call report16

    # FFFF:0510 is 0x100500 with A20 on; with A20 masked it would alias 0:0500.
    movb $0x55, 0x500
    mov $0xffff, %ax
    mov %ax, %es
    movb $0xaa, %es:0x510
    cmpb $0x55, 0x500
    setne %al
    lea n_a20, %si
    call report16

    # INT n through the IVT: the handler sees CS:IP and FLAGS pushed, IRET restores them.
    movw $int81, 0x81 * 4
    movw $0, 0x81 * 4 + 2
    movw $0, int_seen
    stc
    int $0x81
after_int81:
    setnc %al                      # CF came back through IRET
    cmpw $0x5a5a, int_seen
    setne %ah
    or %ah, %al
    cmpw $after_int81, int_ip
    setne %ah
    or %ah, %al
    cmpw $0, int_cs
    setne %ah
    or %ah, %al
    lea n_int, %si
    call report16

    # IRQ 0: the 8254 in mode 2 (about 1 kHz) through the 8259A (vector base 08h, as a BIOS
    # programs it), to an IVT handler that counts and sends the EOI.
    movw $irq0, 0x08 * 4
    movw $0, 0x08 * 4 + 2
    movw $0, irq_count
    mov $0x11, %al ; out %al, $0x20  # ICW1: edge, cascade, ICW4 follows
    mov $0x08, %al ; out %al, $0x21  # ICW2: vectors 08h-0Fh
    mov $0x04, %al ; out %al, $0x21  # ICW3: slave on IRQ 2
    mov $0x01, %al ; out %al, $0x21  # ICW4: 8086 mode
    mov $0x11, %al ; out %al, $0xa0
    mov $0x70, %al ; out %al, $0xa1
    mov $0x02, %al ; out %al, $0xa1
    mov $0x01, %al ; out %al, $0xa1
    mov $0xff, %al ; out %al, $0xa1
    mov $0xfe, %al ; out %al, $0x21  # only IRQ 0
    mov $0x34, %al ; out %al, $0x43  # channel 0, lobyte/hibyte, mode 2
    mov $1193 & 0xff, %al ; out %al, $0x40
    mov $1193 >> 8, %al ; out %al, $0x40
    mov $1000, %cx
1:  sti
    hlt
    cli
    cmpw $3, irq_count
    jae 2f
    loop 1b
2:  mov $0xff, %al ; out %al, $0x21  # mask everything again
    cmpw $3, irq_count
    setb %al
    lea n_irq, %si
    call report16

    # A far call into segment 07C0h and a far return.
    mov %sp, %di
    lcall $0x07c0, $farproc - 0x7c00
    cmp %sp, %di
    setne %al
    cmpw $0x07c0, far_cs
    setne %ah
    or %ah, %al
    lea n_far, %si
    call report16

    # A marker at 0x10000 for the 16-bit protected-mode segment whose base is there.
    mov $0x1000, %ax
    mov %ax, %es
    movw $0x6789, %es:0
    xor %ax, %ax
    mov %ax, %es

    # To 16-bit protected mode: GDT, CR0.PE, a far jump to a 16-bit code segment (SDM 9.9.1).
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmp $CODE16, $pm16

int81:
    push %bp
    mov %sp, %bp
    mov 2(%bp), %ax
    mov %ax, int_ip
    mov 4(%bp), %ax
    mov %ax, int_cs
    movw $0x5a5a, int_seen
    pop %bp
    iret

irq0:
    push %ax
    incw irq_count
    mov $0x20, %al
    out %al, $0x20                 # non-specific EOI
    pop %ax
    iret

farproc:                           # runs as 07C0:(farproc - 0x7C00)
    mov %cs, %ax
    mov %ax, far_cs
    lret

pm16:
    mov $DATA16, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $DATA16_HI, %ax
    mov %ax, %es
    mov %es:0, %bx                 # linear 0x10000 through the segment's base
    mov %cs, %cx
    mov %cr0, %eax
    and $1, %al
    xor $1, %al                    # 0 if PE is set
    cmp $CODE16, %cx
    setne %ah
    or %ah, %al
    cmp $0x6789, %bx
    setne %ah
    or %ah, %al
    lea n_pm16, %si
    call report16
    ljmpl $CODE32, $pm32

.code32
pm32:
    mov $DATA32, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %esp
    mov $0x12345678, %eax
    add $0x11111111, %eax          # 32-bit arithmetic in a D=1 segment
    cmp $0x23456789, %eax
    setne %al
    lea n_pm32, %esi
    call report32
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
    ljmp $CODE64, $lm64

report32:                          # AL = 0 PASS; ESI = the name
    push %esi
    test %al, %al
    lea s_pass, %esi
    jz 1f
    lea s_fail, %esi
    incw FAILS
1:  call puts
    pop %esi
    call puts
    lea s_nl, %esi
    jmp puts

DEFINE_PUTS

.code64
lm64:
    mov $0x123456789, %rax
    shr $32, %rax                  # 64-bit registers
    cmp $1, %rax
    setne %al
    mov $0xc0000080, %ecx
    push %rax
    rdmsr
    test $0x400, %eax              # EFER.LMA
    setz %ah
    pop %rcx
    or %cl, %ah
    mov %ah, %al
    lea n_lm(%rip), %rsi
    call report64
    # Leave IA-32e mode (SDM 9.8.5.4): to compatibility mode, paging off, LME off.
    pushq $CODE32
    mov $compat32, %eax            # zero-extends: the code is below 4 GiB
    push %rax
    lretq

report64:
    push %rsi
    test %al, %al
    lea s_pass(%rip), %rsi
    jz 1f
    lea s_fail(%rip), %rsi
    incw FAILS
1:  call puts64
    pop %rsi
    call puts64
    lea s_nl(%rip), %rsi
    jmp puts64

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
compat32:
    mov %cr0, %eax
    and $0x7fffffff, %eax
    mov %eax, %cr0                 # paging off: IA32_EFER.LMA clears
    mov $0xc0000080, %ecx
    rdmsr
    and $~0x100, %eax
    wrmsr
    rdmsr
    and $0x500, %eax               # LME and LMA both clear
    setnz %al
    lea n_lm_left, %esi
    call report32
    # Back to real mode (SDM 9.9.2): a 16-bit code segment, 64 KiB data segments, PE off, a far
    # jump to real-mode code, real-mode segments.
    ljmp $CODE16, $back16

.code16
back16:
    mov $DATA16, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov %cr0, %eax
    and $~1, %eax
    mov %eax, %cr0
    ljmp $0, $real_again

real_again:
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    lidt ivt_desc
    # Real-mode addressing and the IVT work again.
    mov $0x1000, %ax
    mov %ax, %es
    mov %es:0, %bx
    xor %ax, %ax
    mov %ax, %es
    movw $0, int_seen
    int $0x81
    mov %cr0, %eax
    and $1, %al                    # 0 if PE is clear
    cmp $0x6789, %bx
    setne %ah
    or %ah, %al
    cmpw $0x5a5a, int_seen
    setne %ah
    or %ah, %al
    lea n_real_again, %si
    call report16

    mov FAILS, %al
    out %al, $EXIT_PORT            # status (failures << 1) | 1
    hlt

.align 8
gdt: .quad 0
     .quad 0x00cf9b000000ffff      # 08: code, 32-bit, 4 GiB
     .quad 0x00cf93000000ffff      # 10: data, 4 GiB
     .quad 0x00af9b000000ffff      # 18: code, 64-bit
     .quad 0x00009b000000ffff      # 20: code, 16-bit, 64 KiB, byte granular
     .quad 0x000093000000ffff      # 28: data, 64 KiB
     .quad 0x000093010000ffff      # 30: data, base 0x10000, 64 KiB
gdt_desc: .word 7 * 8 - 1
          .long gdt
int_seen: .word 0
int_ip: .word 0
int_cs: .word 0xffff
irq_count: .word 0
far_cs: .word 0
n_linear: .asciz "rm_linear_is_segment_times_16_plus_offset"
n_wrap: .asciz "rm_16bit_offsets_wrap_at_64k"
n_a20: .asciz "rm_ffff_0510_reaches_1mib_with_a20_on"
n_int: .asciz "rm_int_n_through_ivt_and_iret"
n_irq: .asciz "rm_pit_irq0_through_8259_and_ivt"
n_far: .asciz "rm_far_call_and_far_return"
n_pm16: .asciz "pm16_code_segment_and_segment_base"
n_pm32: .asciz "pm32_entered"
n_lm: .asciz "long_mode_entered"
n_lm_left: .asciz "long_mode_left_paging_off"
n_real_again: .asciz "real_mode_again_via_16bit_segments"
.org 2044
image_magic: .long MAGIC
