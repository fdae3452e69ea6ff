//! Looking inside a running guest: the gdb stub ([`gdb`]), which drives the guest one
//! instruction at a time on tier 0 through an [`Inferior`] — a user-mode process ([`user`]) or
//! the PC ([`system`]) — and the instruction trace ([`trace`]), an observer of tier 0's own run
//! loop. A run that uses neither is untouched.

pub mod combine;
pub mod gdb;
pub mod monitor;
pub mod system;
pub mod trace;
pub mod user;

use emu::cpu::Cpu;
use emu::state::ctrl;

/// How the guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Exit status (a process's exit code; the PC's exit-port status).
    Exited(u8),
    /// Killed by this signal (a process), or shut down (the PC: SIGSEGV for a triple fault).
    Signaled(u8),
}

/// What getting ready for the next instruction found.
pub enum Prepared {
    /// An instruction is due at RIP.
    Ready,
    /// The CPU is halted and time passed without waking it.
    Waited,
    Ended(End),
}

/// The guest being debugged or traced: a user-mode process or the PC.
pub trait Inferior {
    /// The CPU, with `cpu.state` current (the guest is stopped on tier 0).
    fn cpu(&mut self) -> &mut Cpu;
    /// Reads guest memory at linear address `la`; false when a page is not mapped.
    fn read_memory(&mut self, la: u64, buf: &mut [u8]) -> bool;
    /// Writes guest memory at `la` (decoded code on those pages is dropped).
    fn write_memory(&mut self, la: u64, data: &[u8]) -> bool;
    /// Everything before the next instruction runs on tier 0 (for the PC: devices, an
    /// interrupt due, a halted CPU waiting).
    fn prepare_step(&mut self) -> Result<Prepared, String>;
    /// Runs the instruction at RIP on tier 0; `Some` when the guest ended.
    fn execute_step(&mut self) -> Result<Option<End>, String>;
    /// Runs without looking at breakpoints for a short while, on whatever engine the run uses;
    /// `Some` when the guest ended. Afterwards the guest is stopped on tier 0.
    fn run_free(&mut self) -> Result<Option<End>, String>;
    /// A monitor command from gdb (`monitor info tlb ADDR`, `monitor xp/4xg ADDR`, ...): its
    /// output, or an error line.
    fn monitor(&mut self, _command: &str) -> Result<String, String> {
        Err("no monitor commands here".into())
    }
    /// A signal (Linux's number) the guest got and that waits for the debugger's word before
    /// it is acted on: the process is stopped where it got it.
    fn stopped_signal(&mut self) -> Option<i32> {
        None
    }
    /// Resumes from [`Inferior::stopped_signal`], passing on `signal` (`None` suppresses it).
    /// `Some` when that ended the guest.
    fn resume_signal(&mut self, _signal: Option<i32>) -> Option<End> {
        None
    }
    /// What the engine the guest runs on can do with its own debugging (KVM_SET_GUEST_DEBUG);
    /// `None` (the default): nothing, gdb's points are checked on tier 0.
    fn guest_debug_kinds(&mut self) -> Option<emu::engine::GuestDebugKinds> {
        None
    }
    /// Runs for a short while on an engine with its own debugging, armed with `debug` (its
    /// flags are the inferior's to set). `None` when the engine cannot do that here (the
    /// caller steps on tier 0, the default). Afterwards the guest is stopped on tier 0.
    fn run_guest_debug(&mut self, _debug: emu::engine::GuestDebug) -> Result<Option<GuestRun>, String> {
        Ok(None)
    }
}

/// How a run under the engine's own debugging ([`Inferior::run_guest_debug`]) ended.
pub enum GuestRun {
    /// The engine stopped for the debugger (the step was taken, or a breakpoint or watchpoint
    /// was reached), as its debug exit says.
    Stopped(emu::engine::DebugHit),
    /// The slice of host time passed first.
    Slice,
    Ended(End),
}

/// The physical address of linear address `la` for the debugger: the guest's own walk, without
/// its side effects (no accessed or dirty bits) or permission checks. `None` when not mapped.
///
/// It reads the tables itself rather than calling `emu::mmu::walk`, whose walk sets A/D bits
/// (it needs the RAM mutably) and judges permissions: looking must not change the guest.
/// The shapes are the CPU's (SDM Vol. 3, chapter 4): 32-bit paging (two levels of 4-byte
/// entries, 4 MiB pages with CR4.PSE, PSE-36 address bits), PAE (four PDPTEs from CR3, then
/// two levels of 8-byte entries, 2 MiB pages) and 4-level paging (1 GiB and 2 MiB pages).
pub fn debug_translate(cpu: &Cpu, la: u64) -> Option<u64> {
    let s = &cpu.state;
    let long = s.efer & ctrl::EFER_LMA != 0;
    let la = if long { la } else { la & 0xffff_ffff };
    if s.cr0 & ctrl::CR0_PG == 0 {
        return Some(la);
    }
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    const PS: u64 = 1 << 7;
    let read = |pa: u64, wide: bool| -> Option<u64> {
        let size = if wide { 8 } else { 4 };
        if pa + size > cpu.ram.len() {
            return None;
        }
        let e = if wide { cpu.ram.read::<emu::flags::W64>(pa) } else { cpu.ram.read::<emu::flags::W32>(pa) };
        (e & 1 != 0).then_some(e)
    };
    let pae = s.cr4 & ctrl::CR4_PAE != 0;
    if !long && !pae {
        // 32-bit paging (4.3): bits 31:22 index the directory, 21:12 the table.
        let pde = read((s.cr3 & 0xffff_f000) + ((la >> 22) & 0x3ff) * 4, false)?;
        if pde & PS != 0 && s.cr4 & ctrl::CR4_PSE != 0 {
            // A 4 MiB page: bits 31:22, and bits 20:13 as address bits 39:32 (PSE-36).
            return Some((pde & 0xffc0_0000) | ((pde >> 13) & 0xff) << 32 | (la & 0x3f_ffff));
        }
        let pte = read((pde & 0xffff_f000) + ((la >> 12) & 0x3ff) * 4, false)?;
        return Some((pte & 0xffff_f000) | (la & 0xfff));
    }
    // PAE (4.4): CR3 bits 31:5 locate four PDPTEs chosen by bits 31:30, then two levels of
    // 9 index bits; 4-level paging (4.5): bits 47:39, 38:30, 29:21, 20:12, 1 GiB and 2 MiB
    // pages at levels 3 and 2.
    let (mut table, top) =
        if long { (s.cr3 & ADDR, 4u32) } else { (read((s.cr3 & 0xffff_ffe0) + ((la >> 30) & 3) * 8, true)? & ADDR, 2) };
    for level in (1..=top).rev() {
        let shift = 12 + 9 * (level - 1);
        let pte = read(table + ((la >> shift) & 0x1ff) * 8, true)?;
        if level == 1 || (level <= 3 && pte & PS != 0) {
            let mask = (1u64 << shift) - 1;
            return Some((pte & ADDR & !mask) | (la & mask));
        }
        table = pte & ADDR;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu::flags::{W32, W64};
    use emu::mem::GuestRam;
    use emu::mmu::{walk, Access};

    /// The debugger's walk agrees with the CPU's own (`emu::mmu::walk`, checked against hardware
    /// by kvm-unit-tests' `access` and the paging tests) on every page of a set of mappings in
    /// each paging mode, and leaves the tables untouched (the CPU's walk sets accessed bits).
    fn agrees_with_the_cpu(cpu: &Cpu, probes: &[u64]) {
        let before = cpu.ram.slice(0, 0x10_0000).unwrap().to_vec();
        for &la in probes {
            let mut ram = GuestRam::new(cpu.ram.len()).unwrap();
            ram.slice_mut(0, 0x10_0000).unwrap().copy_from_slice(&before);
            let cpu_view =
                walk::translate(&cpu.state, &mut ram, la, Access::Read, false).ok().map(|t| t.page | (la & 0xfff));
            assert_eq!(debug_translate(cpu, la), cpu_view, "la {la:#x}");
        }
        assert!(cpu.ram.slice(0, 0x10_0000).unwrap() == before.as_slice(), "looking changed the tables");
    }

    fn cpu(cr0_pg: bool, cr4: u64, efer: u64, cr3: u64) -> Cpu {
        let mut c = Cpu::new(GuestRam::new(16 << 20).unwrap());
        c.state.cr0 = 1 | if cr0_pg { ctrl::CR0_PG } else { 0 };
        c.state.cr4 = cr4;
        c.state.efer = efer;
        c.state.cr3 = cr3;
        c
    }

    #[test]
    fn thirty_two_bit_paging_with_4k_and_4m_pages() {
        let mut c = cpu(true, ctrl::CR4_PSE, 0, 0x1000);
        // Directory at 0x1000: entry 0 -> table at 0x2000; entry 1 -> a 4 MiB page at 12 MiB;
        // entry 0x300 (0xc000_0000) -> table at 0x3000.
        c.ram.write::<W32>(0x1000, 0x2000 | 7);
        c.ram.write::<W32>(0x1004, 0xc0_0000 | 0x87);
        c.ram.write::<W32>(0x1000 + 0x300 * 4, 0x3000 | 3);
        c.ram.write::<W32>(0x2000 + 5 * 4, 0x5000 | 5);
        c.ram.write::<W32>(0x3000 + 0x10 * 4, 0x8000 | 1);
        agrees_with_the_cpu(&c, &[0x5123, 0x40_1234, 0x7f_fffc, 0xc001_0abc, 0x6000, 0xc002_0000]);
        assert_eq!(debug_translate(&c, 0x5123), Some(0x5123));
        assert_eq!(debug_translate(&c, 0x40_1234), Some(0xc0_1234));
        assert_eq!(debug_translate(&c, 0xc001_0abc), Some(0x8abc));
    }

    #[test]
    fn pae_paging_with_4k_and_2m_pages() {
        let mut c = cpu(true, ctrl::CR4_PAE, 0, 0x1000);
        // PDPTEs at 0x1000 (entries 0 and 3); directories at 0x2000 and 0x3000.
        c.ram.write::<W64>(0x1000, 0x2000 | 1);
        c.ram.write::<W64>(0x1018, 0x3000 | 1);
        c.ram.write::<W64>(0x2000, 0x4000 | 7);
        c.ram.write::<W64>(0x2008, 0x60_0000 | 0x87);
        c.ram.write::<W64>(0x3000 + 8 * 8, 0x5000 | 3);
        c.ram.write::<W64>(0x4000 + 9 * 8, 0x9000 | 5);
        c.ram.write::<W64>(0x5000 + 2 * 8, 0xa000 | 1);
        agrees_with_the_cpu(&c, &[0x9010, 0x20_1234, 0x3f_ffff, 0xc100_2fff, 0x4000_0000, 0xc100_3000]);
        assert_eq!(debug_translate(&c, 0x9010), Some(0x9010));
        assert_eq!(debug_translate(&c, 0x20_1234), Some(0x60_1234));
        assert_eq!(debug_translate(&c, 0xc100_2fff), Some(0xafff));
    }

    #[test]
    fn four_level_paging_and_no_paging() {
        let mut c = cpu(true, ctrl::CR4_PAE, ctrl::EFER_LME | ctrl::EFER_LMA, 0x1000);
        c.ram.write::<W64>(0x1000, 0x2000 | 7);
        c.ram.write::<W64>(0x2000, 0x3000 | 7);
        c.ram.write::<W64>(0x2008, 0x4000_0000 | 0x87); // 1 GiB page (beyond RAM, still mapped)
        c.ram.write::<W64>(0x3000, 0x4000 | 7);
        c.ram.write::<W64>(0x3008, 0x80_0000 | 0x87);
        c.ram.write::<W64>(0x4000 + 3 * 8, 0x7000 | 5);
        agrees_with_the_cpu(&c, &[0x3456, 0x20_0010, 0x4000_1234, 0x1000, 0x8000_0000_0000]);
        assert_eq!(debug_translate(&c, 0x20_0010), Some(0x80_0010));
        let flat = cpu(false, 0, 0, 0);
        assert_eq!(debug_translate(&flat, 0x1_2345_6789), Some(0x2345_6789));
    }
}
