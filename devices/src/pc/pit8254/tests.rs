//! Tests for the 8254. Expected timings are the datasheet's mode descriptions (Intel 231164-005,
//! "Mode 0" ... "Mode 5", read-back and status byte formats), in PIT ticks of 1/1.193182 MHz, and
//! the sequences Linux uses (arch/x86/kernel/tsc.c pit_calibrate_tsc: counter 2 in mode 0 gated by
//! port 0x61; i8253 clockevent: mode 2 periodic 0x34, mode 0 one-shot 0x30).

use super::*;
use crate::clock::VirtualClock;
use crate::irq::RecordingIrq;

type Pit = Pit8254<RecordingIrq, Rc<VirtualClock>>;

fn pit() -> (Pit, RecordingIrq, Rc<VirtualClock>) {
    let clock = Rc::new(VirtualClock::new(1));
    let irq = RecordingIrq::default();
    (Pit8254::new(irq.clone(), clock.clone()), irq, clock)
}

/// Moves the clock to the first nanosecond of PIT tick `tick`.
fn at_tick(clock: &VirtualClock, tick: u64) {
    clock.advance_to(ticks_to_ns(tick));
}

fn control(p: &mut Pit, v: u8) {
    p.write(PitPorts::Timer, PORT_CONTROL, v);
}

fn load16(p: &mut Pit, counter: u16, v: u16) {
    p.write(PitPorts::Timer, counter, v as u8);
    p.write(PitPorts::Timer, counter, (v >> 8) as u8);
}

fn read16(p: &mut Pit, counter: u16) -> u16 {
    let lsb = p.read(PitPorts::Timer, counter);
    let msb = p.read(PitPorts::Timer, counter);
    u16::from(lsb) | u16::from(msb) << 8
}

#[test]
fn tick_rate_is_1_193182_mhz() {
    assert_eq!(ns_to_ticks(1_000_000_000), 1_193_182);
    assert_eq!(ns_to_ticks(ticks_to_ns(12345)), 12345);
    assert_eq!(ns_to_ticks(ticks_to_ns(12345) - 1), 12344);
}

#[test]
fn mode0_interrupt_on_terminal_count() {
    // Mode 0: OUT low after the control word, high when the count reaches 0, and stays high.
    let (mut p, irq, clock) = pit();
    control(&mut p, 0x30);
    assert!(!p.out(0));
    load16(&mut p, 0, 100);
    at_tick(&clock, 10);
    control(&mut p, 0x00); // latch counter 0
    assert_eq!(read16(&mut p, 0), 90);
    assert_eq!(p.next_event_ns(), Some(ticks_to_ns(100)));
    at_tick(&clock, 99);
    p.poll_irq();
    assert!(!irq.level());
    at_tick(&clock, 100);
    p.poll_irq();
    assert!(irq.level());
    assert_eq!(irq.rising_edges(), 1);
    // The counter keeps counting down through 0 and wraps (65535 after 0).
    at_tick(&clock, 101);
    control(&mut p, 0x00);
    assert_eq!(read16(&mut p, 0), 0xffff);
    assert_eq!(p.next_event_ns(), None);
}

#[test]
fn mode2_rate_generator() {
    // Mode 2: OUT high, low for one CLK when the count reaches 1, period N.
    let (mut p, irq, clock) = pit();
    control(&mut p, 0x34);
    load16(&mut p, 0, 1000);
    at_tick(&clock, 998);
    assert!(p.out(0));
    at_tick(&clock, 999);
    assert!(!p.out(0));
    control(&mut p, 0x00);
    assert_eq!(read16(&mut p, 0), 1);
    at_tick(&clock, 1000);
    assert!(p.out(0));
    p.poll_irq();
    // The control word raised OUT (edge 1; power-on OUT is low), then the period ended (edge 2).
    assert_eq!(irq.rising_edges(), 2);
    assert_eq!(p.next_event_ns(), Some(ticks_to_ns(2000)));
    // Three more periods pass unpolled: they fold into one edge.
    at_tick(&clock, 4500);
    p.poll_irq();
    assert_eq!(irq.rising_edges(), 3);
    control(&mut p, 0x00);
    assert_eq!(read16(&mut p, 0), 500);
}

#[test]
fn mode3_square_wave() {
    // Mode 3 with an even count: OUT high for N/2 ticks, low for N/2; the count drops by 2 per tick.
    let (mut p, _, clock) = pit();
    control(&mut p, 0x36);
    load16(&mut p, 0, 10);
    at_tick(&clock, 4);
    assert!(p.out(0));
    control(&mut p, 0x00);
    assert_eq!(read16(&mut p, 0), 2);
    at_tick(&clock, 5);
    assert!(!p.out(0));
    control(&mut p, 0x00);
    assert_eq!(read16(&mut p, 0), 10);
    at_tick(&clock, 10);
    assert!(p.out(0));
    // Odd count 5: high for (N+1)/2 = 3 ticks, low for 2.
    control(&mut p, 0x36);
    load16(&mut p, 0, 5);
    let base = ns_to_ticks(clock.now_ns());
    at_tick(&clock, base + 2);
    assert!(p.out(0));
    at_tick(&clock, base + 3);
    assert!(!p.out(0));
    at_tick(&clock, base + 5);
    assert!(p.out(0));
}

#[test]
fn mode4_software_strobe() {
    // Mode 4: OUT high; low for one tick when the count reaches 0 (N ticks after loading).
    let (mut p, irq, clock) = pit();
    control(&mut p, 0x38);
    load16(&mut p, 0, 50);
    at_tick(&clock, 49);
    assert!(p.out(0));
    at_tick(&clock, 50);
    assert!(!p.out(0));
    at_tick(&clock, 51);
    assert!(p.out(0));
    p.poll_irq();
    assert_eq!(irq.rising_edges(), 2); // the initial high level, then the strobe's end
}

#[test]
fn mode1_and_mode5_wait_for_the_gate() {
    // Mode 1: a gate rising edge starts a one-shot: OUT low for N ticks. Counter 2's gate is port
    // 0x61 bit 0.
    let (mut p, _, clock) = pit();
    control(&mut p, 0xb2); // counter 2, LSB/MSB, mode 1
    load16(&mut p, 2, 20);
    at_tick(&clock, 100);
    assert!(p.out(2)); // no trigger yet (the gate was high all along)
    p.write(PitPorts::SystemControl, 0, 0);
    p.write(PitPorts::SystemControl, 0, PORTB_GATE2);
    assert!(!p.out(2));
    assert_eq!(p.read(PitPorts::SystemControl, 0) & PORTB_OUT2, 0);
    at_tick(&clock, 120);
    assert!(p.out(2));
    assert_ne!(p.read(PitPorts::SystemControl, 0) & PORTB_OUT2, 0);
    // Mode 5: the trigger starts a count; OUT strobes low at N.
    control(&mut p, 0xba);
    load16(&mut p, 2, 5);
    p.write(PitPorts::SystemControl, 0, 0);
    p.write(PitPorts::SystemControl, 0, PORTB_GATE2);
    at_tick(&clock, 125);
    assert!(!p.out(2));
    at_tick(&clock, 126);
    assert!(p.out(2));
}

#[test]
fn linux_pit_calibrate_tsc_sequence() {
    // pit_calibrate_tsc(): gate high, speaker off; counter 2 mode 0 with CAL_LATCH = 1193182 / 20
    // (50 ms); then wait for OUT2 (port 0x61 bit 5).
    let (mut p, _, clock) = pit();
    let b = p.read(PitPorts::SystemControl, 0);
    p.write(PitPorts::SystemControl, 0, (b & !PORTB_SPEAKER) | PORTB_GATE2);
    control(&mut p, 0xb0);
    let latch = (PIT_HZ / 20) as u16;
    load16(&mut p, 2, latch);
    let start = ns_to_ticks(clock.now_ns());
    at_tick(&clock, start + u64::from(latch) - 1);
    assert_eq!(p.read(PitPorts::SystemControl, 0) & PORTB_OUT2, 0);
    at_tick(&clock, start + u64::from(latch));
    assert_eq!(p.read(PitPorts::SystemControl, 0) & PORTB_OUT2, PORTB_OUT2);
    assert_eq!(p.read(PitPorts::SystemControl, 0) & 0x0f, PORTB_GATE2);
    // 50 ms of host time, as the calibration assumes.
    assert_eq!(clock.now_ns() / 1_000_000, 49);
}

#[test]
fn gate_low_pauses_mode0() {
    // Mode 0: GATE = 0 disables counting; GATE = 1 resumes it.
    let (mut p, _, clock) = pit();
    control(&mut p, 0xb0);
    load16(&mut p, 2, 100);
    at_tick(&clock, 30);
    p.write(PitPorts::SystemControl, 0, 0);
    at_tick(&clock, 80);
    assert_eq!(read16(&mut p, 2), 70);
    p.write(PitPorts::SystemControl, 0, PORTB_GATE2);
    at_tick(&clock, 149);
    assert!(!p.out(2));
    at_tick(&clock, 150);
    assert!(p.out(2));
}

#[test]
fn latch_and_read_back() {
    let (mut p, _, clock) = pit();
    control(&mut p, 0xb6); // counter 2, LSB/MSB, mode 3, binary
                           // Read-back status before a count: OUT high (mode 3), null count, RW 11, mode 011, binary.
    control(&mut p, 0xe8); // read-back, status only, counter 2
    assert_eq!(p.read(PitPorts::Timer, 2), 0x80 | 0x40 | 0x36);
    load16(&mut p, 2, 0x1000);
    control(&mut p, 0xe8);
    assert_eq!(p.read(PitPorts::Timer, 2), 0x80 | 0x36); // count loaded: null count clear
                                                         // Count and status latched together: status comes first, then the count.
    at_tick(&clock, 3);
    control(&mut p, 0xc8);
    at_tick(&clock, 100);
    assert_eq!(p.read(PitPorts::Timer, 2), 0x80 | 0x36);
    assert_eq!(read16(&mut p, 2), 0x1000 - 6);
    // Counter latch command: a second latch before reading is ignored.
    control(&mut p, 0x80);
    at_tick(&clock, 200);
    control(&mut p, 0x80);
    assert_eq!(read16(&mut p, 2), 0x1000 - 200);
}

#[test]
fn lsb_only_msb_only_and_bcd() {
    let (mut p, _, clock) = pit();
    control(&mut p, 0x10); // counter 0, LSB only, mode 0
    p.write(PitPorts::Timer, 0, 0x40);
    at_tick(&clock, 4);
    assert_eq!(p.read(PitPorts::Timer, 0), 0x3c);
    control(&mut p, 0x20); // MSB only: count 0x0200
    p.write(PitPorts::Timer, 0, 0x02);
    let base = ns_to_ticks(clock.now_ns());
    at_tick(&clock, base + 0x100);
    assert_eq!(p.read(PitPorts::Timer, 0), 0x01);
    // BCD mode 0 with count 0100: after one tick it reads 0099; 0 means 10000.
    control(&mut p, 0x31);
    load16(&mut p, 0, 0x0100);
    let base = ns_to_ticks(clock.now_ns());
    at_tick(&clock, base + 1);
    assert_eq!(read16(&mut p, 0), 0x0099);
    control(&mut p, 0x31);
    load16(&mut p, 0, 0);
    assert_eq!(p.next_event_ns(), Some(ticks_to_ns(base + 1 + 10_000)));
}

#[test]
fn mode0_first_byte_stops_the_count() {
    // Mode 0: "writing the first byte disables counting; OUT is set low immediately".
    let (mut p, _, clock) = pit();
    control(&mut p, 0x30);
    load16(&mut p, 0, 10);
    at_tick(&clock, 20);
    assert!(p.out(0));
    p.write(PitPorts::Timer, 0, 5);
    assert!(!p.out(0));
    at_tick(&clock, 40);
    assert!(!p.out(0));
    p.write(PitPorts::Timer, 0, 0);
    at_tick(&clock, 45);
    assert!(p.out(0));
}

#[test]
fn refresh_toggle_and_odd_accesses() {
    let (mut p, _, clock) = pit();
    let a = p.read(PitPorts::SystemControl, 0) & PORTB_REFRESH;
    clock.advance_ns(15_085);
    let b = p.read(PitPorts::SystemControl, 0) & PORTB_REFRESH;
    assert_ne!(a, b);
    assert_eq!(p.read(PitPorts::Timer, PORT_CONTROL), 0xff); // the control word is write-only
    let pit = Rc::new(RefCell::new(p));
    let mut dev = PitPortDevice { pit: pit.clone(), ports: PitPorts::Timer };
    let mut w = [0xee; 2];
    dev.pio_read(0, &mut w);
    assert_eq!(w, [0xee; 2]);
    dev.pio_write(3, &[0x34, 0]);
    assert_eq!(pit.borrow().state().counters[0].mode, 0);
    dev.pio_write(3, &[0x34]);
    assert_eq!(pit.borrow().state().counters[0].mode, 2);
    control(&mut pit.borrow_mut(), 0x3e); // mode 7 aliases mode 3
    assert_eq!(pit.borrow().state().counters[0].mode, 3);
}

#[test]
fn snapshot_round_trip() {
    let (mut p, _, clock) = pit();
    control(&mut p, 0x34);
    load16(&mut p, 0, 300);
    at_tick(&clock, 100);
    let state = p.state();
    let irq = RecordingIrq::default();
    let mut q = Pit8254::from_state(state.clone(), irq.clone(), clock.clone());
    assert_eq!(q.state(), state);
    assert!(irq.level());
    control(&mut q, 0x00);
    assert_eq!(read16(&mut q, 0), 200);
}

/// Save, restore into a fresh PIT whose clock reads something else, then compare what the guest
/// sees (latched counts, port 0x61, OUT0 edges, the next event) step by step with the original. The
/// oracle is the original device running on.
#[test]
fn save_restore_continues_under_a_clock_that_starts_elsewhere() {
    let (mut p, irq, clock) = pit();
    control(&mut p, 0x34); // counter 0: mode 2, Linux's HZ=100 tick
    load16(&mut p, 0, 11932);
    control(&mut p, 0xb0); // counter 2: mode 0, gated by port 0x61 bit 0 (the TSC calibration)
    load16(&mut p, 2, 50_000);
    p.write(PitPorts::SystemControl, 0, PORTB_GATE2);
    clock.advance_to(33_333_337); // mid-period, and not on a tick boundary
    p.poll_irq();
    control(&mut p, 0x40); // latch counter 1 and leave it unread: part of the state
    let saved = p.save_state();

    let clock2 = Rc::new(VirtualClock::new(1));
    clock2.advance_to(5_000_000_123); // a clock far from the saved time, with another phase
    let irq2 = RecordingIrq::default();
    let mut q = Pit8254::new(irq2.clone(), clock2.clone());
    q.restore_state(&saved);
    assert_eq!(q.save_state(), saved);
    assert_eq!(irq2.level(), irq.level());
    irq.clear();
    irq2.clear();
    let next = |p: &Pit, c: &VirtualClock| p.next_event_ns().map(|t| t - c.now_ns());
    assert_eq!(next(&q, &clock2), next(&p, &clock));
    assert_eq!(q.read(PitPorts::Timer, 1), p.read(PitPorts::Timer, 1));
    for step in [1u64, 837, 838, 5_000, 4_321_987, 10_000_151, 60_000_000] {
        clock.advance_ns(step);
        clock2.advance_ns(step);
        p.poll_irq();
        q.poll_irq();
        assert_eq!(irq2.history(), irq.history(), "IRQ0 after {step} ns");
        assert_eq!(next(&q, &clock2), next(&p, &clock));
        for c in [0u8, 2] {
            control(&mut p, c << 6);
            control(&mut q, c << 6);
            assert_eq!(read16(&mut q, u16::from(c)), read16(&mut p, u16::from(c)), "counter {c}");
        }
        assert_eq!(q.read(PitPorts::SystemControl, 0), p.read(PitPorts::SystemControl, 0));
    }
}
