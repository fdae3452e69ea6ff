//! The Linux x86 boot protocol, 64-bit and 32-bit entries (Documentation/arch/x86/boot.rst,
//! "64-bit Boot Protocol" and "32-bit Boot Protocol"): the protected-mode kernel at 1 MiB,
//! boot_params (the zero page) with the setup header copied from the image, an E820 map, the
//! command line and the initrd. A kernel with XLF_KERNEL_64 gets the CPU in 64-bit mode on
//! identity page tables, RIP at the load address + 0x200; any other (a 32-bit kernel) gets
//! protected mode with paging off and flat 4 GiB segments, EIP at code32_start (the load
//! address). Both with __BOOT_CS = 0x10, __BOOT_DS = 0x18 and RSI/ESI pointing at boot_params.
//!
//! Checks: the "HdrS" magic and 0xAA55 boot flag, protocol 2.12 or later for the 64-bit entry
//! (2.03 for the 32-bit one, whose initrd_addr_max that version introduced), sizes within the file (the setup code, `syssize` paragraphs of protected-mode code, the
//! compressed payload and kernel_info the header locates), the initrd below `initrd_addr_max`, command line within
//! `cmdline_size`. Anything else is a `LoadError` naming the file and the problem.

use super::layout::{self, e820_map};
use super::{put, LoadError};
use crate::cpu::Cpu;
use crate::state::{ctrl, Segment};

const SETUP_SECTS: usize = 0x1f1;
const SYSSIZE: usize = 0x1f4;
const BOOT_FLAG: usize = 0x1fe;
const HEADER: usize = 0x202;
const VERSION: usize = 0x206;
const TYPE_OF_LOADER: usize = 0x210;
const LOADFLAGS: usize = 0x211;
const CODE32_START: usize = 0x214;
const RAMDISK_IMAGE: usize = 0x218;
const RAMDISK_SIZE: usize = 0x21c;
const HEAP_END_PTR: usize = 0x224;
const CMD_LINE_PTR: usize = 0x228;
const INITRD_ADDR_MAX: usize = 0x22c;
const XLOADFLAGS: usize = 0x236;
const CMDLINE_SIZE: usize = 0x238;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
const INIT_SIZE: usize = 0x260;
const KERNEL_INFO_OFFSET: usize = 0x268;
/// boot_params fields outside the setup header.
const E820_ENTRIES: usize = 0x1e8;
const E820_TABLE: usize = 0x2d0;
const E820_MAX: usize = 128;

const LOADED_HIGH: u8 = 1 << 0;
const CAN_USE_HEAP: u8 = 1 << 7;
const XLF_KERNEL_64: u16 = 1 << 0;

/// What the loader did, for the timeline and `--verbose`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo {
    pub protocol: u16,
    pub kernel_bytes: u64,
    pub initrd: Option<(u64, u64)>,
    pub entry: u64,
}

fn u16_at(d: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([d[o], d[o + 1]])
}
fn u32_at(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]])
}

/// True when `image` is a bzImage the loader enters through the 32-bit protocol: a setup header
/// older than 2.12 or without XLF_KERNEL_64 (an i386 kernel). Engines that cannot run 32-bit
/// kernel code ask this before the boot.
pub fn enters_in_32_bit_mode(image: &[u8]) -> bool {
    image.len() >= 0x268
        && &image[HEADER..HEADER + 4] == b"HdrS"
        && (u16_at(image, VERSION) < 0x020c || u16_at(image, XLOADFLAGS) & XLF_KERNEL_64 == 0)
}

/// Loads `image` (a bzImage) with `cmdline` and an optional initrd into `cpu`'s RAM and sets up
/// the CPU for the 64-bit entry.
///
/// # Errors
/// A [`LoadError`] naming `path` (or `initrd_path`) and what is wrong.
pub fn load(
    cpu: &mut Cpu,
    path: &str,
    image: &[u8],
    cmdline: &str,
    initrd: Option<(&str, &[u8])>,
) -> Result<BootInfo, LoadError> {
    let bad = |problem: String| LoadError::Kernel { path: path.to_string(), problem };
    if image.len() < 0x268 {
        return Err(bad(format!("too short for a bzImage ({} bytes; the setup header alone needs 616)", image.len())));
    }
    if u16_at(image, BOOT_FLAG) != 0xaa55 || &image[HEADER..HEADER + 4] != b"HdrS" {
        return Err(bad("not a bzImage (no 0xAA55 boot flag / \"HdrS\" setup header)".into()));
    }
    let version = u16_at(image, VERSION);
    // XLOADFLAGS exists from 2.12 on; an older header, or a kernel without XLF_KERNEL_64 (an
    // i386 kernel), is entered through the 32-bit protocol.
    let entry64 = version >= 0x020c && u16_at(image, XLOADFLAGS) & XLF_KERNEL_64 != 0;
    if version < 0x0203 {
        return Err(bad(format!(
            "boot protocol {}.{} is too old: the 32-bit entry needs 2.03",
            version >> 8,
            version & 0xff
        )));
    }
    if image[LOADFLAGS] & LOADED_HIGH == 0 {
        return Err(bad("kernel is not a bzImage (zImage, LOADED_HIGH clear)".into()));
    }
    let setup_sects = match image[SETUP_SECTS] {
        0 => 4,
        n => n as usize,
    };
    let setup_len = (setup_sects + 1) * 512;
    if image.len() <= setup_len {
        return Err(bad(format!("truncated: the setup code needs {setup_len} bytes, file has {}", image.len())));
    }
    let kernel = &image[setup_len..];
    check_sizes(image, version, kernel.len() as u64).map_err(bad)?;
    let ram = cpu.ram.len().min(layout::MMIO_HOLE);
    let init_size = if version >= 0x020a { u32_at(image, INIT_SIZE) as u64 } else { 0 }; // a 2.10 field
    if layout::KERNEL_LOAD + (kernel.len() as u64).max(init_size) > ram {
        return Err(LoadError::TooSmall {
            ram_mib: cpu.ram.len() >> 20,
            what: format!("the kernel needs {} MiB from 1 MiB up", (kernel.len() as u64).max(init_size) >> 20),
        });
    }
    put(cpu, layout::KERNEL_LOAD, kernel, "kernel")?;

    // boot_params: zeroed, then the setup header copied as the protocol says (0x1f1 up to the
    // end given by the jump at 0x200).
    let mut bp = vec![0u8; 4096];
    let hdr_end = (0x202 + image[0x201] as usize).min(image.len()).min(4096);
    bp[SETUP_SECTS..hdr_end].copy_from_slice(&image[SETUP_SECTS..hdr_end]);
    bp[TYPE_OF_LOADER] = 0xff;
    bp[LOADFLAGS] |= CAN_USE_HEAP;
    bp[HEAP_END_PTR..HEAP_END_PTR + 2].copy_from_slice(&0xfe00u16.to_le_bytes());

    // cmdline_size is a 2.06 field; before it the limit was 255 bytes (boot.rst).
    let cmdline_size = if version >= 0x0206 { u32_at(image, CMDLINE_SIZE) as usize } else { 255 };
    let cmdline_max = cmdline_size.min(layout::CMDLINE_MAX - 1);
    if cmdline.len() > cmdline_max {
        return Err(bad(format!("command line is {} bytes; this kernel accepts {cmdline_max}", cmdline.len())));
    }
    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    put(cpu, layout::CMDLINE, &cl, "command line")?;
    bp[CMD_LINE_PTR..CMD_LINE_PTR + 4].copy_from_slice(&(layout::CMDLINE as u32).to_le_bytes());

    let mut initrd_at = None;
    if let Some((ipath, data)) = initrd {
        let max = (u32_at(image, INITRD_ADDR_MAX) as u64).min(ram - 1);
        let size = data.len() as u64;
        let top = (max + 1) & !0xfff;
        let kernel_end = layout::KERNEL_LOAD + (kernel.len() as u64).max(init_size);
        let addr = top.checked_sub(size.div_ceil(4096) * 4096).filter(|&a| a >= kernel_end).ok_or_else(|| {
            LoadError::Initrd {
                path: ipath.to_string(),
                problem: format!("{} MiB does not fit between the kernel and {:#x}", size >> 20, top),
            }
        })?;
        put(cpu, addr, data, "initrd")?;
        bp[RAMDISK_IMAGE..RAMDISK_IMAGE + 4].copy_from_slice(&(addr as u32).to_le_bytes());
        bp[RAMDISK_SIZE..RAMDISK_SIZE + 4].copy_from_slice(&(size as u32).to_le_bytes());
        initrd_at = Some((addr, size));
    }

    let map = e820_map(cpu.ram.len());
    bp[E820_ENTRIES] = map.len().min(E820_MAX) as u8;
    for (i, (addr, len, ty)) in map.iter().take(E820_MAX).enumerate() {
        let o = E820_TABLE + 20 * i;
        bp[o..o + 8].copy_from_slice(&addr.to_le_bytes());
        bp[o + 8..o + 16].copy_from_slice(&len.to_le_bytes());
        bp[o + 16..o + 20].copy_from_slice(&ty.to_le_bytes());
    }
    if !entry64 {
        // code32_start: the header's default is the 1 MiB load address, where the kernel is.
        bp[CODE32_START..CODE32_START + 4].copy_from_slice(&(layout::KERNEL_LOAD as u32).to_le_bytes());
    }
    put(cpu, layout::ZERO_PAGE, &bp, "boot_params")?;
    super::mptable::write(cpu, 1)?;
    super::acpi::write(cpu)?;
    let entry = if entry64 {
        enter_long_mode(cpu)?;
        layout::KERNEL_LOAD + 0x200
    } else {
        enter_protected_mode(cpu)?;
        layout::KERNEL_LOAD
    };
    cpu.state.rip = entry;
    cpu.state.gpr[6] = layout::ZERO_PAGE; // RSI
    Ok(BootInfo { protocol: version, kernel_bytes: kernel.len() as u64, initrd: initrd_at, entry })
}

/// Checks every size the setup header gives against the `kernel_len` bytes of protected-mode code
/// the file holds (boot.rst: syssize in 16-byte paragraphs since 2.04; payload_offset/length since
/// 2.08, relative to the protected-mode code; kernel_info_offset since 2.15, likewise), so a cut
/// file is refused here instead of faulting in the guest.
fn check_sizes(image: &[u8], version: u16, kernel_len: u64) -> Result<(), String> {
    let syssize = u64::from(u32_at(image, SYSSIZE)) * 16;
    if syssize > kernel_len {
        return Err(format!(
            "truncated: the header's syssize says {syssize} bytes of protected-mode code, the file holds {kernel_len}"
        ));
    }
    if version >= 0x0208 {
        let end = u64::from(u32_at(image, PAYLOAD_OFFSET)) + u64::from(u32_at(image, PAYLOAD_LENGTH));
        if end > kernel_len {
            return Err(format!("truncated: the compressed payload ends at {end}, the file holds {kernel_len}"));
        }
    }
    if version >= 0x020f && image.len() >= KERNEL_INFO_OFFSET + 4 {
        let offset = u64::from(u32_at(image, KERNEL_INFO_OFFSET));
        if offset != 0 && offset + 8 > kernel_len {
            return Err(format!("truncated: kernel_info at {offset} lies past the {kernel_len} bytes of code"));
        }
    }
    Ok(())
}

/// The 32-bit protocol's CPU state: protected mode, paging and interrupts off, CS = 0x10 a flat
/// 4 GiB 32-bit execute/read segment, DS/ES/SS (and FS/GS) = 0x18 flat read/write, CPL 0.
/// EBP, EDI and EBX must be zero; they are at reset and no loader step sets them.
///
/// # Errors
/// RAM too small for the GDT.
fn enter_protected_mode(cpu: &mut Cpu) -> Result<(), LoadError> {
    // Null, null, 32-bit code (0x10), data (0x18): the selectors the protocol names.
    let gdt: [u64; 4] = [0, 0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    let bytes: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    put(cpu, layout::BOOT_GDT, &bytes, "boot GDT")?;
    cpu.state.gdtr.base = layout::BOOT_GDT;
    cpu.state.gdtr.limit = (bytes.len() - 1) as u16;
    super::flat_data_segments(cpu);
    let mut cs = Segment::flat_data(0x10, 0);
    cs.attr = (cs.attr & !0xf) | 0xb; // execute/read, accessed
    cpu.state.segs[1] = cs;
    cpu.state.cr3 = 0;
    cpu.state.cr4 = 0;
    cpu.state.efer = 0;
    cpu.state.cr0 = ctrl::CR0_PE | ctrl::CR0_ET;
    for r in [3, 5, 7] {
        cpu.state.gpr[r] = 0; // EBX, EBP, EDI
    }
    cpu.softmmu.flush_tlb();
    Ok(())
}

/// Identity-maps the first 4 GiB with 2 MiB pages and switches the CPU to 64-bit mode at CPL 0.
///
/// # Errors
/// RAM too small for the page tables.
pub fn enter_long_mode(cpu: &mut Cpu) -> Result<(), LoadError> {
    const P_RW: u64 = 0x3;
    const PS: u64 = 0x80;
    let mut tables = vec![0u8; 0x6000];
    let mut set = |off: u64, v: u64| {
        let o = (off - layout::PML4) as usize;
        tables[o..o + 8].copy_from_slice(&v.to_le_bytes());
    };
    set(layout::PML4, layout::PDPT | P_RW);
    for i in 0..4u64 {
        set(layout::PDPT + 8 * i, (layout::PD0 + 0x1000 * i) | P_RW);
        for j in 0..512u64 {
            let addr = (i << 30) | (j << 21);
            set(layout::PD0 + 0x1000 * i + 8 * j, addr | P_RW | PS);
        }
    }
    put(cpu, layout::PML4, &tables, "boot page tables")?;
    super::write_boot_gdt(cpu)?;
    super::flat_data_segments(cpu);
    let mut cs = Segment::flat_code64(0x10, 0);
    cs.attr |= 1;
    cpu.state.segs[1] = cs;
    cpu.state.cr3 = layout::PML4;
    cpu.state.cr4 = ctrl::CR4_PAE;
    cpu.state.efer = ctrl::EFER_LME | ctrl::EFER_LMA;
    cpu.state.cr0 = ctrl::CR0_PE | ctrl::CR0_ET | ctrl::CR0_PG;
    cpu.softmmu.flush_tlb();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::GuestRam;

    /// A minimal image with a valid 2.15 setup header and `kernel_len` bytes of "kernel".
    fn fake_bzimage(kernel_len: usize) -> Vec<u8> {
        let mut d = vec![0u8; 5 * 512 + kernel_len];
        d[SETUP_SECTS] = 4;
        d[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
        d[0x200] = 0xeb;
        d[0x201] = 0x66;
        d[HEADER..HEADER + 4].copy_from_slice(b"HdrS");
        d[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        d[LOADFLAGS] = LOADED_HIGH;
        d[INITRD_ADDR_MAX..INITRD_ADDR_MAX + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
        d[XLOADFLAGS..XLOADFLAGS + 2].copy_from_slice(&XLF_KERNEL_64.to_le_bytes());
        d[CMDLINE_SIZE..CMDLINE_SIZE + 4].copy_from_slice(&2047u32.to_le_bytes());
        d
    }

    #[test]
    fn loads_kernel_cmdline_initrd_and_enters_64_bit_mode() {
        let mut cpu = Cpu::new(GuestRam::new(64 << 20).unwrap());
        let img = fake_bzimage(8192);
        let info = load(&mut cpu, "k", &img, "console=ttyS0", Some(("i", &[7u8; 5000]))).unwrap();
        assert_eq!(info.entry, 0x10_0200);
        assert_eq!(cpu.state.gpr[6], layout::ZERO_PAGE);
        assert!(cpu.state.in_64bit_mode());
        let (addr, size) = info.initrd.unwrap();
        assert_eq!(size, 5000);
        assert_eq!(cpu.ram.slice(addr, 1).unwrap()[0], 7);
        let bp = cpu.ram.slice(layout::ZERO_PAGE, 4096).unwrap().to_vec();
        assert_eq!(&bp[HEADER..HEADER + 4], b"HdrS");
        assert_eq!(bp[TYPE_OF_LOADER], 0xff);
        assert_eq!(u32_at(&bp, RAMDISK_IMAGE) as u64, addr);
        assert_eq!(bp[E820_ENTRIES], 5);
        assert_eq!(cpu.ram.slice(layout::CMDLINE, 14).unwrap(), b"console=ttyS0\0");
    }

    /// boot.rst, "32-bit Boot Protocol": a kernel without XLF_KERNEL_64 (or with a header older
    /// than 2.12) is entered in flat protected mode, paging off, at code32_start with ESI =
    /// boot_params, CS = 0x10 and the data segments 0x18, per the GDT the loader wrote.
    #[test]
    fn a_32_bit_kernel_is_entered_in_protected_mode_at_code32_start() {
        for (version, xlf) in [(0x020fu16, 0u16), (0x0204, XLF_KERNEL_64)] {
            let mut cpu = Cpu::new(GuestRam::new(64 << 20).unwrap());
            let mut img = fake_bzimage(8192);
            img[VERSION..VERSION + 2].copy_from_slice(&version.to_le_bytes());
            img[XLOADFLAGS..XLOADFLAGS + 2].copy_from_slice(&xlf.to_le_bytes());
            let long = format!("{:300}", "x");
            let cmdline = if version < 0x0206 { "console=ttyS0" } else { long.as_str() };
            let info = load(&mut cpu, "k", &img, cmdline, Some(("i", &[7u8; 5000]))).unwrap();
            assert_eq!(info.entry, layout::KERNEL_LOAD);
            assert_eq!(cpu.state.rip, layout::KERNEL_LOAD);
            assert_eq!(cpu.state.gpr[6], layout::ZERO_PAGE);
            assert!(!cpu.state.in_64bit_mode());
            assert_eq!(cpu.state.cr0 & (ctrl::CR0_PE | ctrl::CR0_PG), ctrl::CR0_PE);
            assert_eq!(cpu.state.efer, 0);
            let bp = cpu.ram.slice(layout::ZERO_PAGE, 4096).unwrap().to_vec();
            assert_eq!(u32_at(&bp, CODE32_START) as u64, layout::KERNEL_LOAD);
            let gdt = cpu.ram.slice(cpu.state.gdtr.base, 32).unwrap().to_vec();
            let desc = |sel: usize| u64::from_le_bytes(gdt[sel..sel + 8].try_into().unwrap());
            // Present, DPL 0, code execute/read (0x9b) or data read/write (0x93), G and D/B set,
            // base 0, limit 0xfffff pages.
            assert_eq!(desc(0x10), 0x00cf_9b00_0000_ffff);
            assert_eq!(desc(0x18), 0x00cf_9300_0000_ffff);
            assert_eq!(cpu.state.segs[1].selector, 0x10);
            assert!(cpu.state.segs[1].default_big() && !cpu.state.segs[1].long());
            assert_eq!((cpu.state.segs[1].base, cpu.state.segs[1].limit), (0, 0xffff_ffff));
            for s in [0, 2, 3] {
                assert_eq!(cpu.state.segs[s].selector, 0x18);
            }
        }
        // Before 2.06 the command line is limited to 255 bytes.
        let mut cpu = Cpu::new(GuestRam::new(64 << 20).unwrap());
        let mut img = fake_bzimage(8192);
        img[VERSION..VERSION + 2].copy_from_slice(&0x0205u16.to_le_bytes());
        assert!(load(&mut cpu, "k", &img, &"x".repeat(256), None).unwrap_err().to_string().contains("255"));
    }

    #[test]
    fn malformed_images_are_errors_that_name_the_problem() {
        let mut cpu = Cpu::new(GuestRam::new(64 << 20).unwrap());
        let img = fake_bzimage(4096);
        for len in [0, 100, 0x267, 5 * 512] {
            let e = load(&mut cpu, "vmlinuz", &img[..len], "", None).unwrap_err();
            assert!(e.to_string().starts_with("vmlinuz: "), "{e}");
        }
        let mut old = img.clone();
        old[VERSION..VERSION + 2].copy_from_slice(&0x0202u16.to_le_bytes());
        assert!(load(&mut cpu, "k", &old, "", None).unwrap_err().to_string().contains("2.03"));
        let elf = b"\x7fELF".repeat(200);
        assert!(load(&mut cpu, "k", &elf, "", None).unwrap_err().to_string().contains("not a bzImage"));
        // Sizes from the header that run past the file (boot.rst field meanings).
        let mut cut = fake_bzimage(4096);
        cut[SYSSIZE..SYSSIZE + 4].copy_from_slice(&(4097u32.div_ceil(16)).to_le_bytes());
        assert!(load(&mut cpu, "k", &cut, "", None).unwrap_err().to_string().contains("syssize"));
        let mut cut = fake_bzimage(4096);
        cut[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&4000u32.to_le_bytes());
        cut[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&97u32.to_le_bytes());
        assert!(load(&mut cpu, "k", &cut, "", None).unwrap_err().to_string().contains("payload"));
        let mut cut = fake_bzimage(4096);
        cut[KERNEL_INFO_OFFSET..KERNEL_INFO_OFFSET + 4].copy_from_slice(&4090u32.to_le_bytes());
        assert!(load(&mut cpu, "k", &cut, "", None).unwrap_err().to_string().contains("kernel_info"));
        let mut exact = fake_bzimage(4096);
        exact[SYSSIZE..SYSSIZE + 4].copy_from_slice(&256u32.to_le_bytes());
        exact[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&4096u32.to_le_bytes());
        load(&mut cpu, "k", &exact, "", None).unwrap();
        let mut small = Cpu::new(GuestRam::new(2 << 20).unwrap());
        assert!(matches!(load(&mut small, "k", &fake_bzimage(2 << 20), "", None), Err(LoadError::TooSmall { .. })));
    }
}
