//! ELF64 executable parsing for the user-mode runner (System V gABI, x86-64 psABI). Only what a
//! static executable needs: the header, PT_LOAD segments, PT_INTERP (refused), PT_GNU_STACK.
//! Every field is checked against the file size, so a truncated or malformed file is an error
//! that names the problem, never a panic.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElfError {
    #[error("not an ELF file (bad magic)")]
    BadMagic,
    #[error("file is truncated: {what} needs bytes up to offset {need}, file has {have}")]
    Truncated { what: &'static str, need: u64, have: u64 },
    #[error("not a 64-bit little-endian ELF (class {class}, data {data})")]
    WrongClass { class: u8, data: u8 },
    #[error("not an x86-64 executable (e_machine {0})")]
    WrongMachine(u16),
    #[error("not an executable (e_type {0}); only ET_EXEC and static ET_DYN are run")]
    WrongType(u16),
    #[error("dynamically linked (interpreter {0}); only static executables are supported")]
    Dynamic(String),
    #[error("program header entry size {0} (expected 56)")]
    BadPhentsize(u16),
    #[error("segment {index}: {problem}")]
    BadSegment { index: usize, problem: &'static str },
    #[error("no loadable segment")]
    NoLoad,
}

pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phdr {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// A parsed executable.
#[derive(Clone, Debug)]
pub struct Elf {
    /// ET_DYN (position-independent): loaded at a base the runner picks.
    pub pie: bool,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u16,
    pub phdrs: Vec<Phdr>,
    pub exec_stack: bool,
}

fn field<const N: usize>(data: &[u8], off: usize, what: &'static str) -> Result<[u8; N], ElfError> {
    data.get(off..off + N).and_then(|b| b.try_into().ok()).ok_or(ElfError::Truncated {
        what,
        need: (off + N) as u64,
        have: data.len() as u64,
    })
}
fn u16_at(d: &[u8], off: usize, what: &'static str) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(field(d, off, what)?))
}
fn u32_at(d: &[u8], off: usize, what: &'static str) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(field(d, off, what)?))
}
fn u64_at(d: &[u8], off: usize, what: &'static str) -> Result<u64, ElfError> {
    Ok(u64::from_le_bytes(field(d, off, what)?))
}

impl Elf {
    /// Parses and checks an executable image.
    ///
    /// # Errors
    /// An [`ElfError`] naming what is wrong with the file.
    pub fn parse(data: &[u8]) -> Result<Elf, ElfError> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ElfError::BadMagic);
        }
        let ident: [u8; 16] = field(data, 0, "ELF identification")?;
        if ident[4] != 2 || ident[5] != 1 {
            return Err(ElfError::WrongClass { class: ident[4], data: ident[5] });
        }
        let e_type = u16_at(data, 16, "ELF header")?;
        let machine = u16_at(data, 18, "ELF header")?;
        if machine != 62 {
            return Err(ElfError::WrongMachine(machine));
        }
        if e_type != 2 && e_type != 3 {
            return Err(ElfError::WrongType(e_type));
        }
        let entry = u64_at(data, 24, "ELF header")?;
        let phoff = u64_at(data, 32, "ELF header")?;
        let phentsize = u16_at(data, 54, "ELF header")?;
        let phnum = u16_at(data, 56, "ELF header")?;
        if phnum > 0 && phentsize != 56 {
            return Err(ElfError::BadPhentsize(phentsize));
        }
        let mut phdrs = Vec::with_capacity(phnum as usize);
        let mut exec_stack = false;
        for i in 0..phnum as usize {
            let o = usize::try_from(phoff).unwrap_or(usize::MAX).saturating_add(i * 56);
            let ph = Phdr {
                p_type: u32_at(data, o, "program header")?,
                flags: u32_at(data, o.saturating_add(4), "program header")?,
                offset: u64_at(data, o.saturating_add(8), "program header")?,
                vaddr: u64_at(data, o.saturating_add(16), "program header")?,
                filesz: u64_at(data, o.saturating_add(32), "program header")?,
                memsz: u64_at(data, o.saturating_add(40), "program header")?,
                align: u64_at(data, o.saturating_add(48), "program header")?,
            };
            match ph.p_type {
                PT_INTERP => {
                    let end = ph.offset.saturating_add(ph.filesz);
                    let name = data
                        .get(ph.offset as usize..end as usize)
                        .map(|b| String::from_utf8_lossy(b).trim_end_matches('\0').to_string())
                        .unwrap_or_default();
                    return Err(ElfError::Dynamic(name));
                }
                PT_LOAD => {
                    if ph.filesz > ph.memsz {
                        return Err(ElfError::BadSegment { index: i, problem: "file size exceeds memory size" });
                    }
                    if ph.offset.checked_add(ph.filesz).is_none_or(|end| end > data.len() as u64) {
                        return Err(ElfError::Truncated {
                            what: "PT_LOAD segment contents",
                            need: ph.offset.saturating_add(ph.filesz),
                            have: data.len() as u64,
                        });
                    }
                    if ph.vaddr.checked_add(ph.memsz).is_none_or(|end| end > super::aspace::USER_TOP) {
                        return Err(ElfError::BadSegment { index: i, problem: "outside the user address range" });
                    }
                    if ph.align > 1 && ph.vaddr % 4096 != ph.offset % 4096 {
                        return Err(ElfError::BadSegment {
                            index: i,
                            problem: "vaddr and offset disagree modulo the page size",
                        });
                    }
                }
                PT_GNU_STACK => exec_stack = ph.flags & PF_X != 0,
                _ => {}
            }
            phdrs.push(ph);
        }
        if !phdrs.iter().any(|p| p.p_type == PT_LOAD) {
            return Err(ElfError::NoLoad);
        }
        Ok(Elf { pie: e_type == 3, entry, phoff, phnum, phdrs, exec_stack })
    }

    /// Virtual address (before the PIE bias) at which the program headers are mapped, if they are.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(p) = self.phdrs.iter().find(|p| p.p_type == PT_PHDR) {
            return Some(p.vaddr);
        }
        self.phdrs
            .iter()
            .find(|p| p.p_type == PT_LOAD && p.offset <= self.phoff && self.phoff < p.offset + p.filesz)
            .map(|p| p.vaddr + (self.phoff - p.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Vec<u8> {
        // A 64-bit x86-64 ET_EXEC with one PT_LOAD covering the first page.
        let mut d = vec![0u8; 4096];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = 2;
        d[5] = 1;
        d[6] = 1;
        d[16..18].copy_from_slice(&2u16.to_le_bytes());
        d[18..20].copy_from_slice(&62u16.to_le_bytes());
        d[24..32].copy_from_slice(&0x400078u64.to_le_bytes());
        d[32..40].copy_from_slice(&64u64.to_le_bytes());
        d[54..56].copy_from_slice(&56u16.to_le_bytes());
        d[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        d[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
        d[ph + 4..ph + 8].copy_from_slice(&(PF_R | PF_X).to_le_bytes());
        d[ph + 16..ph + 24].copy_from_slice(&0x400000u64.to_le_bytes());
        d[ph + 32..ph + 40].copy_from_slice(&4096u64.to_le_bytes());
        d[ph + 40..ph + 48].copy_from_slice(&4096u64.to_le_bytes());
        d[ph + 48..ph + 56].copy_from_slice(&4096u64.to_le_bytes());
        d
    }

    #[test]
    fn parses_a_minimal_executable() {
        let e = Elf::parse(&minimal()).unwrap();
        assert_eq!(e.entry, 0x400078);
        assert_eq!(e.phdr_vaddr(), Some(0x400040));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let d = minimal();
        for len in 0..d.len() {
            assert!(Elf::parse(&d[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn refuses_wrong_machine_and_dynamic() {
        let mut d = minimal();
        d[18] = 40; // ARM
        assert_eq!(Elf::parse(&d).unwrap_err(), ElfError::WrongMachine(40));
        let mut d = minimal();
        d[64..68].copy_from_slice(&PT_INTERP.to_le_bytes());
        assert!(matches!(Elf::parse(&d), Err(ElfError::Dynamic(_))));
    }
}
