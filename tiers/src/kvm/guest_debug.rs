//! What this host's KVM does for a debugger (`KVM_SET_GUEST_DEBUG`), found out by trying each
//! kind on a few real-mode instructions in a throw-away VM rather than assumed from capability
//! bits: `kvm_pvm` (no VMX/SVM) runs CPL0 code through KVM's instruction emulator and CPL3 code
//! natively, and which of the debug kinds each path honours is not documented. The gdb stub
//! uses what the probe found (`KvmEngine::set_guest_debug`) and checks the rest on tier 0
//! (see README: "what was verified where").

use super::vm::KvmVm;
use super::KvmError;
use emu::cpu::{Cpu, NullBus};
use emu::mem::GuestRam;
use emu::state::{attr, Segment};
use kvm_bindings::{
    kvm_guest_debug, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP,
};

/// What `KVM_SET_GUEST_DEBUG` did here, each tried on CPL0 real-mode code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuestDebugSupport {
    /// KVM_GUESTDBG_SINGLESTEP stopped after one instruction.
    pub single_step: bool,
    /// KVM_GUESTDBG_USE_SW_BP turned an INT3 into a debug exit.
    pub sw_breakpoint: bool,
    /// KVM_GUESTDBG_USE_HW_BP with DR0/DR7 stopped before the instruction at DR0.
    pub hw_breakpoint: bool,
    /// The same with DR7 set for a 4-byte write watch stopped after the store.
    pub hw_watchpoint: bool,
}

impl std::fmt::Display for GuestDebugSupport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds = [
            (self.single_step, "single-step"),
            (self.sw_breakpoint, "software breakpoints"),
            (self.hw_breakpoint, "hardware breakpoints"),
            (self.hw_watchpoint, "watchpoints"),
        ];
        let yes: Vec<&str> = kinds.iter().filter(|k| k.0).map(|k| k.1).collect();
        let no: Vec<&str> = kinds.iter().filter(|k| !k.0).map(|k| k.1).collect();
        match (yes.is_empty(), no.is_empty()) {
            (true, _) => write!(f, "none of single-step, breakpoints, watchpoints"),
            (false, true) => write!(f, "{}", yes.join(", ")),
            (false, false) => write!(f, "{} (not {})", yes.join(", "), no.join(", ")),
        }
    }
}

/// Where the probe's code and data sit.
const CODE: u64 = 0x1000;
const DATA: u64 = 0x2000;

/// Tries each debug kind in a fresh VM.
///
/// # Errors
/// KVM cannot be opened or refuses a VM (not: a kind that does not work, which is `false`).
pub fn probe() -> Result<GuestDebugSupport, KvmError> {
    super::probe()?;
    // nop; nop; int3 (or nop); nop; mov [0x2000],ax; hlt
    let code = |third: u8| vec![0x90, 0x90, third, 0x90, 0xa3, 0x00, 0x20, 0xf4];
    let after = |rip: Option<u64>, want: u64| rip == Some(want);
    let single_step = after(try_kind(&code(0x90), KVM_GUESTDBG_SINGLESTEP, [0; 8])?, CODE + 1);
    // KVM reports a software breakpoint with RIP at the INT3 (it does not run it).
    let sw_breakpoint = after(try_kind(&code(0xcc), KVM_GUESTDBG_USE_SW_BP, [0; 8])?, CODE + 2);
    // DR7: L0 (bit 0), R/W0 = 00 (execute), LEN0 = 00.
    let mut dr = [0u64; 8];
    dr[0] = CODE + 3;
    dr[7] = 1;
    let hw_breakpoint = after(try_kind(&code(0x90), KVM_GUESTDBG_USE_HW_BP, dr)?, CODE + 3);
    // DR7: L0, R/W0 = 01 (write), LEN0 = 11 (4 bytes); a trap after the store.
    dr[0] = DATA;
    dr[7] = 1 | 1 << 16 | 3 << 18;
    let hw_watchpoint = after(try_kind(&code(0x90), KVM_GUESTDBG_USE_HW_BP, dr)?, CODE + 7);
    Ok(GuestDebugSupport { single_step, sw_breakpoint, hw_breakpoint, hw_watchpoint })
}

/// Runs `code` at CPL0 in real mode with guest debugging `kind` on: RIP at the first debug
/// exit, `None` when the code ran to its HLT (or stopped otherwise) without one.
fn try_kind(code: &[u8], kind: u32, debugreg: [u64; 8]) -> Result<Option<u64>, KvmError> {
    let ram = GuestRam::new(0x10000).map_err(|e| KvmError::State(format!("probe RAM: {e}")))?;
    let mut cpu = Cpu::new(ram);
    // HLT everywhere and every interrupt vector at a HLT, so a kind KVM does not honour ends
    // the run at once (an INT3 it lets through goes to the guest's vector 3).
    if let Some(all) = cpu.ram.slice_mut(0, 0x10000) {
        all.fill(0xf4);
    }
    if let Some(ivt) = cpu.ram.slice_mut(0, 0x400) {
        for entry in ivt.chunks_mut(4) {
            entry.copy_from_slice(&[0x00, 0x18, 0x00, 0x00]); // 0000:1800
        }
    }
    if let Some(dst) = cpu.ram.slice_mut(CODE, code.len()) {
        dst.copy_from_slice(code);
    }
    let s = &mut cpu.state;
    let real = |ty: u16| Segment { base: 0, limit: 0xffff, selector: 0, attr: ty | attr::S | attr::P };
    s.segs = [real(0x3), real(0xb), real(0x3), real(0x3), real(0x3), real(0x3)];
    s.tr = Segment { base: 0, limit: 0xffff, selector: 0, attr: 0x8b | attr::P };
    s.rip = CODE;
    s.gpr[4] = 0x8000;
    s.set_rflags(0x2);
    let mut vm = KvmVm::new(&cpu.ram)?;
    vm.set_state(&cpu)?;
    let dbg = kvm_guest_debug {
        control: KVM_GUESTDBG_ENABLE | kind,
        arch: kvm_bindings::kvm_guest_debug_arch { debugreg },
        ..Default::default()
    };
    if vm.vcpu.set_guest_debug(&dbg).is_err() {
        return Ok(None);
    }
    let mut bus = NullBus;
    for _ in 0..16 {
        match vm.run(&cpu.ram, &mut bus) {
            Ok(super::VmExit::Debug) => {
                vm.get_state(&mut cpu)?;
                return Ok(Some(cpu.state.rip));
            }
            Ok(super::VmExit::Interrupted | super::VmExit::Io | super::VmExit::InterruptWindow) => {}
            Ok(_) | Err(_) => return Ok(None),
        }
    }
    Ok(None)
}

impl From<GuestDebugSupport> for emu::engine::GuestDebugKinds {
    fn from(s: GuestDebugSupport) -> Self {
        emu::engine::GuestDebugKinds {
            single_step: s.single_step,
            sw_breakpoint: s.sw_breakpoint,
            hw_breakpoint: s.hw_breakpoint,
            hw_watchpoint: s.hw_watchpoint,
        }
    }
}

/// The `KVM_SET_GUEST_DEBUG` request for `debug` (KVM's API documentation, 4.59): ENABLE,
/// SINGLESTEP for a step, USE_SW_BP for INT3 breakpoints, USE_HW_BP with the debug registers
/// ([`emu::engine::GuestDebug::debugreg`]) for breakpoints and watchpoints.
pub fn request_for(debug: &emu::engine::GuestDebug) -> kvm_guest_debug {
    let mut control = KVM_GUESTDBG_ENABLE;
    if debug.single_step {
        control |= KVM_GUESTDBG_SINGLESTEP;
    }
    if !debug.int3_breakpoints.is_empty() {
        control |= KVM_GUESTDBG_USE_SW_BP;
    }
    if debug.slots() > 0 {
        control |= KVM_GUESTDBG_USE_HW_BP;
    }
    let arch = kvm_bindings::kvm_guest_debug_arch { debugreg: debug.debugreg() };
    kvm_guest_debug { control, arch, ..Default::default() }
}

/// What a debug exit said, for the debugger: `exception` and `dr6` from `kvm_debug_exit_arch`.
pub fn hit_of(exception: u32, dr6: u64) -> emu::engine::DebugHit {
    emu::engine::DebugHit { vector: exception as u8, dr6 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu::engine::{DataBreakpoint, GuestDebug};

    /// The control word of KVM's API documentation (4.59 KVM_SET_GUEST_DEBUG) for each kind.
    #[test]
    fn requests_name_the_kinds_asked_for() {
        let step = GuestDebug { single_step: true, ..GuestDebug::default() };
        assert_eq!(request_for(&step).control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP);
        let int3 = GuestDebug { int3_breakpoints: vec![0x1000], ..GuestDebug::default() };
        assert_eq!(request_for(&int3).control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP);
        let watch = GuestDebug {
            watchpoints: vec![DataBreakpoint { addr: 0x2000, len: 4, read: false }],
            ..GuestDebug::default()
        };
        // DR7: L0, R/W0 = 01 (bits 16-17), LEN0 = 11 (bits 18-19), SDM Vol. 3B Figure 18-1.
        let r = request_for(&watch);
        assert_eq!(r.control, KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP);
        assert_eq!((r.arch.debugreg[0], r.arch.debugreg[7]), (0x2000, 0x000d_0001));
    }
}
