//! Tests for the 16550A: reset values and behaviour from the PC16550D datasheet, and the probe
//! sequences of Linux's 8250 driver (drivers/tty/serial/8250/8250_port.c: autoconfig(),
//! autoconfig_16550a(), size_fifo(), serial8250_do_startup()), replayed as that driver performs them.

use super::*;
use crate::irq::RecordingIrq;

type Uart = Uart16550<RecordingIrq, Vec<u8>>;

fn uart() -> (Uart, RecordingIrq) {
    let irq = RecordingIrq::default();
    (Uart16550::new(irq.clone(), Vec::new()), irq)
}

fn inb(u: &mut Uart, offset: u16) -> u8 {
    let mut b = [0];
    u.pio_read(offset, &mut b);
    b[0]
}

fn outb(u: &mut Uart, offset: u16, value: u8) {
    u.pio_write(offset, &[value]);
}

#[test]
fn reset_values_match_datasheet_table_ii() {
    // PC16550D Table II, "Reset Control" column: IER 0, IIR 0x01, FCR 0, LCR 0, MCR 0, LSR 0x60,
    // MSR bits 3:0 = 0 (bits 7:4 follow the inputs).
    let (mut u, irq) = uart();
    assert_eq!(inb(&mut u, IER), 0);
    assert_eq!(inb(&mut u, IIR_FCR), 0x01);
    assert_eq!(inb(&mut u, LCR), 0);
    assert_eq!(inb(&mut u, MCR), 0);
    assert_eq!(inb(&mut u, LSR), 0x60);
    assert_eq!(inb(&mut u, MSR) & 0x0f, 0);
    assert!(!irq.level());
}

/// The chip types Linux's autoconfig can conclude (the subset reachable here).
#[derive(Debug, PartialEq)]
enum Detected {
    NotPresent,
    Uart8250,
    Uart16450,
    Unknown,
    Uart16550,
    Uart16550A,
    Other(&'static str),
}

/// size_fifo(): loopback at divisor 1, send 256 bytes, count what can be read back.
fn linux_size_fifo(u: &mut Uart) -> usize {
    let old_lcr = inb(u, LCR);
    outb(u, LCR, 0);
    let old_fcr = inb(u, IIR_FCR); // reads IIR, as the driver does
    let old_mcr = inb(u, MCR);
    outb(u, IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX);
    outb(u, MCR, MCR_LOOP);
    outb(u, LCR, 0x80);
    let old_dl = (inb(u, 0), inb(u, 1));
    outb(u, 0, 1);
    outb(u, 1, 0);
    outb(u, LCR, 0x03);
    for i in 0..=255u8 {
        outb(u, RBR_THR, i);
    }
    let mut count = 0;
    while count < 256 && inb(u, LSR) & LSR_DR != 0 {
        inb(u, RBR_THR);
        count += 1;
    }
    outb(u, IIR_FCR, old_fcr);
    outb(u, MCR, old_mcr);
    outb(u, LCR, 0x80);
    outb(u, 0, old_dl.0);
    outb(u, 1, old_dl.1);
    outb(u, LCR, old_lcr);
    count
}

/// The decision sequence of autoconfig() and autoconfig_16550a() for a port with no
/// UPF_BUGGY_UART / UPF_SKIP_TEST / UPF_EXAR_EFR flags.
fn linux_autoconfig(u: &mut Uart) -> Detected {
    // Existence test: IER must read back 0 and then 0x0f (low nibble).
    let saved_ier = inb(u, IER);
    outb(u, IER, 0);
    let s2 = inb(u, IER) & 0x0f;
    outb(u, IER, 0x0f);
    let s3 = inb(u, IER) & 0x0f;
    outb(u, IER, saved_ier);
    if s2 != 0 || s3 != 0x0f {
        return Detected::NotPresent;
    }
    let save_mcr = inb(u, MCR);
    let save_lcr = inb(u, LCR);
    // Loopback test: MCR = LOOP | OUT2 | RTS must read MSR[7:4] = DCD | CTS (0x90).
    outb(u, MCR, MCR_LOOP | 0x0a);
    let status = inb(u, MSR) & 0xf0;
    outb(u, MCR, save_mcr);
    if status != 0x90 {
        return Detected::NotPresent;
    }
    // Clear a possible EFR (LCR = 0xbf), then enable the FIFO and look at IIR[7:6].
    outb(u, LCR, 0xbf);
    outb(u, IIR_FCR, 0);
    outb(u, LCR, 0);
    outb(u, IIR_FCR, FCR_ENABLE);
    let kind = match inb(u, IIR_FCR) >> 6 {
        0 => {
            let scratch = inb(u, SCR);
            outb(u, SCR, 0xa5);
            let a = inb(u, SCR);
            outb(u, SCR, 0x5a);
            let b = inb(u, SCR);
            outb(u, SCR, scratch);
            if a == 0xa5 && b == 0x5a {
                Detected::Uart16450
            } else {
                Detected::Uart8250
            }
        }
        1 => Detected::Unknown,
        2 => Detected::Uart16550,
        _ => linux_autoconfig_16550a(u),
    };
    outb(u, LCR, save_lcr);
    kind
}

fn linux_autoconfig_16550a(u: &mut Uart) -> Detected {
    // EFR visible with LCR = 0x80 (ST16C650V1)?
    outb(u, LCR, 0x80);
    if inb(u, IIR_FCR) == 0 {
        return Detected::Other("ST16C650V1 or FSL64");
    }
    // EFR visible with LCR = 0xbf (ST16C650V2, TI16C752, ...)?
    outb(u, LCR, 0xbf);
    if inb(u, IIR_FCR) == 0 {
        return Detected::Other("EFR UART");
    }
    // National SuperIO: does offset 2 in bank 2 (LCR = 0xe0) mirror MCR.LOOP?
    outb(u, LCR, 0);
    let mcr = inb(u, MCR);
    outb(u, LCR, 0xe0);
    let excr1 = inb(u, IIR_FCR);
    if (excr1 ^ mcr) & MCR_LOOP == 0 {
        outb(u, LCR, 0);
        outb(u, MCR, mcr ^ MCR_LOOP);
        outb(u, LCR, 0xe0);
        let excr1 = inb(u, IIR_FCR);
        outb(u, LCR, 0);
        outb(u, MCR, mcr);
        if (excr1 ^ mcr) & MCR_LOOP != 0 {
            return Detected::Other("NS16550A");
        }
    }
    // TI16750: IIR bit 5 with the 64-byte FIFO bit (FCR bit 5), with and without DLAB.
    outb(u, LCR, 0);
    outb(u, IIR_FCR, FCR_ENABLE | 0x20);
    let s1 = inb(u, IIR_FCR) >> 5;
    outb(u, IIR_FCR, FCR_ENABLE);
    outb(u, LCR, 0x80);
    outb(u, IIR_FCR, FCR_ENABLE | 0x20);
    let s2 = inb(u, IIR_FCR) >> 5;
    outb(u, IIR_FCR, FCR_ENABLE);
    outb(u, LCR, 0);
    if s1 == 6 && s2 == 7 {
        return Detected::Other("TI16750");
    }
    // XScale: is IER bit 6 (UUE) writable?
    let ier = inb(u, IER);
    outb(u, IER, ier & !0x40);
    if inb(u, IER) & 0x40 == 0 {
        outb(u, IER, ier | 0x40);
        if inb(u, IER) & 0x40 != 0 {
            return Detected::Other("XScale");
        }
    }
    outb(u, IER, ier);
    // A 64-byte FIFO would make it a U6 16550A.
    if linux_size_fifo(u) == 64 {
        return Detected::Other("U6_16550A");
    }
    Detected::Uart16550A
}

#[test]
fn linux_autoconfig_identifies_a_16550a() {
    let (mut u, irq) = uart();
    assert_eq!(linux_autoconfig(&mut u), Detected::Uart16550A);
    // The probe sent nothing to the outside world and raised no interrupt.
    assert!(u.output().is_empty());
    assert!(!irq.level());
}

#[test]
fn linux_size_fifo_counts_sixteen() {
    // A 16550A's receive FIFO holds 16 bytes (datasheet section 1, features).
    let (mut u, _) = uart();
    assert_eq!(linux_size_fifo(&mut u), FIFO_SIZE);
    // The loopback bytes overran the FIFO and were never transmitted.
    assert!(u.output().is_empty());
}

#[test]
fn linux_startup_thre_test_sees_the_interrupt() {
    // serial8250_do_startup(): enable THRI, read LSR then IIR; a UART whose IIR then says "no
    // interrupt" while TEMT is set is flagged UART_BUG_TXEN. A 16550A reports THRE (IIR id 0x02).
    let (mut u, _) = uart();
    outb(&mut u, IER, IER_THRE);
    let lsr = inb(&mut u, LSR);
    let iir = inb(&mut u, IIR_FCR);
    outb(&mut u, IER, 0);
    assert_ne!(lsr & LSR_TEMT, 0);
    assert_eq!(iir & 0x0f, IIR_THRE);
}

#[test]
fn reading_iir_clears_thre_and_out2_gates_the_line() {
    let (mut u, irq) = uart();
    outb(&mut u, IER, IER_THRE);
    // Without OUT2 the PC's interrupt buffer is disabled.
    assert!(!irq.level());
    outb(&mut u, MCR, MCR_OUT2);
    assert!(irq.level());
    assert_eq!(inb(&mut u, IIR_FCR), IIR_THRE);
    assert!(!irq.level());
    assert_eq!(inb(&mut u, IIR_FCR), IIR_NO_INT);
    // Writing THR empties it again at once: THRE is pending again.
    outb(&mut u, RBR_THR, b'A');
    assert!(irq.level());
    assert_eq!(u.output(), b"A");
}

#[test]
fn interrupt_priorities_follow_table_iv() {
    // Table IV: line status (0110) > received data (0100) > THR empty (0010) > modem status (0000).
    let (mut u, irq) = uart();
    outb(&mut u, MCR, MCR_OUT2);
    outb(&mut u, IER, IER_RDA | IER_THRE | IER_RLS | IER_MS);
    u.enqueue_input(b"a");
    u.set_modem_inputs(DEFAULT_MODEM_INPUTS & !MSR_CTS); // CTS drops: DCTS
    u.enqueue_input(b"b"); // without FIFOs the second byte overruns
    assert_eq!(inb(&mut u, IIR_FCR), IIR_RLS);
    assert_eq!(inb(&mut u, LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    assert_eq!(inb(&mut u, IIR_FCR), IIR_RDA);
    assert_eq!(inb(&mut u, RBR_THR), b'b'); // the overrun replaced RBR
    assert_eq!(inb(&mut u, IIR_FCR), IIR_THRE);
    assert_eq!(inb(&mut u, IIR_FCR), IIR_MS);
    assert_eq!(inb(&mut u, MSR), MSR_DSR | MSR_DCD | MSR_DCTS);
    assert_eq!(inb(&mut u, IIR_FCR), IIR_NO_INT);
    assert!(!irq.level());
}

#[test]
fn fifo_trigger_levels_and_timeout() {
    // FCR bits 7:6 = 10: trigger at 8 bytes; below it the character timeout (1100) is reported.
    let (mut u, _) = uart();
    outb(&mut u, IIR_FCR, FCR_ENABLE | 0x80);
    outb(&mut u, IER, IER_RDA);
    u.enqueue_input(b"1234567");
    assert_eq!(inb(&mut u, IIR_FCR), IIR_FIFOS_ENABLED | IIR_TIMEOUT);
    u.enqueue_input(b"8");
    assert_eq!(inb(&mut u, IIR_FCR), IIR_FIFOS_ENABLED | IIR_RDA);
    // FCR bit 1 clears the receive FIFO.
    outb(&mut u, IIR_FCR, FCR_ENABLE | FCR_CLEAR_RX | 0x80);
    assert_eq!(inb(&mut u, LSR) & LSR_DR, 0);
    assert_eq!(inb(&mut u, IIR_FCR), IIR_FIFOS_ENABLED | IIR_NO_INT);
    // FCR0 = 0 turns the FIFOs off; IIR bits 7:6 read 00 again.
    outb(&mut u, IIR_FCR, 0);
    assert_eq!(inb(&mut u, IIR_FCR), IIR_NO_INT);
}

#[test]
fn fifo_overrun_keeps_the_fifo() {
    // In FIFO mode an overrun loses the character in the shift register, not the FIFO contents.
    let (mut u, _) = uart();
    outb(&mut u, IIR_FCR, FCR_ENABLE);
    assert_eq!(u.rx_space(), 16);
    let input: Vec<u8> = (0..17).collect();
    u.enqueue_input(&input);
    assert_eq!(u.rx_space(), 0);
    assert_eq!(inb(&mut u, LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    assert_eq!(inb(&mut u, LSR), LSR_DR | LSR_THRE | LSR_TEMT); // OE cleared by the read
    for i in 0..16 {
        assert_eq!(inb(&mut u, RBR_THR), i);
    }
    assert_eq!(inb(&mut u, LSR), LSR_THRE | LSR_TEMT);
}

#[test]
fn divisor_latch_behind_dlab() {
    let (mut u, _) = uart();
    outb(&mut u, IER, 0x05);
    outb(&mut u, LCR, LCR_DLAB | 0x03);
    outb(&mut u, 0, 0x01); // 115200 baud
    outb(&mut u, 1, 0x00);
    assert_eq!((inb(&mut u, 0), inb(&mut u, 1)), (0x01, 0x00));
    outb(&mut u, LCR, 0x03);
    assert_eq!(inb(&mut u, IER), 0x05);
    assert_eq!(u.state().divisor, 1);
    assert!(u.output().is_empty());
}

#[test]
fn loopback_wiring_and_delta_bits() {
    // Datasheet MCR bit 4: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD; TX is looped to RX.
    let (mut u, irq) = uart();
    u.set_modem_inputs(0);
    inb(&mut u, MSR);
    outb(&mut u, MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
    assert_eq!(inb(&mut u, MSR), MSR_DSR | MSR_RI | MSR_DDSR);
    outb(&mut u, MCR, MCR_LOOP | MCR_DTR); // RI falls: trailing-edge RI
    assert_eq!(inb(&mut u, MSR), MSR_DSR | MSR_TERI);
    outb(&mut u, IER, IER_RDA);
    outb(&mut u, RBR_THR, 0x55);
    assert!(u.output().is_empty());
    assert_eq!(inb(&mut u, LSR) & LSR_DR, LSR_DR);
    assert!(!irq.level()); // OUT2 pin is inactive in loopback
    assert_eq!(u.rx_space(), 0);
    u.enqueue_input(b"zz"); // serial input is disconnected in loopback
    assert_eq!(inb(&mut u, RBR_THR), 0x55);
    assert_eq!(inb(&mut u, LSR) & LSR_DR, 0);
}

#[test]
fn scratch_register_and_odd_accesses() {
    let (mut u, _) = uart();
    outb(&mut u, SCR, 0xa5);
    assert_eq!(inb(&mut u, SCR), 0xa5);
    // A word access does nothing and leaves the buffer untouched.
    let mut w = [0xee, 0xee];
    u.pio_read(SCR, &mut w);
    assert_eq!(w, [0xee, 0xee]);
    u.pio_write(RBR_THR, &[1, 2]);
    assert!(u.output().is_empty());
    assert_eq!(inb(&mut u, 9), 0xff);
    outb(&mut u, 9, 0);
    outb(&mut u, LSR, 0);
}

#[test]
fn snapshot_round_trip() {
    let (mut u, _) = uart();
    outb(&mut u, IIR_FCR, FCR_ENABLE | 0x40);
    outb(&mut u, MCR, MCR_OUT2 | MCR_DTR);
    outb(&mut u, IER, IER_RDA);
    u.enqueue_input(b"abc");
    let state = u.state();
    assert_eq!(state.rx_fifo, b"abc");
    let irq = RecordingIrq::default();
    let mut v = Uart16550::from_state(state.clone(), irq.clone(), Vec::new());
    assert_eq!(v.state(), state);
    assert!(irq.level());
    assert_eq!(inb(&mut v, IIR_FCR), IIR_FIFOS_ENABLED | IIR_TIMEOUT);
    assert_eq!(inb(&mut v, RBR_THR), b'a');
}

/// Save with bytes in the receive FIFO, a pending THRE interrupt and the divisor programmed;
/// restore into a fresh UART and compare the interrupt line and every register read.
#[test]
fn save_restore_keeps_fifo_and_pending_interrupts() {
    let (mut u, irq) = uart();
    outb(&mut u, LCR, LCR_DLAB);
    outb(&mut u, RBR_THR, 1); // 115200 baud
    outb(&mut u, LCR, 0x03);
    outb(&mut u, IIR_FCR, FCR_ENABLE | 0x40); // trigger level 4
    outb(&mut u, MCR, MCR_OUT2 | MCR_DTR);
    outb(&mut u, IER, IER_RDA | IER_THRE | IER_RLS);
    outb(&mut u, SCR, 0x77);
    u.enqueue_input(b"abc"); // below the trigger: a character timeout
    let saved = u.save_state();

    let irq2 = RecordingIrq::default();
    let mut v = Uart16550::new(irq2.clone(), Vec::new());
    v.restore_state(&saved);
    assert_eq!(v.save_state(), saved);
    assert_eq!(irq2.level(), irq.level());
    for offset in [IIR_FCR, LSR, MSR, SCR, IER, IIR_FCR, RBR_THR, RBR_THR, LSR, RBR_THR, IIR_FCR, LSR] {
        assert_eq!(inb(&mut v, offset), inb(&mut u, offset), "register {offset}");
        assert_eq!(irq2.level(), irq.level());
    }
}
