//! Multiboot v1 (the Multiboot Specification 0.6.96, sections 3.1–3.3) for small test kernels:
//! the header in the first 8 KiB, loading either by the header's address fields (flag 16) or
//! from ELF32 program headers, the information structure with memory sizes, command line and
//! memory map, and the machine state: 32-bit protected mode, paging off, EAX = 0x2BADB002,
//! EBX = the information structure. Modules, boot device and video modes are not supported.

use super::layout::{self, e820_map};
use super::{put, LoadError};
use crate::cpu::Cpu;
use crate::state::{ctrl, Segment};
use thiserror::Error;

pub const HEADER_MAGIC: u32 = 0x1bad_b002;
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;

/// What is wrong with a Multiboot image (`LoadError::Multiboot` puts the file's path first).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MultibootError {
    #[error("no Multiboot header in the first 8 KiB")]
    NoHeader,
    #[error("truncated Multiboot header")]
    TruncatedHeader,
    #[error("load_addr is above header_addr")]
    LoadAddrAboveHeader,
    #[error("load range {load_addr:#x}..+{len:#x} is outside the file")]
    LoadRangeOutsideFile { load_addr: u32, len: u64 },
    #[error("neither the a.out kludge (header flag 16) nor an ELF32 file")]
    NotElf32,
    #[error("truncated ELF header")]
    TruncatedElfHeader,
    #[error("program header {0} is truncated")]
    TruncatedProgramHeader(usize),
    #[error("segment {0} lies outside the file")]
    SegmentOutsideFile(usize),
    #[error("segment {index} ({start:#x}..{end:#x}) is outside RAM")]
    SegmentOutsideRam { index: usize, start: u64, end: u64 },
}

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// True if `image` carries a Multiboot header.
pub fn detect(image: &[u8]) -> Option<usize> {
    (0..image.len().min(8192).saturating_sub(11)).step_by(4).find(|&o| {
        let (Some(m), Some(f), Some(c)) = (u32_at(image, o), u32_at(image, o + 4), u32_at(image, o + 8)) else {
            return false;
        };
        m == HEADER_MAGIC && m.wrapping_add(f).wrapping_add(c) == 0
    })
}

/// Loads a Multiboot kernel and prepares the CPU. Returns the entry point.
///
/// # Errors
/// `LoadError::Multiboot` naming `path` and what is wrong with the image, or
/// `LoadError::TooSmall` when it does not fit in guest RAM.
pub fn load(cpu: &mut Cpu, path: &str, image: &[u8], cmdline: &str) -> Result<u64, LoadError> {
    load_with_modules(cpu, path, image, cmdline, &[])
}

/// A Multiboot module: its bytes and its string (QEMU gives the file name and arguments).
pub struct Module<'a> {
    pub data: &'a [u8],
    pub string: &'a str,
}

/// [`load`] with modules, placed page-aligned after the kernel's last byte, in order, and
/// listed in the information structure (flag bit 3; 16-byte entries {mod_start, mod_end,
/// string, reserved}: Multiboot 0.6.96, 3.3).
///
/// # Errors
/// As [`load`]; also `TooSmall` when the modules do not fit below the top of RAM.
pub fn load_with_modules(
    cpu: &mut Cpu,
    path: &str,
    image: &[u8],
    cmdline: &str,
    modules: &[Module],
) -> Result<u64, LoadError> {
    let bad = |source: MultibootError| LoadError::Multiboot { path: path.to_string(), source };
    let hdr = detect(image).ok_or_else(|| bad(MultibootError::NoHeader))?;
    let flags = u32_at(image, hdr + 4).unwrap_or(0);
    let kernel_end;
    let entry = if flags & FLAG_AOUT_KLUDGE != 0 {
        let field = |i: usize| u32_at(image, hdr + 12 + 4 * i).ok_or_else(|| bad(MultibootError::TruncatedHeader));
        let (header_addr, load_addr, load_end, bss_end, entry) =
            (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        let file_off = (hdr as u64 + load_addr as u64)
            .checked_sub(header_addr as u64)
            .ok_or_else(|| bad(MultibootError::LoadAddrAboveHeader))?;
        let len = if load_end == 0 {
            (image.len() as u64).saturating_sub(file_off)
        } else {
            (load_end as u64).saturating_sub(load_addr as u64)
        };
        let data = usize::try_from(file_off + len)
            .ok()
            .and_then(|end| image.get(file_off as usize..end))
            .ok_or_else(|| bad(MultibootError::LoadRangeOutsideFile { load_addr, len }))?;
        put(cpu, load_addr as u64, data, "kernel")?;
        let bss_start = load_addr as u64 + len;
        kernel_end = bss_start.max(u64::from(bss_end));
        if bss_end as u64 > bss_start {
            let n = (bss_end as u64 - bss_start) as usize;
            let ram_mib = cpu.ram.len() >> 20;
            cpu.ram
                .slice_mut(bss_start, n)
                .ok_or_else(|| LoadError::TooSmall { ram_mib, what: "kernel bss".to_string() })?
                .fill(0);
        }
        entry as u64
    } else {
        let (entry, end) = load_elf32(cpu, image).map_err(bad)?;
        kernel_end = end;
        entry
    };
    let info = build_info(cpu, cmdline, kernel_end, modules)?;
    super::acpi::write(cpu)?;
    super::write_boot_gdt(cpu)?;
    super::flat_data_segments(cpu);
    let mut cs = Segment::flat_data(0x20, 0);
    cs.attr = (cs.attr & !0xf) | 0xb; // execute/read, accessed
    cpu.state.segs[1] = cs;
    cpu.state.cr0 = ctrl::CR0_PE | ctrl::CR0_ET;
    cpu.state.gpr[0] = BOOTLOADER_MAGIC as u64;
    cpu.state.gpr[3] = info;
    cpu.state.gpr[4] = layout::BOOT_STACK;
    cpu.state.rip = entry;
    cpu.softmmu.flush_tlb();
    Ok(entry)
}

/// Loads the PT_LOAD segments; returns the entry point and the end of the highest segment.
fn load_elf32(cpu: &mut Cpu, image: &[u8]) -> Result<(u64, u64), MultibootError> {
    if image.get(..4) != Some(b"\x7fELF") || image.get(4) != Some(&1) {
        return Err(MultibootError::NotElf32);
    }
    let u16_at = |o: usize| image.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let entry = u32_at(image, 24).ok_or(MultibootError::TruncatedElfHeader)?;
    let phoff = u32_at(image, 28).ok_or(MultibootError::TruncatedElfHeader)? as usize;
    let phnum = u16_at(44).ok_or(MultibootError::TruncatedElfHeader)? as usize;
    let mut top = 0u64;
    for i in 0..phnum {
        let o = phoff + 32 * i;
        let f = |k: usize| u32_at(image, o + 4 * k).ok_or(MultibootError::TruncatedProgramHeader(i));
        if f(0)? != 1 {
            continue; // not PT_LOAD
        }
        let (off, paddr, filesz, memsz) = (f(1)? as usize, f(3)? as u64, f(4)? as usize, f(5)? as u64);
        let data = image.get(off..off + filesz).ok_or(MultibootError::SegmentOutsideFile(i))?;
        let end = paddr + memsz;
        top = top.max(end);
        let seg = cpu.ram.slice_mut(paddr, memsz as usize).ok_or(MultibootError::SegmentOutsideRam {
            index: i,
            start: paddr,
            end,
        })?;
        seg.fill(0);
        seg[..filesz.min(memsz as usize)].copy_from_slice(&data[..filesz.min(memsz as usize)]);
    }
    Ok((entry as u64, top))
}

/// Writes the Multiboot information structure (and the modules after `kernel_end`); returns
/// its address.
fn build_info(cpu: &mut Cpu, cmdline: &str, kernel_end: u64, modules: &[Module]) -> Result<u64, LoadError> {
    let base = layout::MULTIBOOT_INFO;
    let ram = cpu.ram.len().min(layout::MMIO_HOLE);
    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    let cmd_at = base + 0x100;
    let mmap_at = base + 0x1000;
    let mut mmap = Vec::new();
    for (addr, len, ty) in e820_map(cpu.ram.len()) {
        mmap.extend_from_slice(&20u32.to_le_bytes());
        mmap.extend_from_slice(&addr.to_le_bytes());
        mmap.extend_from_slice(&len.to_le_bytes());
        mmap.extend_from_slice(&ty.to_le_bytes());
    }
    let mut info = vec![0u8; 88];
    let mut w = |o: usize, v: u32| info[o..o + 4].copy_from_slice(&v.to_le_bytes());
    w(0, 1 | 4 | 0x40); // mem_*, cmdline, mmap_*
    w(4, (layout::EBDA / 1024) as u32);
    w(8, ((ram - layout::KERNEL_LOAD) / 1024) as u32);
    w(16, cmd_at as u32);
    w(44, mmap.len() as u32);
    w(48, mmap_at as u32);
    if !modules.is_empty() {
        // Module list at base + 0x800, strings at base + 0x900 (both inside the info page
        // block the loader owns), data page-aligned from the kernel's end up.
        let list_at = base + 0x800;
        let mut str_at = base + 0x900;
        let mut at = kernel_end.max(layout::KERNEL_LOAD).div_ceil(4096) * 4096;
        let mut list = Vec::new();
        for m in modules {
            put(cpu, at, m.data, "Multiboot module")?;
            let mut s = m.string.as_bytes().to_vec();
            s.push(0);
            if str_at + s.len() as u64 > base + 0x1000 {
                return Err(LoadError::TooSmall {
                    ram_mib: cpu.ram.len() >> 20,
                    what: "Multiboot module strings (at most 1792 bytes in all)".into(),
                });
            }
            put(cpu, str_at, &s, "Multiboot module string")?;
            for v in [at as u32, (at + m.data.len() as u64) as u32, str_at as u32, 0] {
                list.extend_from_slice(&v.to_le_bytes());
            }
            str_at += s.len() as u64;
            at = (at + m.data.len() as u64).div_ceil(4096) * 4096;
        }
        put(cpu, list_at, &list, "Multiboot module list")?;
        let flags = u32::from_le_bytes(info[0..4].try_into().unwrap_or_default()) | 8;
        info[0..4].copy_from_slice(&flags.to_le_bytes());
        info[20..24].copy_from_slice(&(modules.len() as u32).to_le_bytes());
        info[24..28].copy_from_slice(&(list_at as u32).to_le_bytes());
    }
    put(cpu, base, &info, "Multiboot information")?;
    put(cpu, cmd_at, &cl, "command line")?;
    put(cpu, mmap_at, &mmap, "memory map")?;
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::GuestRam;

    /// A Multiboot kernel with the a.out kludge (header at 0: magic, flags (memory info | a.out
    /// kludge), checksum, then header/load/load-end/bss-end/entry addresses), loaded at 2 MiB
    /// with its entry at 0x200020; HLT bytes after the header.
    fn aout_kernel(bss_end: u32) -> Vec<u8> {
        let mut k = Vec::new();
        let flags = 2 | FLAG_AOUT_KLUDGE;
        for v in [
            HEADER_MAGIC,
            flags,
            0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
            0x20_0000,
            0x20_0000,
            0,
            bss_end,
            0x20_0020,
        ] {
            k.extend_from_slice(&v.to_le_bytes());
        }
        k.extend_from_slice(&[0xf4; 64]);
        k
    }

    #[test]
    fn modules_follow_the_kernel_page_aligned_and_are_listed() {
        // Multiboot 0.6.96, 3.3: flags bit 3; mods_count at 20, mods_addr at 24; entries of
        // {mod_start, mod_end, string, reserved}; modules page-aligned (header flag bit 0).
        let k = aout_kernel(0x20_2010);
        let mut cpu = Cpu::new(GuestRam::new(16 << 20).unwrap());
        let mods = [Module { data: b"ENV=1\n", string: "/tmp/env" }, Module { data: &[7; 5000], string: "two" }];
        load_with_modules(&mut cpu, "t", &k, "t -x", &mods).unwrap();
        let m = cpu.ram.slice(cpu.state.gpr[3], 88).unwrap().to_vec();
        assert_eq!(u32_at(&m, 0).unwrap() & 8, 8);
        assert_eq!(u32_at(&m, 20), Some(2));
        let list = u32_at(&m, 24).unwrap() as u64;
        let e = cpu.ram.slice(list, 32).unwrap().to_vec();
        let (s0, e0, str0) = (u32_at(&e, 0).unwrap(), u32_at(&e, 4).unwrap(), u32_at(&e, 8).unwrap());
        assert_eq!((s0, e0 - s0), (0x20_3000, 6), "after the bss end 0x202010, page-aligned");
        assert_eq!(cpu.ram.slice(s0 as u64, 6).unwrap(), b"ENV=1\n");
        assert_eq!(cpu.ram.slice(str0 as u64, 9).unwrap(), b"/tmp/env\0");
        assert_eq!(u32_at(&e, 16), Some(0x20_4000));
        assert_eq!(u32_at(&e, 20), Some(0x20_4000 + 5000));
    }

    #[test]
    fn aout_kludge_kernel_is_loaded_and_entered_as_the_spec_says() {
        // Header at 0: magic, flags (mem info | a.out kludge), checksum, then the addresses.
        let k = aout_kernel(0x20_2000);
        let mut cpu = Cpu::new(GuestRam::new(16 << 20).unwrap());
        let entry = load(&mut cpu, "t", &k, "hello").unwrap();
        assert_eq!(entry, 0x20_0020);
        assert_eq!(cpu.state.gpr[0], 0x2bad_b002);
        assert_eq!(cpu.state.code_bits(), 32);
        assert_eq!(cpu.ram.slice(0x20_0020, 1).unwrap()[0], 0xf4);
        let mbi = cpu.state.gpr[3];
        let m = cpu.ram.slice(mbi, 88).unwrap().to_vec();
        assert_eq!(u32_at(&m, 4), Some(639));
        let cmd = u32_at(&m, 16).unwrap() as u64;
        assert_eq!(cpu.ram.slice(cmd, 6).unwrap(), b"hello\0");
    }

    #[test]
    fn missing_or_broken_header_is_an_error() {
        let mut cpu = Cpu::new(GuestRam::new(16 << 20).unwrap());
        assert!(load(&mut cpu, "t", &[0u8; 100], "").unwrap_err().to_string().contains("no Multiboot header"));
        let mut k = Vec::new();
        for v in [HEADER_MAGIC, FLAG_AOUT_KLUDGE, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(FLAG_AOUT_KLUDGE)] {
            k.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            load(&mut cpu, "t", &k, ""),
            Err(LoadError::Multiboot { path: "t".into(), source: MultibootError::TruncatedHeader })
        );
    }

    #[test]
    fn errors_name_the_file_and_the_problem_in_one_line() {
        let mut cpu = Cpu::new(GuestRam::new(16 << 20).unwrap());
        // A header without the a.out kludge in a file that is not ELF32.
        let mut k = Vec::new();
        for v in [HEADER_MAGIC, 0, 0u32.wrapping_sub(HEADER_MAGIC)] {
            k.extend_from_slice(&v.to_le_bytes());
        }
        let e = load(&mut cpu, "k.bin", &k, "").unwrap_err();
        assert_eq!(e.to_string(), "k.bin: neither the a.out kludge (header flag 16) nor an ELF32 file");
        // An a.out kludge whose load range starts beyond the end of the file.
        let flags = FLAG_AOUT_KLUDGE;
        let mut k = Vec::new();
        for v in
            [HEADER_MAGIC, flags, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags), 0x1000, 0x9000, 0, 0, 0x9000]
        {
            k.extend_from_slice(&v.to_le_bytes());
        }
        let e = load(&mut cpu, "k.bin", &k, "").unwrap_err();
        assert_eq!(
            e,
            LoadError::Multiboot {
                path: "k.bin".into(),
                source: MultibootError::LoadRangeOutsideFile { load_addr: 0x9000, len: 0 }
            }
        );
        assert!(!e.to_string().contains('\n'));
    }
}
