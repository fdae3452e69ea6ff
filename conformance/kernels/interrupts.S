# Interrupts from every timer-ish device, through the 8259 pair and through the LAPIC:
# the PIT (IRQ 0, mode 2 at 1 kHz), the RTC periodic interrupt (IRQ 8 via the slave, register C
# read to acknowledge), the UART's transmit-holding-register-empty interrupt (IRQ 4, OUT2
# gating), the LAPIC timer (one-shot), and HLT waking on an interrupt. References: 8259A and
# 8254 datasheets, MC146818 datasheet, PC16550D datasheet, SDM Vol. 3 11.5.4.
.include "common.inc"
.include "idt32.inc"
MULTIBOOT_HEADER
.code32
.globl _start
_start:
    FLAT_GDT32
    mov $stack_top, %esp
    call build_idt
    movl $on_timer, handlers + 0x20 * 4
    movl $on_uart, handlers + 0x24 * 4
    movl $on_rtc, handlers + 0x28 * 4
    movl $on_lapic, handlers + 0x50 * 4
    # Spurious IRQ 7 / IRQ 15 (8259A datasheet: an IR input that drops before INTA gives IR7).
    # A masked RTC request can leave the slave's cascade request latched in the master; on host
    # time (KVM) that happens, so these are handled the way an OS does: no EOI for the master's
    # spurious IRQ 7, an EOI to the master only for the slave's IRQ 15.
    movl $on_spurious, handlers + 0x27 * 4
    movl $on_spurious_slave, handlers + 0x2f * 4

    INIT_PIC
    mov $0xff, %al ; out %al, $0x21 ; out %al, $0xa1     # all masked

    # PIT channel 0, mode 2 (rate generator), divisor 1193 = 1 kHz.
    mov $0x34, %al ; out %al, $0x43
    mov $1193 & 0xff, %al ; out %al, $0x40
    mov $1193 >> 8, %al ; out %al, $0x40
    mov $0xfe, %al ; out %al, $0x21                      # unmask IRQ 0
    sti
1:  hlt
    cmpl $10, timer_ticks
    jb 1b
    cli
    cmpl $10, timer_ticks
    REPORT ae, pit_irq0_wakes_hlt_ten_times

    # RTC: periodic interrupt at 1024 Hz (rate 6), PIE in register B; IRQ 8 through the slave.
    mov $0x8a, %al ; out %al, $0x70
    in $0x71, %al
    and $0xf0, %al
    or $0x06, %al
    mov %al, %ah
    mov $0x8a, %al ; out %al, $0x70
    mov %ah, %al ; out %al, $0x71
    mov $0x8b, %al ; out %al, $0x70
    in $0x71, %al
    or $0x40, %al
    mov %al, %ah
    mov $0x8b, %al ; out %al, $0x70
    mov %ah, %al ; out %al, $0x71
    mov $0xfb, %al ; out %al, $0x21                      # unmask cascade (IRQ 2) only
    mov $0xfe, %al ; out %al, $0xa1                      # unmask IRQ 8
    sti
2:  hlt
    cmpl $3, rtc_ticks
    jb 2b
    cli
    cmpl $3, rtc_ticks
    REPORT ae, rtc_periodic_irq8_through_the_slave

    # UART: THRE interrupt (IER bit 1) needs OUT2 (MCR bit 3) on a PC.
    mov $0xeb, %al ; out %al, $0x21                      # unmask IRQ 4 (and the cascade)
    mov $0xff, %al ; out %al, $0xa1
    mov $COM1 + 4, %dx ; mov $0x08, %al ; out %al, %dx   # MCR: OUT2
    mov $COM1 + 1, %dx ; mov $0x02, %al ; out %al, %dx   # IER: THRE
    sti
    mov $100000, %ecx
3:  cmpl $0, uart_irqs
    jne 4f
    loop 3b
4:  cli
    mov $COM1 + 1, %dx ; xor %al, %al ; out %al, %dx
    cmpl $0, uart_irqs
    REPORT ne, uart_thre_irq4

    # LAPIC timer: vector 0x50, divide by 1, one-shot count 100000; mask the 8259 entirely.
    mov $0xff, %al ; out %al, $0x21
    movl $0x1ff, 0xfee000f0                              # SVR: software-enabled
    movl $0x0b, 0xfee003e0                               # divide by 1
    movl $0x50, 0xfee00320                               # LVT timer: vector 0x50, one-shot
    movl $100000, 0xfee00380                             # initial count
    sti
5:  hlt
    cmpl $0, lapic_ticks
    je 5b
    cli
    cmpl $1, lapic_ticks
    REPORT e, lapic_one_shot_fires_once
    mov 0xfee00390, %eax                                 # current count: 0 after one-shot
    test %eax, %eax
    REPORT e, lapic_current_count_zero_after_expiry

    EXIT_WITH_FAILURES

on_timer:
    incl timer_ticks
    mov $0x20, %al ; out %al, $0x20                      # non-specific EOI
    ret
on_rtc:
    incl rtc_ticks
    mov $0x0c, %al ; out %al, $0x70                      # read C to acknowledge
    in $0x71, %al
    mov $0x20, %al ; out %al, $0xa0 ; out %al, $0x20
    ret
on_uart:
    incl uart_irqs
    mov $COM1 + 2, %dx ; in %dx, %al                     # IIR read clears THRE
    mov $COM1 + 1, %dx ; xor %al, %al ; out %al, %dx     # and stop further THRE interrupts
    mov $0x20, %al ; out %al, $0x20
    ret
on_spurious:
    ret

on_spurious_slave:
    mov $0x20, %al
    out %al, $0x20
    ret

on_lapic:
    incl lapic_ticks
    movl $0, 0xfee000b0                                  # LAPIC EOI
    ret

DEFINE_PUTS
DEFINE_IDT32

.bss
failures: .long 0
timer_ticks: .long 0
rtc_ticks: .long 0
uart_irqs: .long 0
lapic_ticks: .long 0
.align 16
.skip 8192
stack_top:
