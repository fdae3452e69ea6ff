//! A device's own time base: the machine [`Clock`](crate::clock::Clock) plus an offset fixed when a
//! snapshot is restored.
//!
//! Timer devices keep their times (load instants, deadlines, tick grids) in their own nanoseconds.
//! A freshly built device uses the clock as it is (offset 0). A snapshot records the device's time
//! when it was taken (`saved_at_ns` in each `…State`); a restore picks the offset that maps that
//! instant to the restoring clock's present. So every time in a state is relative to the clock
//! reading stored beside it, and a restore under a clock that starts elsewhere (a new host process,
//! a virtual clock at 0) continues exactly where the saved device was, tick phase included.

/// The offset between a device's time and the machine clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TimeBase {
    /// Device ns minus clock ns.
    offset: i128,
}

impl TimeBase {
    /// The time base whose present (`clock_now_ns` on the clock) is `device_now_ns`.
    pub(crate) fn anchored(device_now_ns: u64, clock_now_ns: u64) -> Self {
        Self { offset: i128::from(device_now_ns) - i128::from(clock_now_ns) }
    }

    /// Device time at clock time `clock_ns` (clamped to the u64 range).
    pub(crate) fn device_ns(self, clock_ns: u64) -> u64 {
        clamp(i128::from(clock_ns) + self.offset)
    }

    /// Clock time at device time `device_ns` (clamped to the u64 range).
    pub(crate) fn clock_ns(self, device_ns: u64) -> u64 {
        clamp(i128::from(device_ns) - self.offset)
    }
}

fn clamp(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways_and_clamps() {
        let t = TimeBase::anchored(5_000, 20);
        assert_eq!(t.device_ns(20), 5_000);
        assert_eq!(t.device_ns(21), 5_001);
        assert_eq!(t.clock_ns(6_000), 1_020);
        assert_eq!(t.clock_ns(0), 0); // before the clock's origin
        let back = TimeBase::anchored(10, 1_000);
        assert_eq!(back.device_ns(1_000), 10);
        assert_eq!(back.clock_ns(u64::MAX), u64::MAX);
        assert_eq!(TimeBase::default().device_ns(42), 42);
    }
}
