//! What Strata's PC offers through fw_cfg (`devices::pc::fw_cfg`), with the layouts QEMU's
//! `docs/specs/fw_cfg.rst` and SeaBIOS expect:
//!
//! - fixed items: NB_CPUS and MAX_CPUS (u16), RAM_SIZE (u64), NOGRAPHIC (u16 1: no display),
//!   IRQ0_OVERRIDE (u32 1: the PIT is on GSI 2), all little-endian;
//! - `etc/e820`: the memory map, 20-byte entries {u64 address, u64 length, u32 type};
//! - `etc/boot-cpus` (u16), `bootorder` (empty: the firmware's default order),
//!   `etc/sercon-port` (u16 0x3F8: no display, so the BIOS's screen goes to COM1);
//! - the ACPI tables through `etc/table-loader`, `etc/acpi/tables`, `etc/acpi/rsdp`;
//! - for a bzImage, the direct-boot items QEMU's `linuxboot_dma.bin` option ROM reads: the
//!   setup code (SETUP_ADDR/SIZE/DATA, with the setup header filled in as a boot loader does),
//!   the protected-mode kernel (KERNEL_ADDR/SIZE/DATA), the initrd (INITRD_ADDR/SIZE/DATA) and
//!   the command line (CMDLINE_ADDR/SIZE/DATA, NUL-terminated).

use super::layout::{self, e820_map};
use super::LoadError;
use devices::pc::fw_cfg::{key, FwCfg};

/// Where a BIOS boot puts the real-mode setup code, and the command line after it (QEMU's
/// choice for protocol 2.02+ kernels).
pub const SETUP_ADDR: u32 = 0x1_0000;
pub const CMDLINE_ADDR: u32 = 0x2_0000;

/// The platform items for a PC with `ram` bytes and one CPU.
pub fn add_platform_items(f: &mut FwCfg, ram: u64) {
    f.set_item(key::NB_CPUS, 1u16.to_le_bytes().to_vec());
    f.set_item(key::MAX_CPUS, 1u16.to_le_bytes().to_vec());
    f.set_item(key::RAM_SIZE, ram.to_le_bytes().to_vec());
    f.set_item(key::NOGRAPHIC, 1u16.to_le_bytes().to_vec());
    f.set_item(key::IRQ0_OVERRIDE, 1u32.to_le_bytes().to_vec());
    let mut e820 = Vec::new();
    for (addr, len, ty) in e820_map(ram) {
        e820.extend_from_slice(&addr.to_le_bytes());
        e820.extend_from_slice(&len.to_le_bytes());
        e820.extend_from_slice(&ty.to_le_bytes());
    }
    let acpi = super::acpi::loader_blobs();
    // Names are short, fixed and distinct: adding them cannot fail.
    for (name, data) in [
        ("etc/e820", e820),
        ("etc/boot-cpus", 1u16.to_le_bytes().to_vec()),
        ("bootorder", Vec::new()),
        ("etc/sercon-port", 0x3f8u16.to_le_bytes().to_vec()),
        (super::acpi::RSDP_FILE, acpi.rsdp),
        (super::acpi::TABLES_FILE, acpi.tables),
        (super::acpi::LOADER_FILE, acpi.loader),
    ] {
        let _ = f.add_file(name, data);
    }
}

/// The direct-boot items for a bzImage (`image`), its command line and initrd, for `ram` bytes
/// of RAM.
///
/// # Errors
/// The image is too short for its own setup size (the bzImage loader reports the rest).
pub fn add_kernel_items(
    f: &mut FwCfg,
    path: &str,
    image: &[u8],
    cmdline: &str,
    initrd: Option<&[u8]>,
    ram: u64,
) -> Result<(), LoadError> {
    let bad = |problem: &str| LoadError::Kernel { path: path.to_string(), problem: problem.to_string() };
    // Boot protocol: setup_sects at 0x1F1 (0 means 4), the real-mode part is that many
    // sectors plus the boot sector.
    let sects = match image.get(0x1f1) {
        Some(0) => 4,
        Some(&n) => usize::from(n),
        None => return Err(bad("too short for a setup header")),
    };
    let setup_len = (sects + 1) * 512;
    if image.len() < setup_len.max(0x268) {
        return Err(bad("shorter than its setup code"));
    }
    let mut setup = image[..setup_len].to_vec();
    let kernel = &image[setup_len..];
    let ram_top = ram.min(layout::MMIO_HOLE);
    // Fill in the header as a boot loader (QEMU's x86 loader) does: loader type "other"
    // (0xFF would be "undefined"; 0xB0 is QEMU's), the heap end, CAN_USE_HEAP, the command
    // line pointer, and the initrd placed at the top of what the kernel can reach.
    setup[0x210] = 0xb0;
    setup[0x211] |= 0x80;
    let heap_end = CMDLINE_ADDR - SETUP_ADDR - 0x200;
    setup[0x224..0x226].copy_from_slice(&(heap_end as u16).to_le_bytes());
    setup[0x228..0x22c].copy_from_slice(&CMDLINE_ADDR.to_le_bytes());
    let mut cl = cmdline.as_bytes().to_vec();
    cl.push(0);
    f.set_item(key::SETUP_ADDR, SETUP_ADDR.to_le_bytes().to_vec());
    f.set_item(key::SETUP_SIZE, (setup.len() as u32).to_le_bytes().to_vec());
    f.set_item(key::KERNEL_ADDR, (layout::KERNEL_LOAD as u32).to_le_bytes().to_vec());
    f.set_item(key::KERNEL_SIZE, (kernel.len() as u32).to_le_bytes().to_vec());
    f.set_item(key::KERNEL_DATA, kernel.to_vec());
    f.set_item(key::CMDLINE_ADDR, CMDLINE_ADDR.to_le_bytes().to_vec());
    f.set_item(key::CMDLINE_SIZE, (cl.len() as u32).to_le_bytes().to_vec());
    f.set_item(key::CMDLINE_DATA, cl);
    if let Some(rd) = initrd {
        let max = u64::from(u32::from_le_bytes(setup[0x22c..0x230].try_into().unwrap_or([0xff; 4])));
        // Below the kernel's limit and the top of RAM, leaving 128 KiB for firmware data.
        let top = max.min(ram_top.saturating_sub(0x2_0000));
        let at = top.saturating_sub(rd.len() as u64) & !0xfff;
        setup[0x218..0x21c].copy_from_slice(&(at as u32).to_le_bytes());
        setup[0x21c..0x220].copy_from_slice(&(rd.len() as u32).to_le_bytes());
        f.set_item(key::INITRD_ADDR, (at as u32).to_le_bytes().to_vec());
        f.set_item(key::INITRD_SIZE, (rd.len() as u32).to_le_bytes().to_vec());
        f.set_item(key::INITRD_DATA, rd.to_vec());
    }
    f.set_item(key::SETUP_DATA, setup);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::bus::PioDevice;

    fn read(f: &mut FwCfg, k: u16, n: usize) -> Vec<u8> {
        f.pio_write(0, &k.to_le_bytes());
        let mut v = vec![0u8; n];
        for b in v.iter_mut() {
            let mut x = [0u8];
            f.pio_read(1, &mut x);
            *b = x[0];
        }
        v
    }

    /// The directory entry (size, key) of `name`, read through the ports as a guest does.
    fn find(f: &mut FwCfg, name: &str) -> Option<(u32, u16)> {
        let n = u32::from_be_bytes(read(f, key::FILE_DIR, 4).try_into().unwrap()) as usize;
        let d = read(f, key::FILE_DIR, 4 + 64 * n);
        d[4..]
            .chunks(64)
            .find(|e| &e[8..8 + name.len()] == name.as_bytes() && e[8 + name.len()] == 0)
            .map(|e| (u32::from_be_bytes(e[0..4].try_into().unwrap()), u16::from_be_bytes([e[4], e[5]])))
    }

    #[test]
    fn what_kvm_unit_tests_and_seabios_read() {
        let mut f = FwCfg::new();
        add_platform_items(&mut f, 256 << 20);
        // kvm-unit-tests (lib/x86/fwcfg.c) reads NB_CPUS and RAM_SIZE byte by byte.
        assert_eq!(read(&mut f, key::NB_CPUS, 2), [1, 0]);
        assert_eq!(u64::from_le_bytes(read(&mut f, key::RAM_SIZE, 8).try_into().unwrap()), 256 << 20);
        // etc/e820: 20-byte entries; RAM from 1 MiB to the top.
        let (size, k) = find(&mut f, "etc/e820").unwrap();
        assert_eq!(size % 20, 0);
        let e = read(&mut f, k, size as usize);
        assert!(e.chunks(20).any(|c| {
            u64::from_le_bytes(c[0..8].try_into().unwrap()) == 0x10_0000
                && u64::from_le_bytes(c[8..16].try_into().unwrap()) == (256 << 20) - 0x10_0000
                && u32::from_le_bytes(c[16..20].try_into().unwrap()) == 1
        }));
        assert_eq!(find(&mut f, "etc/boot-cpus").map(|(s, _)| s), Some(2));
        assert_eq!(find(&mut f, "bootorder").map(|(s, _)| s), Some(0));
        for n in ["etc/acpi/rsdp", "etc/acpi/tables", "etc/table-loader", "etc/sercon-port"] {
            assert!(find(&mut f, n).is_some(), "{n}");
        }
        let (_, k) = find(&mut f, "etc/acpi/rsdp").unwrap();
        assert_eq!(read(&mut f, k, 8), b"RSD PTR ");
    }

    #[test]
    fn kernel_items_split_setup_and_kernel_and_place_the_initrd() {
        // A fake bzImage: setup_sects = 2, so 3 sectors of setup, then 1000 bytes of kernel.
        let mut img = vec![0u8; 3 * 512 + 1000];
        img[0x1f1] = 2;
        img[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes());
        img[3 * 512] = 0x5a;
        let mut f = FwCfg::new();
        add_kernel_items(&mut f, "k", &img, "console=ttyS0", Some(&[1, 2, 3]), 64 << 20).unwrap();
        let le32 = |f: &FwCfg, k: u16| u32::from_le_bytes(f.item(k).unwrap().try_into().unwrap());
        assert_eq!(le32(&f, key::SETUP_SIZE), 1536);
        assert_eq!(le32(&f, key::KERNEL_SIZE), 1000);
        assert_eq!(f.item(key::KERNEL_DATA).unwrap()[0], 0x5a);
        assert_eq!(f.item(key::CMDLINE_DATA).unwrap(), b"console=ttyS0\0");
        let setup = f.item(key::SETUP_DATA).unwrap();
        // Boot protocol fields: cmd_line_ptr (0x228), ramdisk_image (0x218) = INITRD_ADDR.
        assert_eq!(u32::from_le_bytes(setup[0x228..0x22c].try_into().unwrap()), CMDLINE_ADDR);
        let rd = le32(&f, key::INITRD_ADDR);
        assert_eq!(u32::from_le_bytes(setup[0x218..0x21c].try_into().unwrap()), rd);
        assert!(rd % 4096 == 0 && u64::from(rd) + 3 <= (64 << 20) - 0x2_0000);
        assert!(add_kernel_items(&mut f, "k", &img[..600], "", None, 64 << 20).is_err());
    }
}
