//! Making a generated case safe to run natively: implicit memory (string instructions, XLAT,
//! LEAVE/ENTER, MASKMOVDQU, RET and indirect branch targets) is pointed into the data buffer,
//! inputs that would fault are adjusted (DIV/IDIV, LDMXCSR, FLDCW, POPF, BT bit offsets), and
//! [`is_safe`] re-checks the native runner's invariants on the final case (SDM Vol. 2 entries
//! of those instructions for the fault conditions).

use super::{gpr_index, gpr_of_size, is_string, Case, CaseSeed};
use crate::state::{MachineState, BUF, BUF_LEN, FALLTHROUGH, TAKEN};
use iced_x86::{Instruction, InstructionInfoFactory, Mnemonic, OpKind, Register};

/// Points implicit memory into the buffer and removes fault-raising inputs.
pub(super) fn fix_implicit(case: &mut Case, seed: &CaseSeed) {
    let ins = case.instr;
    let st = &mut case.init;
    let m = ins.mnemonic();
    // String instructions: RSI/RDI into the buffer's middle, a small count.
    if is_string(ins.code()) {
        st.gpr[6] = BUF + 0xe00 + (seed.gpr[6] & 0x1ff);
        st.gpr[7] = BUF + 0xe00 + (seed.gpr[7] & 0x1ff);
        if ins.has_rep_prefix() || ins.has_repne_prefix() {
            st.gpr[1] = seed.gpr[1] % 9;
        }
    }
    match m {
        Mnemonic::Maskmovdqu => st.gpr[7] = BUF + 0x800 + (seed.gpr[7] & 0x3ff),
        Mnemonic::Xlatb => st.gpr[3] = BUF + 0x800 + (seed.gpr[3] & 0x3ff),
        Mnemonic::Leave => st.gpr[5] = BUF + 0x1000 + (seed.gpr[5] & 0x3f8),
        Mnemonic::Enter => st.gpr[5] = BUF + 0x1000 + (seed.gpr[5] & 0x3f8),
        Mnemonic::Popf | Mnemonic::Popfq => {
            // Only the flags the harness compares: TF would trap, AC would enable alignment
            // checks on the host (Linux sets CR0.AM).
            let rsp = st.gpr[4];
            let v = st.read_buf(rsp, 8).unwrap_or(0);
            st.write_buf(rsp, 8, (v & crate::state::FLAGS_COMPARED) | 2);
        }
        Mnemonic::Ret => {
            let target = if seed.extra & 0x80 != 0 { TAKEN } else { FALLTHROUGH };
            let rsp = st.gpr[4];
            st.write_buf(rsp, 8, target);
        }
        Mnemonic::Jmp | Mnemonic::Call if ins.op_kind(0) == OpKind::Register || ins.op_kind(0) == OpKind::Memory => {
            let target = if seed.extra & 0x80 != 0 { TAKEN } else { FALLTHROUGH };
            if ins.op_kind(0) == OpKind::Register {
                if let Some(n) = gpr_index(ins.op0_register()) {
                    st.gpr[n] = target;
                }
            } else if let Some(ea) = effective_address(&ins, st) {
                st.write_buf(ea, 8, target);
            }
        }
        Mnemonic::Div | Mnemonic::Idiv => fix_division(&ins, st),
        Mnemonic::Fldcw => {
            // Keep every x87 exception masked: an unmasked one would #MF on the host.
            if let Some(ea) = effective_address(&ins, st) {
                let v = st.read_buf(ea, 2).unwrap_or(0);
                st.write_buf(ea, 2, (v & 0x1f00) | 0x7f);
            }
        }
        Mnemonic::Ldmxcsr => {
            // Reserved bits would #GP and unmasked exceptions could #XM on the host: load a
            // valid MXCSR with every exception masked (the other bits stay random).
            if let Some(ea) = effective_address(&ins, st) {
                let v = st.read_buf(ea, 4).unwrap_or(0);
                st.write_buf(ea, 4, (v & 0xffff) | 0x1f80);
            }
        }
        Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
            if ins.op_kind(0) == OpKind::Memory && ins.op_kind(1) == OpKind::Register =>
        {
            // The register bit offset reaches outside the operand (SDM Vol. 2, BT: "bit base"
            // addressing): keep it within ±256 bits so the access stays in the buffer.
            set_reg(st, ins.op1_register(), (seed.gpr[1] as i8 as i64 * 2) as u64);
        }
        _ => {}
    }
}

/// For BT/BTS/BTR/BTC m, r: the signed bit offset the register holds.
fn bit_offset(ins: &Instruction, st: &MachineState) -> Option<i64> {
    let r = ins.op1_register();
    let v = reg_value(r, st)?;
    let bits = 8 * r.size() as u32;
    Some(((v << (64 - bits)) as i64) >> (64 - bits))
}

/// The effective address of the explicit memory operand.
pub fn effective_address(ins: &Instruction, st: &MachineState) -> Option<u64> {
    let op = (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory)?;
    ins.virtual_address(op, 0, |r, _, _| reg_value(r, st))
}

fn reg_value(r: Register, st: &MachineState) -> Option<u64> {
    if r.is_segment_register() {
        return Some(0);
    }
    let n = gpr_index(r)?;
    let v = st.gpr[n];
    Some(match r.size() {
        1 if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) => v >> 8 & 0xff,
        1 => v & 0xff,
        2 => v & 0xffff,
        4 => v & 0xffff_ffff,
        _ => v,
    })
}

/// The divisor's location and width for DIV/IDIV.
fn divisor(ins: &Instruction, st: &MachineState) -> Option<(u32, u64)> {
    let bytes = match ins.op_kind(0) {
        OpKind::Register => ins.op0_register().size() as u32,
        _ => ins.memory_size().size() as u32,
    };
    let v = match ins.op_kind(0) {
        OpKind::Register => reg_value(ins.op0_register(), st)?,
        _ => st.read_buf(effective_address(ins, st)?, bytes as usize)?,
    };
    Some((bytes, v))
}

/// (high, low) halves of the dividend for a divisor of `bytes` bytes.
fn dividend(bytes: u32, st: &MachineState) -> (u64, u64) {
    let mask = if bytes == 8 { u64::MAX } else { (1u64 << (8 * bytes)) - 1 };
    if bytes == 1 {
        (st.gpr[0] >> 8 & 0xff, st.gpr[0] & 0xff)
    } else {
        (st.gpr[2] & mask, st.gpr[0] & mask)
    }
}

/// True if DIV/IDIV with this state raises #DE (SDM Vol. 2, DIV/IDIV: zero divisor or a
/// quotient too large for the destination).
pub fn division_faults(ins: &Instruction, st: &MachineState) -> bool {
    let Some((bytes, d)) = divisor(ins, st) else { return true };
    let bits = 8 * bytes;
    let (hi, lo) = dividend(bytes, st);
    let n = (hi as u128) << bits | lo as u128;
    if d == 0 {
        return true;
    }
    if ins.mnemonic() == Mnemonic::Div {
        return (n / d as u128) >> bits != 0;
    }
    let sn = ((n << (128 - 2 * bits)) as i128) >> (128 - 2 * bits);
    let sd = ((d as i128) << (128 - bits)) >> (128 - bits);
    let q = sn.wrapping_div(sd);
    let lim = 1i128 << (bits - 1);
    !(-lim..lim).contains(&q)
}

fn fix_division(ins: &Instruction, st: &mut MachineState) {
    if !division_faults(ins, st) {
        return;
    }
    let Some((bytes, d)) = divisor(ins, st) else { return };
    let bits = 8 * bytes;
    if d == 0 {
        // Make the divisor 1 wherever it is.
        match ins.op_kind(0) {
            OpKind::Register => set_reg(st, ins.op0_register(), 1),
            _ => {
                if let Some(ea) = effective_address(ins, st) {
                    st.write_buf(ea, bytes as usize, 1);
                }
            }
        }
    }
    let Some((_, d)) = divisor(ins, st) else { return };
    let (hi, lo) = dividend(bytes, st);
    let new_hi = if ins.mnemonic() == Mnemonic::Div {
        if d == 0 {
            0
        } else {
            hi % d
        }
    } else {
        // Sign-extend the low half: the quotient then fits unless it is MIN / -1.
        if lo >> (bits - 1) & 1 != 0 {
            u64::MAX >> (64 - bits)
        } else {
            0
        }
    };
    if bytes == 1 {
        st.gpr[0] = (st.gpr[0] & !0xff00) | (new_hi & 0xff) << 8;
    } else {
        set_reg(st, gpr_of_size(2, bytes), new_hi); // RDX
    }
    if division_faults(ins, st) {
        // MIN / -1: clear the low half.
        if bytes == 1 {
            st.gpr[0] &= !0xffff;
        } else {
            set_reg(st, gpr_of_size(0, bytes), 0); // RAX
            set_reg(st, gpr_of_size(2, bytes), 0);
        }
    }
}

/// Writes `v` to register `r` with the hardware's partial-register rules (32-bit writes zero
/// the upper half).
fn set_reg(st: &mut MachineState, r: Register, v: u64) {
    let Some(n) = gpr_index(r) else { return };
    let old = st.gpr[n];
    st.gpr[n] = match r.size() {
        1 if matches!(r, Register::AH | Register::CH | Register::DH | Register::BH) => {
            (old & !0xff00) | (v & 0xff) << 8
        }
        1 => (old & !0xff) | (v & 0xff),
        2 => (old & !0xffff) | (v & 0xffff),
        4 => v & 0xffff_ffff,
        _ => v,
    };
}

/// Checks the native run's invariants (see `native.rs`): every memory access inside the data
/// buffer, RSP inside it with room, no #DE, R15 and RSP not written except by stack operations.
pub fn is_safe(case: &Case) -> bool {
    let ins = &case.instr;
    let st = &case.init;
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(ins);
    let rep = ins.has_rep_prefix() || ins.has_repne_prefix();
    let margin = if rep { 16 * 8 } else { 0 };
    for um in info.used_memory() {
        let Some(va) = um.virtual_address(0, |r, _, _| reg_value(r, st)) else { return false };
        let size = um.memory_size().size().max(1) as u64;
        let lo = va.wrapping_sub(margin);
        let hi = va.wrapping_add(size).wrapping_add(margin);
        if lo < BUF || hi > BUF + BUF_LEN as u64 || lo > hi {
            return false;
        }
    }
    for ur in info.used_registers() {
        let written = !matches!(ur.access(), iced_x86::OpAccess::Read | iced_x86::OpAccess::CondRead);
        if written && ur.register().full_register() == Register::RSP && !ins.is_stack_instruction() {
            return false;
        }
        if ur.register().full_register() == Register::R15 {
            return false;
        }
    }
    let rsp = st.gpr[4];
    if rsp < BUF + 0x400 || rsp > BUF + BUF_LEN as u64 - 0x400 {
        return false;
    }
    if matches!(ins.mnemonic(), Mnemonic::Div | Mnemonic::Idiv) && division_faults(ins, st) {
        return false;
    }
    if ins.mnemonic() == Mnemonic::Fldcw {
        let v = effective_address(ins, st).and_then(|ea| st.read_buf(ea, 2));
        if v.is_none_or(|v| v & 0x3f != 0x3f) {
            return false;
        }
    }
    if ins.mnemonic() == Mnemonic::Ldmxcsr {
        let v = effective_address(ins, st).and_then(|ea| st.read_buf(ea, 4));
        if v.is_none_or(|v| v & !0xffff != 0 || v & 0x1f80 != 0x1f80) {
            return false;
        }
    }
    if matches!(ins.mnemonic(), Mnemonic::Enter) && (ins.immediate8_2nd() > 4 || ins.immediate16() > 0x400) {
        return false;
    }
    if matches!(ins.mnemonic(), Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc)
        && ins.op_kind(0) == OpKind::Memory
        && ins.op_kind(1) == OpKind::Register
    {
        let (Some(off), Some(ea)) = (bit_offset(ins, st), effective_address(ins, st)) else { return false };
        let at = ea.wrapping_add((off >> 3) as u64);
        if at < BUF + 16 || at > BUF + BUF_LEN as u64 - 16 {
            return false;
        }
    }
    true
}
