//! A Multiboot kernel handed to firmware: the fw_cfg items QEMU's Multiboot option ROM
//! (`multiboot_dma.bin`, Debian's qemu-system-data) reads when `qemu-system-x86_64 -kernel`
//! gets a Multiboot kernel, so `strata run --bios ... --kernel K` boots it as QEMU does.
//!
//! Facts from QEMU's `hw/i386/multiboot.c` and `pc-bios/optionrom/multiboot.S` (read, not
//! copied): the ROM reads the 88-byte Multiboot information (MBI) from INITRD_DATA to
//! INITRD_ADDR (0x9500), fills in mem_lower (INT 12h), the memory map at the MBI's mmap_addr
//! (0x9000, from INT 15h E820) with mmap_length and mem_upper, switches to 32-bit protected
//! mode, reads KERNEL_DATA (KERNEL_SIZE bytes) to KERNEL_ADDR and jumps to KERNEL_ENTRY with EAX =
//! 2BADB002h and EBX = the MBI. KERNEL_DATA is the kernel's memory image from its lowest load
//! address (bss zeroed) rounded up to a page, then the module list (16 bytes per module),
//! the command lines (modules', then the kernel's), the boot loader's name, page-aligned, then
//! each module, page-aligned. The MBI's flags: memory, boot device (80h, no partition),
//! command line, modules, memory map, boot loader name.

use super::multiboot::{detect, Module, MultibootError};
use super::LoadError;
use devices::pc::fw_cfg::{key, FwCfg};

/// Where the ROM writes the memory map and reads the MBI to (QEMU's MULTIBOOT_STRUCT_ADDR).
pub const E820_MAP_ADDR: u32 = 0x9000;
pub const MBI_ADDR: u32 = E820_MAP_ADDR + 0x500;
const MBI_SIZE: usize = 88;
const PAGE: usize = 4096;
const BOOTLOADER_NAME: &str = "strata";

fn u32_at(d: &[u8], o: usize) -> Option<u32> {
    d.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The kernel's memory image: (lowest address, bytes up to the end of its bss, entry point),
/// from the a.out kludge fields (header flag 16) or the ELF32 program headers.
///
/// # Errors
/// The header or the ELF file is malformed.
pub fn memory_image(image: &[u8]) -> Result<(u32, Vec<u8>, u32), MultibootError> {
    let hdr = detect(image).ok_or(MultibootError::NoHeader)?;
    let flags = u32_at(image, hdr + 4).ok_or(MultibootError::TruncatedHeader)?;
    if flags & 1 << 16 != 0 {
        let field = |i: usize| u32_at(image, hdr + 12 + 4 * i).ok_or(MultibootError::TruncatedHeader);
        let (header_addr, load_addr, load_end, bss_end, entry) =
            (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
        let file_off = (hdr as u64 + load_addr as u64)
            .checked_sub(header_addr as u64)
            .ok_or(MultibootError::LoadAddrAboveHeader)?;
        let len = if load_end == 0 {
            (image.len() as u64).saturating_sub(file_off)
        } else {
            (load_end as u64).saturating_sub(load_addr as u64)
        };
        let data = usize::try_from(file_off + len)
            .ok()
            .and_then(|end| image.get(file_off as usize..end))
            .ok_or(MultibootError::LoadRangeOutsideFile { load_addr, len })?;
        let mut mem = data.to_vec();
        let total = (bss_end as u64).saturating_sub(load_addr as u64).max(len);
        mem.resize(total as usize, 0);
        return Ok((load_addr, mem, entry));
    }
    if image.get(..4) != Some(b"\x7fELF") || image.get(4) != Some(&1) {
        return Err(MultibootError::NotElf32);
    }
    let entry = u32_at(image, 24).ok_or(MultibootError::TruncatedElfHeader)?;
    let phoff = u32_at(image, 28).ok_or(MultibootError::TruncatedElfHeader)? as usize;
    let phnum =
        image.get(44..46).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or(MultibootError::TruncatedElfHeader)?;
    let mut segs = Vec::new();
    for i in 0..phnum as usize {
        let o = phoff + 32 * i;
        let f = |k: usize| u32_at(image, o + 4 * k).ok_or(MultibootError::TruncatedProgramHeader(i));
        if f(0)? != 1 {
            continue; // not PT_LOAD
        }
        let (off, paddr, filesz, memsz) = (f(1)? as usize, f(3)?, f(4)? as usize, f(5)?);
        let data = image.get(off..off + filesz).ok_or(MultibootError::SegmentOutsideFile(i))?;
        segs.push((paddr, memsz, data));
    }
    let lo = segs.iter().map(|s| s.0).min().unwrap_or(0);
    let hi = segs.iter().map(|s| s.0 as u64 + s.1 as u64).max().unwrap_or(0);
    if hi - lo as u64 > 1 << 30 {
        return Err(MultibootError::SegmentOutsideRam { index: 0, start: lo as u64, end: hi });
    }
    let mut mem = vec![0u8; (hi - lo as u64) as usize];
    for (paddr, memsz, data) in segs {
        let at = (paddr - lo) as usize;
        let n = data.len().min(memsz as usize);
        mem[at..at + n].copy_from_slice(&data[..n]);
    }
    Ok((lo, mem, entry))
}

/// Offers `image` (a Multiboot kernel at `path`) with its command line and modules to QEMU's
/// Multiboot option ROM through fw_cfg. `cmdline` is the whole kernel command line (Strata
/// and QEMU start it with the kernel's path).
///
/// # Errors
/// The kernel is malformed, or it and its modules do not fit below 4 GiB.
pub fn add_items(f: &mut FwCfg, path: &str, image: &[u8], cmdline: &str, modules: &[Module]) -> Result<(), LoadError> {
    let bad = |source: MultibootError| LoadError::Multiboot { path: path.to_string(), source };
    let (load, mut buf, entry) = memory_image(image).map_err(bad)?;
    let phys = |off: usize| load as u64 + off as u64;
    buf.resize(buf.len().div_ceil(PAGE) * PAGE, 0);
    let list_at = buf.len();
    let mut strings = Vec::new();
    let strings_at = list_at + 16 * modules.len();
    let mut add_string = |s: &str| {
        let at = strings_at + strings.len();
        strings.extend_from_slice(s.as_bytes());
        strings.push(0);
        at
    };
    let module_strings: Vec<usize> = modules.iter().map(|m| add_string(m.string)).collect();
    let cmdline_at = add_string(cmdline);
    let name_at = add_string(BOOTLOADER_NAME);
    buf.resize(strings_at, 0);
    buf.extend_from_slice(&strings);
    buf.resize(buf.len().div_ceil(PAGE) * PAGE, 0);
    let mut list = Vec::new();
    for (m, &s) in modules.iter().zip(&module_strings) {
        let at = buf.len();
        buf.extend_from_slice(m.data);
        buf.resize(buf.len().div_ceil(PAGE) * PAGE, 0);
        for v in [phys(at), phys(at + m.data.len()), phys(s), 0] {
            list.extend_from_slice(&(v as u32).to_le_bytes());
        }
    }
    buf[list_at..list_at + list.len()].copy_from_slice(&list);
    if phys(buf.len()) > 1 << 32 {
        return Err(LoadError::Kernel { path: path.into(), problem: "kernel and modules reach above 4 GiB".into() });
    }
    let mut mbi = vec![0u8; MBI_SIZE];
    let mut w = |o: usize, v: u32| mbi[o..o + 4].copy_from_slice(&v.to_le_bytes());
    w(0, 1 | 2 | 4 | 8 | 0x40 | 0x200); // memory, boot device, cmdline, modules, mmap, loader name
    w(12, 0x8000_ffff); // BIOS disk 80h, no partition
    w(16, phys(cmdline_at) as u32);
    w(20, modules.len() as u32);
    w(24, phys(list_at) as u32);
    w(48, E820_MAP_ADDR);
    w(64, phys(name_at) as u32);
    f.set_item(key::KERNEL_ENTRY, entry.to_le_bytes().to_vec());
    f.set_item(key::KERNEL_ADDR, load.to_le_bytes().to_vec());
    f.set_item(key::KERNEL_SIZE, (buf.len() as u32).to_le_bytes().to_vec());
    f.set_item(key::KERNEL_DATA, buf);
    f.set_item(key::INITRD_ADDR, MBI_ADDR.to_le_bytes().to_vec());
    f.set_item(key::INITRD_SIZE, (MBI_SIZE as u32).to_le_bytes().to_vec());
    f.set_item(key::INITRD_DATA, mbi);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An a.out-kludge kernel: header at 0, loaded at 1 MiB + 0x1000, bss to + 0x3010.
    fn kernel() -> Vec<u8> {
        let flags = 2 | 1 << 16;
        let mut k = Vec::new();
        for v in [
            0x1bad_b002u32,
            flags,
            0u32.wrapping_sub(0x1bad_b002).wrapping_sub(flags),
            0x10_1000,
            0x10_1000,
            0,
            0x10_4010,
            0x10_1020,
        ] {
            k.extend_from_slice(&v.to_le_bytes());
        }
        k.extend_from_slice(&[0xf4; 100]);
        k
    }

    #[test]
    fn items_follow_qemus_multiboot_layout() {
        let mut f = FwCfg::new();
        let m = [Module { data: b"ENV=1\n", string: "env.txt" }];
        add_items(&mut f, "k", &kernel(), "k -x", &m).unwrap();
        let le = |k: u16| u32::from_le_bytes(f.item(k).unwrap()[..4].try_into().unwrap());
        assert_eq!(le(key::KERNEL_ENTRY), 0x10_1020);
        assert_eq!(le(key::KERNEL_ADDR), 0x10_1000);
        assert_eq!(le(key::INITRD_ADDR), 0x9500);
        let buf = f.item(key::KERNEL_DATA).unwrap().to_vec();
        assert_eq!(buf.len() as u32, le(key::KERNEL_SIZE));
        assert_eq!(buf.len() % 4096, 0);
        assert_eq!(&buf[0x20..0x24], &[0xf4; 4], "the file's bytes after the header");
        let mbi = f.item(key::INITRD_DATA).unwrap().to_vec();
        assert_eq!(mbi.len(), 88);
        let at = |p: u32| (p - 0x10_1000) as usize;
        let cstr = |p: u32| {
            let s = &buf[at(p)..];
            String::from_utf8(s[..s.iter().position(|&b| b == 0).unwrap()].to_vec()).unwrap()
        };
        assert_eq!(cstr(u32_at(&mbi, 16).unwrap()), "k -x");
        assert_eq!(cstr(u32_at(&mbi, 64).unwrap()), "strata");
        assert_eq!(u32_at(&mbi, 20), Some(1));
        assert_eq!(u32_at(&mbi, 48), Some(0x9000));
        // The bss (0x3010 bytes from the load address) is inside the first pages, zeroed.
        let list = at(u32_at(&mbi, 24).unwrap());
        assert!(list >= 0x4000, "module list after the bss, page-aligned");
        let (s, e, name) =
            (u32_at(&buf, list).unwrap(), u32_at(&buf, list + 4).unwrap(), u32_at(&buf, list + 8).unwrap());
        assert_eq!(&buf[at(s)..at(e)], b"ENV=1\n");
        assert_eq!(at(s) % 4096, 0);
        assert_eq!(cstr(name), "env.txt");
    }

    #[test]
    fn malformed_kernels_are_errors() {
        let mut f = FwCfg::new();
        assert!(add_items(&mut f, "k", &[0u8; 64], "", &[]).is_err());
        let mut k = kernel();
        k[16..20].copy_from_slice(&0x20_0000u32.to_le_bytes()); // load_addr above header_addr
        assert!(add_items(&mut f, "k", &k, "", &[]).is_err());
    }
}
