//! PCI host bridge with configuration mechanism #1 (ports 0xcf8 and 0xcfc-0xcff) and one host
//! bridge function at 00:00.0 with Intel 440FX (82441FX PMC) identification.
//!
//! References: *PCI Local Bus Specification* 3.0, section 3.2.2.3.2 "Software Generation of
//! Configuration Transactions" (CONFIG_ADDRESS layout, CONFIG_DATA byte lanes, absent functions
//! reading all ones) and section 6.1 (configuration header); Intel *82441FX PCI and Memory Controller
//! (PMC)* datasheet, section 3.2 (vendor 8086h, device 1237h, PCICMD reset 0006h, PCISTS 0280h, class
//! 060000h).
//!
//! Modelled: CONFIG_ADDRESS (32-bit accesses only; bits 30:24 and 1:0 read 0; bits 1:0 as written
//! select the byte lane of CONFIG_DATA together with the port, as QEMU's host bridges do: test
//! suites such as kvm-unit-tests put a register's low bits there and read CONFIG_DATA at 0xcfc;
//! not kept in snapshots), CONFIG_DATA with
//! byte, word and dword accesses at any offset inside the dword, the enable bit, dispatch to
//! [`PciFunction`]s by bus/device/function, a host bridge whose identification registers are
//! read-only and whose chipset registers 0x40-0xff (PAM, SMRAM, DRAM rows...) are plain storage.
//!
//! Not modelled: configuration mechanism #2, the PIIX reset control register at 0xcf9 (byte accesses
//! to 0xcf8-0xcfb are ignored), the effects of the 440FX chipset registers (PAM shadowing, SMRAM),
//! bridges to other buses, BARs of the host bridge (it has none).

use std::collections::HashMap;

use tracing::trace;

use crate::bus::PioDevice;

/// Base port: CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc-0xcff.
pub const PCI_CONFIG_BASE: u16 = 0xcf8;
/// Number of ports the host decodes.
pub const PCI_CONFIG_PORTS: u16 = 8;
/// Offset of CONFIG_ADDRESS from the base.
pub const PORT_ADDRESS: u16 = 0;
/// Offset of CONFIG_DATA from the base.
pub const PORT_DATA: u16 = 4;
/// CONFIG_ADDRESS bit 31: enable configuration space mapping.
pub const ADDRESS_ENABLE: u32 = 1 << 31;
/// CONFIG_ADDRESS bits that hold a value (enable, bus, device, function, register).
const ADDRESS_WRITABLE: u32 = 0x80ff_fffc;

/// Configuration header: vendor ID (16 bits).
pub const CFG_VENDOR_ID: u8 = 0x00;
/// Configuration header: device ID (16 bits).
pub const CFG_DEVICE_ID: u8 = 0x02;
/// Configuration header: command register (16 bits).
pub const CFG_COMMAND: u8 = 0x04;
/// Configuration header: status register (16 bits).
pub const CFG_STATUS: u8 = 0x06;
/// Configuration header: revision ID.
pub const CFG_REVISION: u8 = 0x08;
/// Configuration header: class code (programming interface, subclass, base class).
pub const CFG_CLASS: u8 = 0x09;
/// Configuration header: latency timer.
pub const CFG_LATENCY_TIMER: u8 = 0x0d;
/// Configuration header: header type.
pub const CFG_HEADER_TYPE: u8 = 0x0e;

/// Intel's vendor ID.
pub const VENDOR_INTEL: u16 = 0x8086;
/// 82441FX PMC device ID.
pub const DEVICE_82441FX: u16 = 0x1237;

/// One PCI function's 256-byte configuration space.
pub trait PciFunction {
    /// Reads the dword at `offset` (a multiple of 4).
    fn config_read(&mut self, offset: u8) -> u32;
    /// Writes the bytes of `value` selected by `byte_mask` (bit n = byte n) to the dword at `offset`.
    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8);
}

/// Bus/device/function packed as in CONFIG_ADDRESS bits 23:8.
pub fn bdf(bus: u8, device: u8, function: u8) -> u16 {
    u16::from(bus) << 8 | u16::from(device & 0x1f) << 3 | u16::from(function & 7)
}

/// The 440FX host bridge's configuration space, for snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBridgeState {
    /// All 256 bytes.
    pub config: Vec<u8>,
}

/// A host bridge function with 82441FX identification.
#[derive(Debug, Clone)]
pub struct HostBridge {
    config: [u8; 256],
}

impl Default for HostBridge {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBridge {
    /// The bridge at reset (82441FX datasheet register defaults for the header).
    pub fn new() -> Self {
        let mut config = [0u8; 256];
        config[0..2].copy_from_slice(&VENDOR_INTEL.to_le_bytes());
        config[2..4].copy_from_slice(&DEVICE_82441FX.to_le_bytes());
        config[4..6].copy_from_slice(&0x0006u16.to_le_bytes()); // memory and bus master enabled
        config[6..8].copy_from_slice(&0x0280u16.to_le_bytes()); // fast back-to-back, medium DEVSEL
        config[usize::from(CFG_REVISION)] = 0x02;
        config[0x0b] = 0x06; // base class: bridge; subclass 0x00 host bridge, prog-if 0x00
        Self { config }
    }

    /// The configuration bytes, for a snapshot.
    pub fn state(&self) -> HostBridgeState {
        HostBridgeState { config: self.config.to_vec() }
    }

    /// Rebuilds the bridge from a snapshot.
    pub fn from_state(state: &HostBridgeState) -> Self {
        let mut bridge = Self::new();
        for (dst, src) in bridge.config.iter_mut().zip(&state.config) {
            *dst = *src;
        }
        bridge
    }

    /// Whether byte `offset` may be written by the guest.
    fn writable(offset: usize) -> bool {
        matches!(offset, 0x04 | 0x05 | 0x0d | 0x40..=0xff)
    }
}

impl PciFunction for HostBridge {
    fn config_read(&mut self, offset: u8) -> u32 {
        let o = usize::from(offset & 0xfc);
        u32::from_le_bytes([self.config[o], self.config[o + 1], self.config[o + 2], self.config[o + 3]])
    }

    fn config_write(&mut self, offset: u8, value: u32, byte_mask: u8) {
        let o = usize::from(offset & 0xfc);
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            if byte_mask & (1 << i) != 0 && Self::writable(o + i) {
                self.config[o + i] = byte;
            } else if byte_mask & (1 << i) != 0 {
                trace!(offset = o + i, byte, "pci: write to read-only host bridge byte ignored");
            }
        }
    }
}

/// Configuration mechanism #1 in front of a set of PCI functions.
///
/// # Example
/// ```
/// use devices::bus::PioDevice;
/// use devices::pc::pci_host::PciHost;
/// let mut pci = PciHost::new();
/// pci.pio_write(0, &0x8000_0000u32.to_le_bytes()); // 00:00.0, register 0
/// let mut id = [0; 4];
/// pci.pio_read(4, &mut id);
/// assert_eq!(u32::from_le_bytes(id), 0x1237_8086);
/// pci.pio_write(0, &0x8000_0800u32.to_le_bytes()); // 00:01.0 is absent
/// pci.pio_read(4, &mut id);
/// assert_eq!(id, [0xff; 4]);
/// ```
pub struct PciHost {
    address: u32,
    /// CONFIG_ADDRESS bits 1:0 as last written (see the module doc).
    low_bits: u16,
    /// The host bridge at 00:00.0 (unless `functions` puts something else there).
    bridge: HostBridge,
    functions: HashMap<u16, Box<dyn PciFunction>>,
}

/// CONFIG_ADDRESS and the host bridge, for snapshots (functions added with
/// [`PciHost::add_function`] keep their own state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciHostState {
    /// CONFIG_ADDRESS as last written.
    pub config_address: u32,
    /// The host bridge's configuration space.
    pub host_bridge: HostBridgeState,
}

impl Default for PciHost {
    fn default() -> Self {
        Self::new()
    }
}

impl PciHost {
    /// A host with the 440FX host bridge at 00:00.0.
    pub fn new() -> Self {
        Self { address: 0, low_bits: 0, bridge: HostBridge::new(), functions: HashMap::new() }
    }

    /// CONFIG_ADDRESS and the host bridge's registers, for a snapshot.
    pub fn save_state(&self) -> PciHostState {
        PciHostState { config_address: self.address, host_bridge: self.bridge.state() }
    }

    /// Puts CONFIG_ADDRESS and the host bridge in a saved state.
    pub fn restore_state(&mut self, s: &PciHostState) {
        self.set_config_address(s.config_address);
        self.bridge = HostBridge::from_state(&s.host_bridge);
    }

    /// Places `function` at `bdf` (see [`bdf`]), replacing what was there.
    pub fn add_function(&mut self, bdf: u16, function: Box<dyn PciFunction>) {
        self.functions.insert(bdf, function);
    }

    /// CONFIG_ADDRESS as last written.
    pub fn config_address(&self) -> u32 {
        self.address
    }

    /// Restores CONFIG_ADDRESS from a snapshot (functions keep their own state).
    pub fn set_config_address(&mut self, address: u32) {
        self.address = address & ADDRESS_WRITABLE;
    }

    /// The selected function and dword offset, if the enable bit is set and a function is there.
    fn target(&mut self) -> Option<(&mut dyn PciFunction, u8)> {
        if self.address & ADDRESS_ENABLE == 0 {
            return None;
        }
        let bdf = (self.address >> 8) as u16;
        let offset = (self.address & 0xfc) as u8;
        match self.functions.get_mut(&bdf) {
            Some(f) => Some((f.as_mut(), offset)),
            None if bdf == 0 => Some((&mut self.bridge, offset)),
            None => None,
        }
    }
}

impl PioDevice for PciHost {
    fn pio_read(&mut self, offset: u16, data: &mut [u8]) {
        match (offset, data.len()) {
            (PORT_ADDRESS, 4) => data.copy_from_slice(&self.address.to_le_bytes()),
            (4..=7, 1 | 2 | 4) if usize::from((offset - PORT_DATA) | self.low_bits) + data.len() <= 4 => {
                // CONFIG_DATA: the byte lanes selected by the port offset and width.
                let lane = usize::from((offset - PORT_DATA) | self.low_bits);
                match self.target() {
                    Some((function, register)) => {
                        let dword = function.config_read(register).to_le_bytes();
                        data.copy_from_slice(&dword[lane..lane + data.len()]);
                    }
                    None => data.fill(0xff), // no function there (or mapping disabled)
                }
            }
            _ => trace!(offset, len = data.len(), "pci: unsupported configuration port read"),
        }
    }

    fn pio_write(&mut self, offset: u16, data: &[u8]) {
        match (offset, data) {
            (PORT_ADDRESS, &[a, b, c, d]) => {
                self.address = u32::from_le_bytes([a, b, c, d]) & ADDRESS_WRITABLE;
                self.low_bits = u16::from(a & 3);
            }
            (4..=7, _)
                if matches!(data.len(), 1 | 2 | 4)
                    && usize::from((offset - PORT_DATA) | self.low_bits) + data.len() <= 4 =>
            {
                let lane = usize::from((offset - PORT_DATA) | self.low_bits);
                let mut bytes = [0u8; 4];
                bytes[lane..lane + data.len()].copy_from_slice(data);
                let mask = ((1u8 << data.len()) - 1) << lane;
                match self.target() {
                    Some((function, register)) => function.config_write(register, u32::from_le_bytes(bytes), mask),
                    None => trace!(address = self.address, "pci: configuration write to an absent function"),
                }
            }
            _ => trace!(offset, len = data.len(), "pci: unsupported configuration port write"),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Expected values: PCI Local Bus Specification 3.0 section 3.2.2.3.2 and the 82441FX datasheet
    //! register defaults (vendor 8086h, device 1237h, PCICMD 0006h, PCISTS 0280h, RID 02h,
    //! class 060000h).
    use super::*;

    fn select(host: &mut PciHost, bus: u8, dev: u8, func: u8, reg: u8) {
        let address = ADDRESS_ENABLE | u32::from(bdf(bus, dev, func)) << 8 | u32::from(reg);
        host.pio_write(PORT_ADDRESS, &address.to_le_bytes());
    }

    fn read(host: &mut PciHost, port_offset: u16, len: usize) -> u32 {
        let mut d = [0u8; 4];
        host.pio_read(port_offset, &mut d[..len]);
        u32::from_le_bytes(d)
    }

    #[test]
    fn host_bridge_header() {
        let mut host = PciHost::new();
        select(&mut host, 0, 0, 0, 0x00);
        assert_eq!(read(&mut host, 4, 4), 0x1237_8086);
        assert_eq!(read(&mut host, 6, 2), 0x1237);
        assert_eq!(read(&mut host, 5, 1), 0x80);
        select(&mut host, 0, 0, 0, 0x04);
        assert_eq!(read(&mut host, 4, 4), 0x0280_0006);
        select(&mut host, 0, 0, 0, 0x08);
        assert_eq!(read(&mut host, 4, 4), 0x0600_0002);
        select(&mut host, 0, 0, 0, 0x0c);
        assert_eq!(read(&mut host, 6, 1), 0x00); // header type 0, single function
    }

    #[test]
    fn absent_functions_and_disabled_mapping_read_all_ones() {
        let mut host = PciHost::new();
        select(&mut host, 0, 1, 0, 0);
        assert_eq!(read(&mut host, 4, 4), 0xffff_ffff);
        select(&mut host, 1, 0, 0, 0);
        assert_eq!(read(&mut host, 4, 2), 0xffff);
        select(&mut host, 0, 0, 1, 0);
        assert_eq!(read(&mut host, 7, 1), 0xff);
        host.pio_write(PORT_ADDRESS, &0u32.to_le_bytes()); // enable bit clear
        assert_eq!(read(&mut host, 4, 4), 0xffff_ffff);
    }

    #[test]
    fn config_address_register() {
        // Bits 30:24 are reserved (read 0) and bits 1:0 are 0 for type 0/1 translation.
        let mut host = PciHost::new();
        host.pio_write(PORT_ADDRESS, &0xffff_ffffu32.to_le_bytes());
        assert_eq!(read(&mut host, PORT_ADDRESS, 4), 0x80ff_fffc);
        // Byte accesses to 0xcf8-0xcfb are not CONFIG_ADDRESS.
        host.pio_write(1, &[0x12]);
        assert_eq!(read(&mut host, PORT_ADDRESS, 4), 0x80ff_fffc);
        assert_eq!(host.config_address(), 0x80ff_fffc);
    }

    /// QEMU's host bridges OR CONFIG_ADDRESS bits 1:0 into the CONFIG_DATA lane, and
    /// kvm-unit-tests' `pci_config_readw(dev, PCI_DEVICE_ID)` relies on it (address with
    /// register 2, a word read at 0xcfc); the register still reads back with bits 1:0 clear.
    #[test]
    fn config_address_low_bits_select_the_lane_as_on_qemu() {
        let mut host = PciHost::new();
        host.pio_write(PORT_ADDRESS, &(ADDRESS_ENABLE | 2).to_le_bytes());
        assert_eq!(read(&mut host, 4, 2), 0x1237);
        assert_eq!(read(&mut host, PORT_ADDRESS, 4), ADDRESS_ENABLE);
        host.pio_write(PORT_ADDRESS, &(ADDRESS_ENABLE | 3).to_le_bytes());
        assert_eq!(read(&mut host, 4, 1), 0x12);
        // A dword through a misaligned address would cross the register: ignored (all ones read
        // stays what the caller had).
        let mut d = [0xee; 4];
        host.pio_read(4, &mut d);
        assert_eq!(d, [0xee; 4]);
    }

    #[test]
    fn byte_lanes_and_read_only_identification() {
        let mut host = PciHost::new();
        select(&mut host, 0, 0, 0, 0x00);
        host.pio_write(4, &0xdead_beefu32.to_le_bytes());
        assert_eq!(read(&mut host, 4, 4), 0x1237_8086);
        // Latency timer (0x0d) through port 0xcfd; PAM0 (0x59) through 0xcfd.
        select(&mut host, 0, 0, 0, 0x0c);
        host.pio_write(5, &[0x40]);
        assert_eq!(read(&mut host, 4, 4), 0x0000_4000);
        select(&mut host, 0, 0, 0, 0x58);
        host.pio_write(5, &[0x30]);
        host.pio_write(6, &0x3333u16.to_le_bytes());
        assert_eq!(read(&mut host, 4, 4), 0x3333_3000);
        // A word at 0xcff would cross the dword: ignored.
        host.pio_write(7, &[1, 2]);
        assert_eq!(read(&mut host, 4, 4), 0x3333_3000);
        let mut odd = [0xee; 2];
        host.pio_read(7, &mut odd);
        assert_eq!(odd, [0xee; 2]);
        let bridge = HostBridge::from_state(&HostBridge::new().state());
        assert_eq!(bridge.state(), HostBridge::new().state());
    }

    /// CONFIG_ADDRESS and the bridge's writable registers (a PAM byte) survive a restore into a
    /// fresh host; the read-only identification stays the datasheet's.
    #[test]
    fn save_restore_keeps_address_and_bridge_registers() {
        let mut host = PciHost::new();
        select(&mut host, 0, 0, 0, 0x58);
        host.pio_write(5, &[0x30]);
        let saved = host.save_state();
        let mut other = PciHost::new();
        other.restore_state(&saved);
        assert_eq!(other.save_state(), saved);
        assert_eq!(read(&mut other, PORT_ADDRESS, 4), read(&mut host, PORT_ADDRESS, 4));
        assert_eq!(read(&mut other, 4, 4), 0x0000_3000);
        select(&mut other, 0, 0, 0, 0);
        assert_eq!(read(&mut other, 4, 4), 0x1237_8086);
    }
}
