//! Boot phases the serial port does not show (issue 10: MIPS per boot phase). A `quiet` Linux
//! boot prints nothing from its first instruction until late, so the timeline had one phase
//! for the kernel's XZ decompressor and most of the kernel proper. Two events split it, noted
//! at the run loop's rounds (every `SLICE` instructions at most, so an event is recorded at
//! most that many instructions late): the first round ending in 64-bit code in the upper half
//! of the address space (the decompressor has jumped to the kernel proper, which moves to its
//! high mapping within its first instructions), and the first ending at CPL 3 (user space:
//! init). Only with engines that keep `cpu.state` current (tier 0, the JIT).

use super::Machine;

/// Which of the events are still to come (bit 0: upper half, bit 1: CPL 3).
pub(super) const ALL: u8 = 0b11;

impl Machine {
    /// Records the phase events the CPU has reached since the last round.
    pub(super) fn note_phases(&mut self) {
        if self.phases_pending == 0 || !self.active.counts_instructions() {
            return;
        }
        let s = &self.cpu.state;
        let mut label = None;
        if self.phases_pending & 1 != 0 && s.code_bits() == 64 && s.rip >= 0xffff_8000_0000_0000 {
            self.phases_pending &= !1;
            label = Some("phase: first instruction in the upper half (64-bit)");
        } else if self.phases_pending & 2 != 0 && s.cpl == 3 {
            // A kernel that never entered its upper half (32-bit) still gets this one.
            self.phases_pending = 0;
            label = Some("phase: first instruction at CPL 3 (user space)");
        }
        if let Some(label) = label {
            self.record(label);
        }
    }
}
