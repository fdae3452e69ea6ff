//! Wiring a BIOS into the PC (`strata run --bios`; `crate::firmware` holds the pieces): the ROM
//! in its two places, the PIIX3 ISA bridge SeaBIOS looks for, and the CPU at its reset vector.

use super::Machine;
use crate::firmware::{self, BiosError, HighRom, ShadowRom};
use devices::pc::pci_host::bdf;
use devices::pc::piix3::Piix3Isa;
use std::sync::Arc;

impl Machine {
    /// Maps `image` (the BIOS at `path`) at the top of 4 GiB and its last 128 KiB below 1 MiB
    /// behind the PAM registers, adds the PIIX3 ISA bridge at 00:01.0 (virtio functions then
    /// start at slot 2, as QEMU's i440FX places `-device`s after it), and resets the CPU, so
    /// the first instruction is the BIOS's at FFFFFFF0h. Call before any engine runs and before
    /// devices take PCI slots.
    ///
    /// # Errors
    /// A wrong image size, or RAM smaller than 1 MiB.
    pub fn install_bios(&mut self, path: &str, image: Vec<u8>) -> Result<(), BiosError> {
        firmware::check_image(path, &image)?;
        let image: Arc<[u8]> = image.into();
        let rom = ShadowRom::new(image.clone(), &mut self.cpu.ram)?;
        {
            let mut board = self.board.borrow_mut();
            // The top of 4 GiB is free on this board (the APICs sit below 0xFF000000).
            let _ = board.mmio.register(rom.high_base(), image.len() as u64, Box::new(HighRom(image)));
            board.pci.borrow_mut().add_function(bdf(0, 1, 0), Box::new(Piix3Isa::new()));
            board.first_virtio_slot = 2;
        }
        self.cpu.softmmu.set_rom_write_protect(rom.write_protect_mask());
        self.cpu.rom = Some(Box::new(rom));
        firmware::reset_cpu(&mut self.cpu);
        self.interp.flush_code(&mut self.cpu);
        self.record("reset");
        Ok(())
    }
}

/// fw_cfg items only a direct-boot option ROM reads (the kernel's setup, kernel, initrd and
/// command line).
fn is_kernel_item(key: u16) -> bool {
    use devices::pc::fw_cfg::key;
    (key::KERNEL_ADDR..=key::INITRD_SIZE).contains(&key) || (key::KERNEL_ENTRY..=key::SETUP_DATA).contains(&key)
}

impl Machine {
    /// Watches for the kernel's first instruction: a block decoded at physical `pa` that starts
    /// with `bytes` (the kernel's setup code, once the option ROM has copied it there).
    pub fn watch_kernel_entry(&mut self, pa: u64, bytes: Vec<u8>) {
        if let Some(rom) = self.cpu.rom.as_mut() {
            rom.progress.entry = Some((pa, bytes));
        }
    }

    /// Puts the firmware's phases in the timeline: the option ROM reading the kernel (seen
    /// between CPU slices, as fw_cfg's selected item) and the kernel's entry (timed when its
    /// first block was decoded).
    pub(super) fn firmware_progress(&mut self) {
        let Some(rom) = self.cpu.rom.as_mut() else { return };
        let p = &mut rom.progress;
        if !p.option_rom_seen {
            let selected = self.board.borrow().fw_cfg.borrow().save_state().selector;
            if is_kernel_item(selected) {
                p.option_rom_seen = true;
                let r = self.cpu.retired;
                self.tap.borrow_mut().timeline.record("option ROM: reads the kernel from fw_cfg", r);
            }
        }
        if let (Some((at, retired)), false) = (p.entered, p.entry_recorded) {
            p.entry_recorded = true;
            self.tap.borrow_mut().timeline.record_at("kernel entry", at, retired);
        }
    }
}
