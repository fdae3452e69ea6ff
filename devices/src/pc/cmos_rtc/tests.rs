//! Tests for the MC146818. Dates are checked against known calendar facts (Unix time 1,000,000,000
//! is Sunday 2001-09-09 01:46:40 UTC; 2000-02-29 existed; 2024-03-01 was a Friday); register formats
//! and flag behaviour against the MC146818A datasheet sections named per test; memory bytes against
//! the AT/SeaBIOS CMOS conventions.

use super::*;
use crate::clock::VirtualClock;
use crate::irq::RecordingIrq;
use std::rc::Rc;

const BILLENNIUM: i64 = 1_000_000_000;

type Rtc = CmosRtc<RecordingIrq, Rc<VirtualClock>>;

fn rtc(start: i64) -> (Rtc, RecordingIrq, Rc<VirtualClock>) {
    let clock = Rc::new(VirtualClock::new(1));
    let irq = RecordingIrq::default();
    (CmosRtc::new(irq.clone(), clock.clone(), start), irq, clock)
}

fn time_regs(r: &mut Rtc) -> [u8; 8] {
    [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, CMOS_CENTURY]
        .map(|i| r.read_register(i))
}

#[test]
fn bcd_24_hour_date() {
    let (mut r, _, _) = rtc(BILLENNIUM);
    // 40 s, 46 min, 01 h, Sunday (1), 09, September, 01, century 20 — all BCD.
    assert_eq!(time_regs(&mut r), [0x40, 0x46, 0x01, 0x01, 0x09, 0x09, 0x01, 0x20]);
    assert_eq!(r.read_register(REG_D), D_VRT);
    assert_eq!(r.read_register(REG_A), 0x26);
}

#[test]
fn binary_and_12_hour_modes() {
    // Datasheet data-mode table: binary hours 1-12 with bit 7 = PM in 12-hour mode.
    let (mut r, _, _) = rtc(BILLENNIUM + 12 * 3600); // 13:46:40
    r.write_register(REG_B, B_DM_BINARY | B_24H);
    assert_eq!(time_regs(&mut r), [40, 46, 13, 1, 9, 9, 1, 20]);
    r.write_register(REG_B, B_DM_BINARY);
    assert_eq!(r.read_register(REG_HOURS), 0x80 | 1);
    r.write_register(REG_B, 0);
    assert_eq!(r.read_register(REG_HOURS), 0x81); // BCD 01 | PM
    let (mut r, _, _) = rtc(BILLENNIUM - 3600 - 46 * 60 - 40); // 00:00:00
    r.write_register(REG_B, 0);
    assert_eq!(r.read_register(REG_HOURS), 0x12); // midnight is 12 AM
}

#[test]
fn calendar_edges() {
    // 2000-02-28 23:59:59 UTC (Unix 951782399) rolls into the leap day, a Tuesday (3).
    let (mut r, _, clock) = rtc(951_782_399);
    clock.advance_ns(1_000_000_000);
    assert_eq!(time_regs(&mut r), [0x00, 0x00, 0x00, 0x03, 0x29, 0x02, 0x00, 0x20]);
    // 2024-03-01 00:00:00 UTC (Unix 1709251200) was a Friday (6).
    let (mut r, _, _) = rtc(1_709_251_200);
    assert_eq!(time_regs(&mut r), [0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20]);
}

#[test]
fn uip_in_the_244_us_before_each_update() {
    // "Update Cycle": UIP = 1 from 244 µs before the update; 0 otherwise.
    let (mut r, _, clock) = rtc(BILLENNIUM);
    clock.advance_ns(500_000_000);
    assert_eq!(r.read_register(REG_A) & A_UIP, 0);
    clock.advance_to(1_000_000_000 - 244_000 - 1);
    assert_eq!(r.read_register(REG_A) & A_UIP, 0);
    clock.advance_to(1_000_000_000 - 244_000);
    assert_eq!(r.read_register(REG_A) & A_UIP, A_UIP);
    assert_eq!(r.read_register(REG_SECONDS), 0x40); // not yet updated
    clock.advance_to(1_000_000_000);
    assert_eq!(r.read_register(REG_A) & A_UIP, 0);
    assert_eq!(r.read_register(REG_SECONDS), 0x41);
    // SET holds updates: no UIP.
    r.write_register(REG_B, B_SET | B_24H);
    clock.advance_to(2_000_000_000 - 100_000);
    assert_eq!(r.read_register(REG_A) & A_UIP, 0);
}

#[test]
fn update_ended_interrupt_and_register_c() {
    // UF is set after each update; with UIE it sets IRQF and IRQ8; reading C clears all flags.
    let (mut r, irq, clock) = rtc(BILLENNIUM);
    r.write_register(REG_A, 0x20); // no periodic rate, so PF stays clear
    r.write_register(REG_B, B_24H | B_UIE);
    assert_eq!(r.next_event_ns(), Some(1_000_000_000));
    clock.advance_ns(999_999_999);
    r.poll_irq();
    assert!(!irq.level());
    clock.advance_ns(1);
    r.poll_irq();
    assert!(irq.level());
    assert_eq!(r.read_register(REG_C), C_IRQF | C_UF);
    assert!(!irq.level());
    assert_eq!(r.read_register(REG_C), 0);
}

#[test]
fn periodic_interrupt_at_1024_hz() {
    // Register A = 0x26: RS = 0110, 976.5625 µs with a 32.768 kHz time base. PF is set at that
    // rate whether or not PIE is on; only PIE makes it an interrupt.
    let (mut r, irq, clock) = rtc(BILLENNIUM);
    r.write_register(REG_B, B_24H | B_PIE);
    assert_eq!(r.next_event_ns(), Some(976_563));
    clock.advance_to(976_562);
    r.poll_irq();
    assert!(!irq.level());
    clock.advance_to(976_563);
    r.poll_irq();
    assert!(irq.level());
    assert_eq!(r.read_register(REG_C), C_IRQF | C_PF);
    // RS = 1111: 500 ms; the next tap after ~1 ms is at 500 ms.
    r.write_register(REG_A, 0x2f);
    assert_eq!(r.next_event_ns(), Some(500_000_000));
    // RS = 0001 repeats RS = 1000: 3.90625 ms.
    r.write_register(REG_A, 0x21);
    assert_eq!(r.next_event_ns(), Some(3_906_250));
}

#[test]
fn alarm_with_dont_care_bytes() {
    // Alarm at xx:46:45 (hours "don't care" 0xff): AF after five seconds; AIE raises IRQ8.
    let (mut r, irq, clock) = rtc(BILLENNIUM);
    r.write_register(REG_A, 0x20);
    r.write_register(REG_SECONDS_ALARM, 0x45);
    r.write_register(REG_MINUTES_ALARM, 0x46);
    r.write_register(REG_HOURS_ALARM, 0xff);
    r.write_register(REG_B, B_24H | B_AIE);
    clock.advance_ns(4_000_000_000);
    r.poll_irq();
    assert!(!irq.level());
    assert_eq!(r.read_register(REG_C), C_UF); // updates happened, no alarm yet, no IRQF
    clock.advance_ns(1_000_000_000);
    r.poll_irq();
    assert!(irq.level());
    assert_eq!(r.read_register(REG_C), C_IRQF | C_AF | C_UF);
}

#[test]
fn setting_the_time_with_set() {
    // Register B SET: updates stop; the written time takes effect when SET is cleared.
    let (mut r, _, clock) = rtc(BILLENNIUM);
    r.write_register(REG_B, B_SET | B_24H);
    r.write_register(REG_HOURS, 0x23);
    r.write_register(REG_MINUTES, 0x59);
    r.write_register(REG_SECONDS, 0x58);
    r.write_register(REG_YEAR, 0x99);
    r.write_register(CMOS_CENTURY, 0x19);
    clock.advance_ns(3_000_000_000);
    assert_eq!(r.read_register(REG_SECONDS), 0x58); // held
    r.write_register(REG_B, B_24H);
    clock.advance_ns(2_000_000_000);
    // 1999-09-09 23:59:58 + 2 s = 1999-09-10 00:00:00, a Friday (6).
    assert_eq!(time_regs(&mut r), [0x00, 0x00, 0x00, 0x06, 0x10, 0x09, 0x99, 0x19]);
    // A write without SET takes effect at once.
    r.write_register(REG_MONTH, 0x12);
    assert_eq!(r.read_register(REG_MONTH), 0x12);
}

#[test]
fn memory_size_bytes() {
    // 128 MB: base 640 KB (0x0280); extended 127 MB = 130048 KB, capped at 0xffff; 112 MB above
    // 16 MB = 1792 (0x0700) 64 KB blocks.
    let (mut r, _, _) = rtc(BILLENNIUM);
    r.set_memory_size(128 << 20, 0);
    let byte = |r: &mut Rtc, i| r.read_register(i);
    assert_eq!([byte(&mut r, 0x15), byte(&mut r, 0x16)], [0x80, 0x02]);
    assert_eq!([byte(&mut r, 0x17), byte(&mut r, 0x18)], [0xff, 0xff]);
    assert_eq!([byte(&mut r, 0x30), byte(&mut r, 0x31)], [0xff, 0xff]);
    assert_eq!([byte(&mut r, 0x34), byte(&mut r, 0x35)], [0x00, 0x07]);
    // 6 GB split as 3 GB below 4 GB and 3 GB above: 49152 (0x00c000) blocks at 0x5b-0x5d.
    r.set_memory_size(3 << 30, 3 << 30);
    assert_eq!([byte(&mut r, 0x5b), byte(&mut r, 0x5c), byte(&mut r, 0x5d)], [0x00, 0xc0, 0x00]);
    // 32 MB: 31744 KB extended (0x7c00).
    r.set_memory_size(32 << 20, 0);
    assert_eq!([byte(&mut r, 0x17), byte(&mut r, 0x18)], [0x00, 0x7c]);
    // The AT checksum covers 0x10-0x2d: 0x80 + 0x02 + 0x00 + 0x7c = 0xfe.
    assert_eq!([byte(&mut r, 0x2e), byte(&mut r, 0x2f)], [0x00, 0xfe]);
}

#[test]
fn ports_nmi_mask_and_ram() {
    let (mut r, _, _) = rtc(BILLENNIUM);
    r.pio_write(PORT_INDEX, &[0x80 | 0x40]);
    assert!(r.nmi_disabled());
    r.pio_write(PORT_DATA, &[0x5a]);
    r.pio_write(PORT_INDEX, &[0x40]);
    assert!(!r.nmi_disabled());
    let mut b = [0];
    r.pio_read(PORT_DATA, &mut b);
    assert_eq!(b, [0x5a]);
    r.pio_read(PORT_INDEX, &mut b);
    assert_eq!(b, [0xff]);
    let mut w = [0xee; 2];
    r.pio_read(PORT_DATA, &mut w);
    assert_eq!(w, [0xee; 2]);
    r.pio_write(PORT_INDEX, &[REG_D]);
    r.pio_write(PORT_DATA, &[0]);
    r.pio_read(PORT_DATA, &mut b);
    assert_eq!(b, [D_VRT]);
    // UIP cannot be written.
    r.write_register(REG_A, 0xa6);
    assert_eq!(r.state().ram[usize::from(REG_A)], 0x26);
}

#[test]
fn snapshot_round_trip() {
    let (mut r, _, clock) = rtc(BILLENNIUM);
    r.write_register(REG_B, B_24H | B_UIE);
    clock.advance_ns(1_500_000_000);
    r.poll_irq();
    let state = r.state();
    let irq = RecordingIrq::default();
    let mut q = CmosRtc::from_state(state.clone(), irq.clone(), clock.clone());
    assert_eq!(q.state(), state);
    assert!(irq.level());
    assert_eq!(q.read_register(REG_SECONDS), 0x41);
}

/// Save, restore into a fresh RTC on a clock that reads something else, and compare the date,
/// UIP, the flags in register C and the next event with the original as both run on.
#[test]
fn save_restore_continues_under_a_clock_that_starts_elsewhere() {
    let (mut r, irq, clock) = rtc(BILLENNIUM);
    r.write_register(REG_B, B_24H | B_PIE | B_UIE);
    r.write_register(0x40, 0x5a); // a CMOS RAM byte
    clock.advance_to(1_999_876_543); // 0.12 ms before a second boundary: UIP reads 1
    r.poll_irq();
    let saved = r.save_state();

    let clock2 = Rc::new(VirtualClock::new(1));
    clock2.advance_to(77_777);
    let irq2 = RecordingIrq::default();
    let mut q = CmosRtc::new(irq2.clone(), clock2.clone(), 0);
    q.restore_state(&saved);
    assert_eq!(q.save_state(), saved);
    assert_eq!(irq2.level(), irq.level());
    let next = |r: &Rtc, c: &VirtualClock| r.next_event_ns().map(|t| t - c.now_ns());
    for step in [0u64, 100_000, 200_000, 976_562, 1, 3_000_000_000] {
        clock.advance_ns(step);
        clock2.advance_ns(step);
        assert_eq!(next(&q, &clock2), next(&r, &clock), "after {step} ns");
        assert_eq!(time_regs(&mut q), time_regs(&mut r));
        assert_eq!(q.read_register(REG_A), r.read_register(REG_A));
        assert_eq!(q.read_register(REG_C), r.read_register(REG_C));
        assert_eq!(q.read_register(0x40), 0x5a);
        assert_eq!(irq2.level(), irq.level());
    }
}
