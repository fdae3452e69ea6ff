//! `strata run --bios PATH`: booting through firmware from the reset vector (issue 14).
//!
//! A bzImage given with `--kernel` is not loaded directly: it goes to fw_cfg with QEMU's
//! `linuxboot_dma.bin` option ROM (Debian's qemu-system-data) as `genroms/linuxboot_dma.bin`,
//! first in the boot order, as `qemu-system-x86_64 -bios ... -kernel ...` does; the BIOS runs the
//! ROM, which reads the kernel, initrd and command line through fw_cfg DMA and starts the kernel's
//! real-mode setup code. A Multiboot kernel goes the same way with QEMU's `multiboot_dma.bin`
//! (`emu::loaders::multiboot_rom` has the fw_cfg items).

use emu::machine::Machine;

/// Where Debian's qemu-system-data installs QEMU's direct-boot option ROM.
pub const LINUXBOOT_DMA: &str = "/usr/share/qemu/linuxboot_dma.bin";
/// Its fw_cfg name, and the boot order entry that names it (QEMU's `-kernel` gives both).
const ROM_FILE: &str = "genroms/linuxboot_dma.bin";
const ROM_BOOTORDER: &[u8] = b"/rom@genroms/linuxboot_dma.bin\n";

/// Refuses what a BIOS boot cannot do yet: KVM (the ROM and PAM live in tier 0's memory
/// paths) and snapshots (the ROM and PAM state are not in them).
pub fn check_options(bios: bool, kvm: bool, snapshot: bool) -> Result<(), String> {
    if bios && kvm {
        return Err("--bios runs on interp or jit, not KVM".into());
    }
    if bios && snapshot {
        return Err(
            "--bios cannot be combined with --save or --restore yet (the ROM and PAM state are not in snapshots)"
                .into(),
        );
    }
    Ok(())
}

/// Reads the BIOS image at `path` (one-line errors for a missing or wrongly sized file).
pub fn read_image(path: &str) -> Result<Vec<u8>, String> {
    let image = std::fs::read(path).map_err(|e| format!("--bios {path}: {e}"))?;
    emu::firmware::check_image(path, &image).map_err(|e| format!("--bios {e}"))?;
    Ok(image)
}

/// Offers the bzImage (already in fw_cfg's kernel items) to the BIOS through QEMU's option ROM.
pub fn add_linuxboot_rom(m: &Machine) -> Result<(), String> {
    let rom = std::fs::read(LINUXBOOT_DMA).map_err(|e| {
        format!(
            "--bios with a bzImage needs QEMU's linuxboot_dma.bin (Debian's qemu-system-data): {LINUXBOOT_DMA}: {e}"
        )
    })?;
    let board = m.board.borrow();
    let mut fw = board.fw_cfg.borrow_mut();
    fw.set_file(ROM_FILE, rom).map_err(|e| e.to_string())?;
    fw.set_file("bootorder", ROM_BOOTORDER.to_vec()).map_err(|e| e.to_string())?;
    Ok(())
}

/// QEMU's option ROM for a Multiboot `-kernel` (Debian's qemu-system-data).
pub const MULTIBOOT_DMA: &str = "/usr/share/qemu/multiboot_dma.bin";

/// Offers a Multiboot kernel (its items already in fw_cfg, `emu::loaders::multiboot_rom`) to
/// the BIOS through QEMU's Multiboot option ROM, first in the boot order.
pub fn add_multiboot_rom(m: &Machine) -> Result<(), String> {
    let rom = std::fs::read(MULTIBOOT_DMA).map_err(|e| {
        format!("--bios with a Multiboot kernel needs QEMU's multiboot_dma.bin (Debian's qemu-system-data): {MULTIBOOT_DMA}: {e}")
    })?;
    let board = m.board.borrow();
    let mut fw = board.fw_cfg.borrow_mut();
    fw.set_file("genroms/multiboot_dma.bin", rom).map_err(|e| e.to_string())?;
    fw.set_file("bootorder", b"/rom@genroms/multiboot_dma.bin\n".to_vec()).map_err(|e| e.to_string())?;
    Ok(())
}

/// Where the option ROM enters the kernel: its real-mode setup code, loaded at fw_cfg's
/// SETUP_ADDR, starts 0x200 bytes in (Linux boot protocol: the jump at offset 0x200).
const SETUP_ENTRY: u64 = emu::loaders::fw_cfg::SETUP_ADDR as u64 + 0x200;

/// Maps the BIOS and puts the CPU at its reset vector; the timeline will mark the entry of the
/// bzImage `kernel`'s setup code.
pub fn install(m: &mut Machine, path: &str, image: Vec<u8>, kernel: &[u8]) -> Result<(), String> {
    m.install_bios(path, image).map_err(|e| format!("--bios {e}"))?;
    if let Some(head) = kernel.get(0x200..0x210) {
        m.watch_kernel_entry(SETUP_ENTRY, head.to_vec());
    }
    Ok(())
}
