//! Signals for the user-mode runner: per-signal actions, the blocked and pending sets, and
//! delivery on the x86-64 `rt_sigframe` exactly as Linux lays it out (`arch/x86/kernel/signal.c`
//! `get_sigframe`/`x64_setup_rt_frame`, `arch/x86/include/uapi/asm/sigcontext.h`,
//! `include/uapi/asm-generic/siginfo.h`), so glibc's and musl's handlers and their restorers work
//! unchanged.
//!
//! The frame, from the new RSP up: the return address (`sa_restorer`), the `ucontext` (flags,
//! link, `stack_t`, the `sigcontext` with general registers in `REG_R8..REG_CR2` order, the
//! blocked mask), the `siginfo`; above it, 64-byte aligned, the FXSAVE-format FPU state the
//! `sigcontext` points at. CPU exceptions become signals the way Linux's trap handlers map them
//! (`arch/x86/kernel/traps.c`, `arch/x86/mm/fault.c`): #PF -> SIGSEGV with the fault address and
//! the page-fault error code in REG_ERR, #DE -> SIGFPE/FPE_INTDIV, #UD -> SIGILL/ILL_ILLOPN,
//! #GP -> SIGSEGV/SI_KERNEL with address 0.
//!
//! Left out: real-time signal queueing (one pending instance per signal), job-control stops
//! (stop signals are ignored), core dumps, XSAVE-format frames (AVX state is not saved).

use super::{Process, ProcessEnd};
use crate::exception::{vector, Fault};
use crate::state::{gpr, rflags, CpuState, FpuState};
use crate::user::events::{record, SignalAction, UserEvent};
use crate::user::layout::Layout;

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;
pub const SIGPIPE: i32 = 13;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGURG: i32 = 23;
pub const SIGWINCH: i32 = 28;
/// Signals are 1..=64.
pub const NSIG: i32 = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
pub const SS_ONSTACK: u32 = 1;
pub const SS_DISABLE: u32 = 2;

/// si_code values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const FPE_INTDIV: i32 = 1;
pub const ILL_ILLOPN: i32 = 2;
pub const BUS_ADRALN: i32 = 1;

/// The mask bit of signal `sig`.
pub fn bit(sig: i32) -> u64 {
    1u64 << ((sig - 1) & 63)
}

/// Signals no mask can block.
pub const UNBLOCKABLE: u64 = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1));

/// One signal's disposition (`struct sigaction` as the kernel keeps it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// The alternate signal stack (sigaltstack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub size: u64,
    pub flags: u32,
}

impl Default for AltStack {
    fn default() -> Self {
        AltStack { sp: 0, size: 0, flags: SS_DISABLE }
    }
}

/// What a pending signal's siginfo says about its sender.
#[derive(Clone, Copy, Debug, Default)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    /// si_addr for faults; (pid | uid << 32) for kill.
    pub addr: u64,
    pub trapno: u64,
    pub err: u64,
}

impl SigInfo {
    /// This signal as an event of the trace (`events.rs`).
    pub fn event(&self, action: SignalAction) -> UserEvent {
        UserEvent::Signal { signo: self.signo, code: self.code, addr: self.addr, action }
    }
}

#[derive(Clone, Debug)]
pub struct SignalState {
    pub actions: [SigAction; NSIG as usize],
    pub blocked: u64,
    pub pending: u64,
    pub pending_info: [SigInfo; NSIG as usize],
    pub altstack: AltStack,
    /// The mask rt_sigsuspend replaced, to be restored by the handler's sigreturn.
    pub saved_mask: Option<u64>,
    /// A debugger is attached (`strata user --gdb`): every signal stops the process before
    /// it is acted on, as ptrace's signal-delivery-stop does, and waits in `stopped`.
    pub debugger: bool,
    /// The signal a debugger was told about and has not yet passed on or suppressed
    /// ([`resume_stopped`]).
    pub stopped: Option<StoppedSignal>,
}

/// A signal held for the debugger.
#[derive(Clone, Copy, Debug)]
pub struct StoppedSignal {
    pub info: SigInfo,
    /// It comes from a fault of the current instruction (delivered as `force_sig`: a blocked
    /// or ignored one kills); suppressing it re-runs the instruction.
    pub fault: bool,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG as usize],
            blocked: 0,
            pending: 0,
            pending_info: [SigInfo::default(); NSIG as usize],
            altstack: AltStack::default(),
            saved_mask: None,
            debugger: false,
            stopped: None,
        }
    }
}

impl SignalState {
    pub fn action(&self, sig: i32) -> SigAction {
        self.actions[((sig - 1) & 63) as usize]
    }
    pub fn action_mut(&mut self, sig: i32) -> &mut SigAction {
        &mut self.actions[((sig - 1) & 63) as usize]
    }
}

/// Whether a signal's default action is to be ignored (SIGCHLD, SIGURG, SIGWINCH, SIGCONT; the
/// stop signals too, since the runner cannot stop).
pub fn default_ignores(sig: i32) -> bool {
    matches!(sig, SIGCHLD | SIGCONT | SIGURG | SIGWINCH | 19..=22)
}

/// A synchronous fault, described as its signal.
#[derive(Clone, Copy, Debug)]
pub struct FaultInfo(pub SigInfo);

impl FaultInfo {
    /// A #PF the address space could not satisfy: SEGV_MAPERR when nothing is mapped there,
    /// SEGV_ACCERR when the mapping forbids the access.
    pub fn page_fault(addr: u64, error: u32, mapped: bool) -> Self {
        FaultInfo(SigInfo {
            signo: SIGSEGV,
            code: if mapped { SEGV_ACCERR } else { SEGV_MAPERR },
            addr,
            trapno: vector::PF as u64,
            err: error as u64,
        })
    }

    /// Any other exception; `rip` is the faulting instruction.
    pub fn from_exception(f: Fault, rip: u64) -> Self {
        let (signo, code, addr) = match f.vector {
            vector::DE => (SIGFPE, FPE_INTDIV, rip),
            vector::UD => (SIGILL, ILL_ILLOPN, rip),
            vector::MF | vector::XM => (SIGFPE, 0, rip),
            vector::BP | vector::DB => (SIGTRAP, SI_KERNEL, 0),
            vector::AC => (SIGBUS, BUS_ADRALN, 0),
            vector::SS | vector::NP => (SIGBUS, SI_KERNEL, 0),
            _ => (SIGSEGV, SI_KERNEL, 0),
        };
        FaultInfo(SigInfo { signo, code, addr, trapno: f.vector as u64, err: f.error_code as u64 })
    }
}

/// Marks `sig` pending for the process (kill to self, SIGPIPE); delivered at the next
/// instruction boundary where it is not blocked.
pub fn raise(p: &mut Process, sig: i32) {
    raise_info(
        p,
        SigInfo {
            signo: sig,
            code: SI_USER,
            addr: p.sys.ids.pid as u64 | (p.sys.ids.uid as u64) << 32,
            ..SigInfo::default()
        },
    );
}

pub fn raise_info(p: &mut Process, info: SigInfo) {
    let s = &mut p.sys.signals;
    s.pending |= bit(info.signo);
    s.pending_info[((info.signo - 1) & 63) as usize] = info;
}

/// The default action of `sig`: `Some` when it ends the process.
fn default_action(sig: i32) -> Option<ProcessEnd> {
    (!default_ignores(sig)).then_some(ProcessEnd::Signaled(sig))
}

fn killed(p: &Process, sig: i32, info: &SigInfo) -> Option<ProcessEnd> {
    let rip = p.cpu.state.rip;
    if info.trapno != 0 || info.code > 0 {
        eprintln!("strata: guest killed by signal {sig} at rip {rip:#x} (fault address {:#x})", info.addr);
    } else if sig != SIGPIPE && sig != SIGINT {
        eprintln!("strata: guest killed by signal {sig} at rip {rip:#x}");
    }
    Some(ProcessEnd::Signaled(sig))
}

/// Delivers a synchronous fault (Linux `force_sig_fault`): a blocked or ignored fault signal
/// cannot be held back, so it kills the process, as does a frame that cannot be written.
pub fn deliver_fault(p: &mut Process, fault: FaultInfo) -> Option<ProcessEnd> {
    if p.sys.signals.debugger {
        p.sys.signals.stopped = Some(StoppedSignal { info: fault.0, fault: true });
        return None;
    }
    force_fault(p, fault.0)
}

fn force_fault(p: &mut Process, info: SigInfo) -> Option<ProcessEnd> {
    let sig = info.signo;
    let act = p.sys.signals.action(sig);
    if p.sys.signals.blocked & bit(sig) != 0 || act.handler == SIG_IGN || act.handler == SIG_DFL {
        record(&p.sys.events, info.event(SignalAction::Killed));
        return killed(p, sig, &info);
    }
    record(&p.sys.events, info.event(SignalAction::Handler(act.handler)));
    if setup_frame(p, sig, &info).is_none() {
        return killed(p, SIGSEGV, &info);
    }
    None
}

/// Delivers the lowest pending signal that is not blocked, if any. With a debugger attached
/// the signal is taken off the pending set and held for it instead (SIGKILL is not: it cannot
/// be stopped for).
pub fn deliver_pending(p: &mut Process) -> Option<ProcessEnd> {
    let s = &mut p.sys.signals;
    if s.stopped.is_some() {
        return None; // one signal at a time for the debugger
    }
    let ready = s.pending & !s.blocked;
    if ready == 0 {
        return None;
    }
    let sig = ready.trailing_zeros() as i32 + 1;
    s.pending &= !bit(sig);
    let info = s.pending_info[(sig - 1) as usize];
    if s.debugger && sig != SIGKILL {
        s.stopped = Some(StoppedSignal { info, fault: false });
        return None;
    }
    act_on(p, sig, &info)
}

/// Resumes from a debugger's signal stop: `sig` is the signal the debugger passes on (the held
/// one, another, or `None` to suppress it), as PTRACE_CONT's data does. A suppressed fault
/// re-runs its instruction; another signal gets a SI_USER siginfo; one that is blocked now
/// goes back to the pending set.
pub fn resume_stopped(p: &mut Process, sig: Option<i32>) -> Option<ProcessEnd> {
    let stopped = p.sys.signals.stopped.take()?;
    let sig = sig.filter(|s| (1..=NSIG).contains(s))?;
    if sig == stopped.info.signo && stopped.fault {
        return force_fault(p, stopped.info);
    }
    let info = if sig == stopped.info.signo {
        stopped.info
    } else {
        SigInfo {
            signo: sig,
            code: SI_USER,
            addr: p.sys.ids.pid as u64 | (p.sys.ids.uid as u64) << 32,
            ..SigInfo::default()
        }
    };
    if p.sys.signals.blocked & bit(sig) != 0 {
        raise_info(p, info);
        return None;
    }
    act_on(p, sig, &info)
}

/// Acts on a dequeued signal: its handler, its default action, or nothing when ignored.
fn act_on(p: &mut Process, sig: i32, info: &SigInfo) -> Option<ProcessEnd> {
    let info = *info;
    let act = p.sys.signals.action(sig);
    let action = match act.handler {
        SIG_IGN => SignalAction::Ignored,
        SIG_DFL if default_action(sig).is_some() => SignalAction::Killed,
        SIG_DFL => SignalAction::Ignored,
        h => SignalAction::Handler(h),
    };
    record(&p.sys.events, info.event(action));
    match act.handler {
        SIG_IGN => None,
        SIG_DFL => match default_action(sig) {
            Some(_) => killed(p, sig, &info),
            None => None,
        },
        _ => {
            if setup_frame(p, sig, &info).is_none() {
                return killed(p, SIGSEGV, &info);
            }
            None
        }
    }
}

/// Size of the kernel's `struct rt_sigframe`: return address, ucontext (304), siginfo (128).
const FRAME_SIZE: u64 = 8 + 304 + 128;
const UC_OFFSET: u64 = 8;
const INFO_OFFSET: u64 = 8 + 304;
/// Offsets inside the ucontext.
const UC_STACK: usize = 16;
const UC_MCONTEXT: usize = 40;
const UC_SIGMASK: usize = 296;
/// uc_flags: the sigcontext's SS field is valid and is restored strictly (UC_SIGCONTEXT_SS |
/// UC_STRICT_RESTORE_SS).
const UC_FLAGS: u64 = 0x2 | 0x4;
/// The FXSAVE image.
const FPSTATE_SIZE: u64 = 512;
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;
/// The general registers in `sigcontext` (= glibc's `gregs[REG_R8..REG_RIP]`) order.
const GREG_ORDER: [usize; 16] = [8, 9, 10, 11, 12, 13, 14, 15, 7, 6, 5, 3, 2, 0, 1, 4];
/// RFLAGS bits sigreturn takes from the frame (FIX_EFLAGS in signal.c).
const FIX_EFLAGS: u64 = rflags::AC
    | rflags::OF
    | rflags::DF
    | rflags::TF
    | rflags::SF
    | rflags::ZF
    | rflags::AF
    | rflags::PF
    | rflags::CF
    | rflags::RF;

/// Whether `sp` lies on the alternate stack.
fn on_altstack(a: &AltStack, sp: u64) -> bool {
    a.flags & SS_DISABLE == 0 && sp.wrapping_sub(a.sp) < a.size
}

/// Builds the signal frame for `sig` and points the CPU at its handler.
fn setup_frame(p: &mut Process, sig: i32, info: &SigInfo) -> Option<()> {
    let act = p.sys.signals.action(sig);
    let alt = p.sys.signals.altstack;
    let old_mask = p.sys.signals.saved_mask.take().unwrap_or(p.sys.signals.blocked);
    let st = &p.cpu.state;
    let user_sp = st.gpr[gpr::RSP];
    let mut sp = user_sp.wrapping_sub(128); // the red zone
    if act.flags & SA_ONSTACK != 0 && alt.flags & SS_DISABLE == 0 && !on_altstack(&alt, user_sp) {
        sp = alt.sp.wrapping_add(alt.size);
    }
    let fpstate = sp.wrapping_sub(FPSTATE_SIZE) & !63;
    let frame = ((fpstate.wrapping_sub(FRAME_SIZE)) & !15).wrapping_sub(8);

    let mut uc = Layout::new(304);
    uc.u64(0, UC_FLAGS);
    let ss_flags = if alt.flags & SS_DISABLE != 0 {
        SS_DISABLE
    } else if on_altstack(&alt, user_sp) {
        SS_ONSTACK
    } else {
        0
    };
    uc.u64(UC_STACK, alt.sp).u32(UC_STACK + 8, ss_flags).u64(UC_STACK + 16, alt.size);
    let mc = UC_MCONTEXT;
    for (i, &r) in GREG_ORDER.iter().enumerate() {
        uc.u64(mc + 8 * i, st.gpr[r]);
    }
    uc.u64(mc + 8 * 16, st.rip).u64(mc + 8 * 17, st.rflags());
    uc.u64(mc + 8 * 18, USER_CS | USER_SS << 48);
    uc.u64(mc + 8 * 19, info.err).u64(mc + 8 * 20, info.trapno).u64(mc + 8 * 21, old_mask);
    uc.u64(mc + 8 * 22, if info.trapno == vector::PF as u64 { info.addr } else { 0 });
    uc.u64(mc + 8 * 23, fpstate);
    uc.u64(UC_SIGMASK, old_mask);

    let mut si = Layout::new(128);
    si.u32(0, info.signo as u32).u32(8, info.code as u32).u64(16, info.addr);
    let fx = encode_fxsave(st);

    p.write_mem(fpstate, &fx)?;
    p.write_mem(frame.wrapping_add(UC_OFFSET), &uc.0)?;
    p.write_mem(frame.wrapping_add(INFO_OFFSET), &si.0)?;
    p.write_u64(frame, act.restorer)?;

    let st = &mut p.cpu.state;
    st.gpr[gpr::RDI] = sig as u64;
    st.gpr[gpr::RSI] = frame.wrapping_add(INFO_OFFSET);
    st.gpr[gpr::RDX] = frame.wrapping_add(UC_OFFSET);
    st.gpr[gpr::RAX] = 0;
    st.gpr[gpr::RSP] = frame;
    st.rip = act.handler;
    let fl = st.rflags() & !(rflags::DF | rflags::RF | rflags::TF);
    st.set_rflags(fl);
    // The handler starts with the FPU in its initial state (fpu__clear_user_states restores
    // init_fpstate: FNINIT control words, MXCSR 1F80, XMM registers zero).
    st.fpu = FpuState::default();
    st.mxcsr = 0x1f80;
    st.xmm = [[0; 2]; 16];

    let s = &mut p.sys.signals;
    s.blocked |= act.mask & !UNBLOCKABLE;
    if act.flags & SA_NODEFER == 0 {
        s.blocked |= bit(sig) & !UNBLOCKABLE;
    }
    if act.flags & SA_RESETHAND != 0 {
        *s.action_mut(sig) = SigAction::default();
    }
    Some(())
}

/// rt_sigreturn: restores what `setup_frame` saved. The ucontext is at the RSP the restorer
/// made the call with. `None` means the frame was unreadable (the caller kills with SIGSEGV).
pub fn restore_frame(p: &mut Process) -> Option<()> {
    let uc_addr = p.cpu.state.gpr[gpr::RSP];
    let mut uc = vec![0u8; 304];
    p.read_mem(uc_addr, &mut uc)?;
    let le = |o: usize| crate::user::layout::le64(&uc, o);
    let mc = UC_MCONTEXT;
    let fpstate = le(mc + 8 * 23);
    let fx = if fpstate != 0 {
        let mut fx = vec![0u8; FPSTATE_SIZE as usize];
        p.read_mem(fpstate, &mut fx)?;
        Some(fx)
    } else {
        None
    };
    let st = &mut p.cpu.state;
    for (i, &r) in GREG_ORDER.iter().enumerate() {
        st.gpr[r] = le(mc + 8 * i);
    }
    st.rip = le(mc + 8 * 16);
    let fl = (st.rflags() & !FIX_EFLAGS) | (le(mc + 8 * 17) & FIX_EFLAGS);
    st.set_rflags(fl);
    match fx {
        Some(fx) => decode_fxsave(st, &fx),
        None => {
            st.fpu = FpuState::default();
            st.mxcsr = 0x1f80;
            st.xmm = [[0; 2]; 16];
        }
    }
    p.sys.signals.blocked = le(UC_SIGMASK) & !UNBLOCKABLE;
    Some(())
}

/// The FXSAVE image of the x87/SSE state (SDM Vol. 1, 10.5.1, Table 10-2; 64-bit form).
pub fn encode_fxsave(st: &CpuState) -> Vec<u8> {
    let f = &st.fpu;
    let mut fx = Layout::new(FPSTATE_SIZE as usize);
    let abridged = (0..8).fold(0u8, |acc, i| acc | (((f.ftw >> (2 * i)) & 3 != 3) as u8) << i);
    fx.u16(0, f.fcw).u16(2, f.fsw);
    fx.0[4] = abridged;
    fx.u16(6, f.fop).u64(8, f.fip).u64(16, f.fdp).u32(24, st.mxcsr).u32(28, 0xffff);
    let top = (f.fsw >> 11) & 7;
    for i in 0..8u16 {
        let r = f.regs[((top + i) & 7) as usize];
        fx.u64(32 + 16 * i as usize, r.signif).u16(40 + 16 * i as usize, r.sign_exp);
    }
    for (i, x) in st.xmm.iter().enumerate() {
        fx.u64(160 + 16 * i, x[0]).u64(168 + 16 * i, x[1]);
    }
    fx.0
}

/// Loads an FXSAVE image; the full tag word is rebuilt from the abridged one and the register
/// contents (SDM Vol. 1, 10.5.1.1 on FXRSTOR's tag handling).
pub fn decode_fxsave(st: &mut CpuState, fx: &[u8]) {
    let le16 = |o: usize| u16::from_le_bytes([fx[o], fx[o + 1]]);
    let le64 = |o: usize| crate::user::layout::le64(fx, o);
    let f = &mut st.fpu;
    f.fcw = le16(0);
    f.fsw = le16(2);
    f.fop = le16(6) & 0x7ff;
    f.fip = le64(8);
    f.fdp = le64(16);
    st.mxcsr = crate::user::layout::le32(fx, 24) & 0xffff;
    let top = (f.fsw >> 11) & 7;
    for i in 0..8u16 {
        let r = &mut f.regs[((top + i) & 7) as usize];
        r.signif = le64(32 + 16 * i as usize);
        r.sign_exp = le16(40 + 16 * i as usize);
    }
    let abridged = fx[4];
    f.ftw = (0..8).fold(0u16, |acc, i| {
        let r = f.regs[i];
        let exp = r.sign_exp & 0x7fff;
        let tag = if abridged >> i & 1 == 0 {
            3
        } else if exp == 0x7fff || (exp == 0 && r.signif != 0) || (exp != 0 && r.signif >> 63 == 0) {
            2
        } else if exp == 0 {
            1
        } else {
            0
        };
        acc | tag << (2 * i)
    });
    for (i, x) in st.xmm.iter_mut().enumerate() {
        *x = [le64(160 + 16 * i), le64(168 + 16 * i)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fxsave_image_round_trips_with_tags_rebuilt() {
        let mut st = CpuState::default();
        st.fpu.fsw = 6 << 11; // TOP = 6
        st.fpu.regs[6].signif = 1 << 63;
        st.fpu.regs[6].sign_exp = 0x3fff; // 1.0: valid
        st.fpu.regs[7].signif = 0;
        st.fpu.regs[7].sign_exp = 0; // +0: zero
        st.fpu.ftw = 0b0100_1111_1111_1111; // R7 zero (01), R6 valid (00), the rest empty (11)
        st.fpu.fcw = 0x027f;
        st.mxcsr = 0x1fa0;
        st.xmm[3] = [0x1122, 0x3344];
        let fx = encode_fxsave(&st);
        assert_eq!(fx[4], 0b1100_0000, "abridged tags: R6 and R7 in use");
        assert_eq!(u16::from_le_bytes([fx[40], fx[41]]), 0x3fff, "ST(0) is R6");
        let mut back = CpuState::default();
        decode_fxsave(&mut back, &fx);
        assert_eq!(back.fpu, st.fpu);
        assert_eq!(back.mxcsr, st.mxcsr);
        assert_eq!(back.xmm[3], [0x1122, 0x3344]);
    }

    #[test]
    fn exceptions_map_to_the_signals_linux_sends() {
        let m = |f: Fault| {
            let i = FaultInfo::from_exception(f, 0x401000).0;
            (i.signo, i.code, i.addr)
        };
        assert_eq!(m(Fault::de()), (SIGFPE, FPE_INTDIV, 0x401000));
        assert_eq!(m(Fault::ud()), (SIGILL, ILL_ILLOPN, 0x401000));
        assert_eq!(m(Fault::gp0()), (SIGSEGV, SI_KERNEL, 0));
        let pf = FaultInfo::page_fault(0x1234, 7, true).0;
        assert_eq!((pf.signo, pf.code, pf.err, pf.trapno), (SIGSEGV, SEGV_ACCERR, 7, 14));
        assert_eq!(FaultInfo::page_fault(0, 4, false).0.code, SEGV_MAPERR);
    }
}
