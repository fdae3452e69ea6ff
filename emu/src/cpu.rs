//! `Cpu`: the architectural machine one CPU sees (its state, guest RAM, the I/O bus, the TSC,
//! the retired-instruction count), plus one [`SoftMmu`] holding the caches the software
//! engines keep beside it (TLB, code-page marks, the self-modifying-code queue). Instruction
//! handlers take `&mut Cpu`.

use crate::mem::GuestRam;
use crate::mmu::SoftMmu;
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
#[derive(Clone, Copy, Debug)]
pub struct CpuConfig {
    /// SYSCALL stops with `Stop::Syscall` for the Linux user-mode runner instead of entering a
    /// guest kernel through IA32_LSTAR.
    pub user_mode_syscalls: bool,
    /// A system-level guest: faults and software interrupts are delivered through the guest's
    /// IDT by the interpreter itself instead of stopping it.
    pub system: bool,
    /// The CPU model CPUID reports (vendor, features, caches); also decides which CR4 bits and
    /// vendor MSRs exist.
    pub model: &'static crate::system::cpu_model::CpuModel,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig { user_mode_syscalls: false, system: false, model: crate::system::cpu_model::default_model() }
    }
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
    /// The software engines' caches (not architectural: flushing them changes speed only).
    pub softmmu: SoftMmu,
    /// Linear address of the last #PF (becomes CR2 on delivery).
    pub fault_addr: u64,
    /// Instructions retired so far (maintained by the run loop).
    pub retired: u64,
    pub config: CpuConfig,
    pub bus: Box<dyn IoBus>,
    pub tsc: Box<dyn TscSource>,
    /// IA32_TSC_DEADLINE as last written (the machine arms the LAPIC timer from it).
    pub(crate) tsc_deadline: u64,
    /// The last exception or interrupt delivered through the IDT (after any double-fault
    /// escalation), for the instruction trace; whoever reads it clears it.
    pub last_event: Option<crate::exception::Event>,
    /// Booted through a BIOS (`--bios`): its ROM and the PAM shadowing of 0xC0000-0xFFFFF.
    pub rom: Option<Box<crate::firmware::shadow::ShadowRom>>,
    /// The AMD models' performance-monitoring MSRs (`system/pmu.rs`).
    pub amd_pmu: crate::system::pmu::AmdPmu,
    /// STI just set IF: the next instruction completes before any external interrupt (SDM
    /// Vol. 2, STI). Set with the `Stop::Yield` STI ends its block with; the machine takes it.
    /// Other yields (IRET, POPF, MOV CR...) open no shadow.
    pub interrupt_shadow: bool,
    /// Address of the last INT n / INT3 / INTO: a fault while delivering it is reported at
    /// the instruction, not past it (SDM Vol. 3, 6.12.1.2: #GP for the gate DPL, #NP, ...).
    pub(crate) soft_int_rip: u64,
    /// An NMI handler runs: further NMIs wait until the next IRET (SDM Vol. 3, 6.7.1).
    pub nmi_blocked: bool,
    /// SYSCALL or SYSRET just loaded RFLAGS: single-stepping looks at TF after the
    /// instruction, not before (`machine/single_step.rs`). The machine takes it every round.
    pub rflags_loaded: bool,
    /// Set by `sys_read`/`sys_write` around an implicit supervisor-mode access (descriptor
    /// tables, IDT, TSS, interrupt frames): SMAP denies those on user pages whatever EFLAGS.AC.
    pub implicit_supervisor: bool,
    /// PKRU (RDPKRU/WRPKRU): the protection-key rights of user pages (CR4.PKE). Not in
    /// snapshots.
    pub pkru: u32,
    /// IA32_PKRS (MSR 6E1h): the protection-key rights of supervisor pages (CR4.PKS). Not in
    /// snapshots.
    pub pkrs: u64,
    /// The last instruction of a stepping round was MOV SS or POP SS: the next one runs before
    /// any #DB, and the data-breakpoint hits held here (DR6 B0-B3) are reported after it
    /// (`machine/single_step.rs`).
    pub mov_ss_shadow: Option<u64>,
}

impl Cpu {
    /// A CPU in its reset state over `ram`, with an empty bus and a 2 GHz host-time TSC.
    pub fn new(ram: GuestRam) -> Self {
        Cpu {
            state: CpuState::default(),
            softmmu: SoftMmu::new(ram.len()),
            ram,
            fault_addr: 0,
            retired: 0,
            config: CpuConfig::default(),
            bus: Box::new(NullBus),
            tsc: Box::new(HostTsc::new(2_000_000)),
            tsc_deadline: 0,
            last_event: None,
            rom: None,
            amd_pmu: Default::default(),
            interrupt_shadow: false,
            soft_int_rip: 0,
            nmi_blocked: false,
            rflags_loaded: false,
            implicit_supervisor: false,
            pkru: 0,
            pkrs: 0,
            mov_ss_shadow: None,
        }
    }

    /// Current RFLAGS.
    pub fn rflags(&self) -> u64 {
        self.state.rflags()
    }
}
