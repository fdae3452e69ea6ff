//! `Cpu`: the architectural state plus what tier 0 needs beside it to execute instructions
//! (guest RAM, the TLB, code-page marks, the I/O bus). Instruction handlers take `&mut Cpu`.

use crate::mem::GuestRam;
use crate::mmu::Tlb;
use crate::state::CpuState;

/// Port I/O and MMIO as the CPU sees them; the machine implements it over its device bus.
/// `size` is 1, 2, 4 or 8 bytes.
pub trait IoBus {
    fn pio_read(&mut self, port: u16, size: u8) -> u32;
    fn pio_write(&mut self, port: u16, size: u8, value: u32);
    fn mmio_read(&mut self, paddr: u64, size: u8) -> u64;
    fn mmio_write(&mut self, paddr: u64, size: u8, value: u64);
}

/// A bus with nothing on it: reads float high (all ones), writes vanish, as on an empty ISA bus.
pub struct NullBus;

impl IoBus for NullBus {
    fn pio_read(&mut self, _port: u16, size: u8) -> u32 {
        (u64::MAX >> (64 - 8 * size as u32)) as u32
    }
    fn pio_write(&mut self, _port: u16, _size: u8, _value: u32) {}
    fn mmio_read(&mut self, _paddr: u64, size: u8) -> u64 {
        u64::MAX >> (64 - 8 * size as u32)
    }
    fn mmio_write(&mut self, _paddr: u64, _size: u8, _value: u64) {}
}

/// How the CPU behaves around the instructions an operating system would handle.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuConfig {
    /// SYSCALL stops with `Stop::Syscall` for the Linux user-mode runner instead of entering a
    /// guest kernel through IA32_LSTAR.
    pub user_mode_syscalls: bool,
    /// A system-level guest: faults and software interrupts are delivered through the guest's
    /// IDT by the interpreter itself instead of stopping it.
    pub system: bool,
}

/// Source of the time stamp counter: host time or retired instructions (`--deterministic`).
pub trait TscSource {
    fn tsc(&self, retired: u64) -> u64;
}

/// A TSC derived from host time at a fixed announced frequency.
pub struct HostTsc {
    start: std::time::Instant,
    /// Announced frequency in kHz (reported through CPUID leaf 0x15/0x16 and used by guests).
    pub khz: u64,
}

impl HostTsc {
    pub fn new(khz: u64) -> Self {
        HostTsc { start: std::time::Instant::now(), khz }
    }
}

impl TscSource for HostTsc {
    fn tsc(&self, _retired: u64) -> u64 {
        let ns = self.start.elapsed().as_nanos() as u64;
        ns.wrapping_mul(self.khz) / 1_000_000
    }
}

/// A CPU that executes guest code on top of `ram`.
pub struct Cpu {
    pub state: CpuState,
    pub ram: GuestRam,
    pub tlb: Tlb,
    /// One bit per physical page of RAM: set while the page holds decoded blocks.
    pub code_pages: Vec<u64>,
    /// Physical pages that were written while marked as code; the run loop drops their blocks.
    pub smc_pages: Vec<u64>,
    /// Set by a handler (through the memory slow path) when the rest of the block must not run.
    pub stop_block: bool,
    /// Linear address of the last #PF (becomes CR2 on delivery).
    pub fault_addr: u64,
    /// Instructions retired so far (maintained by the run loop).
    pub retired: u64,
    pub config: CpuConfig,
    pub bus: Box<dyn IoBus>,
    pub tsc: Box<dyn TscSource>,
    /// IA32_TSC_DEADLINE as last written (the machine arms the LAPIC timer from it).
    pub tsc_deadline: u64,
}

impl Cpu {
    /// A CPU in its reset state over `ram`, with an empty bus and a 2 GHz host-time TSC.
    pub fn new(ram: GuestRam) -> Self {
        let pages = ram.len().div_ceil(4096) as usize;
        Cpu {
            state: CpuState::default(),
            ram,
            tlb: Tlb::default(),
            code_pages: vec![0; pages.div_ceil(64)],
            smc_pages: Vec::new(),
            stop_block: false,
            fault_addr: 0,
            retired: 0,
            config: CpuConfig::default(),
            bus: Box::new(NullBus),
            tsc: Box::new(HostTsc::new(2_000_000)),
            tsc_deadline: 0,
        }
    }

    /// True if physical page `paddr` (page-aligned) holds decoded code.
    #[inline(always)]
    pub fn is_code_page(&self, paddr: u64) -> bool {
        let n = (paddr >> 12) as usize;
        self.code_pages.get(n / 64).is_some_and(|w| w >> (n % 64) & 1 != 0)
    }

    /// Marks a physical page as holding code: stores to it will take the slow path.
    pub fn mark_code_page(&mut self, paddr: u64) {
        let n = (paddr >> 12) as usize;
        if let Some(w) = self.code_pages.get_mut(n / 64) {
            if *w >> (n % 64) & 1 == 0 {
                *w |= 1 << (n % 64);
                self.tlb.protect_code_page(paddr & !0xfff);
            }
        }
    }

    /// Unmarks a code page (its blocks must be dropped by the caller).
    pub fn clear_code_page(&mut self, paddr: u64) {
        let n = (paddr >> 12) as usize;
        if let Some(w) = self.code_pages.get_mut(n / 64) {
            *w &= !(1 << (n % 64));
        }
    }

    /// Physical page `frame` (page-aligned) was written by someone other than a guest store (the
    /// user-mode kernel, a loader): if it holds decoded code, it is unmarked and queued for the
    /// engine to drop, as `phys_write` does for a guest store, so the writer needs no engine.
    pub fn note_code_written(&mut self, frame: u64) {
        if self.is_code_page(frame) {
            self.clear_code_page(frame);
            self.smc_pages.push(frame);
        }
    }

    /// Current RFLAGS.
    pub fn rflags(&self) -> u64 {
        self.state.rflags()
    }
}
