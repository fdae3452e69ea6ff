//! fw_cfg DMA into the CPU's RAM: [`devices::pc::fw_cfg::DmaMemory`] over the one RAM mapping.
//!
//! Bounds-checked slice copies; a write to a page holding decoded code is noted so engines drop
//! what they translated from it (firmware DMAs a kernel over memory it may have run code from).

use crate::cpu::Cpu;
use devices::pc::fw_cfg::{DmaMemory, OutOfRam};

impl DmaMemory for Cpu {
    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), OutOfRam> {
        buf.copy_from_slice(self.ram.slice(addr, buf.len()).ok_or(OutOfRam)?);
        Ok(())
    }

    fn dma_write(&mut self, addr: u64, data: &[u8]) -> Result<(), OutOfRam> {
        self.ram.slice_mut(addr, data.len()).ok_or(OutOfRam)?.copy_from_slice(data);
        if let Some(last) = (addr + data.len() as u64).checked_sub(1) {
            for page in (addr >> 12)..=(last >> 12) {
                self.softmmu.note_code_written(page << 12);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::GuestRam;

    #[test]
    fn dma_is_bounds_checked() {
        let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
        cpu.dma_write(0xffffe, &[1, 2]).unwrap();
        let mut b = [0; 2];
        cpu.dma_read(0xffffe, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert_eq!(cpu.dma_write(0xfffff, &[1, 2]), Err(OutOfRam));
        assert!(cpu.dma_read(u64::MAX - 1, &mut b).is_err());
    }
}
