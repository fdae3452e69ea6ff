//! Tests for the local APIC. Expected values from the Intel SDM Vol. 3A chapter 11 sections cited
//! per test (reset state 11.4.7.1, PPR 11.8.3.1, acceptance 11.8.4, EOI 11.8.5, timer 11.5.4, ESR
//! 11.5.3, ICR 11.6.1, logical destinations 11.6.2.2).

use super::*;
use crate::clock::VirtualClock;
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Default, Clone)]
struct Hooks {
    eois: Rc<RefCell<Vec<u8>>>,
    ipis: Rc<RefCell<Vec<u64>>>,
}

impl LapicHooks for Hooks {
    fn eoi_broadcast(&self, vector: u8) {
        self.eois.borrow_mut().push(vector);
    }
    fn send_ipi(&self, icr: u64) {
        self.ipis.borrow_mut().push(icr);
    }
}

type Apic = Lapic<Rc<VirtualClock>, Hooks>;

fn apic() -> (Apic, Rc<VirtualClock>, Hooks) {
    let clock = Rc::new(VirtualClock::new(1));
    let hooks = Hooks::default();
    (Lapic::new(2, clock.clone(), hooks.clone()), clock, hooks)
}

fn rd(a: &mut Apic, offset: u64) -> u32 {
    let mut d = [0; 4];
    a.mmio_read(offset, &mut d);
    u32::from_le_bytes(d)
}

fn wr(a: &mut Apic, offset: u64, v: u32) {
    a.mmio_write(offset, &v.to_le_bytes());
}

fn enabled() -> (Apic, Rc<VirtualClock>, Hooks) {
    let (mut a, c, h) = apic();
    wr(&mut a, reg::SVR, 0x1ff);
    (a, c, h)
}

#[test]
fn power_up_state() {
    // 11.4.7.1: IRR, ISR, TMR, ICR, LDR, TPR, timer counts and divide = 0; DFR all ones; LVTs
    // masked (0x00010000); SVR = 0xff.
    let (mut a, _, _) = apic();
    assert_eq!(rd(&mut a, reg::ID), 2 << 24);
    assert_eq!(rd(&mut a, reg::VERSION) & 0xff, 0x14);
    assert_eq!(rd(&mut a, reg::VERSION) >> 16 & 0xff, 5);
    for r in [reg::TPR, reg::PPR, reg::LDR, reg::ICR_LOW, reg::ICR_HIGH, reg::TIMER_INITIAL, reg::TIMER_CURRENT] {
        assert_eq!(rd(&mut a, r), 0, "register {r:#x}");
    }
    assert_eq!(rd(&mut a, reg::DFR), 0xffff_ffff);
    assert_eq!(rd(&mut a, reg::SVR), 0xff);
    for r in (reg::LVT_TIMER..=reg::LVT_ERROR).step_by(16) {
        assert_eq!(rd(&mut a, r), 0x0001_0000);
    }
    for i in 0..8 {
        assert_eq!(rd(&mut a, reg::ISR + 16 * i) | rd(&mut a, reg::TMR + 16 * i) | rd(&mut a, reg::IRR + 16 * i), 0);
    }
}

#[test]
fn software_disable_masks_and_discards() {
    // 11.4.7.2: while SVR bit 8 is 0, LVT mask bits cannot be cleared; fixed interrupts are not taken.
    let (mut a, _, _) = apic();
    wr(&mut a, reg::LVT_TIMER, 0x30);
    assert_eq!(rd(&mut a, reg::LVT_TIMER), 0x0001_0030);
    a.accept_interrupt(0x40, false);
    assert_eq!(a.highest_pending(), None);
    wr(&mut a, reg::SVR, 0x1ff);
    wr(&mut a, reg::LVT_TIMER, 0x30);
    assert_eq!(rd(&mut a, reg::LVT_TIMER), 0x30);
    a.accept_interrupt(0x40, false);
    assert_eq!(rd(&mut a, reg::IRR + 0x20), 1); // vector 0x40: IRR word 2, bit 0
    wr(&mut a, reg::SVR, 0xff);
    assert_eq!(rd(&mut a, reg::LVT_TIMER), 0x0001_0030);
}

#[test]
fn priorities_tpr_ppr_and_nesting() {
    // 11.8.3.1: PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4]:0. An interrupt is delivered only
    // if its class is above PPR's class.
    let (mut a, _, _) = enabled();
    a.accept_interrupt(0x45, false);
    wr(&mut a, reg::TPR, 0x40);
    assert_eq!(a.highest_pending(), None);
    wr(&mut a, reg::TPR, 0x3f);
    assert_eq!(rd(&mut a, reg::PPR), 0x3f);
    assert_eq!(a.accept(), Some(0x45));
    assert_eq!(rd(&mut a, reg::PPR), 0x40);
    a.accept_interrupt(0x42, false);
    assert_eq!(a.highest_pending(), None); // same class as the one in service
    a.accept_interrupt(0x61, false);
    assert_eq!(a.accept(), Some(0x61));
    assert_eq!(rd(&mut a, reg::PPR), 0x60);
    wr(&mut a, reg::EOI, 0); // ends 0x61, the highest in service
    assert_eq!(rd(&mut a, reg::PPR), 0x40);
    wr(&mut a, reg::EOI, 0);
    assert_eq!(a.accept(), Some(0x42));
    assert_eq!(a.spurious_vector(), 0xff);
}

#[test]
fn eoi_broadcast_for_level_vectors_only() {
    // 11.8.5: for a level-triggered vector (TMR set) the EOI is broadcast to the IOAPICs.
    let (mut a, _, h) = enabled();
    a.deliver(ApicMessage {
        vector: 0x50,
        delivery_mode: DELIVERY_FIXED,
        logical_destination: false,
        destination: 2,
        level_triggered: true,
    });
    assert_eq!(rd(&mut a, reg::TMR + 0x20), 1 << 16);
    assert_eq!(a.accept(), Some(0x50));
    wr(&mut a, reg::EOI, 0);
    a.accept_interrupt(0x51, false);
    a.accept();
    wr(&mut a, reg::EOI, 0);
    assert_eq!(*h.eois.borrow(), vec![0x50]);
}

#[test]
fn timer_one_shot_and_divider() {
    // 11.5.4: divide configuration 0000 = 2, 0001 = 4, 0010 = 8, 0011 = 16, 1000 = 32, 1001 = 64,
    // 1010 = 128, 1011 = 1.
    let (mut a, clock, _) = enabled();
    for (config, divisor) in [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64), (0xa, 128), (0xb, 1)] {
        wr(&mut a, reg::TIMER_DIVIDE, config);
        assert_eq!(a.timer_divisor(), divisor, "config {config:#x}");
    }
    wr(&mut a, reg::TIMER_DIVIDE, 0x3);
    wr(&mut a, reg::LVT_TIMER, 0x30);
    wr(&mut a, reg::TIMER_INITIAL, 100);
    clock.advance_ns(800);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT), 50);
    assert_eq!(a.next_event_ns(), Some(1600));
    clock.advance_to(1599);
    a.poll_timer();
    assert_eq!(a.highest_pending(), None);
    clock.advance_to(1600);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT), 0);
    assert_eq!(a.highest_pending(), Some(0x30));
    assert_eq!(a.next_event_ns(), None);
}

#[test]
fn timer_periodic_reloads() {
    let (mut a, clock, _) = enabled();
    wr(&mut a, reg::TIMER_DIVIDE, 0xb);
    wr(&mut a, reg::LVT_TIMER, 0x31 | (TIMER_PERIODIC << 17));
    wr(&mut a, reg::TIMER_INITIAL, 1000);
    clock.advance_to(1250);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT), 750);
    assert_eq!(a.accept(), Some(0x31));
    wr(&mut a, reg::EOI, 0);
    assert_eq!(a.next_event_ns(), Some(2000));
    clock.advance_to(5100); // three periods: one interrupt
    a.poll_timer();
    assert_eq!(a.accept(), Some(0x31));
    wr(&mut a, reg::EOI, 0);
    assert_eq!(a.highest_pending(), None);
    // Writing 0 stops the timer.
    wr(&mut a, reg::TIMER_INITIAL, 0);
    assert_eq!(rd(&mut a, reg::TIMER_CURRENT), 0);
    assert_eq!(a.next_event_ns(), None);
}

#[test]
fn timer_tsc_deadline_mode() {
    // 11.5.4.1: in TSC-deadline mode the initial count is ignored; the MSR arms the timer, reads back,
    // and reads 0 after the interrupt. Writes outside that mode are ignored.
    let (mut a, clock, _) = enabled();
    a.write_tsc_deadline(123, 500);
    assert_eq!(a.tsc_deadline(), 0);
    wr(&mut a, reg::LVT_TIMER, 0xef | (TIMER_TSC_DEADLINE << 17));
    wr(&mut a, reg::TIMER_INITIAL, 10);
    assert_eq!(rd(&mut a, reg::TIMER_INITIAL), 0);
    a.write_tsc_deadline(5_000, 500);
    assert_eq!(a.tsc_deadline(), 5_000);
    assert_eq!(a.next_event_ns(), Some(500));
    clock.advance_to(499);
    a.poll_timer();
    assert_eq!(a.highest_pending(), None);
    clock.advance_to(500);
    a.poll_timer();
    assert_eq!(a.highest_pending(), Some(0xef));
    assert_eq!(a.tsc_deadline(), 0);
    // A deadline already in the past fires at once; 0 disarms.
    a.write_tsc_deadline(1, 10);
    assert_eq!(a.tsc_deadline(), 0);
    a.write_tsc_deadline(9_000, 900);
    a.write_tsc_deadline(0, 0);
    assert_eq!(a.next_event_ns(), None);
}

#[test]
fn icr_shorthands_and_self_ipi() {
    // 11.6.1: shorthand 01 self, 10 all including self, 11 all excluding self; physical destination.
    let (mut a, _, h) = enabled();
    wr(&mut a, reg::ICR_LOW, 0x41 | (1 << 18));
    assert_eq!(a.accept(), Some(0x41));
    assert!(h.ipis.borrow().is_empty());
    wr(&mut a, reg::ICR_HIGH, 2 << 24);
    wr(&mut a, reg::ICR_LOW, 0x52); // physical, to our own ID
    assert_eq!(a.accept(), Some(0x52));
    assert!(h.ipis.borrow().is_empty());
    wr(&mut a, reg::ICR_LOW, 0x63 | (2 << 18));
    assert_eq!(a.accept(), Some(0x63));
    wr(&mut a, reg::ICR_LOW, 0x74 | (3 << 18));
    assert_eq!(a.highest_pending(), None);
    assert_eq!(h.ipis.borrow().len(), 2);
    wr(&mut a, reg::ICR_HIGH, 5 << 24);
    wr(&mut a, reg::ICR_LOW, 0x400 | (1 << 14)); // NMI to APIC 5
    assert_eq!(*h.ipis.borrow().last().unwrap(), (5 << 56) | 0x4400);
    assert!(!a.take_nmi());
    wr(&mut a, reg::ICR_LOW, 0x400 | (1 << 18)); // NMI to self
    assert!(a.take_nmi());
    assert_eq!(rd(&mut a, reg::ICR_HIGH), 5 << 24);
}

#[test]
fn esr_latches_on_write() {
    // 11.5.3: errors appear in ESR after a write to it; a fixed IPI with a vector below 16 is a
    // send-illegal-vector error; a reserved register access is an illegal register address.
    let (mut a, _, _) = enabled();
    wr(&mut a, reg::LVT_ERROR, 0xfe);
    wr(&mut a, reg::ICR_LOW, 0x05 | (1 << 18));
    assert_eq!(rd(&mut a, reg::ESR), 0);
    wr(&mut a, reg::ESR, 0);
    assert_eq!(rd(&mut a, reg::ESR), ESR_SEND_ILLEGAL_VECTOR);
    assert_eq!(a.accept(), Some(0xfe)); // the error LVT fired
    rd(&mut a, 0x040); // reserved
    wr(&mut a, reg::ESR, 0);
    assert_eq!(rd(&mut a, reg::ESR), ESR_ILLEGAL_REGISTER);
    wr(&mut a, reg::ESR, 0);
    assert_eq!(rd(&mut a, reg::ESR), 0);
}

#[test]
fn logical_destinations() {
    // 11.6.2.2: flat model (DFR 1111b) ANDs the 8-bit LDR; cluster model (0000b) matches the cluster
    // nibble (0xf = all clusters) and ANDs the member nibble.
    let (mut a, _, _) = enabled();
    wr(&mut a, reg::LDR, 0x04 << 24);
    assert!(a.matches_destination(0x06, true));
    assert!(!a.matches_destination(0x08, true));
    wr(&mut a, reg::DFR, 0x0fff_ffff);
    wr(&mut a, reg::LDR, 0x32 << 24);
    assert!(a.matches_destination(0x33, true));
    assert!(a.matches_destination(0xf2, true));
    assert!(!a.matches_destination(0x22, true));
    assert!(!a.matches_destination(0x31, true));
    assert!(a.matches_destination(0xff, false));
    assert!(a.matches_destination(2, false));
    assert!(!a.matches_destination(3, false));
}

#[test]
fn lint_pins_virtual_wire() {
    // Virtual wire mode: LINT0 ExtINT (the 8259A supplies the vector), LINT1 NMI.
    let (mut a, _, _) = enabled();
    wr(&mut a, reg::LVT_LINT0, 0x700);
    wr(&mut a, reg::LVT_LINT1, 0x400);
    a.set_lint(0, true);
    assert!(a.extint_pending());
    a.set_lint(0, false);
    assert!(!a.extint_pending());
    a.set_lint(1, true);
    assert!(a.take_nmi());
    a.set_lint(1, true); // no new edge
    assert!(!a.take_nmi());
    wr(&mut a, reg::LVT_LINT1, 0x0_8039); // fixed, level
    a.set_lint(1, false);
    a.set_lint(1, true);
    assert_eq!(a.accept(), Some(0x39));
    a.set_lint(7, true);
}

#[test]
fn odd_accesses_and_snapshot() {
    let (mut a, _, _) = enabled();
    let mut b = [0xee; 2];
    a.mmio_read(reg::SVR, &mut b);
    assert_eq!(b, [0xee; 2]);
    a.mmio_write(reg::TPR + 4, &0x50u32.to_le_bytes());
    assert_eq!(rd(&mut a, reg::TPR), 0);
    wr(&mut a, reg::VERSION, 0);
    assert_eq!(rd(&mut a, reg::VERSION), VERSION_VALUE);
    a.accept_interrupt(0x80, true);
    let state = a.state();
    let copy = Lapic::from_state(state.clone(), Rc::new(VirtualClock::new(1)), NoHooks);
    assert_eq!(copy.state(), state);
    assert_eq!(copy.highest_pending(), Some(0x80));
}

/// Save, restore into a fresh APIC on a clock that reads something else, and compare every
/// register the guest can read and the interrupts that follow with the original as both run on.
#[test]
fn save_restore_continues_under_a_clock_that_starts_elsewhere() {
    let (mut a, clock, hooks) = apic();
    wr(&mut a, reg::SVR, 0x1ff);
    wr(&mut a, reg::TPR, 0x20);
    wr(&mut a, reg::LVT_TIMER, (TIMER_PERIODIC << LVT_TIMER_MODE_SHIFT) | 0x40);
    wr(&mut a, reg::TIMER_DIVIDE, 0x3); // divide by 16
    wr(&mut a, reg::TIMER_INITIAL, 1000); // 16 µs period
    a.accept_interrupt(0x51, true); // level: TMR set
    a.accept_interrupt(0x61, false);
    assert_eq!(a.accept(), Some(0x61)); // in service
    a.accept_interrupt(0x71, false); // pending behind it
    clock.advance_to(40_123); // 2.5 periods in: one expiry not yet polled
    let saved = a.save_state();

    let clock2 = Rc::new(VirtualClock::new(1));
    clock2.advance_to(9_000_000_001);
    let hooks2 = Hooks::default();
    let mut b: Apic = Lapic::new(2, clock2.clone(), hooks2.clone());
    b.restore_state(&saved);
    assert_eq!(b.save_state(), saved);
    let all_registers = |x: &mut Apic| -> Vec<u32> { (0x20..0x400).step_by(0x10).map(|o| rd(x, o)).collect() };
    let next = |x: &Apic, c: &VirtualClock| x.next_event_ns().map(|t| i128::from(t) - i128::from(c.now_ns()));
    for step in [0u64, 1, 7_000, 16_000, 123_457] {
        clock.advance_ns(step);
        clock2.advance_ns(step);
        assert_eq!(next(&b, &clock2), next(&a, &clock), "after {step} ns");
        assert_eq!(all_registers(&mut b), all_registers(&mut a), "after {step} ns");
        assert_eq!(b.highest_pending(), a.highest_pending());
    }
    // The same interrupts come out in the same order, and the level vector's EOI is broadcast.
    wr(&mut a, reg::TPR, 0);
    wr(&mut b, reg::TPR, 0);
    for _ in 0..6 {
        assert_eq!(b.accept(), a.accept());
        wr(&mut a, reg::EOI, 0);
        wr(&mut b, reg::EOI, 0);
    }
    assert_eq!(*hooks2.eois.borrow(), *hooks.eois.borrow());
    assert_eq!(*hooks2.eois.borrow(), [0x51]);
}
