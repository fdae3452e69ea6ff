//! The local APIC timer (SDM Vol. 3A 11.5.4): one-shot, periodic and TSC-deadline modes, the divide
//! configuration, and the current count computed from the [`Clock`] at [`TIMER_HZ`] before division.
//! Expirations are found when the machine (or a register access) polls; several missed periodic
//! expirations fold into one interrupt, as on a CPU that was busy with interrupts masked.

use tracing::trace;

use super::{
    Lapic, LapicHooks, LVT_MASKED, LVT_TIMER, LVT_TIMER_MODE_SHIFT, TIMER_HZ, TIMER_PERIODIC, TIMER_TSC_DEADLINE,
};
use crate::clock::Clock;

impl<C: Clock, H: LapicHooks> Lapic<C, H> {
    pub(super) fn timer_mode(&self) -> u32 {
        (self.s.lvt[LVT_TIMER] >> LVT_TIMER_MODE_SHIFT) & 3
    }

    /// The divisor from the divide configuration register (bits 3, 1:0; 11.5.4).
    pub(super) fn timer_divisor(&self) -> u64 {
        let d = self.s.timer_divide;
        let index = (d & 3) | ((d >> 1) & 4);
        1 << ((index + 1) & 7)
    }

    /// Clock ns per timer count.
    fn ns_per_count(&self) -> u128 {
        u128::from(self.timer_divisor()) * 1_000_000_000 / u128::from(TIMER_HZ)
    }

    fn elapsed_counts(&self) -> u64 {
        let elapsed = self.now_ns().saturating_sub(self.s.timer_start_ns);
        (u128::from(elapsed) / self.ns_per_count().max(1)) as u64
    }

    /// The current-count register (11.5.4).
    pub fn timer_current_count(&self) -> u32 {
        if !self.s.timer_armed || self.s.timer_initial == 0 || self.timer_mode() == TIMER_TSC_DEADLINE {
            return 0;
        }
        let initial = u64::from(self.s.timer_initial);
        let counts = self.elapsed_counts();
        let current = if self.timer_mode() == TIMER_PERIODIC {
            initial - counts % initial
        } else {
            initial.saturating_sub(counts)
        };
        current as u32
    }

    fn fire_timer(&mut self) {
        let lvt = self.s.lvt[LVT_TIMER];
        if lvt & LVT_MASKED == 0 {
            self.accept_interrupt(lvt as u8, false);
        }
    }

    /// Signals timer expirations up to now (several missed periods fold into one interrupt).
    pub fn poll_timer(&mut self) {
        match self.timer_mode() {
            TIMER_TSC_DEADLINE if self.s.tsc_deadline_ns.is_some_and(|d| self.now_ns() >= d) => {
                self.s.tsc_deadline_ns = None;
                self.s.tsc_deadline = 0; // the MSR reads 0 once the deadline has passed
                self.fire_timer();
            }
            TIMER_TSC_DEADLINE => {}
            mode if self.s.timer_armed && self.s.timer_initial != 0 => {
                let counts = self.elapsed_counts();
                let initial = u64::from(self.s.timer_initial);
                if mode == TIMER_PERIODIC {
                    let periods = counts / initial;
                    if periods > self.s.timer_periods {
                        self.s.timer_periods = periods;
                        self.fire_timer();
                    }
                } else if counts >= initial {
                    self.s.timer_armed = false;
                    self.fire_timer();
                }
            }
            _ => {}
        }
    }

    /// When (clock ns) the timer next expires, if it runs and its LVT entry is unmasked.
    pub fn next_event_ns(&self) -> Option<u64> {
        if self.s.lvt[LVT_TIMER] & LVT_MASKED != 0 {
            return None;
        }
        if self.timer_mode() == TIMER_TSC_DEADLINE {
            return self.s.tsc_deadline_ns.map(|d| self.time.clock_ns(d));
        }
        if !self.s.timer_armed || self.s.timer_initial == 0 {
            return None;
        }
        let periods = if self.timer_mode() == TIMER_PERIODIC { self.s.timer_periods + 1 } else { 1 };
        let counts = u128::from(self.s.timer_initial) * u128::from(periods);
        let at = u128::from(self.s.timer_start_ns) + counts * self.ns_per_count();
        Some(self.time.clock_ns(u64::try_from(at).unwrap_or(u64::MAX)))
    }

    /// A WRMSR of IA32_TSC_DEADLINE: `msr_value` as written (0 disarms) and the same deadline in
    /// clock ns. Ignored unless the timer is in TSC-deadline mode (11.5.4.1).
    pub fn write_tsc_deadline(&mut self, msr_value: u64, deadline_ns: u64) {
        if self.timer_mode() != TIMER_TSC_DEADLINE {
            trace!(msr_value, "lapic: TSC deadline written outside TSC-deadline mode; ignored");
            return;
        }
        self.s.tsc_deadline = msr_value;
        self.s.tsc_deadline_ns = (msr_value != 0).then_some(self.time.device_ns(deadline_ns));
        self.poll_timer();
    }

    /// A RDMSR of IA32_TSC_DEADLINE.
    pub fn tsc_deadline(&self) -> u64 {
        self.s.tsc_deadline
    }
}
