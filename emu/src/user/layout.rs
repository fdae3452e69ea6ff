//! Reading and writing the little-endian structures the x86-64 Linux kernel ABI shares with user
//! space (stat, sigaction, siginfo, ucontext, the FPU save area). Below both the system calls
//! and signal delivery, which both build and parse them.

/// A little-endian field writer for building x86-64 kernel structures.
pub struct Layout(pub Vec<u8>);

impl Layout {
    pub fn new(size: usize) -> Self {
        Layout(vec![0; size])
    }
    pub fn u16(&mut self, off: usize, v: u16) -> &mut Self {
        self.0[off..off + 2].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, off: usize, b: &[u8]) -> &mut Self {
        self.0[off..off + b.len()].copy_from_slice(b);
        self
    }
}

/// Reads a little-endian u64 field of a structure copied in from the guest.
pub fn le64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Reads a little-endian u32 field of a structure copied in from the guest.
pub fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}
