//! Device DMA into the CPU's RAM: [`devices::dma::GuestMemory`] over the one RAM mapping.
//!
//! Bounds-checked slice copies (no `unsafe`); a write to a page holding decoded code is noted so
//! the engines drop what they translated from it, as for a guest store (a disk read into a page
//! the guest then executes must not run stale code).

use crate::cpu::Cpu;
use devices::dma::{DmaError, GuestMemory};

impl GuestMemory for Cpu {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let src = self.ram.slice(addr, buf.len()).ok_or(DmaError { addr, len: buf.len() as u64 })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let dst = self.ram.slice_mut(addr, data.len()).ok_or(DmaError { addr, len: data.len() as u64 })?;
        dst.copy_from_slice(data);
        if !data.is_empty() {
            let last = (addr + data.len() as u64 - 1) & !0xfff;
            let mut page = addr & !0xfff;
            while page <= last {
                self.softmmu.note_code_written(page);
                page += 0x1000;
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
        let mem: &mut dyn GuestMemory = &mut cpu;
        mem.write(0xffffe, &[1, 2]).unwrap();
        let mut b = [0; 2];
        mem.read(0xffffe, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
        assert_eq!(mem.write(0xfffff, &[1, 2]), Err(DmaError { addr: 0xfffff, len: 2 }));
        assert!(mem.read(u64::MAX - 1, &mut b).is_err());
        assert!(mem.write(1 << 40, &[0]).is_err());
    }
}
