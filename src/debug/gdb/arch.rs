//! The register set gdb sees: gdbstub_arch's x86-64 core and SSE registers, plus what a
//! system-level debugger also needs (FS/GS bases, CR0/CR2/CR3/CR4/CR8, EFER), described to gdb
//! by our own target description (the `qXfer:features:read` XML below). gdb's amd64 support
//! finds its registers by feature and name (`org.gnu.gdb.i386.core`, `.sse`, `.linux`,
//! `.segments`); the system registers are in a feature of ours, which gdb shows by name
//! (`info registers cr3`, `p/x $cr3`, `p/x $efer`).
//!
//! The `g` packet carries the registers in the order the XML lists them: the gdbstub_arch core
//! block (0x218 bytes), then orig_rax, fs_base, gs_base and the system registers, 8 bytes each.

use emu::state::CpuState;
use gdbstub::arch::{Arch, Registers};
use gdbstub_arch::x86::reg::id::X86_64CoreRegId;
use gdbstub_arch::x86::reg::X86_64CoreRegs;

/// x86-64 as Strata presents it to gdb (QEMU's habit: always the 64-bit register file, whatever
/// mode the guest is in).
pub enum StrataX86_64 {}

impl Arch for StrataX86_64 {
    type Usize = u64;
    type Registers = StrataRegs;
    type RegId = X86_64CoreRegId;
    type BreakpointKind = usize;

    fn target_description_xml() -> Option<&'static str> {
        Some(TARGET_XML)
    }
}

/// The extra registers after the core block, in `g`-packet order.
const EXTRA: usize = 9;
/// Size of gdbstub_arch's core block (GPRs, RIP, EFLAGS, selectors, x87, XMM, MXCSR).
const CORE_BYTES: usize = 0x218;

/// Every register gdb reads and writes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StrataRegs {
    pub core: X86_64CoreRegs,
    /// orig_rax, fs_base, gs_base, cr0, cr2, cr3, cr4, cr8, efer.
    pub extra: [u64; EXTRA],
}

impl Registers for StrataRegs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.core.rip
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        self.core.gdb_serialize(&mut write_byte);
        for r in &self.extra {
            for b in r.to_le_bytes() {
                write_byte(Some(b));
            }
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        if bytes.len() < CORE_BYTES + 8 * EXTRA {
            return Err(());
        }
        self.core.gdb_deserialize(&bytes[..CORE_BYTES])?;
        for (r, chunk) in self.extra.iter_mut().zip(bytes[CORE_BYTES..].chunks_exact(8)) {
            *r = u64::from_le_bytes(chunk.try_into().map_err(|_| ())?);
        }
        Ok(())
    }
}

/// gdb's GPR order (rax rbx rcx rdx rsi rdi rbp rsp r8..r15) as indices into `CpuState::gpr`
/// (the hardware encoding order rax rcx rdx rbx rsp rbp rsi rdi r8..r15).
const GDB_GPR: [usize; 16] = [0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15];

/// The registers of `s` as gdb numbers them.
pub fn from_state(s: &CpuState) -> StrataRegs {
    let mut r = StrataRegs::default();
    for (i, &hw) in GDB_GPR.iter().enumerate() {
        r.core.regs[i] = s.gpr[hw];
    }
    r.core.rip = s.rip;
    r.core.eflags = s.rflags() as u32;
    let sel = |i: usize| u32::from(s.segs[i].selector);
    let seg = &mut r.core.segments;
    (seg.es, seg.cs, seg.ss, seg.ds, seg.fs, seg.gs) = (sel(0), sel(1), sel(2), sel(3), sel(4), sel(5));
    // ST(i) is physical register (TOP + i) mod 8 (SDM Vol. 1, 8.1.2).
    let top = usize::from(s.fpu.fsw >> 11) & 7;
    for (i, st) in r.core.st.iter_mut().enumerate() {
        let reg = &s.fpu.regs[(top + i) & 7];
        st[..8].copy_from_slice(&reg.signif.to_le_bytes());
        st[8..].copy_from_slice(&reg.sign_exp.to_le_bytes());
    }
    let f = &mut r.core.fpu;
    f.fctrl = u32::from(s.fpu.fcw);
    f.fstat = u32::from(s.fpu.fsw);
    f.ftag = u32::from(s.fpu.ftw);
    f.fiseg = u32::from(s.fpu.fcs);
    f.fioff = s.fpu.fip as u32;
    f.foseg = u32::from(s.fpu.fds);
    f.fooff = s.fpu.fdp as u32;
    f.fop = u32::from(s.fpu.fop);
    for (x, v) in r.core.xmm.iter_mut().zip(&s.xmm) {
        *x = u128::from(v[0]) | u128::from(v[1]) << 64;
    }
    r.core.mxcsr = s.mxcsr;
    r.extra = [u64::MAX, s.segs[4].base, s.segs[5].base, s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer];
    r
}

/// Writes what gdb may change back into `s`: general registers, RIP, RFLAGS, the x87 and SSE
/// registers and the FS/GS bases. Selectors and control registers are left alone: loading them
/// means descriptor and mode checks the debugger has no business skipping.
pub fn to_state(r: &StrataRegs, s: &mut CpuState) {
    for (i, &hw) in GDB_GPR.iter().enumerate() {
        s.gpr[hw] = r.core.regs[i];
    }
    s.rip = r.core.rip;
    s.set_rflags(u64::from(r.core.eflags));
    let top = usize::from(s.fpu.fsw >> 11) & 7;
    for (i, st) in r.core.st.iter().enumerate() {
        let reg = &mut s.fpu.regs[(top + i) & 7];
        reg.signif = u64::from_le_bytes(st[..8].try_into().unwrap_or_default());
        reg.sign_exp = u16::from_le_bytes([st[8], st[9]]);
    }
    s.fpu.fcw = r.core.fpu.fctrl as u16;
    s.fpu.fsw = r.core.fpu.fstat as u16;
    s.fpu.ftw = r.core.fpu.ftag as u16;
    for (v, x) in s.xmm.iter_mut().zip(&r.core.xmm) {
        *v = [*x as u64, (*x >> 64) as u64];
    }
    s.mxcsr = r.core.mxcsr;
    s.segs[4].base = r.extra[1];
    s.segs[5].base = r.extra[2];
}

/// The target description. Register names are the ones gdb's amd64 support looks up; the
/// types are plain integers and gdb's built-in `i387_ext`, with one vector union for XMM.
const TARGET_XML: &str = r#"<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386:x86-64</architecture>
<feature name="org.gnu.gdb.i386.core">
<reg name="rax" bitsize="64" type="int64"/>
<reg name="rbx" bitsize="64" type="int64"/>
<reg name="rcx" bitsize="64" type="int64"/>
<reg name="rdx" bitsize="64" type="int64"/>
<reg name="rsi" bitsize="64" type="int64"/>
<reg name="rdi" bitsize="64" type="int64"/>
<reg name="rbp" bitsize="64" type="data_ptr"/>
<reg name="rsp" bitsize="64" type="data_ptr"/>
<reg name="r8" bitsize="64" type="int64"/>
<reg name="r9" bitsize="64" type="int64"/>
<reg name="r10" bitsize="64" type="int64"/>
<reg name="r11" bitsize="64" type="int64"/>
<reg name="r12" bitsize="64" type="int64"/>
<reg name="r13" bitsize="64" type="int64"/>
<reg name="r14" bitsize="64" type="int64"/>
<reg name="r15" bitsize="64" type="int64"/>
<reg name="rip" bitsize="64" type="code_ptr"/>
<reg name="eflags" bitsize="32" type="int32"/>
<reg name="cs" bitsize="32" type="int32"/>
<reg name="ss" bitsize="32" type="int32"/>
<reg name="ds" bitsize="32" type="int32"/>
<reg name="es" bitsize="32" type="int32"/>
<reg name="fs" bitsize="32" type="int32"/>
<reg name="gs" bitsize="32" type="int32"/>
<reg name="st0" bitsize="80" type="i387_ext"/>
<reg name="st1" bitsize="80" type="i387_ext"/>
<reg name="st2" bitsize="80" type="i387_ext"/>
<reg name="st3" bitsize="80" type="i387_ext"/>
<reg name="st4" bitsize="80" type="i387_ext"/>
<reg name="st5" bitsize="80" type="i387_ext"/>
<reg name="st6" bitsize="80" type="i387_ext"/>
<reg name="st7" bitsize="80" type="i387_ext"/>
<reg name="fctrl" bitsize="32" type="int" group="float"/>
<reg name="fstat" bitsize="32" type="int" group="float"/>
<reg name="ftag" bitsize="32" type="int" group="float"/>
<reg name="fiseg" bitsize="32" type="int" group="float"/>
<reg name="fioff" bitsize="32" type="int" group="float"/>
<reg name="foseg" bitsize="32" type="int" group="float"/>
<reg name="fooff" bitsize="32" type="int" group="float"/>
<reg name="fop" bitsize="32" type="int" group="float"/>
</feature>
<feature name="org.gnu.gdb.i386.sse">
<vector id="xmm_f32" type="ieee_single" count="4"/>
<vector id="xmm_f64" type="ieee_double" count="2"/>
<vector id="xmm_i8" type="int8" count="16"/>
<vector id="xmm_i16" type="int16" count="8"/>
<vector id="xmm_i32" type="int32" count="4"/>
<vector id="xmm_i64" type="int64" count="2"/>
<union id="vec128">
<field name="v4_float" type="xmm_f32"/>
<field name="v2_double" type="xmm_f64"/>
<field name="v16_int8" type="xmm_i8"/>
<field name="v8_int16" type="xmm_i16"/>
<field name="v4_int32" type="xmm_i32"/>
<field name="v2_int64" type="xmm_i64"/>
<field name="uint128" type="uint128"/>
</union>
<reg name="xmm0" bitsize="128" type="vec128"/>
<reg name="xmm1" bitsize="128" type="vec128"/>
<reg name="xmm2" bitsize="128" type="vec128"/>
<reg name="xmm3" bitsize="128" type="vec128"/>
<reg name="xmm4" bitsize="128" type="vec128"/>
<reg name="xmm5" bitsize="128" type="vec128"/>
<reg name="xmm6" bitsize="128" type="vec128"/>
<reg name="xmm7" bitsize="128" type="vec128"/>
<reg name="xmm8" bitsize="128" type="vec128"/>
<reg name="xmm9" bitsize="128" type="vec128"/>
<reg name="xmm10" bitsize="128" type="vec128"/>
<reg name="xmm11" bitsize="128" type="vec128"/>
<reg name="xmm12" bitsize="128" type="vec128"/>
<reg name="xmm13" bitsize="128" type="vec128"/>
<reg name="xmm14" bitsize="128" type="vec128"/>
<reg name="xmm15" bitsize="128" type="vec128"/>
<reg name="mxcsr" bitsize="32" type="int" group="vector"/>
</feature>
<feature name="org.gnu.gdb.i386.linux">
<reg name="orig_rax" bitsize="64" type="int" group="system"/>
</feature>
<feature name="org.gnu.gdb.i386.segments">
<reg name="fs_base" bitsize="64" type="int"/>
<reg name="gs_base" bitsize="64" type="int"/>
</feature>
<feature name="org.strata.x86.system">
<reg name="cr0" bitsize="64" type="int64" group="system"/>
<reg name="cr2" bitsize="64" type="int64" group="system"/>
<reg name="cr3" bitsize="64" type="int64" group="system"/>
<reg name="cr4" bitsize="64" type="int64" group="system"/>
<reg name="cr8" bitsize="64" type="int64" group="system"/>
<reg name="efer" bitsize="64" type="int64" group="system"/>
</feature>
</target>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// gdb numbers the GPRs rax rbx rcx rdx rsi rdi rbp rsp (gdb's features/i386/64bit-core.xml
    /// order); the hardware encoding is rax rcx rdx rbx rsp rbp rsi rdi (SDM Vol. 2, Table 2-2).
    #[test]
    fn gpr_order_follows_gdb_numbering() {
        let mut s = CpuState::default();
        s.gpr[3] = 0xb; // rbx
        s.gpr[4] = 0x5b; // rsp
        let r = from_state(&s);
        assert_eq!((r.core.regs[1], r.core.regs[7]), (0xb, 0x5b));
        let mut back = CpuState::default();
        to_state(&r, &mut back);
        assert_eq!((back.gpr[3], back.gpr[4]), (0xb, 0x5b));
    }
}
