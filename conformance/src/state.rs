//! The machine state the harness sets up and compares, and the fixed address layout shared by
//! the native run and the interpreter run.
//!
//! Both runs see the same virtual addresses: the data buffer (two pages) at [`BUF`], the page
//! holding the instruction under test at [`INSN_PAGE`] (the instruction ends exactly at the end of
//! that page, so falling through to [`FALLTHROUGH`] leaves it), and a branch target
//! [`TAKEN`] just past the page. In the interpreter both exit addresses are unmapped, so the run
//! stops with an instruction-fetch #PF there and every register is left as the instruction
//! left it (a SYSCALL terminator would clobber RCX and R11).

/// Data buffer: two pages, read-write in both runs.
pub const BUF: u64 = 0x10_0000_0000;
pub const BUF_LEN: usize = 0x2000;
/// The native state block (holds the host's saved state too). R15 points at it during the
/// native run, so generated instructions never use R15; the interpreter gets the same R15 value.
pub const STATE_BLOCK: u64 = 0x10_0001_0000;
/// Native code: prologue page, then the instruction page, then the exit stubs and epilogue.
pub const CODE: u64 = 0x10_0002_0000;
pub const INSN_PAGE: u64 = CODE + 0x1000;
/// Where execution goes when the instruction falls through.
pub const FALLTHROUGH: u64 = CODE + 0x2000;
/// The branch target generated branches use.
pub const TAKEN: u64 = FALLTHROUGH + 0x20;

/// RFLAGS bits the harness sets and compares: the six arithmetic flags and DF.
pub const FLAGS_COMPARED: u64 = 0x8d5 | 0x400;
/// RFLAGS IF and the always-one bit 1: set in both runs (CPL 3 cannot clear IF).
pub const FLAGS_FIXED: u64 = 0x202;

/// x87 state in the form FXSAVE stores it (SDM Vol. 1, Table 10-2): registers in stack order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X87 {
    pub fcw: u16,
    /// Status word, TOP included (bits 13:11).
    pub fsw: u16,
    /// Abridged tag word: bit i set when physical register i is not empty.
    pub tag: u8,
    /// ST(0)..ST(7): significand, sign and exponent.
    pub st: [(u64, u16); 8],
}

impl Default for X87 {
    /// The state after FNINIT: all registers empty, every exception masked.
    fn default() -> Self {
        X87 { fcw: 0x037f, fsw: 0, tag: 0, st: [(0, 0); 8] }
    }
}

impl X87 {
    /// TOP, from the status word.
    pub fn top(&self) -> usize {
        (self.fsw >> 11 & 7) as usize
    }
    /// True if ST(i) is not empty.
    pub fn valid(&self, i: usize) -> bool {
        self.tag >> ((self.top() + i) & 7) & 1 != 0
    }
}

/// Architectural state before or after one instruction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineState {
    /// RAX..R15 in encoding order.
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    /// XMM0..XMM15, low quadword first.
    pub xmm: [[u64; 2]; 16],
    pub mxcsr: u32,
    pub x87: X87,
    /// The data buffer at [`BUF`].
    pub buf: Vec<u8>,
}

impl MachineState {
    pub fn zeroed() -> Self {
        MachineState {
            gpr: [0; 16],
            rip: 0,
            rflags: FLAGS_FIXED,
            xmm: [[0; 2]; 16],
            mxcsr: 0x1f80,
            x87: X87::default(),
            buf: vec![0; BUF_LEN],
        }
    }

    /// Reads `n` (≤ 8) little-endian bytes of the buffer at virtual address `va`, if inside.
    pub fn read_buf(&self, va: u64, n: usize) -> Option<u64> {
        let off = usize::try_from(va.checked_sub(BUF)?).ok()?;
        let bytes = self.buf.get(off..off.checked_add(n)?)?;
        Some(bytes.iter().rev().fold(0u64, |acc, &b| acc << 8 | b as u64))
    }

    /// Writes the low `n` (≤ 8) bytes of `v` into the buffer at `va`; false if outside.
    pub fn write_buf(&mut self, va: u64, n: usize, v: u64) -> bool {
        let Some(off) = va.checked_sub(BUF).and_then(|o| usize::try_from(o).ok()) else { return false };
        let Some(dst) = off.checked_add(n).and_then(|end| self.buf.get_mut(off..end)) else { return false };
        dst.copy_from_slice(&v.to_le_bytes()[..n]);
        true
    }
}

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The instruction completed; `rip` is where execution went next.
    Completed(Box<MachineState>),
    /// The instruction raised this exception vector (interpreter only: native runs are
    /// constrained not to fault). `detail` says what stopped.
    Fault {
        vector: u8,
        error_code: u32,
        detail: String,
        /// The state when the run stopped (RIP at the faulting instruction).
        state: Box<MachineState>,
    },
}
