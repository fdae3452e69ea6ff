//! A random-code fuzzer for the JIT: random programs run on tier 0 and on the JIT at threshold 1
//! (every block translated at its first entry), whose end states must be identical.
//!
//! A program is built from the instruction differential's generator (`gen::build_case`: every
//! form the differential covers, with its random operands) laid out as a sequence in 64-bit user
//! mode at CPL 3, and then:
//! - **loops**: the sequence is the body of a loop run `LOOP_ROUNDS` times (R15, which the
//!   generator never uses, counts), so the JIT's loop code and cached registers are exercised;
//!   direct branches and calls of the generator jump 1 to 3 instructions forward;
//! - **memory**: before an instruction with a memory operand (or a string instruction, or a
//!   DIV), `mov reg, imm64`s put back the register values the generator chose, so most accesses
//!   land in the two-page data buffer as generated; some are moved to straddle the buffer's
//!   inner page boundary (**page crossings**) or its end, where the next page is unmapped
//!   (**faults**: a page-crossing access whose second page faults);
//! - **self-modifying stores**: RIP-relative byte stores into the immediate of another of the
//!   body's `mov reg, imm64` (before or after the store, inside the same translated block or
//!   another one), so the code stays valid but changes;
//! - **faults** of every other kind the random operands give (#DE, #GP, #UD, a pop off the
//!   buffer...): both engines stop there, are compared, and go on after the faulting
//!   instruction (as a signal handler that skips it would), up to `MAX_FAULTS` times.
//!
//! The code is laid out over more than one page (instructions crossing a page boundary). The
//! run ends when the program falls off its last code page (an instruction-fetch #PF), at a
//! stop other than a fault, or at an instruction limit; at each fault and at the end both CPUs
//! are compared with the JIT
//! lockstep's comparison (every register, all flags, x87/SSE, MSRs, the retired count, the exit)
//! and the RAM byte for byte.

use crate::gen::{build_case, case_seed, effective_address, Case};
use crate::lockstep::jit::cpu_diff;
use crate::native::GPRS;
use crate::state::{BUF, BUF_LEN};
use emu::decode::table;
use emu::engine::{Engine, Exit, Limit};
use emu::exception::{pf_error, vector, Stop};
use emu::mem::GuestRam;
use emu::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};
use emu::{Cpu, Interp};
use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, FlowControl, Instruction, InstructionBlock, MemoryOperand, Mnemonic,
    Register,
};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};

const PAGE: u64 = 0x1000;
/// Where the program's code starts (pages mapped read-write-execute, the page after unmapped).
pub const CODE: u64 = 0x20_0000_0000;
/// Code pages mapped.
const CODE_PAGES: u64 = 8;
/// Times the body runs.
pub const LOOP_ROUNDS: u64 = 6;
/// Instructions at most per run (the loop is bounded, but REP prefixes with a large RCX are not).
const MAX_INSTRUCTIONS: u64 = 2_000_000;
/// Faults skipped at most per run.
const MAX_FAULTS: u64 = 200;

/// What one program did on both engines.
#[derive(Debug)]
pub struct Outcome {
    /// Instructions retired (tier 0's count).
    pub retired: u64,
    /// How tier 0's run ended.
    pub exit: String,
    /// Instructions the JIT ran in translated code, and translations self-modifying stores
    /// dropped.
    pub translated: u64,
    pub dropped: u64,
    /// Regions of several blocks the JIT compiled (at threshold 1, when a block is compiled
    /// again after a store into code or a flush: its successors are cached by then).
    pub regions: u64,
    /// Faults taken (and skipped) before the end.
    pub faults: u64,
    /// The differences (empty: the engines agree).
    pub diffs: Vec<String>,
}

/// The fuzzer: the forms it draws from and a random source.
pub struct Fuzzer {
    forms: Vec<Code>,
    runner: TestRunner,
    rng: u64,
}

/// Forms whose result the host or the run's position decides rather than the CPU's semantics,
/// or that leave the program's control flow (they are left out).
fn excluded(code: Code) -> bool {
    let m = code.mnemonic();
    matches!(
        m,
        Mnemonic::Rdtsc | Mnemonic::Rdtscp | Mnemonic::Rdrand | Mnemonic::Rdseed | Mnemonic::Rdpid | Mnemonic::Syscall
    ) || !matches!(
        Instruction::with(code).flow_control(),
        FlowControl::Next | FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch | FlowControl::Call
    )
}

impl Fuzzer {
    /// Every form the instruction differential covers, minus [`excluded`] ones; `seed` fixes
    /// the programs.
    pub fn new(seed: u64) -> Fuzzer {
        let (forms, _) = crate::harness::select(&crate::harness::Config {
            cases: 1,
            seed,
            filter: None,
            max_shrink_iters: 0,
            threads: 1,
            verbose: false,
            jit: false,
        });
        let forms = forms.into_iter().filter(|&c| !excluded(c)).collect();
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let runner = TestRunner::new_with_rng(PtConfig::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
        Fuzzer { forms, runner, rng: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// One random case of a random form (forms whose seed gives no runnable case are redrawn).
    fn case(&mut self) -> Case {
        loop {
            let pick = (self.next() % self.forms.len() as u64) as usize;
            let code = self.forms[pick];
            let Ok(tree) = case_seed().new_tree(&mut self.runner) else { continue };
            let (reg_ok, mem_ok) = (table::lookup(code, false).is_some(), table::lookup(code, true).is_some());
            if let Ok(c) = build_case(code, &tree.current(), reg_ok, mem_ok) {
                return c;
            }
        }
    }

    /// A random program of about `len` generated instructions (see the module doc).
    pub fn program(&mut self, len: usize) -> Vec<u8> {
        // Instructions with "ip" = label: index * 16 in a virtual space, so branches can name
        // later instructions; BlockEncoder lays them out and fixes the displacements.
        let mut body: Vec<Instruction> = Vec::new();
        let mut imm_movs: Vec<usize> = Vec::new();
        let mut smc: Vec<usize> = Vec::new();
        let mut branches: Vec<usize> = Vec::new();
        let first = self.case();
        // Start state: the first case's registers (RSP in the buffer) and R15 the loop count.
        for (i, &v) in first.init.gpr.iter().enumerate() {
            if i != 15 {
                body.push(mov_imm(GPRS[i], v));
            }
        }
        body.push(mov_imm(Register::R15, LOOP_ROUNDS));
        let head = body.len();
        for _ in 0..len {
            let case = self.case();
            let mut ins = case.instr;
            let mut regs: Vec<Register> = Vec::new();
            if ins.memory_base() != Register::None && ins.memory_base() != Register::RIP {
                regs.push(ins.memory_base());
            }
            if ins.memory_index() != Register::None {
                regs.push(ins.memory_index());
            }
            if ins.is_string_instruction() || ins.has_rep_prefix() || ins.has_repne_prefix() {
                regs.extend([Register::RSI, Register::RDI, Register::RCX]);
            }
            if matches!(ins.mnemonic(), Mnemonic::Div | Mnemonic::Idiv) {
                regs.extend([Register::RAX, Register::RDX]);
                if ins.op0_register() != Register::None {
                    regs.push(ins.op0_register().full_register());
                }
            }
            let mut values: Vec<(Register, u64)> =
                regs.iter().filter_map(|r| Some((*r, case.init.gpr[gpr_index(r.full_register())?]))).collect();
            // Move some accesses onto the inner page boundary or the buffer's end.
            if let (Some(ea), Some(first)) = (effective_address(&ins, &case.init), values.first_mut()) {
                if regs.first() == Some(&ins.memory_base()) {
                    let k = 1 + self.next() % 7;
                    let to = match self.next() % 8 {
                        0 => Some(BUF + PAGE - k),
                        1 => Some(BUF + BUF_LEN as u64 - k),
                        _ => None,
                    };
                    if let Some(to) = to {
                        first.1 = first.1.wrapping_add(to.wrapping_sub(ea));
                    }
                }
            }
            for (r, v) in values {
                imm_movs.push(body.len());
                body.push(mov_imm(r.full_register(), v));
            }
            if ins.is_ip_rel_memory_operand() {
                continue; // the generator's layout, not this one's
            }
            if matches!(
                ins.flow_control(),
                FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch | FlowControl::Call
            ) {
                branches.push(body.len());
                ins.set_near_branch64(0);
            }
            body.push(ins);
            if self.next().is_multiple_of(10) {
                smc.push(body.len());
                body.push(Instruction::default()); // filled in below
            }
        }
        let back = body.len();
        body.push(Instruction::with1(Code::Dec_rm64, Register::R15).expect("dec r15"));
        body.push(Instruction::with_branch(Code::Jne_rel32_64, 0).expect("jne"));
        // Fall off the code into the unmapped page: pad with NOPs up to it.
        for (i, ins) in body.iter_mut().enumerate() {
            ins.set_ip(label(i));
        }
        body[back + 1].set_near_branch64(label(head));
        let n = body.len();
        for &b in &branches {
            let to = (b + 1 + (self.next() % 3) as usize).min(n - 2);
            body[b].set_near_branch64(label(to));
        }
        // First pass with placeholder stores, to learn where each imm64 lies.
        for &s in &smc {
            body[s] = smc_store(label(s), CODE, 0);
            body[s].set_ip(label(s));
        }
        let Some(offsets) = encode(&body) else { return Vec::new() };
        if !imm_movs.is_empty() {
            for &s in &smc {
                let m = imm_movs[(self.next() % imm_movs.len() as u64) as usize];
                let byte = CODE + offsets[m] as u64 + 2 + self.next() % 8;
                body[s] = smc_store(label(s), byte, self.next() as u8);
                body[s].set_ip(label(s));
            }
        }
        encode_bytes(&body).unwrap_or_default()
    }
}

/// A time stamp counter that never moves, so RDTSC gives both engines the same value.
struct FixedTsc;

impl emu::cpu::TscSource for FixedTsc {
    fn tsc(&self, _retired: u64) -> u64 {
        0x1234_5678_9abc
    }
}

/// The "ip" of body instruction `i` before layout.
fn label(i: usize) -> u64 {
    CODE + (i as u64) * 16
}

fn gpr_index(r: Register) -> Option<usize> {
    GPRS.iter().position(|&g| g == r)
}

fn mov_imm(r: Register, v: u64) -> Instruction {
    Instruction::with2(Code::Mov_r64_imm64, r, v).expect("mov r64, imm64")
}

/// `mov byte [rip + target], value`: the displacement is resolved by the block encoder.
fn smc_store(_at: u64, target: u64, value: u8) -> Instruction {
    let mem = MemoryOperand::with_base_displ(Register::RIP, target as i64);
    Instruction::with2(Code::Mov_rm8_imm8, mem, value as u32).expect("mov byte [rip+d], imm8")
}

fn encode_result(body: &[Instruction]) -> Option<iced_x86::BlockEncoderResult> {
    let block = InstructionBlock::new(body, CODE);
    BlockEncoder::encode(64, block, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).ok()
}

fn encode(body: &[Instruction]) -> Option<Vec<u32>> {
    encode_result(body).map(|r| r.new_instruction_offsets)
}

fn encode_bytes(body: &[Instruction]) -> Option<Vec<u8>> {
    encode_result(body).map(|r| r.code_buffer)
}

/// One CPU with the fuzzer's pages: the data buffer (two pages, read-write, unmapped after),
/// the code pages (read-write-execute, unmapped after).
struct Side {
    cpu: Cpu,
    engine: Box<dyn Engine>,
    /// The code pages' frames, in order.
    code_frames: Vec<u64>,
}

/// How one leg of a run (up to a stop) ended.
#[derive(Debug, PartialEq, Eq)]
enum Leg {
    /// A fault in the program (not a fetch): the harness skips the instruction and goes on,
    /// as a signal handler would.
    Fault(String),
    /// The end: the fetch fault past the code, another stop, the limit, an engine error.
    End(String),
}

impl Side {
    fn new(engine: Box<dyn Engine>, code: &[u8]) -> std::io::Result<Side> {
        let mut ram = GuestRam::new(1 << 20)?;
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        // The generator leaves RDTSC out, but a random store can still write one into the code
        // (a self-modifying store changes an address register's immediate, a later store lands
        // in code): both sides then read the same fixed counter, not the host clock.
        cpu.tsc = Box::new(FixedTsc);
        emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        let rw = PROT_READ | PROT_WRITE;
        let rwx = rw | PROT_EXEC;
        aspace.add_region(&mut cpu.ram, BUF, BUF + BUF_LEN as u64, rw);
        aspace.add_region(&mut cpu.ram, CODE, CODE + CODE_PAGES * PAGE, rwx);
        let oom = || std::io::Error::other("guest RAM exhausted");
        for p in 0..BUF_LEN as u64 / PAGE {
            let f = aspace.populate(&mut cpu.ram, BUF + p * PAGE, rw).ok_or_else(oom)?;
            if let Some(b) = cpu.ram.slice_mut(f, PAGE as usize) {
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (i as u8).wrapping_mul(37).wrapping_add(p as u8);
                }
            }
        }
        let mut code_frames = Vec::new();
        for p in 0..CODE_PAGES {
            let f = aspace.populate(&mut cpu.ram, CODE + p * PAGE, rwx).ok_or_else(oom)?;
            code_frames.push(f);
            let at = (p * PAGE) as usize;
            if let Some(dst) = cpu.ram.slice_mut(f, PAGE as usize) {
                dst.fill(0x90); // NOPs up to the unmapped page
                if let Some(src) = code.get(at.min(code.len())..code.len().min(at + PAGE as usize)) {
                    dst[..src.len()].copy_from_slice(src);
                }
            }
        }
        cpu.state.rip = CODE;
        cpu.state.set_rflags(0x202);
        Ok(Side { cpu, engine, code_frames })
    }

    /// The length of the (current, possibly rewritten) instruction at `rip` in the code pages.
    fn length_at(&self, rip: u64) -> Option<u64> {
        let mut bytes = Vec::with_capacity(15);
        for a in rip..rip + 15 {
            let page = a.checked_sub(CODE)? / PAGE;
            let Some(&f) = self.code_frames.get(page as usize) else { break };
            bytes.push(*self.cpu.ram.slice(f + a % PAGE, 1)?.first()?);
        }
        let ins = iced_x86::Decoder::with_ip(64, &bytes, rip, iced_x86::DecoderOptions::NONE).decode();
        (!ins.is_invalid()).then_some(ins.len() as u64)
    }

    /// Runs to the next stop as the user-mode runner would see it, or the limit.
    fn run(&mut self) -> Leg {
        loop {
            let left = MAX_INSTRUCTIONS.saturating_sub(self.cpu.retired);
            if left == 0 {
                return Leg::End("limit".into());
            }
            let exit = match self.engine.run(&mut self.cpu, &Limit::instructions(left)) {
                Ok(e) => e,
                Err(e) => return Leg::End(format!("engine error: {e}")),
            };
            let exit = match exit {
                Exit::Limit | Exit::Poll | Exit::Stop(Stop::Yield) => continue,
                Exit::Unemulated => match Interp::new().step(&mut self.cpu) {
                    None | Some(Exit::Limit | Exit::Poll) => continue,
                    Some(e) => e,
                },
                e => e,
            };
            let (rip, cr2) = (self.cpu.state.rip, self.cpu.fault_addr);
            let text = format!("{exit:?} at {rip:#x} cr2 {cr2:#x}");
            return match exit {
                Exit::Stop(Stop::Fault(f)) if !(f.vector == vector::PF && f.error_code & pf_error::FETCH != 0) => {
                    Leg::Fault(text)
                }
                _ => Leg::End(text),
            };
        }
    }
}

/// Runs `code` on tier 0 and on the JIT at threshold 1, comparing the states at every fault
/// (after which both skip the faulting instruction) and at the end.
///
/// # Errors
/// Guest RAM or the JIT's code memory could not be set up, or the host has no JIT.
pub fn run_both(code: &[u8]) -> std::io::Result<Outcome> {
    run_both_corrupting(code, false)
}

/// [`run_both`]; with `corrupt` (the fuzzer's self-test) the JIT side's RBP is changed at the
/// first fault, which must then be reported.
///
/// # Errors
/// As [`run_both`].
pub fn run_both_corrupting(code: &[u8], corrupt: bool) -> std::io::Result<Outcome> {
    let opts = tiers::JitOptions { threshold: 1, code_bytes: 4 << 20, inline: true };
    let (jit, stats) = tiers::new_jit(opts).map_err(std::io::Error::other)?;
    let mut t = Side::new(Box::new(Interp::new()), code)?;
    let mut j = Side::new(jit, code)?;
    let mut faults = 0;
    loop {
        let (a, b) = (t.run(), j.run());
        if corrupt && faults == 0 {
            j.cpu.state.gpr[5] ^= 1;
        }
        let mut diffs = Vec::new();
        if a != b {
            diffs.push(format!("stop: tier0 {a:?}  jit {b:?}"));
        }
        if t.cpu.retired != j.cpu.retired {
            diffs.push(format!("retired: tier0 {}  jit {}", t.cpu.retired, j.cpu.retired));
        }
        if t.cpu.fault_addr != j.cpu.fault_addr {
            diffs.push(format!("fault address: tier0 {:#x}  jit {:#x}", t.cpu.fault_addr, j.cpu.fault_addr));
        }
        diffs.extend(cpu_diff(&t.cpu.state, &j.cpu.state));
        crate::lockstep::jit::ram_differences_into(&t.cpu.ram, &j.cpu.ram, &mut diffs);
        let skip = match &a {
            Leg::Fault(_) if faults < MAX_FAULTS && diffs.is_empty() => t.length_at(t.cpu.state.rip),
            _ => None,
        };
        let Some(len) = skip else {
            let exit = match a {
                Leg::Fault(s) | Leg::End(s) => s,
            };
            let st = stats.borrow();
            let (translated, dropped, regions) = (st.translated_instructions, st.dropped, st.regions);
            return Ok(Outcome { retired: t.cpu.retired, exit, faults, diffs, translated, dropped, regions });
        };
        faults += 1;
        t.cpu.state.rip += len;
        j.cpu.state.rip += len;
    }
}

/// The program disassembled, for a report.
pub fn disassemble(code: &[u8]) -> String {
    use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
    let mut out = String::new();
    let mut f = IntelFormatter::new();
    let mut d = Decoder::with_ip(64, code, CODE, DecoderOptions::NONE);
    for ins in &mut d {
        let mut s = String::new();
        f.format(&ins, &mut s);
        out.push_str(&format!("{:#x}: {s}\n", ins.ip()));
    }
    out
}
