//! Random instances of one instruction form in 16- or 32-bit code, from the 64-bit harness's
//! [`CaseSeed`]s (so proptest shrinks them the same way).
//!
//! What is generated: register operands from EAX..EDI (no ESP) at the form's width (AL..BH for
//! bytes); memory operands with 32-bit addressing (base, index, scale, displacement) or 16-bit
//! addressing (the eight ModRM forms [BX+SI] .. [BX] and [disp16], with 8- or 16-bit
//! displacements), either as the mode's default or through the address-size prefix; an
//! optional ES/SS/DS segment-override prefix; immediates; near branches to the harness's target.
//! The base register's value is chosen so the effective address lands in the buffer (the upper
//! halves of 16-bit address registers stay random: they must be ignored). Implicit memory
//! (stack, string instructions, XLAT, LEAVE/ENTER, POPA) is pointed into the buffer, segment
//! loads get selectors from [`super::SELECTORS`], and inputs that fault are adjusted (DIV/IDIV,
//! AAM 0, BOUND out of range, BT bit offsets). [`is_safe`] re-checks every memory access with
//! iced-x86's own address computation (segment bases included) before a case may run natively.

use super::{LegacyState, Mode, BUF, CODE, DATA, INSN_PAGE, SELECTORS, SEL_DATA16, SEL_FLAT, SS_SELECTORS, TAKEN_OFF};
use crate::gen::{CaseSeed, Skip};
use crate::state::BUF_LEN;
use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpCodeOperandKind as K, OpKind, Register, RepPrefixKind,
};

/// A ready-to-run case.
#[derive(Clone, Debug)]
pub struct LegacyCase {
    pub mode: Mode,
    pub instr: Instruction,
    pub bytes: Vec<u8>,
    pub init: LegacyState,
    /// SS is a 16-bit (B=0) segment at the start: only SP of ESP is meaningful.
    pub stack16: bool,
}

const POOL32: [Register; 7] =
    [Register::EAX, Register::ECX, Register::EDX, Register::EBX, Register::EBP, Register::ESI, Register::EDI];
const POOL16: [Register; 7] =
    [Register::AX, Register::CX, Register::DX, Register::BX, Register::BP, Register::SI, Register::DI];
const POOL8: [Register; 8] =
    [Register::AL, Register::CL, Register::DL, Register::BL, Register::AH, Register::CH, Register::DH, Register::BH];
/// The 16-bit ModRM memory forms: base, index (SDM Vol. 2, Table 2-1).
const ADDR16: [(Register, Register); 8] = [
    (Register::BX, Register::SI),
    (Register::BX, Register::DI),
    (Register::BP, Register::SI),
    (Register::BP, Register::DI),
    (Register::SI, Register::None),
    (Register::DI, Register::None),
    (Register::BP, Register::None),
    (Register::BX, Register::None),
];

/// Mnemonics left out: they fault or trap at CPL 3, do I/O, read state the two runs do not
/// share (descriptor tables, the TSC, FS/GS, EFLAGS bits beyond the compared ones), or leave
/// CS (far transfers).
fn left_out(m: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        m,
        M::In
            | M::Out
            | M::Insb
            | M::Insw
            | M::Insd
            | M::Outsb
            | M::Outsw
            | M::Outsd
            | M::Hlt
            | M::Cli
            | M::Sti
            | M::Int
            | M::Int1
            | M::Int3
            | M::Into
            | M::Iret
            | M::Iretd
            | M::Syscall
            | M::Sysenter
            | M::Sysexit
            | M::Sysret
            | M::Cpuid
            | M::Rdtsc
            | M::Rdtscp
            | M::Rdpid
            | M::Rdrand
            | M::Rdseed
            | M::Rdpmc
            | M::Pushf
            | M::Pushfd
            | M::Popf
            | M::Popfd
            | M::Lar
            | M::Lsl
            | M::Verr
            | M::Verw
            | M::Sgdt
            | M::Sidt
            | M::Sldt
            | M::Str
            | M::Smsw
            | M::Lgdt
            | M::Lidt
            | M::Lldt
            | M::Ltr
            | M::Lmsw
            | M::Clts
            | M::Invd
            | M::Wbinvd
            | M::Invlpg
            | M::Lfs
            | M::Lgs
            | M::Retf
            | M::Ud0
            | M::Ud1
            | M::Ud2
            | M::Bswap
            | M::Enter
            | M::Xlatb
    )
}

/// Whether `code` is generated in `mode`: valid there (iced-x86's mode flags), integer
/// operands only, not left out, and no branch that would truncate EIP to 16 bits in 32-bit
/// code (the harness's target is above 64 KiB there).
pub fn eligible(code: Code, mode: Mode) -> Result<(), &'static str> {
    let op = code.op_code();
    let valid = match mode {
        Mode::Bits16 => op.mode16(),
        Mode::Bits32 => op.mode32(),
    };
    if !valid {
        return Err("not valid in this mode");
    }
    if !op.is_instruction() || op.fwait() {
        return Err("not an instruction, or an FWAIT alias");
    }
    if code.encoding() != iced_x86::EncodingKind::Legacy && code.encoding() != iced_x86::EncodingKind::VEX {
        return Err("EVEX/XOP/3DNow! encoding");
    }
    if code.cpuid_features().iter().any(|f| !crate::exclude::host_has(*f)) {
        return Err("the host CPU lacks the required CPUID feature");
    }
    if matches!(code, Code::Reservednop_rm16_r16_0F0D | Code::Reservednop_rm32_r32_0F0D) {
        // Intel: NOP; AMD: #UD (exclude::MODEL_SPECIFIC); the 64-bit run covers it on Intel.
        return Err("0F 0D with a register operand: model-specific");
    }
    if left_out(code.mnemonic()) {
        return Err("left out (see gen.rs)");
    }
    if mode == Mode::Bits32 && op.operand_size() == 16 && !matches!(code.flow_control(), FlowControl::Next) {
        return Err("16-bit branch in 32-bit code");
    }
    if matches!(code.flow_control(), FlowControl::Interrupt | FlowControl::Exception | FlowControl::XbeginXabortXend) {
        return Err("interrupt or transaction");
    }
    use Mnemonic as M;
    let m = code.mnemonic();
    if op.op_kinds().contains(&K::mem)
        && !matches!(m, M::Lea | M::Les | M::Lds | M::Lss | M::Cmpxchg8b | M::Movbe | M::Bound)
    {
        return Err("memory-only form outside the integer families (x87, SSE state, cache control)");
    }
    if format!("{m:?}").starts_with('F') {
        return Err("x87");
    }
    for &k in op.op_kinds() {
        if !handled(k) {
            return Err("operand kind not generated");
        }
    }
    Ok(())
}

fn handled(k: K) -> bool {
    matches!(
        k,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r8_reg
            | K::r16_reg
            | K::r32_reg
            | K::r16_rm
            | K::r32_rm
            | K::r8_opcode
            | K::r16_opcode
            | K::r32_opcode
            | K::r16_reg_mem
            | K::r32_reg_mem
            | K::r32_vvvv
            | K::mem
            | K::mem_offs
            | K::seg_reg
            | K::es
            | K::cs
            | K::ss
            | K::ds
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm16
            | K::imm32
            | K::al
            | K::cl
            | K::ax
            | K::dx
            | K::eax
            | K::br16_1
            | K::br16_2
            | K::br32_1
            | K::br32_4
            | K::seg_rSI
            | K::es_rDI
            | K::seg_rBX_al
    )
}

fn sized(pick: u8, bytes: u32) -> Register {
    match bytes {
        1 => POOL8[pick as usize % 8],
        2 => POOL16[pick as usize % 7],
        _ => POOL32[pick as usize % 7],
    }
}

/// GPR number (0-7) of a 8/16/32-bit register.
fn gpr_no(r: Register) -> Option<usize> {
    if !r.is_gpr() {
        return None;
    }
    let n = r.full_register() as usize - Register::RAX as usize;
    (n < 8).then_some(n)
}

fn set_reg(st: &mut LegacyState, r: Register, v: u32) {
    let Some(n) = gpr_no(r) else { return };
    let old = st.gpr[n];
    st.gpr[n] = match r.size() {
        1 if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) => {
            (old & !0xff00) | (v & 0xff) << 8
        }
        1 => (old & !0xff) | (v & 0xff),
        2 => (old & !0xffff) | (v & 0xffff),
        _ => v,
    };
}

fn get_reg(st: &LegacyState, r: Register) -> Option<u32> {
    let n = gpr_no(r)?;
    let v = st.gpr[n];
    Some(match r.size() {
        1 if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) => v >> 8 & 0xff,
        1 => v & 0xff,
        2 => v & 0xffff,
        _ => v,
    })
}

fn write_buf(st: &mut LegacyState, linear: u64, n: usize, v: u64) -> bool {
    let Some(off) = linear.checked_sub(BUF).map(|o| o as usize) else { return false };
    match st.buf.get_mut(off..off + n) {
        Some(d) => {
            d.copy_from_slice(&v.to_le_bytes()[..n]);
            true
        }
        None => false,
    }
}

fn read_buf(st: &LegacyState, linear: u64, n: usize) -> Option<u64> {
    let off = linear.checked_sub(BUF)? as usize;
    let b = st.buf.get(off..off + n)?;
    Some(b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64))
}

/// Base of a segment register in the initial state.
fn seg_base(st: &LegacyState, mode: Mode, r: Register) -> u64 {
    match r {
        Register::ES => LegacyState::base_of(st.sel[0]),
        Register::SS => LegacyState::base_of(st.sel[1]),
        Register::DS => LegacyState::base_of(st.sel[2]),
        Register::CS => mode.cs_base(),
        _ => 0,
    }
}

/// Linear address of memory operand element 0 of `ins` (segment base included).
fn mem_linear(ins: &Instruction, st: &LegacyState, mode: Mode) -> Option<u64> {
    let mut f = InstructionInfoFactory::new();
    let info = f.info(ins);
    let um = info
        .used_memory()
        .iter()
        .find(|m| m.base() != Register::SS || ins.op0_kind() == OpKind::Memory || ins.op1_kind() == OpKind::Memory)?;
    um.virtual_address(0, |r, _, _| reg_or_seg(r, st, mode))
}

fn reg_or_seg(r: Register, st: &LegacyState, mode: Mode) -> Option<u64> {
    if r.is_segment_register() {
        return Some(seg_base(st, mode, r));
    }
    get_reg(st, r).map(|v| v as u64)
}

/// Builds the instance `seed` describes for `code` in `mode`. `reg_ok`/`mem_ok` say which forms
/// tier 0 implements.
///
/// # Errors
/// The seed gives no encodable, safely runnable instance.
pub fn build(code: Code, mode: Mode, seed: &CaseSeed, reg_ok: bool, mem_ok: bool) -> Result<LegacyCase, Skip> {
    let op = code.op_code();
    let m = code.mnemonic();
    let string = crate::gen::is_string(code);
    let use_mem = if reg_ok && mem_ok { seed.use_mem } else { mem_ok };
    // Segments: 16-bit code always uses the 16-bit data segment; 32-bit code picks it (and a
    // 16-bit stack) for some cases, and 16-bit addressing needs it.
    let seg16 = mode == Mode::Bits16 || seed.extra & 0x40 != 0;
    let addr16 = match mode {
        Mode::Bits16 => seed.extra & 0x80 == 0,
        Mode::Bits32 => seg16 && seed.extra & 0x80 != 0,
    };
    let seg_sel = if seg16 { SEL_DATA16 } else { SEL_FLAT };
    let seg_base = if seg16 { DATA } else { 0 };
    let mut st = LegacyState::zeroed();
    st.sel = [seg_sel; 3];
    for (i, g) in st.gpr.iter_mut().enumerate() {
        *g = seed.gpr[i] as u32;
    }
    const FLAG_BITS: [u32; 7] = [0x1, 0x4, 0x10, 0x40, 0x80, 0x800, 0x400];
    st.eflags = FLAG_BITS.iter().enumerate().filter(|(i, _)| seed.flags >> i & 1 != 0).fold(0x202, |a, (_, f)| a | f);
    let mut state_buf = vec![0u8; BUF_LEN];
    let mut s = seed.buf_seed | 1;
    for chunk in state_buf.chunks_mut(8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        chunk.copy_from_slice(&s.to_le_bytes()[..chunk.len()]);
    }
    st.buf = state_buf;
    // The stack: in the buffer, ESP's upper half the data segment's (so ESP is also the linear
    // address of the stack top for the host's signal delivery).
    let sp_off = BUF - seg_base + 0xc00 + (seed.gpr[4] & 0x7fe);
    st.gpr[4] = if seg16 { (DATA as u32 & 0xffff_0000) | sp_off as u32 } else { sp_off as u32 };

    let mut ins = Instruction::default();
    ins.set_code(code);
    let mut mem_op: Option<u32> = None;
    let kinds = if string { &[][..] } else { op.op_kinds() };
    for (i, &k) in kinds.iter().enumerate() {
        let i = i as u32;
        let pick = seed.picks[i as usize % 6];
        let mut reg = |r: Register| {
            ins.set_op_kind(i, OpKind::Register);
            ins.set_op_register(i, r);
        };
        match k {
            K::r8_or_mem | K::r16_or_mem | K::r32_or_mem | K::mem | K::mem_offs
                if use_mem || matches!(k, K::mem | K::mem_offs) =>
            {
                if mem_op.is_some() {
                    return Err(Skip("two memory operands"));
                }
                ins.set_op_kind(i, OpKind::Memory);
                mem_op = Some(i);
            }
            K::r8_or_mem | K::r8_reg | K::r8_opcode => reg(sized(pick, 1)),
            K::r16_or_mem | K::r16_reg | K::r16_rm | K::r16_opcode | K::r16_reg_mem => reg(sized(pick, 2)),
            K::r32_or_mem | K::r32_reg | K::r32_rm | K::r32_opcode | K::r32_reg_mem | K::r32_vvvv => {
                reg(sized(pick, 4))
            }
            K::seg_reg => {
                // Written: ES, SS or DS. Read: any but FS/GS (the native stubs use GS).
                let written = i == 0 && m == Mnemonic::Mov;
                let r = if written {
                    [Register::ES, Register::SS, Register::DS][pick as usize % 3]
                } else {
                    [Register::ES, Register::CS, Register::SS, Register::DS][pick as usize % 4]
                };
                reg(r)
            }
            K::es => reg(Register::ES),
            K::cs => reg(Register::CS),
            K::ss => reg(Register::SS),
            K::ds => reg(Register::DS),
            K::al => reg(Register::AL),
            K::cl => reg(Register::CL),
            K::ax => reg(Register::AX),
            K::dx => reg(Register::DX),
            K::eax => reg(Register::EAX),
            K::imm8 | K::imm8_const_1 | K::imm8sex16 | K::imm8sex32 | K::imm16 | K::imm32 => {
                let kind = match k {
                    K::imm8 | K::imm8_const_1 => OpKind::Immediate8,
                    K::imm8sex16 => OpKind::Immediate8to16,
                    K::imm8sex32 => OpKind::Immediate8to32,
                    K::imm16 => OpKind::Immediate16,
                    _ => OpKind::Immediate32,
                };
                let mut v = seed.imm;
                if k == K::imm8_const_1 {
                    v = 1;
                }
                if m == Mnemonic::Aam && v as u8 == 0 {
                    v |= 10; // AAM 0 is #DE
                }
                if m == Mnemonic::Ret {
                    v &= 0x1fe; // the pop stays in the buffer
                }
                ins.set_op_kind(i, kind);
                ins.try_set_immediate_u64(i, v & if kind == OpKind::Immediate32 { 0xffff_ffff } else { u64::MAX })
                    .map_err(|_| Skip("immediate"))?;
            }
            K::br16_1 | K::br16_2 => {
                ins.set_op_kind(i, OpKind::NearBranch16);
                ins.set_near_branch16(TAKEN_OFF as u16);
            }
            K::br32_1 | K::br32_4 => {
                ins.set_op_kind(i, OpKind::NearBranch32);
                ins.set_near_branch32((mode_target(mode)) as u32);
            }
            _ => return Err(Skip("operand kind not generated")),
        }
    }
    if string {
        let bits = if addr16 { 16 } else { 32 };
        let r = RepPrefixKind::None;
        let built = match m {
            Mnemonic::Movsb => Instruction::with_movsb(bits, Register::None, r),
            Mnemonic::Movsw => Instruction::with_movsw(bits, Register::None, r),
            Mnemonic::Movsd => Instruction::with_movsd(bits, Register::None, r),
            Mnemonic::Cmpsb => Instruction::with_cmpsb(bits, Register::None, r),
            Mnemonic::Cmpsw => Instruction::with_cmpsw(bits, Register::None, r),
            Mnemonic::Cmpsd => Instruction::with_cmpsd(bits, Register::None, r),
            Mnemonic::Lodsb => Instruction::with_lodsb(bits, Register::None, r),
            Mnemonic::Lodsw => Instruction::with_lodsw(bits, Register::None, r),
            Mnemonic::Lodsd => Instruction::with_lodsd(bits, Register::None, r),
            Mnemonic::Stosb => Instruction::with_stosb(bits, r),
            Mnemonic::Stosw => Instruction::with_stosw(bits, r),
            Mnemonic::Stosd => Instruction::with_stosd(bits, r),
            Mnemonic::Scasb => Instruction::with_scasb(bits, r),
            Mnemonic::Scasw => Instruction::with_scasw(bits, r),
            Mnemonic::Scasd => Instruction::with_scasd(bits, r),
            _ => return Err(Skip("string form")),
        }
        .map_err(|_| Skip("string form"))?;
        if built.code() != code {
            return Err(Skip("string form"));
        }
        ins = built;
        let compares = matches!(
            m,
            Mnemonic::Cmpsb | Mnemonic::Cmpsw | Mnemonic::Cmpsd | Mnemonic::Scasb | Mnemonic::Scasw | Mnemonic::Scasd
        );
        match seed.extra % 3 {
            0 => {}
            1 if compares => ins.set_has_repe_prefix(true),
            2 if compares => ins.set_has_repne_prefix(true),
            _ => ins.set_has_rep_prefix(true),
        }
        let (si, di, cx) = if addr16 {
            (Register::SI, Register::DI, Register::CX)
        } else {
            (Register::ESI, Register::EDI, Register::ECX)
        };
        let at = |r: u64| (BUF - seg_base + 0x800 + (r & 0x7ff)) as u32;
        set_reg(&mut st, si, at(seed.gpr[6]));
        set_reg(&mut st, di, at(seed.gpr[7]));
        if ins.has_rep_prefix() || ins.has_repne_prefix() || ins.has_repe_prefix() {
            set_reg(&mut st, cx, (seed.gpr[1] % 17) as u32);
        }
    }

    // The memory operand: an addressing form, then the base value that puts it in the buffer.
    if let Some(_i) = mem_op {
        let msize = (ins.memory_size().size().max(1) as u64).min(16);
        let off = 0x40 + (seed.mem.offset as u64 % (BUF_LEN as u64 - 0x80 - msize));
        let ea = (BUF - seg_base + off) as u32;
        let mk = &seed.mem;
        let disp_kind = mk.scale >> 2 & 3;
        if op.op_kinds().contains(&K::mem_offs) {
            ins.set_memory_displ_size(if addr16 { 2 } else { 4 });
            ins.set_memory_displacement64(ea as u64);
        } else if addr16 {
            let form = mk.base as usize % 9;
            if form == 8 {
                // [disp16]
                ins.set_memory_displ_size(2);
                ins.set_memory_displacement64(ea as u64);
            } else {
                let (base, index) = ADDR16[form];
                let disp: i32 = match disp_kind {
                    0 if base != Register::BP || index != Register::None => 0,
                    0 | 1 => mk.disp as i8 as i32,
                    _ => mk.disp as i32,
                };
                let idx_val = seed.gpr[7] as u32 & 0xffff;
                if index != Register::None {
                    set_reg(&mut st, index, idx_val);
                }
                let idx_part = if index == Register::None { 0 } else { idx_val };
                let base_val = ea.wrapping_sub(idx_part).wrapping_sub(disp as u32) & 0xffff;
                set_reg(&mut st, base, base_val);
                ins.set_memory_base(base);
                ins.set_memory_index(index);
                ins.set_memory_index_scale(1);
                ins.set_memory_displacement64(disp as i64 as u64 & 0xffff);
                ins.set_memory_displ_size(match disp {
                    0 => 0,
                    d if d == d as i8 as i32 => 1,
                    _ => 2,
                });
            }
        } else {
            let base = POOL32[mk.base as usize % 7];
            let index = if mk.index as usize >= 7 || POOL32[mk.index as usize] == base {
                Register::None
            } else {
                POOL32[mk.index as usize]
            };
            let scale = 1u32 << (mk.scale % 4);
            let disp: i32 = match disp_kind {
                0 => 0,
                1 | 2 => mk.disp as i8 as i32,
                _ => (mk.disp as i32) << 4,
            };
            let idx_val = mk.index_val as u32;
            if index != Register::None {
                set_reg(&mut st, index, idx_val);
            }
            let idx_part = if index == Register::None { 0 } else { idx_val.wrapping_mul(scale) };
            set_reg(&mut st, base, ea.wrapping_sub(idx_part).wrapping_sub(disp as u32));
            ins.set_memory_base(base);
            ins.set_memory_index(index);
            ins.set_memory_index_scale(if index == Register::None { 1 } else { scale });
            ins.set_memory_displacement64(disp as u32 as u64);
            ins.set_memory_displ_size(match disp {
                0 => 0,
                d if d == d as i8 as i32 => 1,
                _ => 4,
            });
        }
        if seed.picks[5] & 3 == 1 {
            // An explicit segment prefix: all three have the same base here.
            ins.set_segment_prefix([Register::ES, Register::SS, Register::DS][(seed.picks[5] >> 2) as usize % 3]);
        }
        let n = msize as usize;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&seed.mem_val[0].to_le_bytes());
        bytes[8..].copy_from_slice(&seed.mem_val[1].to_le_bytes());
        let o = off as usize;
        st.buf[o..o + n].copy_from_slice(&bytes[..n]);
    }

    // Encode where the instruction ends: at the end of the instruction page.
    let end = INSN_PAGE + 0x1000 - mode.cs_base();
    let bits = mode.bits();
    let mut enc = Encoder::new(bits);
    let len = enc.encode(&ins, end - 15).map_err(|_| Skip("not encodable"))?;
    let at = end - len as u64;
    let mut enc = Encoder::new(bits);
    let len2 = enc.encode(&ins, at).map_err(|_| Skip("not encodable"))?;
    if len2 != len {
        return Err(Skip("length depends on position"));
    }
    let bytes = enc.take_buffer();
    let mut dec = Decoder::with_ip(bits, &bytes, at, DecoderOptions::NONE);
    let decoded = dec.decode();
    if decoded.code() != code || decoded.len() != bytes.len() {
        return Err(Skip("does not decode back to the same form"));
    }
    st.eip = at as u32;
    let mut case = LegacyCase { mode, instr: decoded, bytes, init: st, stack16: seg16 };
    fix_implicit(&mut case, seed)?;
    if !is_safe(&case) {
        return Err(Skip("unsafe for the native run"));
    }
    Ok(case)
}

fn fixed_check(fixed: &[Register], used: &[Register]) -> Result<(), Skip> {
    if used.iter().any(|u| *u != Register::None && fixed.iter().any(|f| f.full_register() == u.full_register())) {
        return Err(Skip("register clash"));
    }
    Ok(())
}

/// The branch target as an offset in CS.
fn mode_target(mode: Mode) -> u64 {
    match mode {
        Mode::Bits16 => TAKEN_OFF,
        Mode::Bits32 => CODE + TAKEN_OFF,
    }
}

/// Registers that address memory in `ins` (base, index, and the string/stack pointers).
fn address_registers(ins: &Instruction) -> Vec<Register> {
    let mut v = vec![ins.memory_base(), ins.memory_index()];
    v.retain(|r| *r != Register::None);
    v
}

/// Values the instruction needs to run without a fault, and implicit memory in the buffer.
fn fix_implicit(case: &mut LegacyCase, seed: &CaseSeed) -> Result<(), Skip> {
    let ins = case.instr;
    let mode = case.mode;
    let st = &mut case.init;
    let m = ins.mnemonic();
    let addr = address_registers(&ins);
    let clash = |r: Register| fixed_check(&addr, &[r]);
    let ss_base = LegacyState::base_of(st.sel[1]);
    let sp_linear = |st: &LegacyState| {
        let sp = if case.stack16 { st.gpr[4] & 0xffff } else { st.gpr[4] };
        ss_base + sp as u64
    };
    let op_bytes = |ins: &Instruction| match ins.code().op_code().operand_size() {
        16 => 2usize,
        32 => 4,
        _ => mode.bits() as usize / 8,
    };
    let pick_sel = |n: usize, k: u8| SELECTORS[k as usize % n];
    match m {
        Mnemonic::Leave => {
            let v = (sp_linear(st) - ss_base + 0x200 + (seed.gpr[5] & 0x1fe)) as u32;
            if case.stack16 {
                set_reg(st, Register::BP, v);
            } else {
                st.gpr[5] = v;
            }
        }
        Mnemonic::Ret => {
            let n = op_bytes(&ins);
            let target = if seed.extra & 0x20 != 0 { mode_target(mode) } else { st.eip as u64 + ins.len() as u64 };
            let sp = sp_linear(st);
            write_buf(st, sp, n, target);
        }
        Mnemonic::Jmp | Mnemonic::Call if matches!(ins.op0_kind(), OpKind::Register | OpKind::Memory) => {
            let target = if seed.extra & 0x20 != 0 { mode_target(mode) } else { st.eip as u64 + ins.len() as u64 };
            if ins.op0_kind() == OpKind::Register {
                clash(ins.op0_register())?;
                set_reg(st, ins.op0_register(), target as u32);
            } else {
                let ea = mem_linear(&ins, st, mode).ok_or(Skip("no address"))?;
                write_buf(st, ea, op_bytes(&ins), target);
            }
        }
        Mnemonic::Pop if ins.op0_register().is_segment_register() => {
            let n = if ins.op0_register() == Register::SS { SS_SELECTORS } else { SELECTORS.len() };
            let sp = sp_linear(st);
            write_buf(st, sp, 2, pick_sel(n, seed.picks[1]) as u64);
        }
        Mnemonic::Mov if ins.op0_kind() == OpKind::Register && ins.op0_register().is_segment_register() => {
            let n = if ins.op0_register() == Register::SS { SS_SELECTORS } else { SELECTORS.len() };
            let sel = pick_sel(n, seed.picks[1]);
            if ins.op1_kind() == OpKind::Register {
                clash(ins.op1_register())?;
                set_reg(st, ins.op1_register(), sel as u32);
            } else {
                let ea = mem_linear(&ins, st, mode).ok_or(Skip("no address"))?;
                write_buf(st, ea, 2, sel as u64);
            }
        }
        Mnemonic::Lds | Mnemonic::Les | Mnemonic::Lss => {
            let n = if m == Mnemonic::Lss { SS_SELECTORS } else { SELECTORS.len() };
            let ea = mem_linear(&ins, st, mode).ok_or(Skip("no address"))?;
            let off = ins.memory_size().size() as u64 - 2;
            write_buf(st, ea + off, 2, pick_sel(n, seed.picks[1]) as u64);
        }
        Mnemonic::Div | Mnemonic::Idiv => fix_division(&ins, st, mode, &addr)?,
        Mnemonic::Bound => {
            // In range (#BR otherwise, which would stop the host process): bounds around the
            // index, lower <= index <= upper as signed numbers of the operand size.
            let n = op_bytes(&ins);
            let idx = get_reg(st, ins.op0_register()).unwrap_or(0) as u64;
            let sext = |v: u64| if n == 2 { v as u16 as i16 as i64 } else { v as u32 as i32 as i64 };
            let i = sext(idx);
            let lo = i.saturating_sub((seed.gpr[2] & 0xff) as i64).max(if n == 2 {
                i16::MIN as i64
            } else {
                i32::MIN as i64
            });
            let hi = i.saturating_add((seed.gpr[3] & 0xff) as i64).min(if n == 2 {
                i16::MAX as i64
            } else {
                i32::MAX as i64
            });
            let ea = mem_linear(&ins, st, mode).ok_or(Skip("no address"))?;
            write_buf(st, ea, n, lo as u64);
            write_buf(st, ea + n as u64, n, hi as u64);
        }
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
            if ins.op0_kind() == OpKind::Memory && ins.op1_kind() == OpKind::Register =>
        {
            clash(ins.op1_register())?;
            set_reg(st, ins.op1_register(), (seed.gpr[1] as i8 as i32 * 2) as u32);
        }
        Mnemonic::Shld | Mnemonic::Shrd if ins.code().op_code().operand_size() == 16 => {
            // A count above 16 leaves result and flags undefined (SDM Vol. 2, SHLD).
            let count =
                if ins.op2_kind() == OpKind::Register { st.gpr[1] & 0x1f } else { ins.immediate8() as u32 & 0x1f };
            if count > 16 {
                return Err(Skip("SHLD/SHRD count above 16: undefined"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// DIV/IDIV: a nonzero divisor and a dividend whose quotient fits (SDM Vol. 2, DIV: #DE).
fn fix_division(ins: &Instruction, st: &mut LegacyState, mode: Mode, addr: &[Register]) -> Result<(), Skip> {
    let bytes = if ins.op0_kind() == OpKind::Register { ins.op0_register().size() } else { ins.memory_size().size() };
    let (lo, hi) = match bytes {
        1 => (Register::AL, Register::AH),
        2 => (Register::AX, Register::DX),
        _ => (Register::EAX, Register::EDX),
    };
    fixed_check(addr, &[hi, lo])?;
    if ins.op0_kind() == OpKind::Register && ins.op0_register().full_register() == hi.full_register() {
        // AH is not DX/EDX's case, but `div ah` / `div dx`: the divisor is the high half.
        return Err(Skip("divisor is the dividend's high half"));
    }
    let bits = bytes * 8;
    let mask = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
    let low = get_reg(st, lo).unwrap_or(0);
    let high = if ins.mnemonic() == Mnemonic::Idiv && (low >> (bits - 1)) & 1 != 0 { mask } else { 0 };
    set_reg(st, hi, high);
    let mut divisor = if ins.op0_kind() == OpKind::Register {
        get_reg(st, ins.op0_register()).unwrap_or(0)
    } else {
        let ea = mem_linear(ins, st, mode).ok_or(Skip("no address"))?;
        read_buf(st, ea, bytes).unwrap_or(0) as u32
    };
    if divisor & mask == 0 || divisor & mask == mask {
        divisor |= 3;
        divisor &= mask >> 1; // positive, nonzero, not -1
    }
    if ins.op0_kind() == OpKind::Register {
        set_reg(st, ins.op0_register(), divisor);
    } else {
        let ea = mem_linear(ins, st, mode).ok_or(Skip("no address"))?;
        write_buf(st, ea, bytes, divisor as u64);
    }
    // The low half may be the divisor register itself (`div al`): re-read both.
    let low = get_reg(st, lo).unwrap_or(0);
    let d = if ins.op0_kind() == OpKind::Register { get_reg(st, ins.op0_register()).unwrap_or(0) } else { divisor };
    let high = if ins.mnemonic() == Mnemonic::Idiv && (low >> (bits - 1)) & 1 != 0 { mask } else { 0 };
    set_reg(st, hi, high);
    if d & mask == 0 || (ins.mnemonic() == Mnemonic::Idiv && d & mask == mask) {
        return Err(Skip("division would fault"));
    }
    Ok(())
}

/// Every memory access inside the buffer (iced-x86's address computation, with the segment
/// bases and the address size), the stack pointer inside it with room, ESP not written except by
/// stack operations.
pub fn is_safe(case: &LegacyCase) -> bool {
    let ins = &case.instr;
    let st = &case.init;
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(ins);
    let rep = ins.has_rep_prefix() || ins.has_repne_prefix() || ins.has_repe_prefix();
    let margin = if rep { 16 * 4 } else { 0 };
    for um in info.used_memory() {
        let Some(va) = um.virtual_address(0, |r, _, _| reg_or_seg(r, st, case.mode)) else { return false };
        let size = um.memory_size().size().max(1) as u64;
        let (lo, hi) = (va.wrapping_sub(margin), va.wrapping_add(size + margin));
        if lo < BUF || hi > BUF + BUF_LEN as u64 || lo > hi {
            return false;
        }
    }
    for ur in info.used_registers() {
        let written = !matches!(ur.access(), OpAccess::Read | OpAccess::CondRead);
        if written && ur.register().full_register() == Register::RSP && !ins.is_stack_instruction() {
            return false;
        }
        if matches!(ur.register(), Register::FS | Register::GS | Register::CS) && written {
            return false;
        }
    }
    if matches!(ins.mnemonic(), Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc)
        && ins.op0_kind() == OpKind::Memory
        && ins.op1_kind() == OpKind::Register
    {
        let (Some(off), Some(ea)) = (get_reg(st, ins.op1_register()), mem_linear(ins, st, case.mode)) else {
            return false;
        };
        let off = match ins.op1_register().size() {
            2 => off as u16 as i16 as i64,
            _ => off as i32 as i64,
        };
        let at = ea.wrapping_add((off >> 3) as u64);
        if at < BUF + 16 || at > BUF + BUF_LEN as u64 - 16 {
            return false;
        }
    }
    true
}
