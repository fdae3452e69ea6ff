//! tiers: Strata's engines beyond tier 0 (docs/ARCHITECTURE.md, "The crates").
//!
//! | module | what it holds |
//! |---|---|
//! | `kvm` | the KVM engine: the virtual PC on hardware virtualization (Linux x86-64 hosts only) |
//!
//! Every engine implements `emu::engine::Engine`, so the machine loop, the devices and
//! snapshots do not know which engine runs the CPU. This crate also turns the command line's
//! `EngineKind::Auto` into a concrete engine for this host ([`resolve_engine`]).

use emu::engine::EngineKind;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kvm;

/// Why an engine of this crate cannot be used or stopped. Messages are one line.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// The host is not one the KVM engine runs on.
    #[error("the KVM engine needs a Linux x86-64 host")]
    UnsupportedHost,
    /// KVM failed: not there, not accessible, or an ioctl or state error.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[error(transparent)]
    Kvm(#[from] kvm::KvmError),
    /// The machine refused the engine (it could not take the CPU state, or the machine is
    /// deterministic and KVM counts no instructions).
    #[error(transparent)]
    Engine(#[from] emu::engine::EngineError),
}

/// The engine `kind` stands for on this host: `Auto` becomes KVM where it runs guest code on
/// hardware virtualization, else tier 0. For a `user_mode` process, a `kvm_pvm` host counts as
/// hardware too (CPL3 code runs natively there; only kernel code is emulated).
///
/// # Errors
/// `Kvm` was asked for and KVM is not usable here (the error says why).
pub fn resolve_engine(kind: EngineKind, user_mode: bool) -> Result<EngineKind, TierError> {
    Ok(match kind {
        EngineKind::Interp => EngineKind::Interp,
        EngineKind::Kvm => {
            kvm_available()?;
            EngineKind::Kvm
        }
        // On kvm_pvm (no VMX/SVM) KVM emulates kernel code at ~1.5 MIPS, far below tier 0.
        EngineKind::Auto if kvm_available().is_ok() && (user_mode || !kvm_is_emulated()) => EngineKind::Kvm,
        EngineKind::Auto => EngineKind::Interp,
    })
}

/// Whether the KVM engine can run on this host; `Err` says why not in one line.
///
/// # Errors
/// Not a Linux x86-64 host, no /dev/kvm, no permission, or an unusable KVM.
pub fn kvm_available() -> Result<(), TierError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        Ok(kvm::probe()?)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        Err(TierError::UnsupportedHost)
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
/// KVM is not available here or the machine refused it; the message is one line.
pub fn attach_kvm(machine: &mut emu::machine::Machine, active: bool) -> Result<(), TierError> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let engine = kvm::KvmEngine::new(&machine.cpu)?;
        Ok(machine.attach_engine(Box::new(engine), active)?)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = (machine, active);
        Err(TierError::UnsupportedHost)
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

/// A user-mode process's CPU on KVM (`strata user --tier kvm`): an engine for
/// `Process::run_on`, with the cost counters `--stats` prints.
pub struct KvmUserEngine {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    inner: kvm::user::UserEngine,
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    never: std::convert::Infallible,
}

impl KvmUserEngine {
    /// Sets up KVM for process `p` (before it runs: it adds the supervisor to its address
    /// space).
    ///
    /// # Errors
    /// KVM is not available here or refused the set-up; the message is one line.
    pub fn new(p: &mut emu::user::Process) -> Result<KvmUserEngine, TierError> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            Ok(KvmUserEngine { inner: kvm::user::UserEngine::new(p)? })
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            let _ = p;
            Err(TierError::UnsupportedHost)
        }
    }

    /// The engine, for `Process::run_on`.
    pub fn engine(&mut self) -> &mut dyn emu::engine::Engine {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            &mut self.inner
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            match self.never {}
        }
    }

    /// What the run cost so far.
    pub fn stats(&self) -> KvmUserStats {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            let s = self.inner.stats;
            KvmUserStats { exits: s.exits, syscalls: s.syscalls, faults: s.faults, flushes: s.flushes }
        }
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        {
            match self.never {}
        }
    }
}
