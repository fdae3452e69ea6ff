//! Fault behaviour: which exception an instruction raises, its error code, and that nothing
//! changed (ARCHITECTURE.md, decision 6: an instruction completes or faults with no side effect).
//!
//! Expected vectors and error codes come from the SDM (Vol. 3, Table 6-1 and 4.7 for #PF error
//! codes; Vol. 2 for each instruction's exceptions). On x86-64 Linux hosts the host CPU is a
//! second oracle: the instruction runs natively in a forked child, and the signal the child
//! dies of must match the vector (#DE → SIGFPE, #GP/#PF → SIGSEGV, #UD → SIGILL).

use conformance::guest::GuestRunner;
use conformance::state::{MachineState, Outcome, BUF, BUF_LEN, FALLTHROUGH, INSN_PAGE};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};

const DE: u8 = 0;
const UD: u8 = 6;
const GP: u8 = 13;
const PF: u8 = 14;
/// #PF error code bits (SDM Vol. 3, 4.7): P, W/R, U/S.
const PF_P: u32 = 1;
const PF_W: u32 = 2;
const PF_U: u32 = 4;

fn encode(ins: Instruction) -> Vec<u8> {
    let mut enc = Encoder::new(64);
    let len = enc.encode(&ins, FALLTHROUGH - 15).expect("encodes");
    let mut enc = Encoder::new(64);
    enc.encode(&ins, FALLTHROUGH - len as u64).expect("encodes");
    enc.take_buffer()
}

fn state(gpr: &[(usize, u64)]) -> MachineState {
    let mut st = MachineState::zeroed();
    st.gpr[4] = BUF + 0x1000;
    for &(r, v) in gpr {
        st.gpr[r] = v;
    }
    for (i, b) in st.buf.iter_mut().enumerate() {
        *b = (i * 7) as u8;
    }
    st
}

/// Runs `ins` on tier 0 and checks the fault, that RIP points at the instruction and that no
/// register, flag or buffer byte changed; then, natively, that the host raises `signal`.
fn expect_fault(ins: Instruction, init: MachineState, vector: u8, error_code: Option<u32>, signal: i32) {
    let bytes = encode(ins);
    let mut runners = vec![("tier 0", GuestRunner::new().expect("guest RAM"))];
    if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        // The same instruction as translated code (the JIT at threshold 1) must fault alike.
        runners.push(("the JIT", GuestRunner::jit().expect("JIT")));
    }
    for (engine, mut guest) in runners {
        expect_fault_on(engine, &mut guest, ins, &bytes, &init, vector, error_code);
    }
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let host = conformance::native::with_runner(|n| n.run_forked(&bytes, &init));
        match host {
            Ok(r) => assert_eq!(r, Err(signal), "{ins}: the host CPU should die of signal {signal}"),
            Err(why) => eprintln!("native check skipped: {why}"),
        }
    }
    let _ = signal;
}

/// The fault checks of [`expect_fault`] on one engine.
fn expect_fault_on(
    engine: &str,
    guest: &mut GuestRunner,
    ins: Instruction,
    bytes: &[u8],
    init: &MachineState,
    vector: u8,
    error_code: Option<u32>,
) {
    let at = FALLTHROUGH - bytes.len() as u64;
    match guest.run(bytes, init) {
        Outcome::Fault { vector: v, error_code: e, state, detail } => {
            assert_eq!(v, vector, "{ins} on {engine}: vector ({detail})");
            if let Some(code) = error_code {
                assert_eq!(e, code, "{ins} on {engine}: error code");
            }
            assert_eq!(state.rip, at, "{ins} on {engine}: RIP must point at the faulting instruction");
            let mut expected = init.clone();
            expected.gpr[15] = state.gpr[15]; // the harness's state-block register
            assert_eq!(state.gpr, expected.gpr, "{ins} on {engine}: registers changed");
            assert_eq!(state.rflags & 0xcd5, init.rflags & 0xcd5, "{ins} on {engine}: flags changed");
            assert_eq!(state.xmm, init.xmm, "{ins} on {engine}: XMM changed");
            assert!(state.buf == init.buf, "{ins} on {engine}: memory changed");
        }
        Outcome::Completed(_) => panic!("{ins}: {engine} did not fault"),
    }
}

#[test]
fn divide_by_zero_is_de() {
    let ins = Instruction::with1(Code::Div_rm64, Register::RCX).unwrap();
    expect_fault(ins, state(&[(0, 5), (2, 0), (1, 0)]), DE, None, libc_sig::FPE);
}

#[test]
fn quotient_overflow_is_de() {
    // IDIV: -2^63 / -1 does not fit (SDM Vol. 2, IDIV "#DE if the quotient is too large").
    let ins = Instruction::with1(Code::Idiv_rm64, Register::RCX).unwrap();
    expect_fault(ins, state(&[(0, 1 << 63), (2, u64::MAX), (1, u64::MAX)]), DE, None, libc_sig::FPE);
    // DIV r/m8: AX = 0xffff / 1 = 0xffff does not fit in AL.
    let ins = Instruction::with1(Code::Div_rm8, Register::CL).unwrap();
    expect_fault(ins, state(&[(0, 0xffff), (1, 1)]), DE, None, libc_sig::FPE);
}

#[test]
fn misaligned_movaps_is_gp0() {
    // Legacy SSE 16-byte memory operands must be aligned: #GP(0) (SDM Vol. 2, MOVAPS).
    let ins =
        Instruction::with2(Code::Movaps_xmm_xmmm128, Register::XMM0, MemoryOperand::with_base(Register::RAX)).unwrap();
    expect_fault(ins, state(&[(0, BUF + 0x108)]), GP, Some(0), libc_sig::SEGV);
}

#[test]
fn ud2_is_ud() {
    expect_fault(Instruction::with(Code::Ud2), state(&[]), UD, None, libc_sig::ILL);
}

#[test]
fn load_from_unmapped_page_is_pf_user_read() {
    let ins = Instruction::with2(Code::Mov_r64_rm64, Register::RAX, MemoryOperand::with_base(Register::RBX)).unwrap();
    expect_fault(ins, state(&[(3, BUF + BUF_LEN as u64 + 0x10)]), PF, Some(PF_U), libc_sig::SEGV);
}

#[test]
fn store_to_read_only_code_page_is_pf_present_write_user() {
    let ins = Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base(Register::RBX), Register::RAX).unwrap();
    expect_fault(ins, state(&[(3, INSN_PAGE + 0x100), (0, 0x1234)]), PF, Some(PF_P | PF_W | PF_U), libc_sig::SEGV);
}

#[test]
fn page_crossing_store_writes_nothing_when_the_second_page_faults() {
    // An 8-byte store whose last 4 bytes fall on an unmapped page: #PF, and the first 4 bytes
    // must not be written either (ARCHITECTURE.md, decision 6; hardware checks both pages first).
    let ins = Instruction::with2(Code::Mov_rm64_r64, MemoryOperand::with_base(Register::RBX), Register::RAX).unwrap();
    let at = BUF + BUF_LEN as u64 - 4;
    expect_fault(ins, state(&[(3, at), (0, u64::MAX)]), PF, Some(PF_W | PF_U), libc_sig::SEGV);
}

#[test]
fn read_modify_write_to_read_only_page_reports_a_write() {
    // ADD [m], r is translated for write first: the error code has W set even though the read
    // would have succeeded (SDM Vol. 3, 4.7).
    let ins = Instruction::with2(Code::Add_rm64_r64, MemoryOperand::with_base(Register::RBX), Register::RAX).unwrap();
    expect_fault(ins, state(&[(3, INSN_PAGE + 0x80), (0, 1)]), PF, Some(PF_P | PF_W | PF_U), libc_sig::SEGV);
}

/// Signal numbers (Linux, every architecture Strata builds for).
mod libc_sig {
    pub const ILL: i32 = 4;
    pub const FPE: i32 = 8;
    pub const SEGV: i32 = 11;
}
