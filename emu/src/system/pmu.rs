//! The AMD64 legacy performance-monitoring MSRs, present on every AMD64 processor (AMD APM
//! Vol. 2, 13.2 "Core Performance Monitoring Counters": "four core performance event-select
//! registers PerfEvtSel[3:0] (MSRC001_0000-MSRC001_0003) and four core performance counters
//! PerfCtr[3:0] (MSRC001_0004-MSRC001_0007)"; the counters are 48 bits wide).
//!
//! Software written for AMD CPUs relies on them existing (Linux's perf probe, kvm-unit-tests'
//! `pmu_init` clears all four pairs at start-up), so the AMD models must not #GP on them.
//! Modelled: the registers hold what is written (event selects: bits 31:0, the K8 layout;
//! a reserved bit 63:32 set is #GP; counters: 48 bits). Not modelled: counting — no event
//! source exists in the interpreter, so an enabled counter keeps its value and never
//! overflows (Linux then sees a PMU whose counters do not move, as on a host with perf
//! events disabled). Snapshots store the registers (`registers` / `from_registers`).

use crate::exception::{Fault, Stop};

/// PerfEvtSel0.
pub const AMD_PERF_EVTSEL0: u32 = 0xc001_0000;
/// PerfCtr0.
pub const AMD_PERF_CTR0: u32 = 0xc001_0004;
/// Counter pairs.
pub const AMD_PERF_COUNTERS: u32 = 4;
/// Implemented counter width.
const CTR_MASK: u64 = (1 << 48) - 1;

/// The legacy AMD performance-monitoring registers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmdPmu {
    evtsel: [u64; AMD_PERF_COUNTERS as usize],
    ctr: [u64; AMD_PERF_COUNTERS as usize],
}

impl AmdPmu {
    /// Whether `msr` is one of the eight registers.
    pub fn decodes(msr: u32) -> bool {
        (AMD_PERF_EVTSEL0..AMD_PERF_CTR0 + AMD_PERF_COUNTERS).contains(&msr)
    }

    /// RDMSR of a register [`decodes`](Self::decodes) accepts.
    pub fn read(&self, msr: u32) -> u64 {
        let i = ((msr - AMD_PERF_EVTSEL0) % AMD_PERF_COUNTERS) as usize;
        if msr < AMD_PERF_CTR0 {
            self.evtsel[i]
        } else {
            self.ctr[i]
        }
    }

    /// WRMSR.
    ///
    /// # Errors
    /// #GP(0) for an event select with a reserved bit (63:32) set.
    pub fn write(&mut self, msr: u32, v: u64) -> Result<(), Stop> {
        let i = ((msr - AMD_PERF_EVTSEL0) % AMD_PERF_COUNTERS) as usize;
        if msr < AMD_PERF_CTR0 {
            if v >> 32 != 0 {
                return Err(Stop::Fault(Fault::gp0()));
            }
            self.evtsel[i] = v;
        } else {
            self.ctr[i] = v & CTR_MASK;
        }
        Ok(())
    }

    /// The four event selects then the four counters (what a snapshot stores).
    pub fn registers(&self) -> [u64; 2 * AMD_PERF_COUNTERS as usize] {
        let mut r = [0; 2 * AMD_PERF_COUNTERS as usize];
        let (sel, ctr) = r.split_at_mut(AMD_PERF_COUNTERS as usize);
        sel.copy_from_slice(&self.evtsel);
        ctr.copy_from_slice(&self.ctr);
        r
    }

    /// The registers [`registers`](Self::registers) gave, with the same masks WRMSR applies (a
    /// snapshot's values never set what WRMSR would refuse).
    pub fn from_registers(r: [u64; 2 * AMD_PERF_COUNTERS as usize]) -> Self {
        let n = AMD_PERF_COUNTERS as usize;
        Self { evtsel: std::array::from_fn(|i| r[i] & 0xffff_ffff), ctr: std::array::from_fn(|i| r[n + i] & CTR_MASK) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eight_registers_of_the_apm_hold_their_values() {
        let mut p = AmdPmu::default();
        assert!(!AmdPmu::decodes(0xc000_ffff));
        assert!(!AmdPmu::decodes(0xc001_0008));
        for n in 0..AMD_PERF_COUNTERS {
            assert!(AmdPmu::decodes(AMD_PERF_EVTSEL0 + n) && AmdPmu::decodes(AMD_PERF_CTR0 + n));
            p.write(AMD_PERF_EVTSEL0 + n, 0x0043_0076 + u64::from(n)).unwrap();
            p.write(AMD_PERF_CTR0 + n, u64::MAX - u64::from(n)).unwrap();
        }
        for n in 0..AMD_PERF_COUNTERS {
            assert_eq!(p.read(AMD_PERF_EVTSEL0 + n), 0x0043_0076 + u64::from(n));
            // 48-bit counters: the upper 16 bits are not kept.
            assert_eq!(p.read(AMD_PERF_CTR0 + n), (u64::MAX - u64::from(n)) & ((1 << 48) - 1));
        }
        assert_eq!(p.write(AMD_PERF_EVTSEL0, 1 << 40), Err(Stop::Fault(Fault::gp0())));
    }
}
