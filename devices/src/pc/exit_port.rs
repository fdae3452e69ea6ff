//! A port that ends the run: compatible with QEMU's `isa-debug-exit` device.
//!
//! Reference: QEMU's documentation of `-device isa-debug-exit,iobase=0xf4,iosize=0x04`: a write of
//! value `v` makes QEMU exit with status `(v << 1) | 1`, so a guest can report success or failure
//! to a test harness (status 1 is reserved for QEMU's own errors, hence the shift).
//!
//! Modelled: writes of 1, 2 or 4 bytes at any offset of the port range record an exit request
//! with that status; the machine polls [`ExitPort::exit_status`] and stops. Reads return 0.
//! Not modelled: anything else (there is nothing else).

use tracing::trace;

use crate::bus::PioDevice;

/// The port QEMU's test setups conventionally use.
pub const EXIT_PORT_BASE: u16 = 0xf4;
/// Ports decoded (`iosize=0x04`).
pub const EXIT_PORT_SIZE: u16 = 4;

/// The exit port.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::pc::exit_port::ExitPort;
/// let mut port = ExitPort::default();
/// assert_eq!(port.exit_status(), None);
/// port.pio_write(0, &[0x10]);
/// assert_eq!(port.exit_status(), Some(0x21)); // (0x10 << 1) | 1
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitPort {
    status: Option<u32>,
}

/// The exit port's one register, for snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitPortState {
    /// The exit status requested and not yet cleared.
    pub status: Option<u32>,
}

impl ExitPort {
    /// The pending request, for a snapshot.
    pub fn save_state(&self) -> ExitPortState {
        ExitPortState { status: self.status }
    }

    /// Puts the port in a saved state.
    pub fn restore_state(&mut self, s: &ExitPortState) {
        self.status = s.status;
    }

    /// The exit status the guest asked for, if it wrote the port.
    pub fn exit_status(&self) -> Option<u32> {
        self.status
    }

    /// Forgets a request (after the machine has acted on it, or on reset).
    pub fn clear(&mut self) {
        self.status = None;
    }
}

impl PioDevice for ExitPort {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        trace!(offset, len = data.len(), "exit port read");
        data.fill(0);
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        let value = match *data {
            [a] => u32::from(a),
            [a, b] => u32::from(u16::from_le_bytes([a, b])),
            [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
            _ => {
                trace!(offset, len = data.len(), "exit port: odd-width write ignored");
                return;
            }
        };
        // QEMU: exit((value << 1) | 1).
        self.status = Some(value.wrapping_shl(1) | 1);
    }
}

#[cfg(test)]
mod tests {
    //! Expected statuses from QEMU's documented formula (v << 1) | 1.
    use super::*;

    #[test]
    fn status_follows_the_qemu_formula() {
        let mut port = ExitPort::default();
        port.pio_write(0, &[0]);
        assert_eq!(port.exit_status(), Some(1));
        port.pio_write(3, &0x1234u16.to_le_bytes());
        assert_eq!(port.exit_status(), Some(0x2469));
        port.pio_write(0, &0x8000_0001u32.to_le_bytes());
        assert_eq!(port.exit_status(), Some(0x0000_0003)); // bit 31 shifts out
        port.clear();
        port.pio_write(0, &[1, 2, 3]);
        assert_eq!(port.exit_status(), None);
        let mut d = [0xee; 4];
        port.pio_read(0, &mut d);
        assert_eq!(d, [0; 4]);
    }

    #[test]
    fn save_restore_keeps_a_pending_request() {
        let mut port = ExitPort::default();
        port.pio_write(0, &[3]);
        let mut other = ExitPort::default();
        other.restore_state(&port.save_state());
        assert_eq!(other.exit_status(), Some(7));
        other.restore_state(&ExitPort::default().save_state());
        assert_eq!(other.exit_status(), None);
    }
}
