//! The KVM engine: the virtual PC's CPU on Linux KVM (hardware virtualization, or on hosts
//! without VMX/SVM the `kvm_pvm` module).
//!
//! | file | what it holds |
//! |---|---|
//! | `vm.rs` | one VM + vCPU over our guest RAM; state in and out; one KVM_RUN with its exit decoded |
//! | `convert.rs` | `CpuState` <-> `kvm_regs`/`kvm_sregs`/XSAVE area/debug registers/MSRs |
//! | `cpuid.rs` | the CPUID table: tier 0's promises restricted to what the host's KVM supports |
//! | `kick.rs` | the kick: a signal that ends KVM_RUN every millisecond so devices get polled |
//! | `engine.rs` | `KvmEngine`, the virtual PC's CPU as an `emu::engine::Engine` |
//! | `supervisor.rs` | the IDT, TSS and one-instruction CPL0 stubs a user-mode process runs under |
//! | `user.rs` | `UserEngine`: `strata user --tier kvm`, a Linux process at CPL3 as an `Engine` for `emu::user`'s loop |
//!
//! What runs where: devices, interrupt controllers and timers stay Strata's own (no in-kernel
//! irqchip), so their state converts to tier 0 and snapshots unchanged; the engine injects
//! the interrupts the machine acknowledges. Guest RAM is the one `GuestRam` mapping, registered
//! as memory slot 0; the LAPIC/IOAPIC pages and everything above RAM exit as MMIO.
//!
//! On a `kvm_pvm` host (no VMX/SVM) CPL3 code runs natively and CPL0 code through KVM's
//! instruction emulator; instructions that emulator lacks (CMPXCHG16B, most SSE at CPL0) come
//! back as emulation failures, which the machine hands to tier 0 (`Exit::Unemulated`).

pub mod convert;
pub mod cpuid;
pub mod engine;
pub mod guest_debug;
pub mod kick;
pub mod supervisor;
pub mod user;
pub mod vm;

pub use engine::KvmEngine;
pub use vm::{KvmVm, VmExit};

/// Why the KVM engine cannot run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("/dev/kvm does not exist: this host offers no KVM (use --tier interp)")]
    NoDevice,
    #[error("/dev/kvm: permission denied (add the user to the 'kvm' group, or use --tier interp)")]
    NoPermission,
    #[error("/dev/kvm: {0}")]
    Open(std::io::Error),
    #[error("{0} failed: {1}")]
    Ioctl(&'static str, vmm_sys_util::errno::Error),
    #[error("{0}")]
    State(String),
}

/// Opens /dev/kvm, turning the usual failures into one-line errors.
pub(crate) fn open() -> Result<kvm_ioctls::Kvm, KvmError> {
    kvm_ioctls::Kvm::new().map_err(|e| match e.errno() {
        libc::ENOENT => KvmError::NoDevice,
        libc::EACCES | libc::EPERM => KvmError::NoPermission,
        n => KvmError::Open(std::io::Error::from_raw_os_error(n)),
    })
}

/// Checks that KVM can be opened and speaks the stable API (version 12).
///
/// # Errors
/// Why the KVM engine cannot run here.
pub fn probe() -> Result<(), KvmError> {
    let kvm = open()?;
    let v = kvm.get_api_version();
    if v != 12 {
        return Err(KvmError::State(format!("/dev/kvm speaks API version {v}, not 12")));
    }
    Ok(())
}

/// True when this host's KVM is the `kvm_pvm` module (no hardware virtualization): CPL0 guest
/// code is emulated instruction by instruction there, and single-stepping works only at CPL0.
pub fn is_pvm() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}
