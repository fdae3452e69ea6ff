//! `KVM_SET_GUEST_DEBUG` on this host, probed by trying each kind on real-mode code
//! (`tiers::kvm::guest_debug`): where KVM has hardware virtualization (VMX/SVM) every kind must
//! work (KVM's API documentation for x86); on `kvm_pvm`, which emulates CPL0 code, single-step
//! must (the lockstep differential depends on it) and the rest is reported as found. Skipped,
//! with a message, where /dev/kvm is not usable.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[test]
fn guest_debugging_kinds_do_what_the_sdm_says() {
    if let Err(e) = tiers::kvm::probe() {
        eprintln!("SKIP: {e}");
        return;
    }
    let found = tiers::kvm::guest_debug::probe().expect("probe");
    eprintln!("KVM guest debugging here ({}): {found}", if tiers::kvm::is_pvm() { "kvm_pvm" } else { "VMX/SVM" });
    assert!(found.single_step, "{found:?}");
    if !tiers::kvm::is_pvm() {
        assert!(found.sw_breakpoint && found.hw_breakpoint && found.hw_watchpoint, "{found:?}");
    }
}

/// The same kinds for a user-mode program at CPL3 (`strata user --tier kvm --gdb`), tried on a
/// small static program under the user-mode KVM engine: on a VMX/SVM host all four must work;
/// on `kvm_pvm` (CPL3 runs natively) the step's #DB and the INT3's #BP reach the program's own
/// IDT, where the engine's exception stubs catch them for the debugger, so those two must work.
#[test]
fn guest_debugging_of_user_mode_code() {
    if let Err(e) = tiers::kvm::probe() {
        eprintln!("SKIP: {e}");
        return;
    }
    let found = tiers::kvm::user::probe_user_kinds().expect("probe");
    eprintln!("KVM guest debugging of CPL3 code here: {found:?}");
    assert!(found.single_step && found.sw_breakpoint, "{found:?}");
    if !tiers::kvm::is_pvm() {
        assert!(found.hw_breakpoint && found.hw_watchpoint, "{found:?}");
    }
}
