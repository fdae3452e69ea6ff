//! gdb's breakpoints and watchpoints on an engine with its own debugging (KVM's
//! KVM_SET_GUEST_DEBUG, under `--tier kvm`): which of them go into the debug registers, which
//! become INT3 bytes in guest memory, and when the set does not fit what the engine can do here
//! (the stub then steps on tier 0, saying why once).
//!
//! Placement ([`plan`]): software breakpoints (`break`) become INT3s where the engine stops at
//! an INT3 itself (KVM_GUESTDBG_USE_SW_BP on VMX/SVM; in user mode also the program's #BP,
//! which the engine's own exception stub catches); where it does not, they take free DR0-DR3
//! execution slots, as a debugger may with any breakpoint. Hardware breakpoints (`hbreak`)
//! take slots, or INT3s where the engine has no execution slots but stops at INT3s. Watchpoints
//! take data slots (SDM Vol. 3B 18.2.4: 1, 2, 4 or 8 aligned bytes; a read watch uses R/W = 11,
//! which also fires on writes, as gdb's x86 targets do). Four slots in all.
//!
//! The INT3s are in guest memory only while the engine runs ([`Int3Patches`]): written just
//! before, taken out at every stop, so gdb's memory reads never see them, and the instruction
//! gdb resumes from (run on tier 0 first) is never one of them. A byte the guest overwrote
//! meanwhile is left as the guest wrote it.

use super::points::{Points, Watchpoint};
use emu::engine::{DataBreakpoint, DebugHit, GuestDebug, GuestDebugKinds};
use gdbstub::target::ext::breakpoints::WatchKind;

/// The INT3 opcode (SDM Vol. 2A, INT n/INTO/INT3).
pub const INT3: u8 = 0xcc;

/// gdb's points as the engine will see them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Execution breakpoints for DR0-DR3 (first).
    pub hw_breakpoints: Vec<u64>,
    /// Data breakpoints for the slots after them, with the gdb watchpoint each stands for.
    pub watchpoints: Vec<(DataBreakpoint, Watchpoint)>,
    /// Addresses to put INT3s at.
    pub int3: Vec<u64>,
}

impl Plan {
    /// The request for the engine (the caller adds its flags).
    pub fn request(&self) -> GuestDebug {
        GuestDebug {
            hw_breakpoints: self.hw_breakpoints.clone(),
            watchpoints: self.watchpoints.iter().map(|w| w.0).collect(),
            int3_breakpoints: self.int3.clone(),
            ..GuestDebug::default()
        }
    }

    /// The gdb watchpoint behind the debug register DR6 names in `hit`, if one is.
    pub fn watch_hit(&self, hit: &DebugHit) -> Option<Watchpoint> {
        let first = self.hw_breakpoints.len();
        self.watchpoints.iter().enumerate().find(|(i, _)| hit.dr6 & (1 << (first + i)) != 0).map(|(_, w)| w.1)
    }
}

/// Places `points` for an engine that can do `kinds`; `Err` says in a few words why they
/// cannot all run on it (they then run on tier 0).
///
/// # Errors
/// The reason, for the one-line message.
pub fn plan(points: &Points, kinds: &GuestDebugKinds) -> Result<Plan, String> {
    let mut p = Plan::default();
    for &a in &points.hard {
        if kinds.hw_breakpoint {
            p.hw_breakpoints.push(a);
        } else if kinds.sw_breakpoint {
            p.int3.push(a);
        } else {
            return Err("this host's KVM does not stop at breakpoints".into());
        }
    }
    for &a in &points.soft {
        if kinds.sw_breakpoint {
            p.int3.push(a);
        } else if kinds.hw_breakpoint {
            p.hw_breakpoints.push(a);
        } else {
            return Err("this host's KVM does not stop at breakpoints".into());
        }
    }
    for w in &points.watches {
        if !kinds.hw_watchpoint {
            return Err("this host's KVM does not stop at data breakpoints (watchpoints)".into());
        }
        if !matches!(w.len, 1 | 2 | 4 | 8) || w.addr % w.len != 0 {
            return Err(format!("a {}-byte watchpoint at {:#x} is not one debug register", w.len, w.addr));
        }
        let data = DataBreakpoint { addr: w.addr, len: w.len as u8, read: w.kind != WatchKind::Write };
        p.watchpoints.push((data, *w));
    }
    let slots = p.hw_breakpoints.len() + p.watchpoints.len();
    if slots > 4 {
        return Err(format!("{slots} breakpoints and watchpoints need more than the four debug registers"));
    }
    Ok(p)
}

/// Guest memory as the stub sees it (linear addresses).
pub trait Memory {
    fn read(&mut self, la: u64, buf: &mut [u8]) -> bool;
    fn write(&mut self, la: u64, data: &[u8]) -> bool;
}

/// INT3 bytes written into guest memory for one engine run, with the bytes they replaced.
#[derive(Debug, Default)]
pub struct Int3Patches {
    saved: Vec<(u64, u8)>,
}

impl Int3Patches {
    /// Writes an INT3 at each of `addrs` (an address that cannot be read or written is left
    /// out: the guest cannot run code there either).
    pub fn insert(mem: &mut impl Memory, addrs: &[u64]) -> Int3Patches {
        let mut saved = Vec::new();
        for &a in addrs {
            let mut b = [0u8];
            if saved.iter().any(|&(s, _)| s == a) || !mem.read(a, &mut b) {
                continue;
            }
            if mem.write(a, &[INT3]) {
                saved.push((a, b[0]));
            }
        }
        Int3Patches { saved }
    }

    /// Puts the original bytes back, except where the guest wrote over an INT3 meanwhile
    /// (self-modifying code keeps what it wrote).
    pub fn remove(self, mem: &mut impl Memory) {
        for (a, orig) in self.saved.into_iter().rev() {
            let mut b = [0u8];
            if mem.read(a, &mut b) && b[0] == INT3 {
                mem.write(a, &[orig]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(soft: &[u64], hard: &[u64], watches: &[Watchpoint]) -> Points {
        let mut p = Points::default();
        (p.soft, p.hard, p.watches) = (soft.to_vec(), hard.to_vec(), watches.to_vec());
        p
    }

    const PVM: GuestDebugKinds =
        GuestDebugKinds { single_step: true, sw_breakpoint: false, hw_breakpoint: true, hw_watchpoint: false };
    const VMX: GuestDebugKinds =
        GuestDebugKinds { single_step: true, sw_breakpoint: true, hw_breakpoint: true, hw_watchpoint: true };

    /// Without INT3 support, `break`s take free debug registers, four at most.
    #[test]
    fn software_breakpoints_take_free_slots_where_int3_does_not_stop_the_engine() {
        let p = plan(&points(&[0x10, 0x20], &[0x30], &[]), &PVM).unwrap();
        assert_eq!(p.hw_breakpoints, [0x30, 0x10, 0x20]);
        assert!(p.int3.is_empty());
        let five = plan(&points(&[1, 2, 3, 4], &[5], &[]), &PVM);
        assert!(five.unwrap_err().contains("more than the four debug registers"));
    }

    /// With INT3 support any number of `break`s fit; `hbreak`s still take slots.
    #[test]
    fn software_breakpoints_become_int3_where_the_engine_stops_at_them() {
        let soft: Vec<u64> = (0..10).collect();
        let p = plan(&points(&soft, &[0x30], &[]), &VMX).unwrap();
        assert_eq!((p.hw_breakpoints.as_slice(), p.int3.len()), (&[0x30][..], 10));
        assert_eq!(p.request().int3_breakpoints.len(), 10);
    }

    /// A watchpoint needs data breakpoints; DR6 bit i names slot i (SDM Vol. 3B 18.2.3), the
    /// data slots following the execution ones.
    #[test]
    fn watchpoints_need_data_breakpoints() {
        let w = Watchpoint { addr: 0x1000, len: 4, kind: WatchKind::Write };
        assert!(plan(&points(&[], &[], &[w]), &PVM).unwrap_err().contains("watchpoints"));
        let p = plan(&points(&[], &[0x30], &[w]), &VMX).unwrap();
        assert_eq!(p.watch_hit(&DebugHit { vector: 1, dr6: 0b10 }), Some(w));
        assert_eq!(p.watch_hit(&DebugHit { vector: 1, dr6: 0b01 }), None);
        let odd = Watchpoint { addr: 0x1001, len: 4, kind: WatchKind::Write };
        assert!(plan(&points(&[], &[], &[odd]), &VMX).is_err());
    }

    struct Ram(Vec<u8>);
    impl Memory for Ram {
        fn read(&mut self, la: u64, buf: &mut [u8]) -> bool {
            let Some(src) = self.0.get(la as usize..la as usize + buf.len()) else { return false };
            buf.copy_from_slice(src);
            true
        }
        fn write(&mut self, la: u64, data: &[u8]) -> bool {
            let Some(dst) = self.0.get_mut(la as usize..la as usize + data.len()) else { return false };
            dst.copy_from_slice(data);
            true
        }
    }

    /// INT3s go in and come out; a byte the guest overwrote stays; an address outside memory
    /// is skipped.
    #[test]
    fn int3_patches_restore_what_they_replaced() {
        let mut ram = Ram(vec![0x90, 0x55, 0x48, 0x89]);
        let patches = Int3Patches::insert(&mut ram, &[1, 3, 3, 99]);
        assert_eq!(ram.0, [0x90, INT3, 0x48, INT3]);
        ram.0[3] = 0xc3; // the guest stored over the second one
        patches.remove(&mut ram);
        assert_eq!(ram.0, [0x90, 0x55, 0x48, 0xc3]);
    }
}
