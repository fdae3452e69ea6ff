//! xAPIC local APIC: the per-CPU interrupt controller and its timer, as MMIO registers at
//! 0xfee00000.
//!
//! Reference: Intel SDM Vol. 3A chapter 11 (in older editions chapter 10) "Advanced Programmable
//! Interrupt Controller (APIC)": Table 11-1 "Local APIC Register Address Map", 11.4.7.1 "Local APIC
//! State After Power-Up or Reset", 11.5.1 "Local Vector Table", 11.5.3 "Error Handling", 11.5.4
//! "APIC Timer" (divide configuration, one-shot, periodic, TSC-deadline modes), 11.6.1 "Interrupt
//! Command Register", 11.8.3.1 (PPR), 11.8.4 "Interrupt Acceptance for Fixed Interrupts", 11.8.5
//! "Signaling Interrupt Servicing Completion" (EOI and its broadcast), 11.9 "Spurious Interrupt".
//!
//! Nothing here knows the CPU: the machine asks [`Lapic::highest_pending`] and calls
//! [`Lapic::accept`] when the CPU takes the interrupt, feeds IOAPIC messages to [`Lapic::deliver`],
//! forwards IA32_TSC_DEADLINE writes to [`Lapic::write_tsc_deadline`] (converted to clock ns), and
//! gets EOI broadcasts and IPIs for other CPUs through [`LapicHooks`].
//!
//! Modelled: ID, version (0x14, six LVT entries), TPR and PPR, EOI with broadcast for
//! level-triggered vectors, LDR/DFR (flat and cluster logical destinations), SVR (software enable,
//! spurious vector), ISR/TMR/IRR, ESR with its write-to-update protocol, ICR (fixed, NMI, shorthands;
//! delivery to self, the rest handed to the hooks), LVT timer in one-shot, periodic and TSC-deadline
//! modes with the divide configuration and a current count computed from the [`Clock`] (the timer's
//! input clock is [`TIMER_HZ`]), LVT LINT0/LINT1 (fixed, NMI, ExtINT), thermal, performance and error
//! LVTs (stored; the error LVT fires on detected errors).
//!
//! Not modelled: x2APIC, the arbitration priority (APR reads 0), lowest-priority arbitration between
//! CPUs (a lowest-priority message is accepted like a fixed one), directed EOI, SMI/INIT/SIPI effects
//! on the CPU (they are recorded for the machine), a divide-configuration change while the timer
//! runs (the new divisor applies from the start of the count).

use tracing::trace;

use crate::bus::MmioDevice;
use crate::clock::Clock;
use crate::pc::time_base::TimeBase;

/// Default physical base address of the local APIC.
pub const LAPIC_BASE: u64 = 0xfee0_0000;
/// Size of the MMIO page.
pub const LAPIC_SIZE: u64 = 0x1000;
/// Input clock of the APIC timer before the divider.
pub const TIMER_HZ: u64 = 1_000_000_000;

/// Register offsets (Table 11-1).
pub mod reg {
    /// Local APIC ID.
    pub const ID: u64 = 0x020;
    /// Local APIC version.
    pub const VERSION: u64 = 0x030;
    /// Task priority.
    pub const TPR: u64 = 0x080;
    /// Arbitration priority.
    pub const APR: u64 = 0x090;
    /// Processor priority.
    pub const PPR: u64 = 0x0a0;
    /// End of interrupt (write-only).
    pub const EOI: u64 = 0x0b0;
    /// Remote read (not supported by xAPIC CPUs since the Pentium 4).
    pub const RRD: u64 = 0x0c0;
    /// Logical destination.
    pub const LDR: u64 = 0x0d0;
    /// Destination format.
    pub const DFR: u64 = 0x0e0;
    /// Spurious interrupt vector.
    pub const SVR: u64 = 0x0f0;
    /// In-service register, 8 dwords at 0x10 strides.
    pub const ISR: u64 = 0x100;
    /// Trigger mode register, 8 dwords.
    pub const TMR: u64 = 0x180;
    /// Interrupt request register, 8 dwords.
    pub const IRR: u64 = 0x200;
    /// Error status.
    pub const ESR: u64 = 0x280;
    /// Interrupt command, low dword (writing it sends the IPI).
    pub const ICR_LOW: u64 = 0x300;
    /// Interrupt command, high dword (destination).
    pub const ICR_HIGH: u64 = 0x310;
    /// LVT timer.
    pub const LVT_TIMER: u64 = 0x320;
    /// LVT thermal sensor.
    pub const LVT_THERMAL: u64 = 0x330;
    /// LVT performance monitoring counters.
    pub const LVT_PERF: u64 = 0x340;
    /// LVT LINT0.
    pub const LVT_LINT0: u64 = 0x350;
    /// LVT LINT1.
    pub const LVT_LINT1: u64 = 0x360;
    /// LVT error.
    pub const LVT_ERROR: u64 = 0x370;
    /// Timer initial count.
    pub const TIMER_INITIAL: u64 = 0x380;
    /// Timer current count (read-only).
    pub const TIMER_CURRENT: u64 = 0x390;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u64 = 0x3e0;
}

/// Version register: version 0x14, maximum LVT entry 5 (six entries).
pub const VERSION_VALUE: u32 = 0x0005_0014;
/// SVR bit 8: APIC software enable.
pub const SVR_ENABLE: u32 = 1 << 8;
/// SVR bits this model lets the guest write (vector, enable, focus checking).
const SVR_WRITABLE: u32 = 0x3ff;
/// SVR reset value (11.4.7.1).
pub const SVR_RESET: u32 = 0xff;
/// DFR bits 27:0 always read 1.
const DFR_RESERVED_ONES: u32 = 0x0fff_ffff;
/// LVT bit 16: masked.
pub const LVT_MASKED: u32 = 1 << 16;
/// LVT bit 15: level triggered (LINT0/LINT1).
pub const LVT_LEVEL: u32 = 1 << 15;
/// LVT timer bits 18:17: mode.
pub const LVT_TIMER_MODE_SHIFT: u32 = 17;
/// Timer mode 00: one-shot.
pub const TIMER_ONE_SHOT: u32 = 0;
/// Timer mode 01: periodic.
pub const TIMER_PERIODIC: u32 = 1;
/// Timer mode 10: TSC-deadline.
pub const TIMER_TSC_DEADLINE: u32 = 2;
/// ICR bits 19:18: destination shorthand.
pub const ICR_SHORTHAND_SHIFT: u32 = 18;
/// ICR bit 11: logical destination mode.
pub const ICR_LOGICAL: u32 = 1 << 11;
/// ICR bit 15: level trigger.
pub const ICR_LEVEL: u32 = 1 << 15;
/// ESR bit 5: send illegal vector.
pub const ESR_SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
/// ESR bit 6: receive illegal vector.
pub const ESR_RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
/// ESR bit 7: illegal register address.
pub const ESR_ILLEGAL_REGISTER: u32 = 1 << 7;

/// Delivery mode: fixed.
pub const DELIVERY_FIXED: u8 = 0;
/// Delivery mode: lowest priority.
pub const DELIVERY_LOWEST_PRIORITY: u8 = 1;
/// Delivery mode: SMI.
pub const DELIVERY_SMI: u8 = 2;
/// Delivery mode: NMI.
pub const DELIVERY_NMI: u8 = 4;
/// Delivery mode: INIT.
pub const DELIVERY_INIT: u8 = 5;
/// Delivery mode: start-up.
pub const DELIVERY_STARTUP: u8 = 6;
/// Delivery mode: external interrupt (the 8259A answers the INTA).
pub const DELIVERY_EXTINT: u8 = 7;

/// Writable bits of each LVT entry, in register order timer, thermal, perf, LINT0, LINT1, error.
const LVT_WRITABLE: [u32; 6] = [0x0007_00ff, 0x0001_07ff, 0x0001_07ff, 0x0001_a7ff, 0x0001_a7ff, 0x0001_00ff];
const LVT_TIMER: usize = 0;
const LVT_LINT0: usize = 3;
const LVT_ERROR: usize = 5;

/// An interrupt message on the APIC bus (from the IOAPIC, or an IPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApicMessage {
    /// Vector.
    pub vector: u8,
    /// Delivery mode (`DELIVERY_*`).
    pub delivery_mode: u8,
    /// Logical (true) or physical destination mode.
    pub logical_destination: bool,
    /// Destination APIC ID or logical mask.
    pub destination: u8,
    /// Level-triggered (the acceptance sets the TMR bit; EOI is broadcast).
    pub level_triggered: bool,
}

/// What the local APIC tells the rest of the machine.
pub trait LapicHooks {
    /// EOI for a level-triggered vector: the IOAPICs clear their remote IRR for `vector`.
    fn eoi_broadcast(&self, vector: u8);
    /// An IPI that may target other CPUs: the ICR as written (destination in bits 63:56). The part
    /// addressed to this APIC itself has already been delivered; the machine must not send it back.
    fn send_ipi(&self, icr: u64);
}

/// Hooks that do nothing (a single CPU without an IOAPIC).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl LapicHooks for NoHooks {
    fn eoi_broadcast(&self, _vector: u8) {}
    fn send_ipi(&self, _icr: u64) {}
}

/// The local APIC's registers, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapicState {
    /// APIC ID (register bits 31:24).
    pub id: u8,
    /// Task priority.
    pub tpr: u8,
    /// Logical destination register.
    pub ldr: u32,
    /// Destination format register.
    pub dfr: u32,
    /// Spurious interrupt vector register.
    pub svr: u32,
    /// In-service bits, vector n at bit n % 32 of word n / 32.
    pub isr: [u32; 8],
    /// Trigger mode bits.
    pub tmr: [u32; 8],
    /// Request bits.
    pub irr: [u32; 8],
    /// ESR as last latched by a write.
    pub esr: u32,
    /// Errors detected since the last ESR write.
    pub esr_pending: u32,
    /// Interrupt command register.
    pub icr: u64,
    /// LVT timer, thermal, perf, LINT0, LINT1, error.
    pub lvt: [u32; 6],
    /// Timer initial count.
    pub timer_initial: u32,
    /// Timer divide configuration register.
    pub timer_divide: u32,
    /// The APIC's time (ns) when the current count started (see `saved_at_ns`).
    pub timer_start_ns: u64,
    /// One-shot count still running / periodic running.
    pub timer_armed: bool,
    /// Periods already signalled (periodic mode).
    pub timer_periods: u64,
    /// IA32_TSC_DEADLINE as written (0 = disarmed).
    pub tsc_deadline: u64,
    /// The deadline in the APIC's time (ns; see `saved_at_ns`).
    pub tsc_deadline_ns: Option<u64>,
    /// LINT0 and LINT1 input levels.
    pub lint: [bool; 2],
    /// An NMI awaits the CPU.
    pub nmi_pending: bool,
    /// An INIT awaits the CPU.
    pub init_pending: bool,
    /// A start-up IPI's vector awaits the CPU.
    pub sipi_vector: Option<u8>,
    /// The APIC's time (ns) when the state was taken. `timer_start_ns` and `tsc_deadline_ns` are on
    /// the same base: the current count is `(saved_at_ns - timer_start_ns) / ns per count` into the
    /// period, and a restore maps `saved_at_ns` to the restoring clock's present.
    pub saved_at_ns: u64,
}

impl LapicState {
    /// The power-up state of SDM 11.4.7.1 for APIC `id`.
    pub fn reset(id: u8) -> Self {
        Self {
            id,
            tpr: 0,
            ldr: 0,
            dfr: 0xffff_ffff,
            svr: SVR_RESET,
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            esr: 0,
            esr_pending: 0,
            icr: 0,
            lvt: [LVT_MASKED; 6],
            timer_initial: 0,
            timer_divide: 0,
            timer_start_ns: 0,
            timer_armed: false,
            timer_periods: 0,
            tsc_deadline: 0,
            tsc_deadline_ns: None,
            lint: [false; 2],
            nmi_pending: false,
            init_pending: false,
            sipi_vector: None,
            saved_at_ns: 0,
        }
    }
}

fn bit_test(bits: &[u32; 8], v: u8) -> bool {
    bits[usize::from(v >> 5)] & (1 << (v & 31)) != 0
}

fn bit_set(bits: &mut [u32; 8], v: u8, on: bool) {
    let word = &mut bits[usize::from(v >> 5)];
    if on {
        *word |= 1 << (v & 31);
    } else {
        *word &= !(1 << (v & 31));
    }
}

fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8).rev().find(|&w| bits[w] != 0).map(|w| (w as u8) * 32 + (31 - bits[w].leading_zeros() as u8))
}

/// A local APIC with time from `C` and its outward signals on `H`.
///
/// # Example
/// ```
/// use devices::bus::MmioDevice;
/// use devices::clock::VirtualClock;
/// use devices::pc::lapic::{reg, Lapic, NoHooks};
/// use std::rc::Rc;
/// let clock = Rc::new(VirtualClock::new(1));
/// let mut apic = Lapic::new(0, clock.clone(), NoHooks);
/// apic.mmio_write(reg::SVR, &0x1ffu32.to_le_bytes()); // software enable
/// apic.mmio_write(reg::LVT_TIMER, &0x40u32.to_le_bytes()); // one-shot, vector 0x40
/// apic.mmio_write(reg::TIMER_DIVIDE, &0xbu32.to_le_bytes()); // divide by 1
/// apic.mmio_write(reg::TIMER_INITIAL, &1000u32.to_le_bytes());
/// clock.advance_ns(1000);
/// apic.poll_timer();
/// assert_eq!(apic.highest_pending(), Some(0x40));
/// assert_eq!(apic.accept(), Some(0x40));
/// ```
pub struct Lapic<C: Clock, H: LapicHooks> {
    s: LapicState,
    clock: C,
    hooks: H,
    time: TimeBase,
}

impl<C: Clock, H: LapicHooks> Lapic<C, H> {
    /// A local APIC with ID `id` in its power-up state.
    pub fn new(id: u8, clock: C, hooks: H) -> Self {
        let state = LapicState { saved_at_ns: clock.now_ns(), ..LapicState::reset(id) };
        Self::from_state(state, clock, hooks)
    }

    /// Rebuilds a local APIC from a snapshot: `state.saved_at_ns` becomes `clock`'s present.
    pub fn from_state(state: LapicState, clock: C, hooks: H) -> Self {
        let time = TimeBase::anchored(state.saved_at_ns, clock.now_ns());
        Self { s: state, clock, hooks, time }
    }

    /// The registers, for a snapshot.
    pub fn state(&self) -> LapicState {
        LapicState { saved_at_ns: self.now_ns(), ..self.s.clone() }
    }

    /// The registers and the APIC's time, for a snapshot (same as [`Self::state`]).
    pub fn save_state(&self) -> LapicState {
        self.state()
    }

    /// Puts the APIC in a saved state; its timer continues from `s.saved_at_ns` at the clock's
    /// present. Nothing is sent to the hooks.
    pub fn restore_state(&mut self, s: &LapicState) {
        self.s = s.clone();
        self.time = TimeBase::anchored(s.saved_at_ns, self.clock.now_ns());
    }

    /// The APIC's own time in ns (the clock, shifted by a restore).
    pub(crate) fn now_ns(&self) -> u64 {
        self.time.device_ns(self.clock.now_ns())
    }

    fn software_enabled(&self) -> bool {
        self.s.svr & SVR_ENABLE != 0
    }

    /// Processor priority (11.8.3.1): TPR if its class is at least the highest in-service class.
    pub fn ppr(&self) -> u8 {
        let isrv = highest(&self.s.isr).unwrap_or(0);
        if self.s.tpr >> 4 >= isrv >> 4 {
            self.s.tpr
        } else {
            isrv & 0xf0
        }
    }

    /// The vector the CPU would take now: the highest requested one whose priority class is above
    /// the processor priority class.
    pub fn highest_pending(&self) -> Option<u8> {
        let v = highest(&self.s.irr)?;
        (v >> 4 > self.ppr() >> 4).then_some(v)
    }

    /// The CPU takes the interrupt: the highest deliverable vector moves from IRR to ISR.
    pub fn accept(&mut self) -> Option<u8> {
        let v = self.highest_pending()?;
        bit_set(&mut self.s.irr, v, false);
        bit_set(&mut self.s.isr, v, true);
        Some(v)
    }

    /// The spurious-interrupt vector (SVR bits 7:0), for an acknowledge that finds nothing.
    pub fn spurious_vector(&self) -> u8 {
        self.s.svr as u8
    }

    /// Latches a fixed interrupt (11.8.4): IRR set, TMR per trigger mode.
    pub fn accept_interrupt(&mut self, vector: u8, level_triggered: bool) {
        if vector < 16 {
            self.error(ESR_RECEIVE_ILLEGAL_VECTOR);
            return;
        }
        if !self.software_enabled() {
            trace!(vector, "lapic: software-disabled; fixed interrupt discarded");
            return;
        }
        bit_set(&mut self.s.irr, vector, true);
        bit_set(&mut self.s.tmr, vector, level_triggered);
    }

    /// An interrupt message from the APIC bus addressed to this APIC.
    pub fn deliver(&mut self, m: ApicMessage) {
        match m.delivery_mode {
            DELIVERY_FIXED | DELIVERY_LOWEST_PRIORITY => self.accept_interrupt(m.vector, m.level_triggered),
            DELIVERY_NMI => self.s.nmi_pending = true,
            DELIVERY_INIT => self.s.init_pending = true,
            DELIVERY_STARTUP => self.s.sipi_vector = Some(m.vector),
            mode => trace!(mode, vector = m.vector, "lapic: SMI/ExtINT message not modelled"),
        }
    }

    /// Whether a message for `destination` in the given mode addresses this APIC (11.6.2).
    pub fn matches_destination(&self, destination: u8, logical: bool) -> bool {
        if !logical {
            return destination == 0xff || destination == self.s.id;
        }
        let ldr = (self.s.ldr >> 24) as u8;
        if self.s.dfr >> 28 == 0xf {
            ldr & destination != 0 // flat model
        } else {
            // Cluster model: cluster in bits 7:4 must match (0xf broadcasts), members in 3:0.
            (destination >> 4 == 0xf || destination >> 4 == ldr >> 4) && ldr & destination & 0x0f != 0
        }
    }

    /// Whether an NMI waits (without taking it).
    pub fn nmi_pending(&self) -> bool {
        self.s.nmi_pending
    }

    /// Takes a pending NMI (from LINT1, an IPI or an IOAPIC message).
    pub fn take_nmi(&mut self) -> bool {
        std::mem::take(&mut self.s.nmi_pending)
    }

    /// Takes a pending INIT.
    pub fn take_init(&mut self) -> bool {
        std::mem::take(&mut self.s.init_pending)
    }

    /// Takes a pending start-up IPI's vector.
    pub fn take_sipi(&mut self) -> Option<u8> {
        self.s.sipi_vector.take()
    }

    /// Whether LINT0 is in ExtINT mode, unmasked and asserted: the CPU should run an INTA cycle on
    /// the 8259A (virtual wire mode).
    pub fn extint_pending(&self) -> bool {
        let lvt = self.s.lvt[LVT_LINT0];
        self.s.lint[0] && lvt & LVT_MASKED == 0 && (lvt >> 8) & 7 == u32::from(DELIVERY_EXTINT)
    }

    /// Drives LINT0 (`pin` 0) or LINT1 (`pin` 1).
    pub fn set_lint(&mut self, pin: usize, level: bool) {
        let Some(&was) = self.s.lint.get(pin) else { return };
        self.s.lint[pin] = level;
        let lvt = self.s.lvt[LVT_LINT0 + pin];
        if lvt & LVT_MASKED != 0 || !level || was {
            return;
        }
        match ((lvt >> 8) & 7) as u8 {
            DELIVERY_FIXED => self.accept_interrupt(lvt as u8, lvt & LVT_LEVEL != 0),
            DELIVERY_NMI => self.s.nmi_pending = true,
            _ => {} // ExtINT is sampled through extint_pending()
        }
    }

    fn error(&mut self, bits: u32) {
        self.s.esr_pending |= bits;
        let lvt = self.s.lvt[LVT_ERROR];
        if lvt & LVT_MASKED == 0 && lvt as u8 >= 16 {
            self.accept_interrupt(lvt as u8, false);
        }
    }

    fn eoi(&mut self) {
        let Some(v) = highest(&self.s.isr) else { return };
        bit_set(&mut self.s.isr, v, false);
        if bit_test(&self.s.tmr, v) {
            self.hooks.eoi_broadcast(v);
        }
    }

    fn send_ipi(&mut self) {
        let low = self.s.icr as u32;
        let vector = low as u8;
        let mode = ((low >> 8) & 7) as u8;
        let logical = low & ICR_LOGICAL != 0;
        let destination = (self.s.icr >> 56) as u8;
        let (to_self, to_others) = match (low >> ICR_SHORTHAND_SHIFT) & 3 {
            1 => (true, false),
            2 => (true, true),
            3 => (false, true),
            _ => {
                let only_me = !logical && destination == self.s.id;
                (self.matches_destination(destination, logical), !only_me)
            }
        };
        if matches!(mode, DELIVERY_FIXED | DELIVERY_LOWEST_PRIORITY) && vector < 16 {
            self.error(ESR_SEND_ILLEGAL_VECTOR);
            return;
        }
        if to_self {
            self.deliver(ApicMessage {
                vector,
                delivery_mode: mode,
                logical_destination: logical,
                destination,
                level_triggered: false, // IPIs are edge-triggered for fixed delivery
            });
        }
        if to_others {
            self.hooks.send_ipi(self.s.icr);
        }
    }

    fn read_register(&mut self, offset: u64) -> u32 {
        match offset {
            reg::ID => u32::from(self.s.id) << 24,
            reg::VERSION => VERSION_VALUE,
            reg::TPR => u32::from(self.s.tpr),
            reg::APR | reg::EOI | reg::RRD => 0,
            reg::PPR => u32::from(self.ppr()),
            reg::LDR => self.s.ldr,
            reg::DFR => self.s.dfr | DFR_RESERVED_ONES,
            reg::SVR => self.s.svr,
            0x100..=0x170 => self.s.isr[((offset - reg::ISR) >> 4) as usize],
            0x180..=0x1f0 => self.s.tmr[((offset - reg::TMR) >> 4) as usize],
            0x200..=0x270 => self.s.irr[((offset - reg::IRR) >> 4) as usize],
            reg::ESR => self.s.esr,
            reg::ICR_LOW => self.s.icr as u32, // delivery status reads 0: sent at once
            reg::ICR_HIGH => (self.s.icr >> 32) as u32,
            0x320..=0x370 => self.s.lvt[((offset - reg::LVT_TIMER) >> 4) as usize],
            reg::TIMER_INITIAL => self.s.timer_initial,
            reg::TIMER_CURRENT => self.timer_current_count(),
            reg::TIMER_DIVIDE => self.s.timer_divide,
            _ => {
                trace!(offset, "lapic: read of reserved register");
                self.error(ESR_ILLEGAL_REGISTER);
                0
            }
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            reg::ID => self.s.id = (value >> 24) as u8,
            reg::TPR => self.s.tpr = value as u8,
            reg::EOI => self.eoi(),
            reg::LDR => self.s.ldr = value & 0xff00_0000,
            reg::DFR => self.s.dfr = value | DFR_RESERVED_ONES,
            reg::SVR => {
                self.s.svr = value & SVR_WRITABLE;
                if !self.software_enabled() {
                    // Software disable masks every LVT entry (11.4.7.2).
                    for lvt in &mut self.s.lvt {
                        *lvt |= LVT_MASKED;
                    }
                }
            }
            reg::ESR => self.s.esr = std::mem::take(&mut self.s.esr_pending), // write latches errors
            reg::ICR_LOW => {
                self.s.icr = (self.s.icr & !0xffff_ffff) | u64::from(value & 0x000c_cfff);
                self.send_ipi();
            }
            reg::ICR_HIGH => self.s.icr = (self.s.icr & 0xffff_ffff) | (u64::from(value & 0xff00_0000) << 32),
            0x320..=0x370 => {
                let index = ((offset - reg::LVT_TIMER) >> 4) as usize;
                let mut v = value & LVT_WRITABLE[index];
                if !self.software_enabled() {
                    v |= LVT_MASKED; // the mask cannot be cleared while software-disabled
                }
                let old_mode = self.timer_mode();
                self.s.lvt[index] = v;
                if index == LVT_TIMER && (old_mode == TIMER_TSC_DEADLINE) != (self.timer_mode() == TIMER_TSC_DEADLINE) {
                    // Switching into or out of TSC-deadline mode disarms the timer.
                    self.s.timer_armed = false;
                    self.s.tsc_deadline = 0;
                    self.s.tsc_deadline_ns = None;
                }
            }
            reg::TIMER_INITIAL => {
                if self.timer_mode() == TIMER_TSC_DEADLINE {
                    return; // ignored in TSC-deadline mode
                }
                self.s.timer_initial = value;
                self.s.timer_start_ns = self.now_ns();
                self.s.timer_periods = 0;
                self.s.timer_armed = value != 0;
            }
            reg::TIMER_DIVIDE => self.s.timer_divide = value & 0xb,
            reg::VERSION | reg::APR | reg::PPR | reg::RRD | 0x100..=0x270 | reg::TIMER_CURRENT => {
                trace!(offset, value, "lapic: write to read-only register ignored");
            }
            _ => {
                trace!(offset, value, "lapic: write to reserved register");
                self.error(ESR_ILLEGAL_REGISTER);
            }
        }
    }
}

impl<C: Clock, H: LapicHooks> MmioDevice for Lapic<C, H> {
    fn mmio_read(&mut self, offset: u64, data: &mut [u8]) {
        let Ok(out) = <&mut [u8; 4]>::try_from(&mut *data) else {
            trace!(offset, len = data.len(), "lapic: non-dword read ignored");
            return;
        };
        if offset & 0xf != 0 {
            trace!(offset, "lapic: unaligned read ignored");
            return;
        }
        self.poll_timer();
        *out = self.read_register(offset).to_le_bytes();
    }

    fn mmio_write(&mut self, offset: u64, data: &[u8]) {
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            trace!(offset, len = data.len(), "lapic: non-dword write ignored");
            return;
        };
        if offset & 0xf != 0 {
            trace!(offset, "lapic: unaligned write ignored");
            return;
        }
        self.poll_timer();
        self.write_register(offset, u32::from_le_bytes(bytes));
    }
}

mod timer;

#[cfg(test)]
mod tests;
