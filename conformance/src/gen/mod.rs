//! Random instances of one instruction form, and the initial state they run from.
//!
//! A [`CaseSeed`] (drawn by proptest, so failures shrink toward small values) is turned into a
//! concrete instruction by [`build_case`]: the form's operand kinds (iced-x86 `OpCodeInfo`) say
//! which operands are registers, memory, immediates or branch targets. Registers are drawn from
//! pools that leave out RSP (the stack stays in the data buffer) and R15 (it holds the native
//! state block). A memory operand gets a random base, optional index, scale and displacement,
//! and its base register's value is then chosen so that the effective address lands inside the
//! data buffer (16-byte aligned for 16-byte operands, so legacy SSE alignment checks never
//! fire). Implicit memory (stack, string instructions, XLAT, LEAVE) is pointed into the buffer
//! too, and inputs that would fault (DIV/IDIV) are adjusted. [`is_safe`] re-checks the native
//! run's invariants on the final instance; a case that fails it is skipped, never run.

use crate::state::{MachineState, BUF, BUF_LEN, FALLTHROUGH, STATE_BLOCK, TAKEN};
use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, Mnemonic, OpCodeOperandKind as K, OpKind, Register,
};
use proptest::prelude::*;

mod fixup;
use fixup::fix_implicit;
pub use fixup::{division_faults, effective_address, is_safe};

/// Everything random about one case.
#[derive(Clone, Debug)]
pub struct CaseSeed {
    pub gpr: [u64; 16],
    /// Bits 0-6 select CF, PF, AF, ZF, SF, OF, DF.
    pub flags: u8,
    pub xmm: [[u64; 2]; 16],
    /// Rounding control (bits 0-1), FTZ (2), DAZ (3), sticky exception flags (bits 4-9).
    pub mxcsr: u16,
    /// One register choice per operand.
    pub picks: [u8; 6],
    /// Register or memory form, when the form has both.
    pub use_mem: bool,
    pub mem: MemSeed,
    pub imm: u64,
    pub buf_seed: u64,
    /// Written at the memory operand (its value matters more than the rest of the buffer).
    pub mem_val: [u64; 2],
    /// REP/REPNE prefix choice for string instructions, RCX bound and branch choices.
    pub extra: u8,
    pub x87: X87Seed,
}

/// The x87 part of a case.
#[derive(Clone, Debug)]
pub struct X87Seed {
    /// ST(0)..ST(7) contents (significand, sign and exponent).
    pub st: [(u64, u16); 8],
    /// Bit i set: ST(i) is in use.
    pub valid: u8,
    pub top: u8,
    /// Precision control (bits 0-1) and rounding control (bits 2-3).
    pub control: u8,
    /// Sticky exception flags (bits 0-6) and condition codes (bits 8-11).
    pub status: u16,
}

#[derive(Clone, Debug)]
pub struct MemSeed {
    pub base: u8,
    /// Index register choice; values ≥ 14 mean no index.
    pub index: u8,
    pub scale: u8,
    pub disp: i16,
    /// Offset of the effective address in the buffer.
    pub offset: u16,
    pub index_val: u8,
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_fffe,
    0xffff_ffff_8000_0000,
    0xffff_ffff_ffff_ff80,
    0x8000_0000_0000_0001,
];

/// Integer values: uniform, small, and the edges of each width.
pub fn int_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => any::<u64>(),
        3 => proptest::sample::select(INTERESTING),
        2 => 0u64..64,
        1 => any::<u8>().prop_map(|b| (b as i8) as i64 as u64),
        1 => any::<u32>().prop_map(|d| d as u64),
    ]
}

/// IEEE bit patterns at the edges: zeros, ones, infinities, NaNs (quiet and signalling),
/// denormals, the largest finite values.
const FP64: &[u64] = &[
    0,
    0x8000_0000_0000_0000,
    0x3ff0_0000_0000_0000,
    0xbff8_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0xfff8_0000_0000_0001,
    0x7ff0_0000_0000_0001,
    0x0000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x7fef_ffff_ffff_ffff,
    0x4330_0000_0000_0000,
    0x43e0_0000_0000_0000,
    0xc3e0_0000_0000_0000,
    0x41e0_0000_0000_0000,
];
const FP32: &[u32] = &[
    0,
    0x8000_0000,
    0x3f80_0000,
    0xbfc0_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0xffc0_0001,
    0x7f80_0001,
    1,
    0x007f_ffff,
    0x7f7f_ffff,
    0x4b00_0000,
    0x4f00_0000,
    0xcf00_0000,
    0x3f00_0000,
];

/// One 64-bit lane of an XMM register: raw bits, a double, or two singles.
pub fn lane_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => proptest::sample::select(FP64),
        2 => (proptest::sample::select(FP32), proptest::sample::select(FP32)).prop_map(|(a, b)| (b as u64) << 32 | a as u64),
        1 => (-1000i32..1000).prop_map(|v| (v as f64).to_bits()),
        1 => ((-1000i32..1000), (-1000i32..1000)).prop_map(|(a, b)| ((b as f32).to_bits() as u64) << 32 | (a as f32).to_bits() as u64),
        1 => proptest::sample::select(INTERESTING),
    ]
}

fn xmm_value() -> impl Strategy<Value = [u64; 2]> {
    (lane_value(), lane_value()).prop_map(|(a, b)| [a, b])
}

/// An 80-bit extended value from a double (exact).
fn ext80_of_f64(bits: u64) -> (u64, u16) {
    let sign = ((bits >> 63) as u16) << 15;
    let exp = (bits >> 52 & 0x7ff) as u16;
    let frac = bits & ((1 << 52) - 1);
    match exp {
        0 if frac == 0 => (0, sign),
        0 => (frac << 11, sign), // a denormal double becomes an x87 denormal pattern
        0x7ff => (1 << 63 | frac << 11, sign | 0x7fff),
        _ => (1 << 63 | frac << 11, sign | (exp - 1023 + 16383)),
    }
}

const EXT80: &[(u64, u16)] = &[
    (0, 0),
    (0, 0x8000),
    (1 << 63, 0x3fff),
    (1 << 63, 0x7fff),
    (1 << 63, 0xffff),
    (0xc000_0000_0000_0000, 0x7fff),
    (0xa000_0000_0000_0000, 0x7fff),
    (1, 0),
    (0x8000_0000_0000_0001, 1),
    (0xffff_ffff_ffff_ffff, 0x7ffe),
    (0x7fff_ffff_ffff_ffff, 0x4000),
    (0xc90f_daa2_2168_c235, 0x4000),
    (0xc90f_daa2_2168_c235, 0x403e),
];

/// x87 register contents: moderate normals, exact doubles, edge cases, raw bits.
pub fn ext80_value() -> impl Strategy<Value = (u64, u16)> {
    prop_oneof![
        3 => (any::<u64>(), 0x3fc0u16..0x4040, any::<bool>()).prop_map(|(m, e, s)| (m | 1 << 63, e | (s as u16) << 15)),
        2 => lane_value().prop_map(ext80_of_f64),
        2 => proptest::sample::select(EXT80),
        1 => (-1000i32..1000).prop_map(|v| ext80_of_f64((v as f64).to_bits())),
        1 => (any::<u64>(), any::<u16>()),
    ]
}

fn x87_seed() -> impl Strategy<Value = X87Seed> {
    (
        proptest::array::uniform8(ext80_value()),
        prop_oneof![any::<u8>(), Just(0xffu8), Just(0x03u8), Just(0x01u8), Just(0x7fu8), Just(0u8)],
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
    )
        .prop_map(|(st, valid, top, control, status)| X87Seed { st, valid, top, control, status })
}

/// The strategy for a whole case.
pub fn case_seed() -> impl Strategy<Value = CaseSeed> {
    let mem = (any::<u8>(), any::<u8>(), any::<u8>(), any::<i16>(), any::<u16>(), any::<u8>()).prop_map(
        |(base, index, scale, disp, offset, index_val)| MemSeed { base, index, scale, disp, offset, index_val },
    );
    (
        proptest::array::uniform16(int_value()),
        any::<u8>(),
        proptest::array::uniform16(xmm_value()),
        any::<u16>(),
        any::<[u8; 6]>(),
        any::<bool>(),
        mem,
        int_value(),
        any::<u64>(),
        (xmm_value(), any::<u8>(), x87_seed()),
    )
        .prop_map(|(gpr, flags, xmm, mxcsr, picks, use_mem, mem, imm, buf_seed, (mem_val, extra, x87))| CaseSeed {
            gpr,
            flags,
            xmm,
            mxcsr,
            picks,
            use_mem,
            mem,
            imm,
            buf_seed,
            mem_val,
            extra,
            x87,
        })
}

/// A ready-to-run case.
#[derive(Clone, Debug)]
pub struct Case {
    pub instr: Instruction,
    pub bytes: Vec<u8>,
    pub init: MachineState,
}

/// GPRs operands may use (no RSP, no R15), in encoding order.
const POOL64: [Register; 14] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RBX,
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
];
const POOL8: [Register; 18] = [
    Register::AL,
    Register::CL,
    Register::DL,
    Register::BL,
    Register::AH,
    Register::CH,
    Register::DH,
    Register::BH,
    Register::BPL,
    Register::SIL,
    Register::DIL,
    Register::R8L,
    Register::R9L,
    Register::R10L,
    Register::R11L,
    Register::R12L,
    Register::R13L,
    Register::R14L,
];

pub(crate) fn gpr_of_size(pick: u8, bytes: u32) -> Register {
    let full = POOL64[pick as usize % POOL64.len()];
    let n = full as u32 - Register::RAX as u32;
    let base = match bytes {
        2 => Register::AX,
        4 => Register::EAX,
        _ => Register::RAX,
    };
    Register::values().nth(base as usize + n as usize).unwrap_or(full)
}

fn xmm(pick: u8) -> Register {
    Register::values().nth(Register::XMM0 as usize + (pick % 16) as usize).unwrap_or(Register::XMM0)
}

fn st_reg(pick: u8) -> Register {
    Register::values().nth(Register::ST0 as usize + (pick % 8) as usize).unwrap_or(Register::ST0)
}

/// GPR index (0-15) of a general-purpose register of any size.
pub fn gpr_index(r: Register) -> Option<usize> {
    if !r.is_gpr() {
        return None;
    }
    Some(r.full_register() as usize - Register::RAX as usize)
}

/// Why a seed did not give a runnable case.
#[derive(Clone, Debug)]
pub struct Skip(pub &'static str);

/// What a memory operand was given, to place its effective address afterwards.
struct MemPlan {
    base: Register,
    index: Register,
    scale: u32,
    disp: i64,
    moffs: bool,
}

fn xorshift_fill(buf: &mut [u8], mut s: u64) {
    s |= 1;
    for chunk in buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let b = s.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// True for the string instructions (implicit RSI/RDI memory, optional REP). Decided by operand
/// kind, not mnemonic: MOVSD and CMPSD are also SSE2 mnemonics.
pub(crate) fn is_string(code: Code) -> bool {
    code.op_code().op_kinds().iter().any(|k| matches!(k, K::es_rDI | K::seg_rSI))
}

/// Builds the instance `seed` describes for `code`. `mem_ok` / `reg_ok` say which forms tier 0
/// implements (an r/m operand takes the memory form only if `mem_ok`).
///
/// # Errors
/// The seed does not give an encodable, safely runnable instance.
pub fn build_case(code: Code, seed: &CaseSeed, reg_ok: bool, mem_ok: bool) -> Result<Case, Skip> {
    let op = code.op_code();
    let mut ins = Instruction::default();
    ins.set_code(code);
    let use_mem = if reg_ok && mem_ok { seed.use_mem } else { mem_ok };
    let mut plan: Option<MemPlan> = None;
    let mnemonic = code.mnemonic();
    let string = is_string(code);
    let kinds = if string { &[][..] } else { op.op_kinds() };
    for (i, &k) in kinds.iter().enumerate() {
        let i = i as u32;
        let pick = seed.picks[i as usize % 6];
        let reg = |r: Register, ins: &mut Instruction| {
            ins.set_op_kind(i, OpKind::Register);
            ins.set_op_register(i, r);
        };
        let mut memory = |ins: &mut Instruction, moffs: bool| -> Result<(), Skip> {
            if plan.is_some() {
                return Err(Skip("two memory operands"));
            }
            if string {
                return Err(Skip("string operand"));
            }
            ins.set_op_kind(i, OpKind::Memory);
            let m = &seed.mem;
            let base = POOL64[m.base as usize % POOL64.len()];
            let index = if moffs || m.index as usize >= POOL64.len() || POOL64[m.index as usize] == base {
                Register::None
            } else {
                POOL64[m.index as usize]
            };
            let scale = 1u32 << (m.scale % 4);
            let disp = if moffs {
                0
            } else {
                match m.scale >> 2 & 3 {
                    0 => 0,
                    1 | 2 => (m.disp as i8) as i64,
                    _ => m.disp as i64,
                }
            };
            plan = Some(MemPlan { base: if moffs { Register::None } else { base }, index, scale, disp, moffs });
            Ok(())
        };
        let size = |k: K| match k {
            K::r8_or_mem | K::r8_reg | K::r8_opcode => 1,
            K::r16_or_mem | K::r16_reg | K::r16_rm | K::r16_opcode | K::r16_reg_mem => 2,
            K::r32_or_mem | K::r32_reg | K::r32_rm | K::r32_opcode | K::r32_reg_mem => 4,
            _ => 8,
        };
        match k {
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::r64_or_mem if use_mem => memory(&mut ins, false)?,
            K::r8_or_mem | K::r8_reg | K::r8_opcode => reg(POOL8[pick as usize % POOL8.len()], &mut ins),
            K::r16_or_mem
            | K::r16_reg
            | K::r16_rm
            | K::r16_opcode
            | K::r32_or_mem
            | K::r32_reg
            | K::r32_rm
            | K::r32_opcode
            | K::r64_or_mem
            | K::r64_reg
            | K::r64_rm
            | K::r64_opcode => reg(gpr_of_size(pick, size(k)), &mut ins),
            K::r16_reg_mem | K::r32_reg_mem | K::r64_reg_mem => reg(gpr_of_size(pick, size(k)), &mut ins),
            K::r32_vvvv => reg(gpr_of_size(pick, 4), &mut ins),
            K::r64_vvvv => reg(gpr_of_size(pick, 8), &mut ins),
            K::xmm_or_mem if use_mem => memory(&mut ins, false)?,
            K::xmm_or_mem | K::xmm_reg | K::xmm_rm => reg(xmm(pick), &mut ins),
            K::mem => {
                if string {
                    return Err(Skip("string operand"));
                }
                memory(&mut ins, false)?
            }
            K::mem_offs => memory(&mut ins, true)?,
            K::seg_rDI => {
                // MASKMOVDQU's implicit [RDI]; `fix_implicit` points RDI into the buffer.
                ins.set_op_kind(i, OpKind::MemorySegRDI);
            }
            K::seg_rBX_al => {
                // XLAT: [RBX + AL]; `fix_implicit` points RBX into the buffer.
                ins.set_op_kind(i, OpKind::Memory);
                ins.set_memory_base(Register::RBX);
                ins.set_memory_index(Register::AL);
                ins.set_memory_index_scale(1);
            }
            K::st0 => reg(Register::ST0, &mut ins),
            K::sti_opcode => reg(st_reg(pick), &mut ins),
            K::al => reg(Register::AL, &mut ins),
            K::cl => reg(Register::CL, &mut ins),
            K::ax => reg(Register::AX, &mut ins),
            K::dx => reg(Register::DX, &mut ins),
            K::eax => reg(Register::EAX, &mut ins),
            K::rax => reg(Register::RAX, &mut ins),
            K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64 => {
                let kind = match k {
                    K::imm8 | K::imm8_const_1 => OpKind::Immediate8,
                    K::imm8sex16 => OpKind::Immediate8to16,
                    K::imm8sex32 => OpKind::Immediate8to32,
                    K::imm8sex64 => OpKind::Immediate8to64,
                    K::imm16 => OpKind::Immediate16,
                    K::imm32 => OpKind::Immediate32,
                    K::imm32sex64 => OpKind::Immediate32to64,
                    _ => OpKind::Immediate64,
                };
                // ENTER's second immediate (the nesting level) has a kind of its own.
                let second = i > 0 && ins.op_kind(i - 1) == OpKind::Immediate16 && kind == OpKind::Immediate8;
                let kind = if second { OpKind::Immediate8_2nd } else { kind };
                let v = if second { seed.imm >> 32 & 3 } else { seed.imm };
                // ENTER's frame size: small enough that the new RSP stays inside the buffer.
                let v = if mnemonic == Mnemonic::Enter && !second { v & 0x3ff } else { v };
                let v = if k == K::imm8_const_1 { 1 } else { v };
                ins.set_op_kind(i, kind);
                ins.try_set_immediate_u64(i, v).map_err(|_| Skip("immediate"))?;
            }
            K::br16_1 | K::br16_2 => return Err(Skip("16-bit branch")),
            K::br32_1 | K::br32_4 => return Err(Skip("32-bit branch")),
            K::br64_1 | K::br64_4 => {
                ins.set_op_kind(i, OpKind::NearBranch64);
                ins.set_near_branch64(TAKEN);
            }
            _ => return Err(Skip("operand kind not generated")),
        }
    }
    if string {
        string_operands(&mut ins, code)?;
        match seed.extra % 3 {
            0 => {}
            1 if matches!(mnemonic, Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd | Mnemonic::Scasq) => {
                ins.set_has_repe_prefix(true)
            }
            1 if matches!(mnemonic, Mnemonic::Cmpsb | Mnemonic::Cmpsw | Mnemonic::Cmpsd | Mnemonic::Cmpsq) => {
                ins.set_has_repe_prefix(true)
            }
            1 => ins.set_has_rep_prefix(true),
            _ if matches!(
                mnemonic,
                Mnemonic::Scasb
                    | Mnemonic::Scasw
                    | Mnemonic::Scasd
                    | Mnemonic::Scasq
                    | Mnemonic::Cmpsb
                    | Mnemonic::Cmpsw
                    | Mnemonic::Cmpsd
                    | Mnemonic::Cmpsq
            ) =>
            {
                ins.set_has_repne_prefix(true)
            }
            _ => ins.set_has_rep_prefix(true),
        }
    }

    // Initial state.
    let mut st = MachineState::zeroed();
    st.gpr = seed.gpr;
    st.gpr[15] = STATE_BLOCK;
    st.gpr[4] = BUF + 0xc00 + (seed.gpr[4] & 0x7f8);
    const FLAG_BITS: [u64; 7] = [0x1, 0x4, 0x10, 0x40, 0x80, 0x800, 0x400];
    st.rflags = FLAG_BITS.iter().enumerate().filter(|(i, _)| seed.flags >> i & 1 != 0).fold(0x202, |a, (_, f)| a | f);
    st.xmm = seed.xmm;
    let m = seed.mxcsr as u32;
    st.mxcsr = 0x1f80 | (m & 3) << 13 | (m >> 2 & 1) << 15 | (m >> 3 & 1) << 6 | (m >> 4 & 0x3f);
    xorshift_fill(&mut st.buf, seed.buf_seed);
    let x = &seed.x87;
    let top = (x.top & 7) as usize;
    const PC: [u16; 4] = [0, 2, 3, 3]; // single, double, extended (01 is reserved)
    st.x87.fcw = 0x007f | PC[(x.control & 3) as usize] << 8 | ((x.control >> 2 & 3) as u16) << 10;
    // Sticky flags and condition codes; ES and B stay clear (nothing unmasked is pending).
    st.x87.fsw = (top as u16) << 11 | (x.status & 0x7f & !0x40) | (x.status >> 8 & 7) << 8 | (x.status >> 11 & 1) << 14;
    st.x87.tag = (0..8).filter(|i| x.valid >> i & 1 != 0).fold(0, |t, i| t | 1 << ((top + i) & 7));
    st.x87.st = x.st;

    // Place the memory operand's effective address inside the buffer.
    if let Some(p) = &plan {
        let msize = ins.memory_size().size().max(1) as u64;
        let mut off = 0x40 + (seed.mem.offset as u64 % (BUF_LEN as u64 - 0x80 - msize));
        if msize >= 16 || seed.mem.offset & 0x8000 != 0 {
            off &= !(msize.next_power_of_two().min(16) - 1);
        }
        let ea = BUF + off;
        if p.moffs {
            ins.set_memory_displ_size(8);
            ins.set_memory_displacement64(ea);
        } else {
            let idx_val = seed.mem.index_val as u64;
            if let Some(n) = gpr_index(p.index) {
                st.gpr[n] = idx_val;
            }
            let idx_part = if p.index == Register::None { 0 } else { idx_val * p.scale as u64 };
            let base_val = ea.wrapping_sub(idx_part).wrapping_sub(p.disp as u64);
            if let Some(n) = gpr_index(p.base) {
                st.gpr[n] = base_val;
            }
            ins.set_memory_base(p.base);
            ins.set_memory_index(p.index);
            ins.set_memory_index_scale(if p.index == Register::None { 1 } else { p.scale });
            ins.set_memory_displacement64(p.disp as u64);
            ins.set_memory_displ_size(if p.disp == 0 {
                0
            } else if p.disp == p.disp as i8 as i64 {
                1
            } else {
                4
            });
        }
        let n = msize.min(16) as usize;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.mem_val[0].to_le_bytes());
        bytes[8..].copy_from_slice(&seed.mem_val[1].to_le_bytes());
        let o = off as usize;
        st.buf[o..o + n].copy_from_slice(&bytes[..n]);
    }

    // Encode where the instruction will sit: ending at the end of its page.
    let mut enc = Encoder::new(64);
    let len = enc.encode(&ins, FALLTHROUGH - 15).map_err(|_| Skip("not encodable"))?;
    let at = FALLTHROUGH - len as u64;
    let mut enc = Encoder::new(64);
    let len2 = enc.encode(&ins, at).map_err(|_| Skip("not encodable"))?;
    if len2 != len {
        return Err(Skip("length depends on position"));
    }
    let bytes = enc.take_buffer();
    let mut dec = Decoder::with_ip(64, &bytes, at, DecoderOptions::NONE);
    let decoded = dec.decode();
    if decoded.code() != code || decoded.len() != bytes.len() {
        return Err(Skip("does not decode back to the same form"));
    }
    st.rip = at;
    let mut case = Case { instr: decoded, bytes, init: st };
    fix_implicit(&mut case, seed);
    if !is_safe(&case) {
        return Err(Skip("unsafe for the native run"));
    }
    Ok(case)
}

/// Gives string instructions their fixed operands (iced models them as memory operands
/// through RSI/RDI).
fn string_operands(ins: &mut Instruction, code: Code) -> Result<(), Skip> {
    let m = code.mnemonic();
    let built = match m {
        Mnemonic::Movsb => Instruction::with_movsb(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Movsw => Instruction::with_movsw(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Movsd => Instruction::with_movsd(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Movsq => Instruction::with_movsq(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Cmpsb => Instruction::with_cmpsb(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Cmpsw => Instruction::with_cmpsw(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Cmpsd => Instruction::with_cmpsd(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Cmpsq => Instruction::with_cmpsq(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Lodsb => Instruction::with_lodsb(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Lodsw => Instruction::with_lodsw(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Lodsd => Instruction::with_lodsd(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Lodsq => Instruction::with_lodsq(64, Register::None, iced_x86::RepPrefixKind::None),
        Mnemonic::Stosb => Instruction::with_stosb(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Stosw => Instruction::with_stosw(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Stosd => Instruction::with_stosd(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Stosq => Instruction::with_stosq(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Scasb => Instruction::with_scasb(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Scasw => Instruction::with_scasw(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Scasd => Instruction::with_scasd(64, iced_x86::RepPrefixKind::None),
        Mnemonic::Scasq => Instruction::with_scasq(64, iced_x86::RepPrefixKind::None),
        _ => return Err(Skip("string form")),
    }
    .map_err(|_| Skip("string form"))?;
    if built.code() != code {
        return Err(Skip("string form"));
    }
    *ins = built;
    Ok(())
}
