//! Time sources for devices: a monotonic nanosecond count.
//!
//! Devices never read host timers themselves; they ask a [`Clock`] (ARCHITECTURE.md, decision 3). Two
//! implementations exist: [`HostClock`], host monotonic time since the clock was made, and
//! [`VirtualClock`], advanced explicitly by the machine (for `--deterministic` runs the machine turns
//! retired instructions into nanoseconds, so a run is reproducible bit for bit).
//!
//! Modelled: monotonic nanoseconds from an arbitrary origin. Not modelled: wall-clock time (the RTC
//! takes its start date separately), clock scaling, pausing a host clock.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// A monotonic time source in nanoseconds; the origin is the clock's creation.
pub trait Clock {
    /// Nanoseconds elapsed since the origin. Never decreases.
    fn now_ns(&self) -> u64;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

impl<T: Clock + ?Sized> Clock for Rc<T> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now_ns(&self) -> u64 {
        (**self).now_ns()
    }
}

/// Host monotonic time (`std::time::Instant`) since this clock was created.
///
/// # Example
/// ```
/// use devices::clock::{Clock, HostClock};
/// let clock = HostClock::new();
/// let a = clock.now_ns();
/// assert!(clock.now_ns() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    origin: Instant,
}

impl HostClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self { origin: Instant::now() }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        // u64 nanoseconds last 584 years; saturate rather than wrap past that.
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Virtual time that moves only when the machine advances it (deterministic runs).
///
/// # Example
/// ```
/// use devices::clock::{Clock, VirtualClock};
/// let clock = VirtualClock::new(1);
/// clock.retire_instructions(1_000);
/// clock.advance_ns(500);
/// assert_eq!(clock.now_ns(), 1_500);
/// ```
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: Cell<u64>,
    ns_per_instruction: u64,
}

impl VirtualClock {
    /// A clock at 0 ns in which each retired instruction takes `ns_per_instruction` nanoseconds.
    pub fn new(ns_per_instruction: u64) -> Self {
        Self { now: Cell::new(0), ns_per_instruction }
    }

    /// Moves time forward by `ns` (saturating at `u64::MAX`).
    pub fn advance_ns(&self, ns: u64) {
        self.now.set(self.now.get().saturating_add(ns));
    }

    /// Moves time forward by the duration of `count` retired instructions.
    pub fn retire_instructions(&self, count: u64) {
        self.advance_ns(count.saturating_mul(self.ns_per_instruction));
    }

    /// Moves time forward to `ns` if that is later (a halted CPU skipping to the next device event).
    pub fn advance_to(&self, ns: u64) {
        if ns > self.now.get() {
            self.now.set(ns);
        }
    }
}

impl Clock for VirtualClock {
    fn now_ns(&self) -> u64 {
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_never_goes_back() {
        let clock = VirtualClock::new(3);
        clock.advance_to(100);
        clock.advance_to(50);
        assert_eq!(clock.now_ns(), 100);
        clock.retire_instructions(10);
        assert_eq!(clock.now_ns(), 130);
        clock.advance_ns(u64::MAX);
        assert_eq!(clock.now_ns(), u64::MAX);
    }

    #[test]
    fn host_clock_moves() {
        let clock = Rc::new(HostClock::new());
        let a = clock.now_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(clock.now_ns() >= a + 1_000_000);
    }
}
