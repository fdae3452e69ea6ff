//! 32-bit guests (issue 14): which engines run an i386 kernel, checked before the boot so an
//! engine that cannot is refused in one line instead of failing inside the guest.
//!
//! Tier 0 and the JIT boot them (the JIT's memory templates need 64-bit addressing, so in 32-bit
//! code only its register forms run inline and the rest calls tier-0 handlers). KVM with hardware virtualization would too, but on a `kvm_pvm` host (no
//! VMX/SVM) it is refused: kvm_pvm runs the kernel's code through KVM's instruction emulator
//! and answers CPUID from the host, so Debian's i386 decompressor, seeing the host's RDRAND,
//! executes it; KVM's emulator hands it to tier 0, which does not implement it (nor report it),
//! and the boot triple-faults within seconds (tried here with `--tier kvm`; with `nokaslr` it is still decompressing after
//! a minute, which tier 0 does in ~15 s).

/// Refuses `--tier kvm` (or a switch to KVM) for a bzImage that is entered in 32-bit mode when
/// this host's KVM emulates kernel code.
///
/// # Errors
/// The one-line reason.
pub fn check_kvm(kernel: Option<&str>, need_kvm: bool) -> Result<(), String> {
    let Some(path) = kernel.filter(|_| need_kvm && tiers::kvm_is_emulated()) else {
        return Ok(());
    };
    // The setup header lies in the first 0x268 bytes; a missing file is reported by the boot.
    let mut head = vec![0u8; 0x268];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut head)) else {
        return Ok(());
    };
    head.truncate(n);
    if emu::loaders::bzimage::enters_in_32_bit_mode(&head) {
        return Err(format!(
            "--tier kvm: {path} is a 32-bit kernel, which this host's KVM (kvm_pvm, no VMX/SVM) cannot run: \
             its kernel code would go through KVM's emulator with the host's CPUID; use --tier interp or --tier jit"
        ));
    }
    Ok(())
}
