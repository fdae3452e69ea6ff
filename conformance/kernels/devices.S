# The PC's devices as a guest sees them, each against its datasheet:
#  - i8042: controller self-test (0xAA) answers 0x55 (8042 datasheet / IBM PC AT reference).
#  - PCI configuration mechanism #1: 00:00.0 is a host bridge, vendor 8086 device 1237 (440FX),
#    class 06/00; an absent device reads all ones (PCI 3.0, 3.2.2.3.2).
#  - RTC: register D reports valid RAM and time (VRT, bit 7); seconds are BCD in 0-59 (MC146818).
#  - UART: in loopback mode (MCR bit 4) a byte written to THR comes back in RBR (PC16550D).
#  - PIT: a latched channel-0 count decreases between two latches (8254 datasheet).
#  - IOAPIC: ISA IRQ 0 arrives on pin 2; routed to vector 0x58 with the 8259 masked, the PIT
#    interrupt reaches the CPU through the IOAPIC and LAPIC (82093AA datasheet).
.include "common.inc"
.include "idt32.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    call build_idt

    # i8042 self-test.
    mov $0xaa, %al ; out %al, $0x64
1:  in $0x64, %al
    test $1, %al
    jz 1b
    in $0x60, %al
    cmp $0x55, %al
    REPORT e, i8042_self_test_answers_55

    # PCI 00:00.0 vendor/device and class.
    mov $0x80000000, %eax ; mov $0xcf8, %dx ; out %eax, %dx
    mov $0xcfc, %dx ; in %dx, %eax
    cmp $0x12378086, %eax
    REPORT e, pci_host_bridge_is_8086_1237
    mov $0x80000008, %eax ; mov $0xcf8, %dx ; out %eax, %dx
    mov $0xcfc, %dx ; in %dx, %eax
    shr $16, %eax
    cmp $0x0600, %eax
    REPORT e, pci_host_bridge_class_0600
    mov $0x8000e800, %eax ; mov $0xcf8, %dx ; out %eax, %dx    # 00:1d.0: absent
    mov $0xcfc, %dx ; in %dx, %eax
    cmp $0xffffffff, %eax
    REPORT e, pci_absent_device_reads_all_ones

    # RTC: VRT and BCD seconds.
    mov $0x0d, %al ; out %al, $0x70
    in $0x71, %al
    test $0x80, %al
    REPORT nz, rtc_register_d_valid_ram_and_time
    mov $0x00, %al ; out %al, $0x70
    in $0x71, %al
    mov %al, %ah
    and $0x0f, %ah
    cmp $9, %ah
    REPORT be, rtc_seconds_low_digit_is_bcd
    cmp $0x59, %al
    REPORT be, rtc_seconds_at_most_59

    # UART loopback.
    mov $COM1 + 4, %dx ; mov $0x10, %al ; out %al, %dx          # MCR: loopback
    mov $COM1, %dx ; mov $0x5a, %al ; out %al, %dx
    mov $COM1 + 5, %dx
2:  in %dx, %al
    test $1, %al                                                 # LSR: data ready
    jz 2b
    mov $COM1, %dx ; in %dx, %al
    mov %al, %bl
    mov $COM1 + 4, %dx ; xor %al, %al ; out %al, %dx            # loopback off before printing
    cmp $0x5a, %bl
    REPORT e, uart_loopback_returns_the_byte

    # PIT: channel 0 mode 2, count 0xffff; two latched reads decrease.
    mov $0x34, %al ; out %al, $0x43
    mov $0xff, %al ; out %al, $0x40 ; out %al, $0x40
    call pit_latch
    mov %eax, %ebx
    mov $20000, %ecx
3:  loop 3b
    call pit_latch
    cmp %ebx, %eax
    REPORT b, pit_latched_count_decreases

    # IOAPIC: mask the 8259, route pin 2 to vector 0x58 (fixed, edge, physical, APIC 0).
    movl $on_ioapic, handlers + 0x58 * 4
    INIT_PIC
    mov $0xff, %al ; out %al, $0x21 ; out %al, $0xa1
    movl $0x1ff, 0xfee000f0                                      # LAPIC on
    movl $0x10 + 2 * 2, 0xfec00000                               # IOREDTBL[2] low
    movl $0x58, 0xfec00010
    movl $0x10 + 2 * 2 + 1, 0xfec00000                           # high: destination APIC 0
    movl $0, 0xfec00010
    mov $0x34, %al ; out %al, $0x43                              # PIT 1 kHz
    mov $1193 & 0xff, %al ; out %al, $0x40
    mov $1193 >> 8, %al ; out %al, $0x40
    sti
4:  hlt
    cmpl $3, ioapic_ticks
    jb 4b
    cli
    cmpl $3, ioapic_ticks
    REPORT ae, pit_through_ioapic_and_lapic

    EXIT_WITH_FAILURES

pit_latch:
    mov $0x00, %al ; out %al, $0x43                              # latch channel 0
    in $0x40, %al
    mov %al, %ah
    in $0x40, %al
    xchg %al, %ah
    movzwl %ax, %eax
    ret

on_ioapic:
    incl ioapic_ticks
    movl $0, 0xfee000b0                                          # LAPIC EOI
    ret

DEFINE_PUTS
DEFINE_IDT32

.bss
failures: .long 0
ioapic_ticks: .long 0
.align 16
.skip 8192
stack_top:
