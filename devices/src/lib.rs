//! devices: the PC platform, independent of the engine that runs the CPU (ARCHITECTURE.md, decision 3).
//!
//! Nothing here knows about CPUs or engines: devices see port and MMIO accesses by offset, raise
//! [`irq::IrqLine`]s, and read time from a [`clock::Clock`]. Each chip is one file that reads like its
//! datasheet, has a plain `…State` struct for snapshots (`save_state()` / `restore_state()`), and ignores
//! (trace-logs) accesses of the wrong width or to unknown registers instead of panicking.
//!
//! Module map:
//!
//! | module | what |
//! |---|---|
//! | [`bus`] | [`bus::PioBus`] (a 64 Ki-entry port table), [`bus::MmioBus`] (sorted ranges, binary search), the [`bus::PioDevice`] / [`bus::MmioDevice`] traits |
//! | [`irq`] | [`irq::IrqLine`], a no-op line and a recording test stand-in |
//! | [`error`] | [`DeviceError`], the crate's error enum |
//! | [`clock`] | [`clock::Clock`]: [`clock::HostClock`] and the deterministic [`clock::VirtualClock`] |
//! | [`pc::uart16550`] | 16550A UART (COM1-4) |
//! | [`pc::pic8259`] | the cascaded 8259A pair and the ELCR |
//! | [`pc::pit8254`] | 8254 interval timer and the port 0x61 speaker/gate bits |
//! | [`pc::cmos_rtc`] | MC146818 real-time clock and CMOS RAM |
//! | [`pc::i8042`] | keyboard controller: the Linux probe, reset line, A20 |
//! | [`pc::ioapic`] | 82093AA I/O APIC |
//! | [`pc::lapic`] | xAPIC local APIC and its timer |
//! | [`pc::pci_host`] | PCI configuration mechanism #1 and a 440FX-like host bridge |
//! | [`pc::exit_port`] | QEMU `isa-debug-exit`-compatible exit port |
//! | [`dma`] | [`dma::GuestMemory`]: how devices reach guest RAM (bounds-checked, implemented by the machine) |
//! | [`virtio`] | virtio 1.x: split virtqueue, virtio-pci (modern), virtio-blk |
//! | [`p9`] | the 9P2000.L server behind virtio-9p (`--share`) |
//! | [`block`] | disk images (raw) behind [`block::BlockBackend`], the `--drive` option |
//!
//! See `devices/README.md` for what each model covers and leaves out.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod block;
pub mod bus;
pub mod clock;
pub mod dma;
pub mod error;
pub mod irq;
pub mod p9;
pub mod pc;
pub mod virtio;

pub use bus::{BusError, MmioBus, MmioDevice, PioBus, PioDevice};
pub use clock::{Clock, HostClock, VirtualClock};
pub use error::DeviceError;
pub use irq::{FnIrq, IrqFanOut, IrqLine, NoIrq, RecordingIrq};
