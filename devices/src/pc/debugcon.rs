//! The debug console: bytes written to an I/O port go to a host sink, as Bochs's port 0xE9 hack
//! and QEMU's `isa-debugcon` do (SeaBIOS logs to port 0x402, test kernels often to 0xE9).
//!
//! Modelled: a byte write appends the byte (a wider write appends its low byte, as an 8-bit
//! port would see it); a read returns 0xE9, the value Bochs and QEMU give so software can
//! detect the port. Output errors are ignored (a full disk must not stop the guest).

use crate::bus::PioDevice;
use std::io::Write;

/// Port Bochs and QEMU use for the debug console.
pub const DEBUGCON_PORT: u16 = 0xe9;
/// Port SeaBIOS writes its debug log to.
pub const SEABIOS_LOG_PORT: u16 = 0x402;
/// What a read of the port returns.
pub const READBACK: u8 = 0xe9;

/// A debug console writing to `W`.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::pc::debugcon::DebugCon;
/// let mut d = DebugCon::new(Vec::new());
/// d.pio_write(0, b"h");
/// d.pio_write(0, &[b'i', 0]); // a 16-bit write: the low byte
/// let mut r = [0u8];
/// d.pio_read(0, &mut r);
/// assert_eq!((d.into_inner(), r[0]), (b"hi".to_vec(), 0xe9));
/// ```
pub struct DebugCon<W: Write> {
    out: W,
}

impl<W: Write> DebugCon<W> {
    /// A console writing to `out`.
    pub fn new(out: W) -> Self {
        DebugCon { out }
    }

    /// The sink back (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> PioDevice for DebugCon<W> {
    fn pio_read(&mut self, _offset: u16, data: &mut [u8]) {
        if let Some(b) = data.first_mut() {
            *b = READBACK;
        }
    }

    fn pio_write(&mut self, _offset: u16, data: &[u8]) {
        if let Some(&b) = data.first() {
            let _ = self.out.write_all(&[b]);
            let _ = self.out.flush();
        }
    }
}
