//! Wiring a BIOS into the PC (`strata run --bios`; `crate::firmware` holds the pieces): the ROM
//! in its two places, the PIIX3 ISA bridge SeaBIOS looks for, and the CPU at its reset vector.

use super::Machine;
use crate::firmware::{self, BiosError, HighRom, ShadowRom};
use devices::pc::pci_host::bdf;
use devices::pc::piix3::Piix3Isa;
use std::sync::Arc;

impl Machine {
    /// Maps `image` (the BIOS at `path`) at the top of 4 GiB and its last 128 KiB below 1 MiB
    /// behind the PAM registers, adds the PIIX3 ISA bridge at 00:01.0, and resets the CPU, so
    /// the first instruction is the BIOS's at FFFFFFF0h. Call before any engine runs and before
    /// devices take PCI slots (a virtio function given slot 1 later replaces the ISA bridge).
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
        }
        self.cpu.softmmu.set_rom_write_protect(rom.write_protect_mask());
        self.cpu.rom = Some(Box::new(rom));
        firmware::reset_cpu(&mut self.cpu);
        self.interp.flush_code(&mut self.cpu);
        self.record("reset");
        Ok(())
    }
}
