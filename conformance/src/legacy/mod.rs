//! The instruction-level differential for 16- and 32-bit code: the same random instances run
//! natively on the host CPU in a 32-bit code segment (compatibility mode, Linux's USER32_CS
//! 0x23) or a 16-bit one (an LDT code segment with D=0 made with `modify_ldt`), and on tier 0 in
//! a machine set up the same way (long-mode paging, the same GDT selectors and LDT descriptors,
//! CS.L=0), then compared: EAX..EDI, EIP, the defined arithmetic flags and DF, DS/ES/SS and the
//! data buffer.
//!
//! Layout (one fixed low region below 4 GiB, mapped with MAP_FIXED_NOREPLACE by `native.rs`; the
//! guest maps the same linear addresses):
//!
//! | linear | what |
//! |---|---|
//! | [`DATA`] .. +64 KiB | the 16-bit data segment (LDT 0x0f: base `DATA`, limit FFFFh, B=0) |
//! | [`BUF`] = `DATA`+8000h | the compared data buffer ([`crate::state::BUF_LEN`] bytes) |
//! | `DATA`+E000h | the native state block (never touched by the instruction) |
//! | [`CODE`] | native stubs: the 64-bit entry/exit page, then the 32-bit stubs |
//! | [`CODE`]+2000h | the instruction page: the instruction ends at [`CODE`]+3000h |
//! | [`CODE`]+3000h | the fall-through stub; [`CODE`]+3020h the branch-taken stub |
//!
//! The 16-bit code segment (LDT 0x07) has base [`CODE`] and limit FFFFh, so in both modes the
//! fall-through is at offset [`FALL_OFF`]/linear `CODE`+3000h and branches go to [`TAKEN_OFF`].
//! A case whose address size is 16 (or any 16-bit-mode case) runs with DS=ES=SS=0x0f (base
//! `DATA`, 16-bit stack); 32-bit addressing in 32-bit code runs with Linux's flat 0x2b.
//!
//! Segment loads (MOV/POP Sreg, LDS/LES/LSS) take selectors from [`SELECTORS`]: the flat GDT
//! data segment with RPL 3 and 0, the readable 32-bit code segment, the two LDT data segments,
//! and the null selector. FS and GS are never loaded: Linux keeps the thread pointer in FS's
//! base and the native stubs use GS.

pub mod gen;
pub mod guest;
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub mod native;
pub mod run;

/// The code size the instruction runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A 16-bit protected-mode code segment (D=0).
    Bits16,
    /// A 32-bit code segment (D=1, compatibility mode).
    Bits32,
}

impl Mode {
    pub fn bits(self) -> u32 {
        match self {
            Mode::Bits16 => 16,
            Mode::Bits32 => 32,
        }
    }
    /// The code selector.
    pub fn cs(self) -> u16 {
        match self {
            Mode::Bits16 => SEL_CODE16,
            Mode::Bits32 => SEL_CODE32,
        }
    }
    /// The code segment's base.
    pub fn cs_base(self) -> u64 {
        match self {
            Mode::Bits16 => CODE,
            Mode::Bits32 => 0,
        }
    }
}

/// Base of the low region: the 16-bit data segment's base.
pub const DATA: u64 = 0x4000_0000;
/// The compared buffer.
pub const BUF: u64 = DATA + 0x8000;
/// Offset of the buffer in the 16-bit data segment.
pub const BUF_OFF: u64 = BUF - DATA;
/// The native state block.
pub const STATE: u64 = DATA + 0xe000;
/// Native stubs; the 16-bit code segment's base.
pub const CODE: u64 = DATA + 0x1_0000;
/// The page holding the instruction.
pub const INSN_PAGE: u64 = CODE + 0x2000;
/// The page after it: fall-through and taken stubs.
pub const EXIT_PAGE: u64 = CODE + 0x3000;
/// Offsets (in the 16-bit code segment) of the fall-through and the branch target.
pub const FALL_OFF: u64 = 0x3000;
pub const TAKEN_OFF: u64 = 0x3020;

/// Linux x86-64's user selectors (arch/x86/include/asm/segment.h).
pub const SEL_CODE32: u16 = 0x23;
pub const SEL_FLAT: u16 = 0x2b;
pub const SEL_CODE64: u16 = 0x33;
/// LDT entries 0, 1, 2 at RPL 3.
pub const SEL_CODE16: u16 = 0x07;
pub const SEL_DATA16: u16 = 0x0f;
pub const SEL_DATA16_ALT: u16 = 0x17;
/// Base of the second LDT data segment (loaded, never used for an access).
pub const DATA_ALT: u64 = DATA + 0x1000;

/// The LDT both runs use: (base, limit, 32-bit, code).
pub const LDT: [(u64, u32, bool, bool); 3] =
    [(CODE, 0xffff, false, true), (DATA, 0xffff, false, false), (DATA_ALT, 0xffff, false, false)];

/// The descriptor of an LDT entry as `modify_ldt` builds it (arch/x86/include/asm/desc.h's
/// `fill_ldt`): DPL 3, present, byte granular, accessed bit set (so no run writes it).
pub fn ldt_descriptor(base: u64, limit: u32, big: bool, code: bool) -> u64 {
    let ty: u64 = if code { 0xb } else { 0x3 };
    let access = ty | 1 << 4 | 3 << 5 | 1 << 7;
    (limit as u64 & 0xffff)
        | (base & 0xff_ffff) << 16
        | access << 40
        | ((limit as u64 >> 16) & 0xf) << 48
        | (big as u64) << 54
        | (base >> 24 & 0xff) << 56
}

/// Selectors segment loads are given: DS/ES take any, SS only the writable data ones with RPL 3
/// (the first three).
pub const SELECTORS: [u16; 8] = [SEL_FLAT, SEL_DATA16, SEL_DATA16_ALT, 0x28, 0x0c, SEL_CODE32, 0, 3];
/// How many of [`SELECTORS`] SS accepts at CPL 3.
pub const SS_SELECTORS: usize = 3;

/// Register, flag and segment state before or after one instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyState {
    /// EAX..EDI.
    pub gpr: [u32; 8],
    /// Offset in CS.
    pub eip: u32,
    pub eflags: u32,
    /// ES, SS, DS selectors.
    pub sel: [u16; 3],
    /// The buffer at [`BUF`].
    pub buf: Vec<u8>,
}

impl LegacyState {
    pub fn zeroed() -> Self {
        LegacyState { gpr: [0; 8], eip: 0, eflags: 0x202, sel: [0; 3], buf: vec![0; crate::state::BUF_LEN] }
    }

    /// The linear base of the data segment a selector of [`SELECTORS`] names.
    pub fn base_of(sel: u16) -> u64 {
        match sel & !3 {
            0x0c => DATA,
            0x14 => DATA_ALT,
            _ => 0,
        }
    }

    /// As the 64-bit harness's state, for `compare::compare` (EAX..EDI zero-extended in RAX..RDI).
    pub fn as_machine(&self, rip: u64) -> crate::state::MachineState {
        let mut m = crate::state::MachineState::zeroed();
        for (d, s) in m.gpr.iter_mut().zip(self.gpr.iter()) {
            *d = *s as u64;
        }
        m.rip = rip;
        m.rflags = self.eflags as u64;
        m.buf = self.buf.clone();
        m
    }
}

/// One outcome of a guest run.
#[derive(Clone, Debug)]
pub enum LegacyOutcome {
    Completed(Box<LegacyState>),
    Fault { vector: u8, error_code: u32, detail: String },
}
