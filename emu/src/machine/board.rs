//! The PC board: Strata's devices wired together and to the CPU's I/O bus.
//!
//! | device | where | interrupt |
//! |---|---|---|
//! | 8259A pair + ELCR | ports 0x20, 0xa0, 0x4d0 | INTR -> LAPIC LINT0 (ExtINT) |
//! | 8254 PIT (+ port 0x61) | ports 0x40-0x43, 0x61 | ISA IRQ 0 (IOAPIC pin 2) |
//! | i8042 | ports 0x60, 0x64 | ISA IRQ 1 / 12 |
//! | MC146818 RTC + CMOS | ports 0x70-0x71 | ISA IRQ 8 |
//! | 16550A UART (COM1) | ports 0x3f8-0x3ff | ISA IRQ 4 |
//! | PCI host bridge (mechanism #1) | ports 0xcf8-0xcff | - |
//! | isa-debug-exit | port 0xf4 | - |
//! | virtio-pci functions (`--drive`) | PCI 00:01.0-00:08.0 (00:02.0-00:09.0 behind a BIOS, whose PIIX3 is 00:01.0), BAR 0 in the window at 0xc0000000 | INTA -> IOAPIC pin 16 + (slot - 1) mod 8 |
//! | ACPI PM1a blocks + PM timer | ports 0x600-0x60b | (SCI: ISA IRQ 9, never raised) |
//! | fw_cfg (selector, data; DMA) | ports 0x510-0x511; 0x514-0x51b | - |
//! | debug console (with `--debugcon`) | ports 0xe9, 0x402 | - |
//! | pc-testdev (with `--device pc-testdev`) | ports 0xe0-0xeb, 0x2000-0x2017; MMIO 0xff000000 | drives ISA IRQs / IOAPIC pins |
//! | IOAPIC | MMIO 0xfec00000 | -> LAPIC messages |
//! | LAPIC | MMIO 0xfee00000 | -> CPU |
//!
//! Devices share state through `Rc<RefCell<…>>`; cross-device messages (IOAPIC to LAPIC, EOI
//! broadcasts back) go through queues the machine drains between CPU slices, so no device is
//! ever borrowed twice.

use crate::cpu::IoBus;
use devices::bus::{MmioBus, PioBus};
use devices::clock::Clock;
use devices::irq::IrqLine;
use devices::pc::acpi_pm::{AcpiPm, ACPI_PM_BASE, ACPI_PM_LEN};
use devices::pc::cmos_rtc::CmosRtc;
use devices::pc::exit_port::ExitPort;
use devices::pc::fw_cfg::{FwCfg, FwCfgDmaPort, FW_CFG_DMA_BASE, FW_CFG_DMA_LEN, FW_CFG_IO_BASE, FW_CFG_IO_LEN};
use devices::pc::i8042::{I8042PortDevice, I8042Ports, I8042};
use devices::pc::ioapic::{ApicSink, IoApic};
use devices::pc::lapic::{ApicMessage, Lapic, LapicHooks};
use devices::pc::pci_host::PciHost;
use devices::pc::pic8259::{Pic8259, PicPortDevice, PicPorts};
use devices::pc::pit8254::{Pit8254, PitPortDevice, PitPorts};
use devices::pc::uart16550::Uart16550;
use devices::virtio::pci::{PciMmioWindow, VirtioPci};
use devices::virtio::VirtioDevice;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

pub type SharedClock = Rc<dyn Clock>;

/// The 8259's INTR output: a level the machine reads.
#[derive(Clone, Default)]
pub struct IntrLine(pub Rc<Cell<bool>>);

impl IrqLine for IntrLine {
    fn set_level(&self, asserted: bool) {
        self.0.set(asserted);
    }
}

/// Messages from the IOAPIC to the LAPIC, queued.
#[derive(Clone, Default)]
pub struct MessageQueue(pub Rc<RefCell<Vec<ApicMessage>>>);

impl ApicSink for MessageQueue {
    fn deliver(&self, message: ApicMessage) {
        self.0.borrow_mut().push(message);
    }
}

/// EOI broadcasts from the LAPIC to the IOAPIC, queued (IPIs: single CPU, nothing to send).
#[derive(Clone, Default)]
pub struct EoiQueue(pub Rc<RefCell<Vec<u8>>>);

impl LapicHooks for EoiQueue {
    fn eoi_broadcast(&self, vector: u8) {
        self.0.borrow_mut().push(vector);
    }
    fn send_ipi(&self, _icr: u64) {}
}

pub type PicRc = Rc<RefCell<Pic8259<IntrLine>>>;
pub type IoApicRc = Rc<RefCell<IoApic<MessageQueue>>>;

/// An ISA interrupt request: drives the 8259 input and the IOAPIC pin (IRQ 0 on pin 2).
#[derive(Clone)]
pub struct IsaIrq {
    pub pic: PicRc,
    pub ioapic: IoApicRc,
    pub irq: u8,
}

impl IrqLine for IsaIrq {
    fn set_level(&self, asserted: bool) {
        self.pic.borrow_mut().set_irq(self.irq, asserted);
        let pin = if self.irq == 0 { 2 } else { self.irq as usize };
        self.ioapic.borrow_mut().set_irq(pin, asserted);
    }
}

pub type SerialOut = Box<dyn Write>;

/// A PCI INTx line: an IOAPIC pin (pins 16-23 carry nothing else, so no sharing to combine).
#[derive(Clone)]
pub struct PciIrq {
    pub ioapic: IoApicRc,
    pub pin: usize,
}

impl IrqLine for PciIrq {
    fn set_level(&self, asserted: bool) {
        self.ioapic.borrow_mut().set_irq(self.pin, asserted);
    }
}

/// The virtio functions on the PCI bus, shared by the PCI host, the MMIO window and the machine.
pub type VirtioFunctions = Rc<RefCell<Vec<Rc<RefCell<VirtioPci>>>>>;

/// Every device of the PC, and the buses that reach them.
pub struct Board {
    pub pio: PioBus,
    pub mmio: MmioBus,
    pub clock: SharedClock,
    pub intr: IntrLine,
    pub pic: PicRc,
    pub pit: Rc<RefCell<Pit8254<IsaIrq, SharedClock>>>,
    pub rtc: Rc<RefCell<CmosRtc<IsaIrq, SharedClock>>>,
    pub uart: Rc<RefCell<Uart16550<IsaIrq, SerialOut>>>,
    pub i8042: Rc<RefCell<I8042<IsaIrq, IsaIrq>>>,
    pub ioapic: IoApicRc,
    pub lapic: Rc<RefCell<Lapic<SharedClock, EoiQueue>>>,
    pub exit: Rc<RefCell<ExitPort>>,
    pub pci: Rc<RefCell<PciHost>>,
    pub virtio: VirtioFunctions,
    pub acpi_pm: Rc<RefCell<AcpiPm<SharedClock>>>,
    pub fw_cfg: Rc<RefCell<FwCfg>>,
    pub apic_messages: MessageQueue,
    pub eois: EoiQueue,
    /// The first PCI slot `--drive`/`--share` functions take: 1, or 2 behind a BIOS, whose
    /// PIIX3 ISA bridge sits at 00:01.0 as on QEMU's i440FX (issue 14).
    pub first_virtio_slot: u8,
    /// QEMU's pci-testdev, with `--device pci-testdev` (issue 14).
    pub pci_testdev: Rc<RefCell<Option<devices::pc::pci_testdev::SharedPciTestdev>>>,
}

/// A `Board` shared with the CPU as its I/O bus.
#[derive(Clone)]
pub struct BoardBus(pub Rc<RefCell<Board>>);

impl Board {
    /// Builds the PC with `ram` bytes of memory reported in CMOS, serial output to `serial`.
    pub fn new(clock: SharedClock, ram: u64, serial: SerialOut, start_unix_secs: i64) -> Board {
        let intr = IntrLine::default();
        let pic: PicRc = Rc::new(RefCell::new(Pic8259::new(intr.clone())));
        let apic_messages = MessageQueue::default();
        let ioapic: IoApicRc = Rc::new(RefCell::new(IoApic::new(apic_messages.clone())));
        let isa = |irq: u8| IsaIrq { pic: pic.clone(), ioapic: ioapic.clone(), irq };
        let pit = Rc::new(RefCell::new(Pit8254::new(isa(0), clock.clone())));
        let rtc = Rc::new(RefCell::new(CmosRtc::new(isa(8), clock.clone(), start_unix_secs)));
        rtc.borrow_mut().set_memory_size(ram.min(crate::loaders::layout::MMIO_HOLE), 0);
        let uart = Rc::new(RefCell::new(Uart16550::new(isa(4), serial)));
        let i8042 = Rc::new(RefCell::new(I8042::new(isa(1), isa(12))));
        let eois = EoiQueue::default();
        let lapic = Rc::new(RefCell::new(Lapic::new(0, clock.clone(), eois.clone())));
        let exit = Rc::new(RefCell::new(ExitPort::default()));
        let pci = Rc::new(RefCell::new(PciHost::new()));
        let acpi_pm = Rc::new(RefCell::new(AcpiPm::new(clock.clone())));
        let fw_cfg = Rc::new(RefCell::new(FwCfg::new()));
        crate::loaders::fw_cfg::add_platform_items(&mut fw_cfg.borrow_mut(), ram);
        let mut pio = PioBus::new();
        let mut mmio = MmioBus::new();
        // Registration cannot fail on an empty bus with these fixed, disjoint ranges.
        let _ = pio.register(0x20, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Master }));
        let _ = pio.register(0xa0, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Slave }));
        let _ = pio.register(0x4d0, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Elcr }));
        let _ = pio.register(0x40, 4, Box::new(PitPortDevice { pit: pit.clone(), ports: PitPorts::Timer }));
        let _ = pio.register(0x61, 1, Box::new(PitPortDevice { pit: pit.clone(), ports: PitPorts::SystemControl }));
        let _ = pio.register(0x60, 1, Box::new(I8042PortDevice { kbc: i8042.clone(), ports: I8042Ports::Data }));
        let _ = pio.register(0x64, 1, Box::new(I8042PortDevice { kbc: i8042.clone(), ports: I8042Ports::Command }));
        let _ = pio.register(0x70, 2, Box::new(rtc.clone()));
        let _ = pio.register(0x3f8, 8, Box::new(uart.clone()));
        let _ = pio.register(0xcf8, 8, Box::new(pci.clone()));
        let _ = pio.register(0xf4, 1, Box::new(exit.clone()));
        let _ = pio.register(ACPI_PM_BASE, ACPI_PM_LEN, Box::new(acpi_pm.clone()));
        let _ = pio.register(FW_CFG_IO_BASE, FW_CFG_IO_LEN, Box::new(fw_cfg.clone()));
        let _ = pio.register(FW_CFG_DMA_BASE, FW_CFG_DMA_LEN, Box::new(FwCfgDmaPort(fw_cfg.clone())));
        let _ = mmio.register(crate::loaders::layout::IOAPIC_BASE, 0x1000, Box::new(ioapic.clone()));
        let _ = mmio.register(crate::loaders::layout::LAPIC_BASE, 0x1000, Box::new(lapic.clone()));
        let virtio = VirtioFunctions::default();
        let virtio_window = PciMmioWindow { base: crate::loaders::layout::PCI_MMIO_BASE, functions: virtio.clone() };
        // Issue 14: the window also reaches a pci-testdev's memory BAR once one is plugged in.
        let pci_testdev = Rc::new(RefCell::new(None));
        let window = devices::pc::pci_testdev::PciMemWindow {
            base: crate::loaders::layout::PCI_MMIO_BASE,
            inner: virtio_window,
            testdev: Rc::clone(&pci_testdev),
        };
        let _ = mmio.register(
            crate::loaders::layout::PCI_MMIO_BASE,
            crate::loaders::layout::PCI_MMIO_LEN,
            Box::new(window),
        );
        // What a BIOS leaves for the OS: the LAPIC software-enabled in virtual-wire mode, the
        // 8259's INTR arriving on LINT0 as ExtINT and NMI on LINT1 (MP spec 1.4, 3.6.2.2).
        {
            use devices::bus::MmioDevice;
            let mut l = lapic.borrow_mut();
            l.mmio_write(0xf0, &0x1ffu32.to_le_bytes());
            l.mmio_write(0x350, &0x700u32.to_le_bytes());
            l.mmio_write(0x360, &0x400u32.to_le_bytes());
        }
        Board {
            pio,
            mmio,
            clock,
            intr,
            pic,
            pit,
            rtc,
            uart,
            i8042,
            ioapic,
            lapic,
            exit,
            pci,
            virtio,
            acpi_pm,
            fw_cfg,
            apic_messages,
            eois,
            first_virtio_slot: 1,
            pci_testdev,
        }
    }

    /// Plugs `dev` into the next free PCI slot behind a virtio-pci transport; returns the slot, or
    /// `None` when all slots are taken.
    pub fn add_virtio(&mut self, dev: Box<dyn VirtioDevice>) -> Option<u8> {
        use crate::loaders::layout;
        let index = u8::try_from(self.virtio.borrow().len()).ok().filter(|&i| i < layout::PCI_SLOTS)?;
        let slot = self.first_virtio_slot + index;
        // INTA's pin as the ACPI `_PRT` gives it (slot 1 on pin 16, wrapping after pin 23).
        let pin = crate::loaders::acpi::prt_gsi(u32::from(slot), 0) as usize;
        let irq = PciIrq { ioapic: self.ioapic.clone(), pin };
        // --- issue 12: MSI-X; messages join the IOAPIC's on their way to the LAPIC ---
        let msi = Box::new(self.apic_messages.clone());
        let f = VirtioPci::new(dev, Box::new(irq), layout::pci_bar0(slot) as u32).with_msix(msi);
        let f = Rc::new(RefCell::new(f));
        self.pci.borrow_mut().add_function(devices::pc::pci_host::bdf(0, slot, 0), Box::new(f.clone()));
        self.virtio.borrow_mut().push(f);
        Some(slot)
    }

    /// Sends what the guest writes to ports 0xE9 and 0x402 to `out` (`--debugcon`).
    pub fn attach_debugcon(&mut self, out: Box<dyn Write>) {
        use devices::pc::debugcon::{DebugCon, DEBUGCON_PORT, SEABIOS_LOG_PORT};
        let con = Rc::new(RefCell::new(DebugCon::new(out)));
        // The two one-port ranges are free on this board, so registration cannot fail.
        let _ = self.pio.register(DEBUGCON_PORT, 1, Box::new(con.clone()));
        let _ = self.pio.register(SEABIOS_LOG_PORT, 1, Box::new(con));
    }

    // --- kvm-unit-tests devices (issue 14): opt-in, `--device pc-testdev` ---
    /// Plugs in QEMU's `pc-testdev` (`devices::pc::testdev`): ports 0xE0-0xEB, interrupt lines
    /// at 0x2000-0x2017 (ISA IRQ n below 16, IOAPIC pin n above) and 64 KiB of test memory at
    /// 0xFF000000. Fails when something already decodes those ranges (e.g. `--debugcon` on 0xE9).
    pub fn attach_pc_testdev(&mut self) -> Result<(), devices::bus::BusError> {
        use devices::pc::testdev::*;
        self.pio.register(TESTDEV_PORTS_BASE, TESTDEV_PORTS_LEN, Box::new(TestdevPorts::default()))?;
        let lines: Vec<Rc<dyn IrqLine>> = (0..TESTDEV_IRQ_LINES as u8)
            .map(|n| -> Rc<dyn IrqLine> {
                if n < 16 {
                    Rc::new(IsaIrq { pic: self.pic.clone(), ioapic: self.ioapic.clone(), irq: n })
                } else {
                    Rc::new(PciIrq { ioapic: self.ioapic.clone(), pin: usize::from(n) })
                }
            })
            .collect();
        self.pio.register(TESTDEV_IRQ_BASE, TESTDEV_IRQ_LINES, Box::new(TestdevIrqPorts::new(lines)))?;
        self.mmio.register(TESTDEV_IOMEM_BASE, TESTDEV_IOMEM_LEN, Box::new(TestdevIomem::default()))
    }

    /// Plugs in QEMU's `pci-testdev` (`devices::pc::pci_testdev`) at the next free PCI slot
    /// (after the drives), its memory BAR where the machine would place that slot's BAR 0 and
    /// its I/O BAR at 0xC000, both decoding; ports 0xC000-0xFFFF follow the I/O BAR wherever a
    /// firmware moves it. Returns the slot.
    pub fn attach_pci_testdev(&mut self) -> Result<u8, devices::bus::BusError> {
        use crate::loaders::layout;
        use devices::pc::pci_testdev::{PciTestdev, PciTestdevPorts, IO_WINDOW_BASE, IO_WINDOW_LEN};
        let slot = self.first_virtio_slot + self.virtio.borrow().len() as u8;
        let dev = Rc::new(RefCell::new(PciTestdev::new(layout::pci_bar0(slot) as u32)));
        self.pio.register(IO_WINDOW_BASE, IO_WINDOW_LEN, Box::new(PciTestdevPorts(dev.clone())))?;
        self.pci.borrow_mut().add_function(devices::pc::pci_host::bdf(0, slot, 0), Box::new(dev.clone()));
        *self.pci_testdev.borrow_mut() = Some(dev);
        Ok(slot)
    }
    // --- end kvm-unit-tests devices ---

    /// Lets time-driven devices raise their interrupts and moves queued messages along.
    pub fn poll(&mut self) {
        self.pit.borrow_mut().poll_irq();
        self.rtc.borrow_mut().poll_irq();
        let msgs: Vec<ApicMessage> = std::mem::take(&mut *self.apic_messages.0.borrow_mut());
        let mut lapic = self.lapic.borrow_mut();
        for m in msgs {
            lapic.deliver(m);
        }
        lapic.poll_timer();
        lapic.set_lint(0, self.intr.0.get());
        drop(lapic);
        let eois: Vec<u8> = std::mem::take(&mut *self.eois.0.borrow_mut());
        for v in eois {
            self.ioapic.borrow_mut().end_of_interrupt(v);
        }
    }

    /// Whether an interrupt waits for the CPU (without acknowledging it): a LAPIC vector above
    /// the processor priority, or the 8259's INTR through LINT0 in ExtINT mode.
    pub fn interrupt_pending(&self) -> bool {
        let lapic = self.lapic.borrow();
        lapic.highest_pending().is_some() || (lapic.extint_pending() && self.intr.0.get())
    }

    /// The interrupt vector the CPU should take now (its IF is set), acknowledging it.
    pub fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let mut lapic = self.lapic.borrow_mut();
        if let Some(v) = lapic.accept() {
            return Some(v);
        }
        let extint = lapic.extint_pending();
        drop(lapic);
        if extint && self.intr.0.get() {
            let v = self.pic.borrow_mut().acknowledge();
            self.lapic.borrow_mut().set_lint(0, self.intr.0.get());
            return Some(v);
        }
        None
    }

    /// Nanoseconds until the next timer event of any device.
    pub fn next_event_ns(&self) -> Option<u64> {
        [self.pit.borrow().next_event_ns(), self.rtc.borrow().next_event_ns(), self.lapic.borrow().next_event_ns()]
            .into_iter()
            .flatten()
            .min()
    }
}

impl IoBus for BoardBus {
    fn pio_read(&mut self, port: u16, size: u8) -> u32 {
        let mut buf = [0u8; 4];
        let n = (size as usize).min(4);
        self.0.borrow_mut().pio.read(port, &mut buf[..n]);
        u32::from_le_bytes(buf)
    }
    fn pio_write(&mut self, port: u16, size: u8, value: u32) {
        let n = (size as usize).min(4);
        self.0.borrow_mut().pio.write(port, &value.to_le_bytes()[..n]);
    }
    fn mmio_read(&mut self, paddr: u64, size: u8) -> u64 {
        let mut buf = [0u8; 8];
        let n = (size as usize).min(8);
        self.0.borrow_mut().mmio.read(paddr, &mut buf[..n]);
        u64::from_le_bytes(buf)
    }
    fn mmio_write(&mut self, paddr: u64, size: u8, value: u64) {
        let n = (size as usize).min(8);
        self.0.borrow_mut().mmio.write(paddr, &value.to_le_bytes()[..n]);
    }
}
