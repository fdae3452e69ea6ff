//! One KVM virtual machine with one vCPU over Strata's guest RAM: set-up, state in and out, and
//! one `KVM_RUN` at a time with its exit decoded. Used by the machine engine (`engine.rs`), the
//! lockstep differential (`conformance/`) and the user-mode runner.
//!
//! This is one of the few modules with `unsafe` (the others: guest memory, JIT code buffers):
//! registering host memory with KVM, and reading the `kvm_run` union for port I/O exits, where
//! kvm-ioctls hides the element size that string I/O needs. Each block says why it is sound.

use super::convert;
use super::KvmError;
use emu::cpu::{Cpu, IoBus};
use emu::mem::GuestRam;
use kvm_bindings::{
    kvm_guest_debug, kvm_msr_entry, kvm_run, kvm_userspace_memory_region, Msrs, KVM_EXIT_IO, KVM_EXIT_IO_IN,
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};

/// Where KVM (on VMX hosts) may put the real-mode TSS it needs: three pages just below the BIOS
/// area at the top of the 32-bit space, inside the MMIO hole, never RAM.
const TSS_ADDR: usize = 0xfffb_d000;

/// A decoded `KVM_RUN` exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmExit {
    /// A port or MMIO access, already served from the bus.
    Io,
    /// HLT (RIP past it).
    Hlt,
    /// Triple fault.
    Shutdown,
    /// The interrupt window requested with `request_window` opened.
    InterruptWindow,
    /// A signal interrupted the run (the kick), or KVM returned for its own reasons.
    Interrupted,
    /// KVM's instruction emulator failed on the instruction at RIP.
    EmulationFailure,
    /// A single-step or breakpoint exit (guest debugging).
    Debug,
}

/// A VM, its vCPU and the RAM it runs on.
pub struct KvmVm {
    _kvm: Kvm,
    _vm: VmFd,
    pub vcpu: VcpuFd,
    ram_base: usize,
    ram_len: u64,
    /// Bytes of RAM registered with KVM (from guest-physical 0); the rest is unseen by it.
    slot_len: u64,
    /// We gave KVM a default TR because ours was never loaded (see `convert::default_tr`).
    tr_unset: bool,
    /// Size of the vCPU's kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE): port I/O data lives in it.
    run_size: usize,
    /// What the last `VmExit::Debug` said: the exception (1 #DB, 3 #BP) and DR6.
    pub last_debug: (u32, u64),
}

impl KvmVm {
    /// A VM whose guest-physical RAM is `ram` (the same host pages, no copy).
    ///
    /// # Errors
    /// /dev/kvm is missing or not accessible, or an ioctl failed.
    pub fn new(ram: &GuestRam) -> Result<KvmVm, KvmError> {
        Self::with_slot(ram, ram.len())
    }

    /// A VM over `cpu`'s RAM whose vCPU reports `cpu`'s CPU model (`--cpu`).
    ///
    /// # Errors
    /// As [`KvmVm::new`].
    pub fn for_cpu(cpu: &Cpu) -> Result<KvmVm, KvmError> {
        Self::with_slot_and_model(&cpu.ram, cpu.ram.len(), cpu.config.model)
    }

    /// A VM over the first `slot_len` bytes of `ram` (rounded to pages, at most all of it):
    /// KVM's per-slot bookkeeping is proportional to the slot, so a user-mode process that
    /// uses little of a large RAM registers only what it uses (see `flush_translations`).
    ///
    /// # Errors
    /// As [`KvmVm::new`].
    pub fn with_slot(ram: &GuestRam, slot_len: u64) -> Result<KvmVm, KvmError> {
        Self::with_slot_and_model(ram, slot_len, emu::system::cpu_model::default_model())
    }

    fn with_slot_and_model(
        ram: &GuestRam,
        slot_len: u64,
        model: &emu::system::cpu_model::CpuModel,
    ) -> Result<KvmVm, KvmError> {
        let slot_len = (slot_len.div_ceil(4096) * 4096).min(ram.len());
        let kvm = super::open()?;
        let vm = kvm.create_vm().map_err(|e| KvmError::Ioctl("KVM_CREATE_VM", e))?;
        // Only VMX without unrestricted guest needs it; elsewhere the call is harmless or absent.
        let _ = vm.set_tss_address(TSS_ADDR);
        let ram_base = ram.host_base() as usize;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: slot_len,
            userspace_addr: ram_base as u64,
        };
        // SAFETY: the region is exactly the host mapping owned by `ram` (an mmap of `ram.len()`
        // bytes). KVM accesses it through the host page tables, like any user of that memory;
        // were the mapping removed while the VM lives, KVM's MMU notifier would drop the pages
        // and a later guest access would fail the run, never touch freed host memory of ours.
        // `run` refuses to go on if the CPU's RAM is no longer this mapping.
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION", e))?;
        let vcpu = vm.create_vcpu(0).map_err(|e| KvmError::Ioctl("KVM_CREATE_VCPU", e))?;
        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| KvmError::Ioctl("KVM_GET_SUPPORTED_CPUID", e))?;
        let table =
            super::cpuid::table(&supported, model).map_err(|e| KvmError::State(format!("CPUID table: {e:?}")))?;
        vcpu.set_cpuid2(&table).map_err(|e| KvmError::Ioctl("KVM_SET_CPUID2", e))?;
        let run_size = kvm.get_vcpu_mmap_size().map_err(|e| KvmError::Ioctl("KVM_GET_VCPU_MMAP_SIZE", e))?;
        Ok(KvmVm {
            _kvm: kvm,
            _vm: vm,
            vcpu,
            ram_base,
            ram_len: ram.len(),
            slot_len,
            tr_unset: false,
            run_size,
            last_debug: (0, 0),
        })
    }

    /// Loads the CPU state of `cpu` into the vCPU.
    ///
    /// # Errors
    /// KVM refused a part of the state.
    pub fn set_state(&mut self, cpu: &Cpu) -> Result<(), KvmError> {
        let s = &cpu.state;
        self.tr_unset = s.tr.attr & emu::state::attr::P == 0;
        self.vcpu.set_sregs(&convert::sregs_from_state(s)).map_err(|e| KvmError::Ioctl("KVM_SET_SREGS", e))?;
        self.vcpu.set_regs(&convert::regs_from_state(s)).map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
        let image = emu::interp::sse::fxsave::save_image(cpu, true);
        let mut xsave = self.vcpu.get_xsave().map_err(|e| KvmError::Ioctl("KVM_GET_XSAVE", e))?;
        convert::image_into_xsave(&image, &mut xsave);
        // SAFETY: this VM never enabled KVM_CAP_XSAVE2, so KVM_SET_XSAVE reads exactly the
        // 4 KiB `kvm_xsave` we pass (the larger-buffer case the function is unsafe for).
        unsafe { self.vcpu.set_xsave(&xsave) }.map_err(|e| KvmError::Ioctl("KVM_SET_XSAVE", e))?;
        let _ = self.vcpu.set_debug_regs(&convert::debugregs_from_state(s));
        let values = convert::msrs_from_state(s);
        let tsc = cpu.tsc.tsc(cpu.retired).wrapping_add(s.tsc_offset);
        let mut entries: Vec<kvm_msr_entry> = convert::MOVED_MSRS
            .iter()
            .zip(values)
            .map(|(&index, data)| kvm_msr_entry { index, data, ..Default::default() })
            .collect();
        entries.push(kvm_msr_entry { index: convert::msr::TSC, data: tsc, ..Default::default() });
        // An MSR this host's KVM lacks (TSC_AUX without RDTSCP, say) is skipped, one at a time,
        // so the rest still move.
        for e in entries {
            if let Ok(m) = Msrs::from_entries(&[e]) {
                let _ = self.vcpu.set_msrs(&m);
            }
        }
        Ok(())
    }

    /// Stores the vCPU's state into `cpu.state`. An interrupt KVM had accepted but not yet
    /// delivered is delivered by tier 0 now, so it is not lost on an engine switch.
    ///
    /// # Errors
    /// KVM could not report a part of the state.
    pub fn get_state(&mut self, cpu: &mut Cpu) -> Result<(), KvmError> {
        let regs = self.vcpu.get_regs().map_err(|e| KvmError::Ioctl("KVM_GET_REGS", e))?;
        let sregs = self.vcpu.get_sregs().map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?;
        let xsave = self.vcpu.get_xsave().map_err(|e| KvmError::Ioctl("KVM_GET_XSAVE", e))?;
        convert::regs_into_state(&regs, &mut cpu.state);
        convert::sregs_into_state(&sregs, &mut cpu.state, self.tr_unset);
        // The image comes from KVM's own XSAVE area; a reserved MXCSR bit cannot be in it.
        let _ = emu::interp::sse::fxsave::load_image(cpu, &convert::image_from_xsave(&xsave), true);
        if let Ok(d) = self.vcpu.get_debug_regs() {
            convert::debugregs_into_state(&d, &mut cpu.state);
        }
        let mut indices: Vec<u32> = convert::MOVED_MSRS.to_vec();
        indices.push(convert::msr::TSC);
        for index in indices {
            let Ok(mut m) = Msrs::from_entries(&[kvm_msr_entry { index, ..Default::default() }]) else { continue };
            if self.vcpu.get_msrs(&mut m).unwrap_or(0) == 1 {
                let v = m.as_slice()[0].data;
                if index == convert::msr::TSC {
                    cpu.state.tsc_offset = v.wrapping_sub(cpu.tsc.tsc(cpu.retired));
                } else {
                    convert::msr_into_state(index, v, &mut cpu.state);
                }
            }
        }
        if let Ok(mut ev) = self.vcpu.get_vcpu_events() {
            if ev.interrupt.injected != 0 {
                let v = ev.interrupt.nr;
                ev.interrupt.injected = 0;
                ev.flags = 0;
                let _ = self.vcpu.set_vcpu_events(&ev);
                if cpu.deliver(emu::system::Event::External(v)).is_err() {
                    return Err(KvmError::State("triple fault delivering a pending interrupt".into()));
                }
            }
        }
        Ok(())
    }

    /// Asks KVM to exit as soon as the guest can take an interrupt.
    pub fn request_window(&mut self, on: bool) {
        self.vcpu.get_kvm_run().request_interrupt_window = on as u8;
    }

    /// Whether an external interrupt can be injected now (as of the last exit).
    pub fn ready_for_interrupt(&mut self) -> bool {
        self.vcpu.get_kvm_run().ready_for_interrupt_injection != 0
    }

    /// RFLAGS.IF as of the last exit.
    pub fn if_flag(&mut self) -> bool {
        self.vcpu.get_kvm_run().if_flag != 0
    }

    /// Injects external interrupt `vector`: it is taken at the next entry.
    ///
    /// # Errors
    /// KVM refused the event.
    pub fn inject(&mut self, vector: u8) -> Result<(), KvmError> {
        // KVM_SET_VCPU_EVENTS with an injected interrupt is what migration uses; it avoids a raw
        // KVM_INTERRUPT ioctl, which kvm-ioctls does not wrap.
        let mut ev = self.vcpu.get_vcpu_events().map_err(|e| KvmError::Ioctl("KVM_GET_VCPU_EVENTS", e))?;
        ev.interrupt.injected = 1;
        ev.interrupt.nr = vector;
        ev.interrupt.soft = 0;
        ev.flags = 0;
        self.vcpu.set_vcpu_events(&ev).map_err(|e| KvmError::Ioctl("KVM_SET_VCPU_EVENTS", e))
    }

    /// Turns single-stepping (KVM_GUESTDBG_SINGLESTEP) on or off.
    ///
    /// # Errors
    /// KVM refused the debug setting.
    pub fn set_single_step(&mut self, on: bool) -> Result<(), KvmError> {
        let control = if on { KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP } else { 0 };
        let dbg = kvm_guest_debug { control, ..Default::default() };
        self.vcpu.set_guest_debug(&dbg).map_err(|e| KvmError::Ioctl("KVM_SET_GUEST_DEBUG", e))
    }

    /// One `KVM_RUN`; port and MMIO accesses are served from `bus` before returning.
    ///
    /// # Errors
    /// The RAM behind the VM changed, KVM failed to enter the guest, or reported an internal
    /// error other than an emulation failure.
    pub fn run(&mut self, ram: &GuestRam, bus: &mut dyn IoBus) -> Result<VmExit, KvmError> {
        if ram.host_base() as usize != self.ram_base || ram.len() != self.ram_len {
            return Err(KvmError::State("guest RAM was replaced under the VM".into()));
        }
        let exit = match self.vcpu.run() {
            Ok(VcpuExit::IoIn(..) | VcpuExit::IoOut(..)) => {
                self.serve_port_io(bus);
                VmExit::Io
            }
            Ok(VcpuExit::MmioRead(addr, data)) => {
                let n = data.len().min(8);
                let v = bus.mmio_read(addr, n as u8).to_le_bytes();
                data[..n].copy_from_slice(&v[..n]);
                VmExit::Io
            }
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let n = data.len().min(8);
                let mut v = [0u8; 8];
                v[..n].copy_from_slice(&data[..n]);
                bus.mmio_write(addr, n as u8, u64::from_le_bytes(v));
                VmExit::Io
            }
            Ok(VcpuExit::Hlt) => VmExit::Hlt,
            Ok(VcpuExit::Shutdown) => VmExit::Shutdown,
            Ok(VcpuExit::IrqWindowOpen) => VmExit::InterruptWindow,
            Ok(VcpuExit::Intr) => VmExit::Interrupted,
            Ok(VcpuExit::Debug(d)) => {
                self.last_debug = (d.exception, d.dr6);
                VmExit::Debug
            }
            Ok(VcpuExit::InternalError) => {
                // SAFETY: the exit reason is KVM_EXIT_INTERNAL_ERROR, so the kernel filled the
                // `internal` member of the exit union; reading plain integers from it is sound.
                let suberror = unsafe { self.vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
                if suberror == kvm_bindings::KVM_INTERNAL_ERROR_EMULATION {
                    VmExit::EmulationFailure
                } else {
                    return Err(KvmError::State(format!("KVM internal error, suberror {suberror}")));
                }
            }
            Ok(VcpuExit::FailEntry(reason, _)) => {
                return Err(KvmError::State(format!("VM entry failed (hardware reason {reason:#x})")))
            }
            Ok(VcpuExit::SystemEvent(kind, _)) => {
                return Err(KvmError::State(format!("unexpected KVM system event {kind}")));
            }
            Ok(other) => return Err(KvmError::State(format!("unexpected KVM exit {other:?}"))),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => VmExit::Interrupted,
            Err(e) => return Err(KvmError::Ioctl("KVM_RUN", e)),
        };
        Ok(exit)
    }

    /// Serves a port I/O exit element by element (string I/O brings `count` elements of `size`
    /// bytes in one exit).
    fn serve_port_io(&mut self, bus: &mut dyn IoBus) {
        let run: &mut kvm_run = self.vcpu.get_kvm_run();
        if run.exit_reason != KVM_EXIT_IO {
            return;
        }
        // SAFETY: the exit reason is KVM_EXIT_IO, so the kernel filled the `io` member.
        let io = unsafe { run.__bindgen_anon_1.io };
        let size = (io.size as usize).clamp(1, 4);
        let total = size * io.count as usize;
        let offset = io.data_offset as usize;
        // The data area lies inside the kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE bytes; the PIO
        // page is its second page on x86); refuse anything else.
        if offset < std::mem::size_of::<kvm_run>() || offset.saturating_add(total) > self.run_size {
            return;
        }
        let base = run as *mut kvm_run as *mut u8;
        // SAFETY: `base + offset .. + total` lies within the vCPU's kvm_run mapping (checked
        // above against its size), which lives as long as the vCPU; `run` only covers the
        // kvm_run header before `offset`, so this slice aliases nothing else in use.
        let data = unsafe { std::slice::from_raw_parts_mut(base.add(offset), total) };
        for chunk in data.chunks_mut(size) {
            if u32::from(io.direction) == KVM_EXIT_IO_IN {
                let v = bus.pio_read(io.port, size as u8).to_le_bytes();
                chunk.copy_from_slice(&v[..size]);
            } else {
                let mut v = [0u8; 4];
                v[..size].copy_from_slice(chunk);
                bus.pio_write(io.port, size as u8, u32::from_le_bytes(v));
            }
        }
    }

    /// Makes KVM forget every guest translation it derived from our page tables, by removing
    /// the RAM slot and adding it back (a slot removal zaps all shadow and TDP page tables),
    /// now `slot_len` bytes long (rounded to pages, at most all of the RAM). Needed after the
    /// host itself rewrote guest page-table entries in RAM, which KVM's write tracking of guest
    /// page tables does not see (the user-mode runner's munmap).
    ///
    /// # Errors
    /// KVM refused to remove or re-add the slot.
    pub fn flush_translations(&mut self, slot_len: u64) -> Result<(), KvmError> {
        let mut region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: 0,
            userspace_addr: self.ram_base as u64,
        };
        // SAFETY: a zero size removes slot 0; no vCPU runs meanwhile (`&mut self`).
        unsafe { self._vm.set_user_memory_region(region) }
            .map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION", e))?;
        self.slot_len = (slot_len.div_ceil(4096) * 4096).min(self.ram_len);
        region.memory_size = self.slot_len;
        // SAFETY: a prefix of the region `new` registered: the host mapping of the RAM this VM
        // was created over, still alive (`run` checks it is still the CPU's RAM).
        unsafe { self._vm.set_user_memory_region(region) }.map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION", e))
    }

    /// Bytes of RAM registered with KVM.
    pub fn slot_len(&self) -> u64 {
        self.slot_len
    }

    /// Turns on KVM's dirty-page log for the RAM slot (KVM_MEM_LOG_DIRTY_PAGES), for callers
    /// that need to know which pages the guest wrote (the lockstep differential).
    ///
    /// # Errors
    /// KVM refused to change the slot's flags.
    pub fn enable_dirty_log(&mut self) -> Result<(), KvmError> {
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: kvm_bindings::KVM_MEM_LOG_DIRTY_PAGES,
            guest_phys_addr: 0,
            memory_size: self.ram_len,
            userspace_addr: self.ram_base as u64,
        };
        // SAFETY: the same host range `new` registered (and checked by `run`), only the slot's
        // flags change; the soundness argument of `new` applies unchanged.
        unsafe { self._vm.set_user_memory_region(region) }
            .map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION (dirty log)", e))
    }

    /// Guest-physical addresses of the pages the guest wrote since the last call (after
    /// `enable_dirty_log`); the log is cleared by the call (KVM_GET_DIRTY_LOG).
    ///
    /// # Errors
    /// Dirty logging is off, or KVM refused.
    pub fn take_dirty_pages(&mut self) -> Result<Vec<u64>, KvmError> {
        let bitmap =
            self._vm.get_dirty_log(0, self.ram_len as usize).map_err(|e| KvmError::Ioctl("KVM_GET_DIRTY_LOG", e))?;
        let mut pages = Vec::new();
        for (i, &word) in bitmap.iter().enumerate() {
            let mut w = word;
            while w != 0 {
                let bit = w.trailing_zeros() as u64;
                pages.push((i as u64 * 64 + bit) << 12);
                w &= w - 1;
            }
        }
        Ok(pages)
    }
}
