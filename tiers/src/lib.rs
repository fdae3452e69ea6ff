//! tiers: Strata's engines beyond tier 0 (docs/ARCHITECTURE.md, "The crates").
//!
//! | module | what it holds |
//! |---|---|
//! | `kvm` | the KVM engine: the virtual PC on hardware virtualization (Linux x86-64 hosts only) |
//!
//! Every engine implements `emu::machine::engine::Accelerator`, so the machine loop, the devices
//! and snapshots do not know which engine runs the CPU.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;

/// Whether the KVM engine can run on this host; `Err` says why not in one line.
pub fn kvm_available() -> Result<(), String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        kvm::probe().map_err(|e| e.to_string())
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err("the KVM engine needs a Linux x86-64 host".into())
    }
}

/// True when this host's KVM runs guest kernel code by emulation (the `kvm_pvm` module on a
/// host without VMX/SVM), which is slower than tier 0 for a kernel.
pub fn kvm_is_emulated() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        kvm::is_pvm()
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        false
    }
}

/// Attaches the KVM engine to `machine` (after its kernel is loaded); with `active` KVM runs the
/// CPU from now on, otherwise it waits for `Machine::switch_engine`.
///
/// # Errors
/// KVM is not available here or refused the machine's state; the message is one line.
pub fn attach_kvm(machine: &mut emu::machine::Machine, active: bool) -> Result<(), String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let engine = kvm::KvmEngine::new(&machine.interp.cpu).map_err(|e| e.to_string())?;
        machine.attach_accelerator(Box::new(engine), active).map_err(|e| e.to_string())
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (machine, active);
        Err("the KVM engine needs a Linux x86-64 host".into())
    }
}

/// What a user-mode run on KVM cost (`strata user --tier kvm --stats`).
#[derive(Clone, Copy, Debug, Default)]
pub struct KvmUserStats {
    /// KVM_RUN returns.
    pub exits: u64,
    pub syscalls: u64,
    /// Exceptions, demand paging included.
    pub faults: u64,
    /// Translation flushes after munmap/mprotect and the like.
    pub flushes: u64,
}

/// Runs the user-mode process `p` on KVM (`strata user --tier kvm`) until it ends.
///
/// # Errors
/// KVM is not available here or refused the state; the message is one line.
pub fn run_user_kvm(p: &mut emu::user::Process) -> Result<(emu::user::ProcessEnd, KvmUserStats), String> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let (end, s) = kvm::user::run_process(p).map_err(|e| e.to_string())?;
        Ok((end, KvmUserStats { exits: s.exits, syscalls: s.syscalls, faults: s.faults, flushes: s.flushes }))
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = p;
        Err("the KVM engine needs a Linux x86-64 host".into())
    }
}
