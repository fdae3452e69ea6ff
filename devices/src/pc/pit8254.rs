//! Intel 8254 programmable interval timer (three counters at 1.193182 MHz) and the timer bits of
//! the PC's system control port B (0x61).
//!
//! Reference: Intel *8254 Programmable Interval Timer* datasheet (order 231164-005): "Control Word
//! Format", "Read-Back Command", "Status Byte", "Counter Latch Command", "Modes of Operation" (modes
//! 0-5) and the gate table ("Gate Pin Operations Summary"); IBM PC/AT Technical Reference for port
//! 0x61 (bit 0 gate 2, bit 1 speaker data, bit 4 refresh toggle, bit 5 OUT2).
//!
//! Time comes from a [`Clock`]: counts are computed from the nanoseconds elapsed since a counter was
//! loaded, so no host timer runs. OUT0 drives IRQ0 when the machine calls [`Pit8254::poll_irq`]; every
//! OUT0 rising edge since the previous poll gives the line one fresh edge (several missed periods
//! fold into one, as lost ticks do on a busy PC), and [`Pit8254::next_event_ns`] tells the machine
//! when the next edge is due.
//!
//! Modelled: modes 0-5 (6 and 7 alias 2 and 3), binary and BCD counting, LSB/MSB/LSB-then-MSB
//! access, the counter latch command, the read-back command (count and status), the null-count flag,
//! gate behaviour per mode (counter 2's gate is port 0x61 bit 0; counters 0 and 1 have GATE tied high
//! as on the PC), OUT2 readable at port 0x61 bit 5, the ~15 µs refresh toggle at bit 4.
//!
//! Simplified: a count loads into the counting element at the write rather than at the next CLK edge
//! (one 838 ns tick early), and a new count written in modes 2 and 3 restarts the period at once
//! instead of at the end of the current one. Not modelled: the speaker's sound, NMI status bits of
//! port 0x61 (6 and 7 read 0).

use std::cell::RefCell;
use std::rc::Rc;

use tracing::trace;

use crate::bus::PioDevice;
use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::pc::time_base::TimeBase;

/// The PIT's base port (counters 0-2 at offsets 0-2, control word at 3).
pub const PIT_BASE: u16 = 0x40;
/// System control port B.
pub const SYSTEM_CONTROL_PORT: u16 = 0x61;
/// Offset of the control word register.
pub const PORT_CONTROL: u16 = 3;
/// Input clock of the PC's PIT in Hz.
pub const PIT_HZ: u64 = 1_193_182;

/// Control word bits 7:6 = 11: read-back command.
const CW_READ_BACK: u8 = 3;
/// Control word bits 5:4 = 00: counter latch command.
const CW_RW_LATCH: u8 = 0;
/// RW = 01: read/write the least significant byte only.
pub const RW_LSB: u8 = 1;
/// RW = 10: read/write the most significant byte only.
pub const RW_MSB: u8 = 2;
/// RW = 11: LSB first, then MSB.
pub const RW_LSB_MSB: u8 = 3;
/// Read-back: 0 in bit 5 latches the count of the selected counters.
const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back: 0 in bit 4 latches the status of the selected counters.
const RB_NO_STATUS: u8 = 1 << 4;
/// Status byte: state of the OUT pin.
pub const STATUS_OUT: u8 = 1 << 7;
/// Status byte: null count (the last count written has not reached the counting element).
pub const STATUS_NULL_COUNT: u8 = 1 << 6;

/// Port 0x61 bit 0: gate of counter 2.
pub const PORTB_GATE2: u8 = 1 << 0;
/// Port 0x61 bit 1: speaker data enable.
pub const PORTB_SPEAKER: u8 = 1 << 1;
/// Port 0x61 bits 3:2: parity / channel check enables (stored only).
const PORTB_WRITABLE: u8 = 0x0f;
/// Port 0x61 bit 4: toggles with each DRAM refresh request (every 15.085 µs).
pub const PORTB_REFRESH: u8 = 1 << 4;
/// Port 0x61 bit 5: OUT2.
pub const PORTB_OUT2: u8 = 1 << 5;
/// Period of the refresh toggle in ns.
const REFRESH_PERIOD_NS: u64 = 15_085;

/// One counter's registers, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pit8254CounterState {
    /// Mode 0-5.
    pub mode: u8,
    /// BCD counting.
    pub bcd: bool,
    /// Read/write format (RW_LSB, RW_MSB, RW_LSB_MSB).
    pub rw: u8,
    /// The count register as written (0 stands for 65536, or 10000 in BCD).
    pub count_register: u16,
    /// A complete count has been written since the last control word.
    pub has_count: bool,
    /// The counting element is running (or paused by the gate in modes 0 and 4).
    pub counting: bool,
    /// PIT tick at which the current count started.
    pub start_tick: u64,
    /// Ticks elapsed when the gate paused a mode 0/4 count.
    pub paused_elapsed: Option<u64>,
    /// The count shown while not counting.
    pub idle_count: u16,
    /// OUT while not counting.
    pub idle_out: bool,
    /// GATE input level.
    pub gate: bool,
    /// Null count flag.
    pub null_count: bool,
    /// LSB-then-MSB writes: the LSB has been written (value kept here).
    pub write_lsb: Option<u8>,
    /// LSB-then-MSB reads of a live count: the MSB is next.
    pub read_msb_next: bool,
    /// Latched count, if any.
    pub latched_count: Option<u16>,
    /// A latched LSB-then-MSB count has had its LSB read.
    pub latched_msb_next: bool,
    /// Latched status byte, if any.
    pub latched_status: Option<u8>,
}

fn bcd_to_binary(v: u16) -> u64 {
    let d = |shift: u16| u64::from((v >> shift) & 0xf);
    d(12) * 1000 + d(8) * 100 + d(4) * 10 + d(0)
}

fn binary_to_bcd(v: u64) -> u16 {
    let v = v % 10_000;
    ((v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10)) as u16
}

#[derive(Debug, Clone)]
struct Counter {
    s: Pit8254CounterState,
}

impl Counter {
    fn new() -> Self {
        // Power-on: the datasheet leaves mode, count and OUT undefined; start as after a mode 0
        // control word with no count (OUT low), gate high.
        Self { s: Pit8254CounterState { rw: RW_LSB_MSB, gate: true, ..Default::default() } }
    }

    /// The count modulus: 2^16 binary, 10^4 BCD.
    fn modulus(&self) -> u64 {
        if self.s.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// The initial count N as a number of ticks (0 is the maximum).
    fn period(&self) -> u64 {
        let n = if self.s.bcd { bcd_to_binary(self.s.count_register) } else { u64::from(self.s.count_register) };
        if n == 0 {
            self.modulus()
        } else {
            n
        }
    }

    fn elapsed(&self, now: u64) -> Option<u64> {
        if !self.s.counting {
            return None;
        }
        Some(self.s.paused_elapsed.unwrap_or_else(|| now.saturating_sub(self.s.start_tick)))
    }

    /// The counting element at tick `now`, in the counter's own format (binary or BCD).
    fn count(&self, now: u64) -> u16 {
        let Some(d) = self.elapsed(now) else { return self.s.idle_count };
        let n = self.period();
        let m = self.modulus();
        let value = match self.s.mode {
            2 => n - d % n,
            3 => {
                // Square wave: the count drops by 2 per tick in each half period.
                // (Odd counts start each half from N-1, so the value stays even.)
                let high = n.div_ceil(2);
                let phase = d % n;
                let step = if phase < high { phase } else { phase - high };
                (n & !1).saturating_sub(2 * step).max(2)
            }
            // Modes 0, 1, 4, 5 count down through 0 and wrap.
            _ => (n + m - d % m) % m,
        } % m;
        if self.s.bcd {
            binary_to_bcd(value)
        } else {
            value as u16
        }
    }

    /// The OUT pin at tick `now`.
    fn out(&self, now: u64) -> bool {
        let Some(d) = self.elapsed(now) else { return self.s.idle_out };
        let n = self.period();
        match self.s.mode {
            0 | 1 => d >= n,
            2 => d % n != n - 1,
            3 => d % n < n.div_ceil(2),
            _ => d != n, // modes 4 and 5: one tick low when the count reaches 0
        }
    }

    /// OUT rising edges in the tick interval (a, b].
    fn rising_edges(&self, a: u64, b: u64) -> u64 {
        if !self.s.counting || self.s.paused_elapsed.is_some() || b <= a {
            return 0;
        }
        let n = self.period();
        let da = a.saturating_sub(self.s.start_tick);
        let db = b.saturating_sub(self.s.start_tick);
        if b <= self.s.start_tick {
            return 0;
        }
        // Ticks (relative to the start) at which OUT rises.
        let edge = match self.s.mode {
            0 | 1 => n,
            2 | 3 => return db / n - da / n, // every multiple of N
            _ => n + 1,
        };
        let at = self.s.start_tick.saturating_add(edge);
        u64::from(a < at && at <= b)
    }

    /// The tick of the next OUT rising edge after `now`.
    fn next_rising_edge(&self, now: u64) -> Option<u64> {
        if !self.s.counting || self.s.paused_elapsed.is_some() {
            return None;
        }
        let n = self.period();
        let d = now.saturating_sub(self.s.start_tick);
        let rel = match self.s.mode {
            0 | 1 => Some(n).filter(|&e| e > d),
            2 | 3 => Some((d / n + 1) * n),
            _ => Some(n + 1).filter(|&e| e > d),
        };
        rel.map(|r| self.s.start_tick.saturating_add(r))
    }

    fn status(&self, now: u64) -> u8 {
        let out = if self.out(now) { STATUS_OUT } else { 0 };
        let null = if self.s.null_count { STATUS_NULL_COUNT } else { 0 };
        out | null | self.s.rw << 4 | self.s.mode << 1 | u8::from(self.s.bcd)
    }

    fn stop(&mut self, now: u64) {
        self.s.idle_count = self.count(now);
        self.s.idle_out = self.out(now);
        self.s.counting = false;
        self.s.paused_elapsed = None;
    }

    fn start(&mut self, now: u64) {
        self.s.counting = true;
        self.s.start_tick = now;
        self.s.paused_elapsed = None;
        self.s.null_count = false;
    }

    fn write_control(&mut self, rw: u8, mode: u8, bcd: bool, now: u64) {
        // A control word resets the counter's logic: OUT goes low in mode 0, high in the others.
        self.stop(now);
        self.s.rw = rw;
        self.s.mode = if mode > 5 { mode & 3 } else { mode };
        self.s.bcd = bcd;
        self.s.has_count = false;
        self.s.null_count = true;
        self.s.idle_out = self.s.mode != 0;
        self.s.write_lsb = None;
        self.s.read_msb_next = false;
        self.s.latched_count = None;
        self.s.latched_msb_next = false;
        self.s.latched_status = None;
    }

    fn write_count_byte(&mut self, value: u8, now: u64) {
        let count = match self.s.rw {
            RW_LSB => u16::from(value),
            RW_MSB => u16::from(value) << 8,
            _ => match self.s.write_lsb.take() {
                None => {
                    self.s.write_lsb = Some(value);
                    if self.s.mode == 0 {
                        // Mode 0: writing the first byte stops the count and sets OUT low.
                        self.stop(now);
                        self.s.idle_out = false;
                    }
                    return;
                }
                Some(lsb) => u16::from(lsb) | u16::from(value) << 8,
            },
        };
        self.s.count_register = count;
        self.s.has_count = true;
        self.s.null_count = true;
        match self.s.mode {
            0 | 4 => {
                self.start(now);
                if !self.s.gate {
                    self.s.paused_elapsed = Some(0);
                }
            }
            2 | 3 if self.s.gate => self.start(now),
            _ => {} // modes 1 and 5 wait for a gate trigger; 2 and 3 for the gate
        }
    }

    fn latch_count(&mut self, now: u64) {
        // A second latch before the first is read is ignored.
        if self.s.latched_count.is_none() {
            self.s.latched_count = Some(self.count(now));
            self.s.latched_msb_next = false;
        }
    }

    fn latch_status(&mut self, now: u64) {
        if self.s.latched_status.is_none() {
            self.s.latched_status = Some(self.status(now));
        }
    }

    fn read_byte(&mut self, now: u64) -> u8 {
        if let Some(status) = self.s.latched_status.take() {
            return status;
        }
        if let Some(latched) = self.s.latched_count {
            let [lsb, msb] = latched.to_le_bytes();
            return match self.s.rw {
                RW_LSB => {
                    self.s.latched_count = None;
                    lsb
                }
                RW_MSB => {
                    self.s.latched_count = None;
                    msb
                }
                _ if !self.s.latched_msb_next => {
                    self.s.latched_msb_next = true;
                    lsb
                }
                _ => {
                    self.s.latched_count = None;
                    self.s.latched_msb_next = false;
                    msb
                }
            };
        }
        let [lsb, msb] = self.count(now).to_le_bytes();
        match self.s.rw {
            RW_LSB => lsb,
            RW_MSB => msb,
            _ => {
                self.s.read_msb_next = !self.s.read_msb_next;
                if self.s.read_msb_next {
                    lsb
                } else {
                    msb
                }
            }
        }
    }

    fn set_gate(&mut self, level: bool, now: u64) {
        let rising = level && !self.s.gate;
        let falling = !level && self.s.gate;
        self.s.gate = level;
        match self.s.mode {
            0 | 4 if falling && self.s.counting => self.s.paused_elapsed = self.elapsed(now),
            0 | 4 if rising => {
                if let Some(d) = self.s.paused_elapsed.take() {
                    self.s.start_tick = now.saturating_sub(d);
                }
            }
            1 | 5 if rising && self.s.has_count => self.start(now), // trigger
            2 | 3 if falling => {
                self.stop(now);
                self.s.idle_out = true; // gate low forces OUT high
            }
            2 | 3 if rising && self.s.has_count => self.start(now), // reload and restart
            _ => {}
        }
    }
}

/// The three counters and port 0x61, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pit8254State {
    /// Counters 0, 1, 2.
    pub counters: [Pit8254CounterState; 3],
    /// Writable bits of port 0x61.
    pub port_b: u8,
    /// PIT tick of the last [`Pit8254::poll_irq`].
    pub last_poll_tick: u64,
    /// The PIT's time (ns) when the state was taken; the ticks above count from the same origin
    /// (tick = ns × 1.193182 MHz), so a restore continues with the same tick phase.
    pub saved_at_ns: u64,
}

impl Default for Pit8254State {
    fn default() -> Self {
        let c = Counter::new().s;
        Self { counters: [c.clone(), c.clone(), c], port_b: 0, last_poll_tick: 0, saved_at_ns: 0 }
    }
}

/// Which of the PIT's port ranges an access came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PitPorts {
    /// Ports 0x40-0x43.
    Timer,
    /// Port 0x61.
    SystemControl,
}

/// The 8254 with OUT0 on `L` and time from `C`.
///
/// # Example
/// ```
/// use devices::clock::VirtualClock;
/// use devices::irq::RecordingIrq;
/// use devices::pc::pit8254::{Pit8254, PitPorts};
/// use std::rc::Rc;
/// let clock = Rc::new(VirtualClock::new(1));
/// let irq0 = RecordingIrq::default();
/// let mut pit = Pit8254::new(irq0.clone(), clock.clone());
/// // Linux's periodic tick: mode 2, LATCH = 1193182 / 100 + ... = 11932 (0x2e9c).
/// pit.write(PitPorts::Timer, 3, 0x34);
/// pit.write(PitPorts::Timer, 0, 0x9c);
/// pit.write(PitPorts::Timer, 0, 0x2e);
/// assert_eq!(pit.next_event_ns(), Some(10_000_151)); // 11932 ticks of 838.095 ns
/// clock.advance_ns(10_000_151);
/// pit.poll_irq();
/// assert_eq!(irq0.rising_edges(), 2); // the control word raised OUT0, then the period ended
/// ```
pub struct Pit8254<L: IrqLine, C: Clock> {
    counters: [Counter; 3],
    port_b: u8,
    last_poll_tick: u64,
    irq: L,
    clock: C,
    time: TimeBase,
}

/// PIT ticks at `ns` nanoseconds.
fn ns_to_ticks(ns: u64) -> u64 {
    (u128::from(ns) * u128::from(PIT_HZ) / 1_000_000_000) as u64
}

/// The first nanosecond at which `ticks` have elapsed.
fn ticks_to_ns(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * 1_000_000_000).div_ceil(u128::from(PIT_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

impl<L: IrqLine, C: Clock> Pit8254<L, C> {
    /// A PIT at power-on.
    pub fn new(irq: L, clock: C) -> Self {
        let now = clock.now_ns();
        let state = Pit8254State { last_poll_tick: ns_to_ticks(now), saved_at_ns: now, ..Default::default() };
        Self::from_state(state, irq, clock)
    }

    /// Rebuilds the PIT from a snapshot: `state.saved_at_ns` becomes `clock`'s present.
    pub fn from_state(state: Pit8254State, irq: L, clock: C) -> Self {
        let c = Counter::new();
        let mut pit = Self {
            counters: [c.clone(), c.clone(), c],
            port_b: 0,
            last_poll_tick: 0,
            irq,
            clock,
            time: TimeBase::default(),
        };
        pit.restore_state(&state);
        pit
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> Pit8254State {
        Pit8254State {
            counters: [self.counters[0].s.clone(), self.counters[1].s.clone(), self.counters[2].s.clone()],
            port_b: self.port_b,
            last_poll_tick: self.last_poll_tick,
            saved_at_ns: self.now_ns(),
        }
    }

    /// The counters, port 0x61 and the PIT's time, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> Pit8254State {
        self.state()
    }

    /// Puts the PIT in a saved state, continuing from `s.saved_at_ns` at the clock's present, and
    /// drives IRQ0 to OUT0's level.
    pub fn restore_state(&mut self, s: &Pit8254State) {
        let [a, b, c] = s.counters.clone();
        self.counters = [Counter { s: a }, Counter { s: b }, Counter { s: c }];
        self.port_b = s.port_b & PORTB_WRITABLE;
        self.last_poll_tick = s.last_poll_tick;
        self.time = TimeBase::anchored(s.saved_at_ns, self.clock.now_ns());
        let now = self.now_tick();
        self.irq.set_level(self.counters[0].out(now));
    }

    /// The PIT's own time in ns (the clock, shifted by a restore).
    fn now_ns(&self) -> u64 {
        self.time.device_ns(self.clock.now_ns())
    }

    fn now_tick(&self) -> u64 {
        ns_to_ticks(self.now_ns())
    }

    /// Drives IRQ0 from OUT0: a fresh edge if OUT0 rose since the last poll, then OUT0's level.
    pub fn poll_irq(&mut self) {
        let now = self.now_tick();
        let c0 = &self.counters[0];
        if c0.rising_edges(self.last_poll_tick, now) > 0 {
            self.irq.set_level(false);
            self.irq.set_level(true);
        }
        self.irq.set_level(c0.out(now));
        self.last_poll_tick = now;
    }

    /// When (clock nanoseconds) OUT0 next rises, so the machine can sleep until then.
    pub fn next_event_ns(&self) -> Option<u64> {
        self.counters[0].next_rising_edge(self.now_tick()).map(|t| self.time.clock_ns(ticks_to_ns(t)))
    }

    /// OUT of counter `index` (0-2) now.
    pub fn out(&self, index: usize) -> bool {
        self.counters.get(index).is_some_and(|c| c.out(self.now_tick()))
    }

    /// A byte read from one of the PIT's port ranges.
    pub fn read(&mut self, ports: PitPorts, offset: u16) -> u8 {
        let now = self.now_tick();
        match (ports, offset) {
            (PitPorts::Timer, 0..=2) => self.counters[usize::from(offset)].read_byte(now),
            (PitPorts::SystemControl, 0) => {
                // Port B: gate/speaker bits as written, the refresh toggle and OUT2.
                let refresh = if (self.now_ns() / REFRESH_PERIOD_NS) & 1 != 0 { PORTB_REFRESH } else { 0 };
                let out2 = if self.counters[2].out(now) { PORTB_OUT2 } else { 0 };
                self.port_b | refresh | out2
            }
            _ => {
                trace!(?ports, offset, "pit: read of unknown or write-only offset");
                0xff
            }
        }
    }

    /// A byte written to one of the PIT's port ranges.
    pub fn write(&mut self, ports: PitPorts, offset: u16, value: u8) {
        let now = self.now_tick();
        match (ports, offset) {
            (PitPorts::Timer, 0..=2) => self.counters[usize::from(offset)].write_count_byte(value, now),
            (PitPorts::Timer, PORT_CONTROL) => self.write_control(value, now),
            (PitPorts::SystemControl, 0) => {
                self.port_b = value & PORTB_WRITABLE;
                self.counters[2].set_gate(value & PORTB_GATE2 != 0, now);
            }
            _ => trace!(?ports, offset, value, "pit: write to unknown offset"),
        }
        self.poll_irq();
    }

    fn write_control(&mut self, value: u8, now: u64) {
        let select = value >> 6;
        let rw = (value >> 4) & 3;
        if select == CW_READ_BACK {
            // Read-back: bits 3:1 select counters 2:0; bits 5 and 4 (active low) pick count/status.
            for (i, counter) in self.counters.iter_mut().enumerate() {
                if value & (2 << i) == 0 {
                    continue;
                }
                if value & RB_NO_STATUS == 0 {
                    counter.latch_status(now);
                }
                if value & RB_NO_COUNT == 0 {
                    counter.latch_count(now);
                }
            }
            return;
        }
        let counter = &mut self.counters[usize::from(select)];
        if rw == CW_RW_LATCH {
            counter.latch_count(now);
        } else {
            counter.write_control(rw, (value >> 1) & 7, value & 1 != 0, now);
        }
    }
}

/// One of the PIT's port ranges as a bus device, sharing the PIT through `Rc<RefCell<…>>`.
pub struct PitPortDevice<L: IrqLine, C: Clock> {
    /// The shared PIT.
    pub pit: Rc<RefCell<Pit8254<L, C>>>,
    /// Which range this device answers.
    pub ports: PitPorts,
}

impl<L: IrqLine, C: Clock> PioDevice for PitPortDevice<L, C> {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        match data {
            [byte] => *byte = self.pit.borrow_mut().read(self.ports, offset),
            _ => trace!(offset, len = data.len(), "pit: non-byte read ignored"),
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        match data {
            [value] => self.pit.borrow_mut().write(self.ports, offset, *value),
            _ => trace!(offset, len = data.len(), "pit: non-byte write ignored"),
        }
    }
}

#[cfg(test)]
mod tests;
