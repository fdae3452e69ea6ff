# The built-in demo guest (`strata` with no arguments): a tiny Multiboot kernel that says what
# Strata is, reads the CPU vendor with CPUID and the memory size from the Multiboot
# information, takes five PIT timer interrupts through the 8259, and exits through port 0xf4.
.include "common.inc"
.include "idt32.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    mov %ebx, mbi
    lea banner, %esi
    call puts
    # CPU vendor: EBX, EDX, ECX of leaf 0.
    xor %eax, %eax
    cpuid
    mov %ebx, vendor
    mov %edx, vendor + 4
    mov %ecx, vendor + 8
    lea cpu_msg, %esi
    call puts
    lea vendor, %esi
    call puts
    lea nl, %esi
    call puts
    # Memory above 1 MiB, in KiB (Multiboot information, offset 8).
    lea mem_msg, %esi
    call puts
    mov mbi, %ebx
    mov 8(%ebx), %eax
    shr $10, %eax
    add $1, %eax
    call putdec
    lea mib, %esi
    call puts
    # Five timer interrupts: PIC at 0x20, PIT mode 2 at 100 Hz.
    call build_idt
    movl $on_tick, handlers + 0x20 * 4
    INIT_PIC
    mov $0xfe, %al ; out %al, $0x21
    mov $0xff, %al ; out %al, $0xa1
    mov $0x34, %al ; out %al, $0x43
    mov $11932 & 0xff, %al ; out %al, $0x40
    mov $11932 >> 8, %al ; out %al, $0x40
    sti
1:  hlt
    cmpl $5, ticks
    jb 1b
    cli
    lea bye, %esi
    call puts
    EXIT 0

on_tick:
    incl ticks
    lea tick, %esi
    call puts
    mov $0x20, %al ; out %al, $0x20
    ret

# putdec: print %eax in decimal.
putdec:
    push %ebx
    push %ecx
    push %edx
    mov $10, %ebx
    xor %ecx, %ecx
2:  xor %edx, %edx
    div %ebx
    push %edx
    inc %ecx
    test %eax, %eax
    jnz 2b
3:  pop %eax
    add $'0', %al
    call putc
    loop 3b
    pop %edx
    pop %ecx
    pop %ebx
    ret

DEFINE_PUTS
DEFINE_IDT32

.data
banner: .ascii "\n  Strata: a portable x86 PC emulator.\n"
        .ascii "  This guest is a Multiboot kernel built into strata; it runs on tier 0, the\n"
        .ascii "  interpreter, on Strata's own PC devices (8259 PIC, 8254 PIT, 16550A UART).\n"
        .asciz "  Boot a Linux kernel with: strata run --kernel bzImage --initrd initrd.cpio.gz\n\n"
cpu_msg: .asciz "  CPUID vendor: "
mem_msg: .asciz "  Memory: "
mib: .asciz " MiB\n  Timer interrupts: "
tick: .asciz "tick "
bye: .asciz "\n  Done. Goodbye.\n\n"
nl: .asciz "\n"
.bss
failures: .long 0
mbi: .long 0
ticks: .long 0
vendor: .skip 16
.align 16
.skip 4096
stack_top:
