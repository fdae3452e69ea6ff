//! Fuzz target: a virtio-blk device behind virtio-pci over random guest memory. The input's first
//! bytes are register writes (BAR offset, width, value), the rest becomes guest RAM; then queue 0
//! is notified and served, twice. Nothing may panic or hang, whatever the rings hold. The
//! function has MSI-X (a recording sink), so table, PBA and message-control writes are fuzzed too.
#![no_main]

use devices::block::options::DriveSpec;
use devices::block::{BlockBackend, Drive};
use devices::dma::VecMemory;
use devices::irq::NoIrq;
use devices::pc::ioapic::RecordingSink;
use devices::pc::pci_host::PciFunction;
use devices::virtio::blk::VirtioBlk;
use devices::virtio::pci::VirtioPci;
use libfuzzer_sys::fuzz_target;

/// A 64 KiB disk in memory.
struct MemDisk(Vec<u8>);

impl BlockBackend for MemDisk {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let o = offset as usize;
        buf.copy_from_slice(&self.0[o..o + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        let o = offset as usize;
        self.0[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn discard(&mut self, offset: u64, len: u64) -> std::io::Result<()> {
        self.write_zeroes(offset, len, true)
    }
    fn write_zeroes(&mut self, offset: u64, len: u64, _unmap: bool) -> std::io::Result<()> {
        let o = offset as usize;
        self.0[o..o + len as usize].fill(0);
        Ok(())
    }
}

const RAM: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let writes = usize::from(n % 32);
    if rest.len() < writes * 8 {
        return;
    }
    let (regs, ram) = rest.split_at(writes * 8);
    let spec = DriveSpec::parse("file=fuzz,discard=unmap").expect("valid spec");
    let drive = Drive::with_backend(Box::new(MemDisk(vec![0; 64 << 10])), spec);
    let mut pci = VirtioPci::new(Box::new(VirtioBlk::new(drive, "fuzz")), Box::new(NoIrq), 0xc000_0000)
        .with_msix(Box::new(RecordingSink::default()));
    let mut mem = VecMemory(vec![0; RAM]);
    let len = ram.len().min(RAM);
    mem.0[..len].copy_from_slice(&ram[..len]);
    // A driver that got as far as DRIVER_OK with queue 0 at fixed places, then whatever the
    // input writes on top (which may undo any of it).
    for (off, v, w) in [(0x14u64, 1u64, 1usize), (0x14, 3, 1), (0x08, 1, 4), (0x0c, 1, 4), (0x14, 0xb, 1)] {
        pci.bar_write(off, &v.to_le_bytes()[..w]);
    }
    for (off, v) in [(0x20u64, 0x1000u64), (0x28, 0x2000), (0x30, 0x3000), (0x1c, 1), (0x14, 0xf)] {
        pci.bar_write(
            off,
            &v.to_le_bytes()[..if off == 0x1c {
                2
            } else if off == 0x14 {
                1
            } else {
                4
            }],
        );
    }
    for r in regs.chunks_exact(8) {
        // A top bit set: a configuration space write (the MSI-X capability's message control).
        if r[1] & 0x80 != 0 {
            pci.config_write(r[0], u32::from_le_bytes([r[3], r[4], r[5], r[6]]), r[7] & 0xf);
            continue;
        }
        let off = u64::from(u16::from_le_bytes([r[0], r[1]]) & 0x7fff);
        let width = [1usize, 2, 4, 4][usize::from(r[2] & 3)];
        pci.bar_write(off, &r[3..3 + width]);
    }
    for _ in 0..2 {
        pci.bar_write(0x3000, &[0, 0]);
        pci.process(&mut mem);
        let mut isr = [0u8];
        pci.bar_read(0x1000, &mut isr);
    }
});
