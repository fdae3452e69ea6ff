//! Runs one instruction on the host CPU (x86-64 Linux only). All of the harness's `unsafe` is in
//! this module.
//!
//! Three fixed mappings are made once per process (MAP_FIXED_NOREPLACE, so nothing of the
//! host's is ever replaced): the data buffer at `state::BUF` (with 64 KiB of padding below it, so
//! a signal delivered while RSP points into the buffer cannot fault), the state block at
//! `state::STATE_BLOCK`, and three code pages at `state::CODE`:
//!
//! | page | holds |
//! |---|---|
//! | `CODE` | entry: saves the host's callee-saved registers, RSP, RFLAGS and FXSAVE image, loads the test state (FXRSTOR, POPFQ, GPRs) and jumps to the instruction |
//! | `INSN_PAGE` | the instruction under test, ending exactly at the page end |
//! | `FALLTHROUGH` | a jump to the epilogue; at `TAKEN`, a stub that records "branch taken" first; then the epilogue, which stores the GPRs, RFLAGS and FXSAVE image and restores the host |
//!
//! Invariants the callers keep (the generator enforces them, `gen::is_safe` checks them):
//! - the instruction never writes R15 (it holds the state block address) and never writes RSP
//!   except through stack operations that stay inside the data buffer;
//! - every memory access it makes is inside the data buffer;
//! - it cannot fault (no #DE inputs, all MXCSR exceptions masked, 16-byte-aligned SSE operands),
//!   cannot trap (TF is never set) and does not change AC, IF or IOPL.
//!
//! The entry is an `extern "C" fn(*mut Block)` that preserves everything the SysV ABI asks for.

use crate::state::{MachineState, BUF, BUF_LEN, CODE, FALLTHROUGH, FLAGS_FIXED, INSN_PAGE, STATE_BLOCK, TAKEN};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use std::sync::Mutex;

/// Padding mapped below the data buffer.
const PAD: u64 = 0x1_0000;
const PAGE: usize = 0x1000;

/// The state block at `STATE_BLOCK`. Offsets are used by the generated prologue/epilogue.
#[repr(C, align(64))]
struct Block {
    gpr: [u64; 16],
    rflags: u64,
    host_rflags: u64,
    host_rsp: u64,
    taken: u64,
    /// Address of the instruction under test (the prologue ends in `jmp [entry]`).
    entry: u64,
    _pad: [u64; 43],
    /// FXSAVE64 image of the test state (x87, MXCSR, XMM0-15).
    fx: [u8; 512],
    /// The host's FXSAVE64 image, restored before returning.
    host_fx: [u8; 512],
}

const OFF_RFLAGS: i64 = 128;
const OFF_HOST_RFLAGS: i64 = 136;
const OFF_HOST_RSP: i64 = 144;
const OFF_TAKEN: i64 = 152;
const OFF_ENTRY: i64 = 160;
const OFF_FX: i64 = 512;
const OFF_HOST_FX: i64 = 1024;
const _: () = {
    assert!(core::mem::offset_of!(Block, rflags) == OFF_RFLAGS as usize);
    assert!(core::mem::offset_of!(Block, host_rflags) == OFF_HOST_RFLAGS as usize);
    assert!(core::mem::offset_of!(Block, host_rsp) == OFF_HOST_RSP as usize);
    assert!(core::mem::offset_of!(Block, taken) == OFF_TAKEN as usize);
    assert!(core::mem::offset_of!(Block, entry) == OFF_ENTRY as usize);
    assert!(core::mem::offset_of!(Block, fx) == OFF_FX as usize);
    assert!(core::mem::offset_of!(Block, host_fx) == OFF_HOST_FX as usize);
    assert!(core::mem::size_of::<Block>() <= PAGE);
};

/// FXSAVE image offsets (SDM Vol. 1, Table 10-2).
const FX_FCW: usize = 0;
const FX_FSW: usize = 2;
const FX_FTW: usize = 4;
const FX_ST: usize = 32;
const FX_MXCSR: usize = 24;
const FX_XMM: usize = 160;

/// The host mappings; one per process, used under a lock.
pub struct NativeRunner {
    _private: (),
}

static RUNNER: Mutex<Option<Result<NativeRunner, String>>> = Mutex::new(None);

/// Runs `f` with the process's native runner (created on first use), or returns the reason
/// the fixed mappings could not be made.
///
/// # Errors
/// The fixed addresses are taken in this process, or the host refused the mappings.
pub fn with_runner<R>(f: impl FnOnce(&mut NativeRunner) -> R) -> Result<R, String> {
    let mut guard = RUNNER.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        // Name the host CPU once per test binary: what is compared depends on it.
        emu::hostcpu::announce();
        *guard = Some(NativeRunner::new());
    }
    match guard.as_mut() {
        Some(Ok(r)) => Ok(f(r)),
        Some(Err(e)) => Err(e.clone()),
        None => Err("native runner missing".into()),
    }
}

/// Maps `len` anonymous bytes at exactly `addr` (never over an existing mapping).
pub(crate) fn map_fixed(addr: u64, len: usize, prot: i32) -> Result<(), String> {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the kernel either maps
    // exactly [addr, addr+len) or fails. The mapping is anonymous and owned by this module for
    // the rest of the process.
    let p = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as u64 != addr {
        return Err(format!("cannot map {len:#x} bytes at {addr:#x}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Changes the protection of one of the fixed mappings made by [`map_fixed`].
pub(crate) fn protect(addr: u64, len: usize, prot: i32) {
    // SAFETY: [addr, addr+len) is one of this module's own fixed mappings.
    let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) };
    assert_eq!(r, 0, "mprotect of the harness's own code pages failed");
}

fn mem(off: i64) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::R15, off)
}

/// The 16 GPRs in encoding order (also the JIT fuzzer's, `jitfuzz.rs`).
pub(crate) const GPRS: [Register; 16] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RBX,
    Register::RSP,
    Register::RBP,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

/// Encodes `list` at `rip`, returning the bytes.
fn assemble(list: &[Instruction], rip: u64) -> Vec<u8> {
    let mut enc = Encoder::new(64);
    let mut ip = rip;
    for i in list {
        let n = enc.encode(i, ip).expect("harness prologue/epilogue encodes");
        ip += n as u64;
    }
    enc.take_buffer()
}

fn ok(r: Result<Instruction, iced_x86::IcedError>) -> Instruction {
    r.expect("harness prologue/epilogue instruction")
}

const SAVED: [Register; 6] = [Register::RBX, Register::RBP, Register::R12, Register::R13, Register::R14, Register::R15];

/// The entry code: save the host, load the test state, jump to the instruction.
fn prologue() -> Vec<u8> {
    let mut v: Vec<Instruction> = SAVED.iter().map(|&r| ok(Instruction::with1(Code::Push_r64, r))).collect();
    v.push(ok(Instruction::with2(Code::Mov_r64_rm64, Register::R15, Register::RDI)));
    v.push(Instruction::with(Code::Pushfq));
    v.push(ok(Instruction::with1(Code::Pop_rm64, mem(OFF_HOST_RFLAGS))));
    v.push(ok(Instruction::with2(Code::Mov_rm64_r64, mem(OFF_HOST_RSP), Register::RSP)));
    v.push(ok(Instruction::with1(Code::Fxsave64_m512byte, mem(OFF_HOST_FX))));
    v.push(ok(Instruction::with1(Code::Fxrstor64_m512byte, mem(OFF_FX))));
    v.push(ok(Instruction::with1(Code::Push_rm64, mem(OFF_RFLAGS))));
    v.push(Instruction::with(Code::Popfq));
    for (i, &r) in GPRS.iter().enumerate().take(15) {
        v.push(ok(Instruction::with2(Code::Mov_r64_rm64, r, mem(8 * i as i64))));
    }
    v.push(ok(Instruction::with1(Code::Jmp_rm64, mem(OFF_ENTRY))));
    assemble(&v, CODE)
}

/// The exit page: FALLTHROUGH jumps to the epilogue, TAKEN records the branch and does too.
fn exit_page() -> Vec<u8> {
    let epilogue_at = FALLTHROUGH + 0x80;
    let mut page = vec![0xccu8; PAGE];
    let fall = assemble(&[Instruction::with_branch(Code::Jmp_rel32_64, epilogue_at).expect("jmp")], FALLTHROUGH);
    page[..fall.len()].copy_from_slice(&fall);
    let stub = assemble(
        &[
            ok(Instruction::with2(Code::Mov_rm64_imm32, mem(OFF_TAKEN), 1i32)),
            Instruction::with_branch(Code::Jmp_rel32_64, epilogue_at).expect("jmp"),
        ],
        TAKEN,
    );
    let t = (TAKEN - FALLTHROUGH) as usize;
    page[t..t + stub.len()].copy_from_slice(&stub);
    let mut v: Vec<Instruction> = Vec::new();
    for (i, &r) in GPRS.iter().enumerate().take(15) {
        v.push(ok(Instruction::with2(Code::Mov_rm64_r64, mem(8 * i as i64), r)));
    }
    v.push(ok(Instruction::with2(Code::Mov_r64_rm64, Register::RSP, mem(OFF_HOST_RSP))));
    v.push(Instruction::with(Code::Pushfq));
    v.push(ok(Instruction::with1(Code::Pop_rm64, mem(OFF_RFLAGS))));
    v.push(ok(Instruction::with1(Code::Fxsave64_m512byte, mem(OFF_FX))));
    v.push(ok(Instruction::with1(Code::Fxrstor64_m512byte, mem(OFF_HOST_FX))));
    v.push(ok(Instruction::with1(Code::Push_rm64, mem(OFF_HOST_RFLAGS))));
    v.push(Instruction::with(Code::Popfq));
    v.extend(SAVED.iter().rev().map(|&r| ok(Instruction::with1(Code::Pop_r64, r))));
    v.push(Instruction::with(Code::Retnq));
    let epi = assemble(&v, epilogue_at);
    let e = (epilogue_at - FALLTHROUGH) as usize;
    page[e..e + epi.len()].copy_from_slice(&epi);
    page
}

impl NativeRunner {
    fn new() -> Result<Self, String> {
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        map_fixed(BUF - PAD, PAD as usize + BUF_LEN, rw)?;
        map_fixed(STATE_BLOCK, PAGE, rw)?;
        map_fixed(CODE, 3 * PAGE, rw)?;
        let pro = prologue();
        let exit = exit_page();
        // SAFETY: CODE is this module's own writable mapping of three pages; the two slices
        // cover the first and the third page and are not aliased.
        unsafe {
            let p0 = std::slice::from_raw_parts_mut(CODE as *mut u8, PAGE);
            p0.fill(0xcc);
            p0[..pro.len()].copy_from_slice(&pro);
            std::slice::from_raw_parts_mut(FALLTHROUGH as *mut u8, PAGE).copy_from_slice(&exit);
        }
        protect(CODE, 3 * PAGE, libc::PROT_READ | libc::PROT_EXEC);
        Ok(NativeRunner { _private: () })
    }

    /// Runs `insn` (at most 15 bytes) from `init` and returns the state after it.
    ///
    /// The caller guarantees the module invariants for this instruction and state (see the
    /// module doc); `gen::is_safe` checks them.
    pub fn run(&mut self, insn: &[u8], init: &MachineState) -> MachineState {
        self.enter(insn, init);
        // SAFETY: the state block and the buffer are this module's mappings; `enter` returned,
        // so the generated code is done with them.
        unsafe {
            let b = &*(STATE_BLOCK as *const Block);
            let mut st = from_fx_image(&b.fx);
            st.gpr = b.gpr;
            st.rflags = b.rflags;
            st.rip = if b.taken != 0 { TAKEN } else { FALLTHROUGH };
            st.buf = std::slice::from_raw_parts(BUF as *const u8, BUF_LEN).to_vec();
            st
        }
    }

    /// Runs `insn` from `init` in a forked child and reports how the child ended: `Ok(())` if
    /// the instruction completed, `Err(signal)` if the host raised an exception (SIGFPE for
    /// #DE, SIGSEGV for #GP/#PF, SIGILL for #UD, SIGBUS for #AC). Unlike [`NativeRunner::run`],
    /// the instruction may fault; only the child dies.
    pub fn run_forked(&mut self, insn: &[u8], init: &MachineState) -> Result<(), i32> {
        // SAFETY: the child only calls `enter` (mprotect, copies into this module's mappings,
        // the generated code: no allocation, no locks) and then `_exit`, which is what POSIX
        // allows after fork() in a multi-threaded process. The parent only waits.
        unsafe {
            let pid = libc::fork();
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                self.enter(insn, init);
                libc::_exit(0);
            }
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            if libc::WIFSIGNALED(status) {
                Err(libc::WTERMSIG(status))
            } else {
                Ok(())
            }
        }
    }

    /// Loads the state, runs the instruction, leaves the result in the state block and buffer.
    fn enter(&mut self, insn: &[u8], init: &MachineState) {
        assert!(!insn.is_empty() && insn.len() <= 15);
        let at = FALLTHROUGH - insn.len() as u64;
        protect(INSN_PAGE, PAGE, libc::PROT_READ | libc::PROT_WRITE);
        // SAFETY: INSN_PAGE is this module's page, writable right now; nothing else refers to
        // it. The state block and the buffer are this module's writable mappings, and `Block`
        // fits the state page.
        unsafe {
            let page = std::slice::from_raw_parts_mut(INSN_PAGE as *mut u8, PAGE);
            page.fill(0xcc);
            page[PAGE - insn.len()..].copy_from_slice(insn);
            std::slice::from_raw_parts_mut(BUF as *mut u8, BUF_LEN).copy_from_slice(&init.buf);
            let b = &mut *(STATE_BLOCK as *mut Block);
            b.gpr = init.gpr;
            b.gpr[15] = STATE_BLOCK;
            b.rflags = (init.rflags & crate::state::FLAGS_COMPARED) | FLAGS_FIXED;
            b.taken = 0;
            b.entry = at;
            b.fx = fx_image(init);
        }
        protect(INSN_PAGE, PAGE, libc::PROT_READ | libc::PROT_EXEC);
        // SAFETY: CODE holds the prologue assembled above: an `extern "C"` function taking the
        // state block in RDI that preserves every callee-saved register, RSP, RFLAGS (DF clear),
        // MXCSR and the x87 control word (restored from the host's FXSAVE image). The instruction
        // it runs keeps the module invariants, so it neither faults nor escapes (except under
        // `run_forked`, where a fault ends the child).
        unsafe {
            let f: extern "C" fn(*mut Block) = std::mem::transmute(CODE as *const u8);
            f(STATE_BLOCK as *mut Block);
        }
    }
}

/// The FXSAVE image for `st`: x87, MXCSR, XMM0-15.
fn fx_image(st: &MachineState) -> [u8; 512] {
    let mut fx = [0u8; 512];
    fx[FX_FCW..FX_FCW + 2].copy_from_slice(&st.x87.fcw.to_le_bytes());
    fx[FX_FSW..FX_FSW + 2].copy_from_slice(&st.x87.fsw.to_le_bytes());
    fx[FX_FTW] = st.x87.tag;
    for (i, &(signif, se)) in st.x87.st.iter().enumerate() {
        let o = FX_ST + 16 * i;
        fx[o..o + 8].copy_from_slice(&signif.to_le_bytes());
        fx[o + 8..o + 10].copy_from_slice(&se.to_le_bytes());
    }
    fx[FX_MXCSR..FX_MXCSR + 4].copy_from_slice(&st.mxcsr.to_le_bytes());
    fx[FX_MXCSR + 4..FX_MXCSR + 8].copy_from_slice(&0xffffu32.to_le_bytes());
    for (i, x) in st.xmm.iter().enumerate() {
        let o = FX_XMM + 16 * i;
        fx[o..o + 8].copy_from_slice(&x[0].to_le_bytes());
        fx[o + 8..o + 16].copy_from_slice(&x[1].to_le_bytes());
    }
    fx
}

fn from_fx_image(fx: &[u8; 512]) -> MachineState {
    let u64_at = |o: usize| u64::from_le_bytes(fx[o..o + 8].try_into().unwrap_or([0; 8]));
    let u16_at = |o: usize| u16::from_le_bytes([fx[o], fx[o + 1]]);
    let mut st = MachineState::zeroed();
    st.x87.fcw = u16_at(FX_FCW);
    st.x87.fsw = u16_at(FX_FSW);
    st.x87.tag = fx[FX_FTW];
    for i in 0..8 {
        st.x87.st[i] = (u64_at(FX_ST + 16 * i), u16_at(FX_ST + 16 * i + 8));
    }
    st.mxcsr = u32::from_le_bytes(fx[FX_MXCSR..FX_MXCSR + 4].try_into().unwrap_or([0; 4]));
    for i in 0..16 {
        st.xmm[i] = [u64_at(FX_XMM + 16 * i), u64_at(FX_XMM + 16 * i + 8)];
    }
    st
}
