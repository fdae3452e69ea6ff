//! The Linux user-mode runner: `strata user PROGRAM [ARGS...]` runs a static x86-64 Linux
//! executable on any engine (tier 0, KVM: `Process::run_on`, one loop for all), acting as its
//! kernel.
//!
//! The process lives in a real x86-64 address space (`aspace.rs`: page tables in guest RAM, pages
//! allocated on first touch); the CPU runs at CPL 3; SYSCALL stops the interpreter and
//! `syscall/` carries the call out with arguments translated (never passed through as host
//! memory), so the runner works the same on an aarch64 host. Faults become signals
//! (`signal.rs`), delivered on an x86-64 `rt_sigframe` as Linux builds it. Both use the kernel
//! structure helpers in `layout.rs`.
//!
//! Left out: threads (clone), fork/exec, shared file mappings, the vDSO (libc falls back to the
//! system calls), ptrace. Reference: the Linux system call ABI (`arch/x86/entry/syscalls`,
//! man-pages section 2) and the System V x86-64 psABI.

pub mod aspace;
pub mod elf;
pub mod events;
pub mod layout;
pub mod signal;
pub mod stack;
pub mod syscall;

use crate::cpu::Cpu;
use crate::engine::{Engine, EngineError, EngineKind, Limit};
use crate::exception::{pf_error, vector, Stop};
use crate::mem::GuestRam;
use crate::mmu::Access;
use crate::state::{ctrl, gpr, Segment};
use crate::tier0::{Exit, Interp};
use aspace::{AddressSpace, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};
use thiserror::Error;

/// Load address of a position-independent (static-pie) executable.
pub const PIE_BASE: u64 = 0x5555_5555_4000;
/// Top of the initial stack and its reserved size.
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
pub const STACK_SIZE: u64 = 8 << 20;
/// Instructions run between checks of an armed interval timer.
const TIMER_SLICE: u64 = 1 << 18;
/// mmap allocations without a hint go below this address.
pub const MMAP_TOP: u64 = 0x7fff_f000_0000;

#[derive(Debug, Error)]
pub enum UserError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Elf { path: String, source: elf::ElfError },
    #[error("cannot allocate guest RAM: {0}")]
    Ram(std::io::Error),
    #[error("guest RAM exhausted while loading")]
    OutOfMemory,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// exit/exit_group with this status.
    Exited(i32),
    /// Killed by this signal (the runner exits with 128 + signal, as a shell reports it).
    Signaled(i32),
}

/// A running user-mode process.
pub struct Process {
    /// The process's CPU (state, RAM) at CPL 3.
    pub cpu: Cpu,
    pub aspace: AddressSpace,
    pub sys: syscall::SysState,
    /// Pages brought in together on a demand-paging fault (the faulting one's aligned block
    /// within its region); 1 (the default) brings in only the faulting page. An engine whose
    /// fault round trip is costly (KVM) asks for more: see [`Process::fault_around`].
    pub fault_around_pages: u64,
}

impl Process {
    /// Loads `path` with `argv` and `envp`.
    ///
    /// # Errors
    /// The file cannot be read, is not a static x86-64 executable, or guest RAM is too small.
    pub fn load(path: &str, argv: &[String], envp: &[String], ram_size: u64) -> Result<Process, UserError> {
        let data = std::fs::read(path).map_err(|source| UserError::Read { path: path.into(), source })?;
        Self::load_image(path, &data, argv, envp, ram_size)
    }

    /// [`Process::load`] from the file's bytes, already read (`path` names it in errors and is
    /// the process's executable name); the ELF fuzz target calls this.
    ///
    /// # Errors
    /// Not a static x86-64 executable, or guest RAM is too small.
    pub fn load_image(
        path: &str,
        data: &[u8],
        argv: &[String],
        envp: &[String],
        ram_size: u64,
    ) -> Result<Process, UserError> {
        let elf = elf::Elf::parse(data).map_err(|source| UserError::Elf { path: path.into(), source })?;
        let mut ram = GuestRam::new(ram_size).map_err(UserError::Ram)?;
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        setup_long_mode_user(&mut cpu, aspace.pml4);
        let bias = if elf.pie { PIE_BASE } else { 0 };
        let mut brk = 0;
        let mut segments = Vec::new();
        for ph in elf.phdrs.iter().filter(|p| p.p_type == elf::PT_LOAD) {
            let start = (ph.vaddr + bias) & !(PAGE - 1);
            let end = (ph.vaddr + bias + ph.memsz).div_ceil(PAGE) * PAGE;
            let prot = prot_of(ph.flags);
            aspace.add_region(&mut cpu.ram, start, end, prot);
            segments.push((ph.vaddr + bias, ph.offset as usize..(ph.offset + ph.filesz) as usize, prot));
            brk = brk.max(end);
        }
        let stack_prot = PROT_READ | PROT_WRITE | if elf.exec_stack { PROT_EXEC } else { 0 };
        aspace.add_region(&mut cpu.ram, STACK_TOP - STACK_SIZE, STACK_TOP, stack_prot);
        let exe = std::fs::canonicalize(path).map(|p| p.to_string_lossy().into_owned()).unwrap_or(path.into());
        let mut p = Process { cpu, aspace, sys: syscall::SysState::new(brk, exe), fault_around_pages: 1 };
        for (va, range, prot) in segments {
            // The parser checked every segment against the file size.
            let bytes = data.get(range).ok_or(UserError::OutOfMemory)?;
            p.fill_pages(va, bytes, prot).ok_or(UserError::OutOfMemory)?;
        }
        let phdr = elf.phdr_vaddr().map(|v| v + bias).unwrap_or(0);
        let rsp = stack::build_initial_stack(&mut p, path, argv, envp, phdr, elf.phnum, elf.entry + bias)
            .ok_or(UserError::OutOfMemory)?;
        let st = &mut p.cpu.state;
        st.gpr[gpr::RSP] = rsp;
        st.rip = elf.entry + bias;
        Ok(p)
    }

    /// Runs on tier 0 until the process exits or is killed.
    pub fn run(&mut self) -> ProcessEnd {
        let mut tier0 = Interp::new();
        // Tier 0 reports no engine errors.
        self.run_on(&mut tier0).unwrap_or(ProcessEnd::Signaled(syscall::SIGSEGV))
    }

    /// Runs on `engine` until the process exits or is killed: the one loop of every engine.
    /// Each exit goes to the kernel ([`Process::handle_exit`]); the engine then takes the
    /// (possibly changed) state back. While an interval timer is armed the engine runs under a
    /// [`Limit`] (a slice of instructions for tier 0, the timer's expiry for KVM, which a kick
    /// thread enforces). An instruction the engine cannot execute is run by tier 0. Page-table
    /// changes the kernel made from outside are reported through
    /// [`Engine::page_tables_changed`].
    ///
    /// State: after `run` the engine has put the user state at the exit's instruction boundary
    /// in `cpu.state` except, for an engine that keeps registers of its own, the x87/SSE state,
    /// which [`Engine::store_state`] brings: the loop asks for it only when the kernel may read
    /// or write it (a fault or signal builds a signal frame, rt_sigreturn reads one), so a
    /// system call of a process without signal handlers moves no FPU state.
    ///
    /// Generic so that tier 0's per-exit calls (load and store are no-ops) compile away; a
    /// `dyn Engine` works too.
    ///
    /// # Errors
    /// The engine failed (a host error, not the guest's doing).
    pub fn run_on<E: Engine + ?Sized>(&mut self, engine: &mut E) -> Result<ProcessEnd, EngineError> {
        // Tier 0 and the JIT (tier 0 with promotion) run on `cpu.state` directly: they never
        // need `store_state` (see their modules), nor the check whether the kernel reads the FPU.
        let state_in_engine = !matches!(engine.kind(), EngineKind::Interp | EngineKind::Jit);
        let mut tier0: Option<Interp> = None;
        let mut present_changes = self.aspace.present_changes;
        let mut frame_top = self.aspace.frame_top();
        engine.load_state(&mut self.cpu)?;
        loop {
            let removed = self.aspace.present_changes != present_changes;
            if removed || self.aspace.frame_top() > frame_top {
                present_changes = self.aspace.present_changes;
                frame_top = self.aspace.frame_top();
                engine.page_tables_changed(&mut self.cpu, removed, frame_top)?;
            }
            let limit = match self.sys.timer {
                // With a timer armed, run in slices so its expiry is noticed in time.
                Some(t) => Limit { poll_after: TIMER_SLICE, deadline: Some(t.deadline), ..Limit::NONE },
                None => Limit::NONE,
            };
            let mut exit = engine.run(&mut self.cpu, &limit)?;
            if exit == Exit::Unemulated {
                // Tier 0 runs that one instruction on the full state.
                engine.store_state(&mut self.cpu)?;
                exit = tier0.get_or_insert_with(Interp::new).step(&mut self.cpu).unwrap_or(Exit::Limit);
            } else if state_in_engine && self.kernel_reads_fpu(exit) {
                engine.store_state(&mut self.cpu)?;
            }
            if let Some(end) = self.handle_exit(exit) {
                return Ok(end);
            }
            if self.fault_around_pages > 1 {
                if let Exit::Stop(Stop::Fault(f)) = exit {
                    if f.vector == vector::PF && f.error_code & pf_error::PRESENT == 0 {
                        self.fault_around(self.cpu.fault_addr);
                    }
                }
            }
            engine.load_state(&mut self.cpu)?;
        }
    }

    /// Whether the kernel may read or write the x87/SSE state acting on `exit`: a fault or trap
    /// (its signal frame holds it), rt_sigreturn (restores it from one), and any exit of a
    /// process with signal handlers (a pending signal may be delivered).
    fn kernel_reads_fpu(&self, exit: Exit) -> bool {
        let handlers = || self.sys.signals.actions.iter().any(|a| a.handler > signal::SIG_IGN);
        match exit {
            Exit::Stop(Stop::Syscall) => self.cpu.state.gpr[gpr::RAX] == syscall::NR_RT_SIGRETURN || handlers(),
            Exit::Limit | Exit::Poll | Exit::Stop(Stop::Yield) => handlers(),
            _ => true,
        }
    }

    /// Brings in the not-yet-present pages of the [`Process::fault_around_pages`]-page block
    /// around `addr` that its region allows, once the faulting page itself is present (demand
    /// paging succeeded). A round trip through KVM's exception stub costs about as much as
    /// zeroing a hundred pages on `kvm_pvm`, so sequential and random first touches of big
    /// buffers would otherwise be dominated by faults. Anonymous memory reads as zeros either
    /// way; only the resident size differs (Linux's transparent huge pages do the same, in
    /// 2 MiB blocks). Stops quietly when guest RAM runs out: those pages will fault on their own.
    pub fn fault_around(&mut self, addr: u64) {
        let page = addr & !(PAGE - 1);
        let Some((start, region)) = self.aspace.region_at(page) else { return };
        if region.prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0 {
            return;
        }
        let ram = &mut self.cpu.ram;
        if self.aspace.lookup(ram, page).is_none() {
            return;
        }
        let block = self.fault_around_pages * PAGE;
        let lo = (page & !(block - 1)).max(start);
        let hi = ((page & !(block - 1)) + block).min(region.end);
        let mut va = lo;
        while va < hi {
            if self.aspace.lookup(ram, va).is_none() && self.aspace.populate(ram, va, region.prot).is_none() {
                return;
            }
            va += PAGE;
        }
    }

    /// Acts as the kernel on one engine exit: carries out a system call, turns a fault into
    /// demand paging or a signal, then checks the interval timer and delivers a pending signal.
    /// The CPU state (`cpu.state`, and `cpu.fault_addr` for a #PF) must be the user's at
    /// the instruction boundary the exit describes, as tier 0 leaves it; other engines (KVM)
    /// build the same exit from their own and come here too. `Some` when the process ended.
    pub fn handle_exit(&mut self, exit: Exit) -> Option<ProcessEnd> {
        match exit {
            Exit::Stop(Stop::Syscall) => {
                if let Some(end) = syscall::dispatch(self) {
                    return Some(end);
                }
            }
            Exit::Stop(Stop::Fault(f)) if f.vector == vector::PF => {
                let addr = self.cpu.fault_addr;
                if !self.demand_page(addr, f.error_code) {
                    let fault =
                        signal::FaultInfo::page_fault(addr, f.error_code, self.aspace.region_at(addr).is_some());
                    if let Some(end) = signal::deliver_fault(self, fault) {
                        return Some(end);
                    }
                }
            }
            Exit::Stop(Stop::Fault(f)) => {
                let rip = self.cpu.state.rip;
                if let Some(end) = signal::deliver_fault(self, signal::FaultInfo::from_exception(f, rip)) {
                    return Some(end);
                }
            }
            Exit::Stop(Stop::Halt) => {
                // HLT at CPL 3 is #GP on hardware; the interpreter raises that itself.
            }
            Exit::Stop(Stop::Yield) | Exit::Limit | Exit::Poll | Exit::Unemulated => {}
            Exit::TripleFault => return Some(ProcessEnd::Signaled(syscall::SIGSEGV)),
            Exit::Stop(Stop::SoftInt(n)) => {
                let rip = self.cpu.state.rip;
                let f = if n == vector::BP {
                    // INT3: SIGTRAP, with RIP after the instruction as Linux reports it.
                    crate::exception::Fault::new(vector::BP)
                } else {
                    // INT n (CD ib): no gate is user-accessible, so the CPU raises
                    // #GP(n*8+2) at the instruction and Linux sends SIGSEGV.
                    self.cpu.state.rip = rip.wrapping_sub(2);
                    crate::exception::Fault::with_code(vector::GP, (n as u32) << 3 | 2)
                };
                let rip = self.cpu.state.rip;
                if let Some(end) = signal::deliver_fault(self, signal::FaultInfo::from_exception(f, rip)) {
                    return Some(end);
                }
            }
            Exit::Stop(Stop::Trap(v)) => {
                let f = crate::exception::Fault::new(v);
                let rip = self.cpu.state.rip;
                if let Some(end) = signal::deliver_fault(self, signal::FaultInfo::from_exception(f, rip)) {
                    return Some(end);
                }
            }
        }
        syscall::time::check_timer(self);
        signal::deliver_pending(self)
    }

    /// Handles a #PF by allocating the page if its region allows the access. Returns false when
    /// the fault is the program's (SIGSEGV).
    pub fn demand_page(&mut self, addr: u64, error: u32) -> bool {
        if error & pf_error::PRESENT != 0 {
            return false; // a protection violation, not a missing page
        }
        let Some((_, region)) = self.aspace.region_at(addr) else { return false };
        let need = if error & pf_error::WRITE != 0 {
            PROT_WRITE
        } else if error & pf_error::FETCH != 0 {
            PROT_EXEC
        } else {
            PROT_READ
        };
        if region.prot & need == 0 && !(need == PROT_READ && region.prot & PROT_WRITE != 0) {
            return false;
        }
        let cpu = &mut self.cpu;
        self.aspace.populate(&mut cpu.ram, addr & !(PAGE - 1), region.prot).is_some()
    }

    /// Reads a NUL-terminated string from guest memory (at most `max` bytes).
    pub fn read_cstr(&mut self, mut la: u64, max: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < max {
            let b = self.read_mem_byte(la)?;
            if b == 0 {
                return Some(out);
            }
            out.push(b);
            la += 1;
        }
        None
    }

    /// Physical address of `la` for an access the kernel makes on the process's behalf (with the
    /// process's permissions), bringing the page in on demand. `None` is EFAULT.
    fn kernel_translate(&mut self, la: u64, access: Access) -> Option<u64> {
        if let Ok(pa) = self.cpu.translate_slow(la, access) {
            return Some(pa);
        }
        let code = if access == Access::Write { pf_error::WRITE } else { 0 };
        if !self.demand_page(la, code) {
            return None;
        }
        self.cpu.translate_slow(la, access).ok()
    }

    /// Reads guest memory as the kernel would (copy_from_user): a page at a time, pages brought
    /// in on demand. `None` (EFAULT) if any byte is not readable.
    pub fn read_mem(&mut self, la: u64, buf: &mut [u8]) -> Option<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let a = la.checked_add(done as u64)?;
            let pa = self.kernel_translate(a, Access::Read)?;
            let n = ((PAGE - (a & (PAGE - 1))) as usize).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(self.cpu.ram.slice(pa, n)?);
            done += n;
        }
        Some(())
    }

    fn read_mem_byte(&mut self, la: u64) -> Option<u8> {
        let mut b = [0u8];
        self.read_mem(la, &mut b)?;
        Some(b[0])
    }

    /// Writes guest memory as the kernel would (copy_to_user). Decoded code on the written pages
    /// is dropped, as for a guest store. `None` (EFAULT) if any page is not writable; pages
    /// before it may have been written, as with Linux.
    pub fn write_mem(&mut self, la: u64, data: &[u8]) -> Option<()> {
        let mut done = 0usize;
        while done < data.len() {
            let a = la.checked_add(done as u64)?;
            let pa = self.kernel_translate(a, Access::Write)?;
            let n = ((PAGE - (a & (PAGE - 1))) as usize).min(data.len() - done);
            let frame = pa & !(PAGE - 1);
            self.cpu.softmmu.note_code_written(frame);
            self.cpu.ram.slice_mut(pa, n)?.copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Some(())
    }

    /// Writes guest memory as a debugger does (ptrace's POKETEXT): any readable page, code
    /// included, whatever its write permission. `None` (EFAULT) if a page is not mapped.
    pub fn debugger_write_mem(&mut self, la: u64, data: &[u8]) -> Option<()> {
        let mut done = 0usize;
        while done < data.len() {
            let a = la.checked_add(done as u64)?;
            let pa = self.kernel_translate(a, Access::Read)?;
            let n = ((PAGE - (a & (PAGE - 1))) as usize).min(data.len() - done);
            self.cpu.softmmu.note_code_written(pa & !(PAGE - 1));
            self.cpu.ram.slice_mut(pa, n)?.copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Some(())
    }

    pub fn write_u64(&mut self, la: u64, v: u64) -> Option<()> {
        self.write_mem(la, &v.to_le_bytes())
    }

    pub fn read_u64(&mut self, la: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read_mem(la, &mut b)?;
        Some(u64::from_le_bytes(b))
    }

    pub fn write_u32(&mut self, la: u64, v: u32) -> Option<()> {
        self.write_mem(la, &v.to_le_bytes())
    }

    pub fn read_u32(&mut self, la: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read_mem(la, &mut b)?;
        Some(u32::from_le_bytes(b))
    }

    /// Fills pages of `[va, va + data.len())` with `data`, going around the page protection (the
    /// loader and private file mappings fill pages the guest may not write).
    pub fn fill_pages(&mut self, va: u64, data: &[u8], prot: u32) -> Option<()> {
        let mut done = 0usize;
        while done < data.len() {
            let a = va.checked_add(done as u64)?;
            let page = a & !(PAGE - 1);
            let cpu = &mut self.cpu;
            let pa = match self.aspace.lookup(&mut cpu.ram, page) {
                Some(f) => f,
                None => {
                    // A page shared by two segments takes the protection of the later one, as
                    // with mmap.
                    let prot = self.aspace.region_at(page).map_or(prot, |(_, r)| r.prot);
                    self.aspace.populate(&mut cpu.ram, page, prot)?
                }
            };
            let off = a - page;
            let n = ((PAGE - off) as usize).min(data.len() - done);
            cpu.softmmu.note_code_written(pa);
            self.cpu.ram.slice_mut(pa + off, n)?.copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Some(())
    }

    /// After changing page tables: flush the TLB and drop code on the freed frames.
    pub fn mappings_changed(&mut self, freed: &[u64]) {
        self.cpu.softmmu.flush_tlb();
        for &f in freed {
            self.cpu.softmmu.note_code_written(f);
        }
    }
}

fn prot_of(flags: u32) -> u32 {
    let mut p = 0;
    if flags & elf::PF_R != 0 {
        p |= PROT_READ;
    }
    if flags & elf::PF_W != 0 {
        p |= PROT_WRITE;
    }
    if flags & elf::PF_X != 0 {
        p |= PROT_EXEC;
    }
    p
}

/// Puts the CPU in 64-bit mode at CPL 3 on page tables rooted at `pml4`, as Linux leaves a
/// process: flat CS 0x33 / SS 0x2b, paging with NX and WP, SSE enabled.
pub fn setup_long_mode_user(cpu: &mut Cpu, pml4: u64) {
    let s = &mut cpu.state;
    s.cr0 = ctrl::CR0_PE | ctrl::CR0_MP | ctrl::CR0_ET | ctrl::CR0_NE | ctrl::CR0_WP | ctrl::CR0_PG;
    s.cr4 = ctrl::CR4_PAE | ctrl::CR4_PGE | ctrl::CR4_OSFXSR | ctrl::CR4_OSXMMEXCPT;
    s.efer = ctrl::EFER_SCE | ctrl::EFER_LME | ctrl::EFER_LMA | ctrl::EFER_NXE;
    s.cr3 = pml4;
    s.gdtr.base = aspace::GDT_VA;
    s.gdtr.limit = (aspace::GDT.len() * 8 - 1) as u16;
    s.segs[1] = Segment::flat_code64(0x33, 3);
    for i in [0, 2, 3] {
        s.segs[i] = Segment::flat_data(0x2b, 3);
    }
    s.segs[4] = Segment::flat_data(0, 3);
    s.segs[5] = Segment::flat_data(0, 3);
    s.cpl = 3;
    s.set_rflags(0x202);
    cpu.softmmu.flush_tlb();
}
