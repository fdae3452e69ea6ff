//! Cross-module test: a small PC (8259A pair, 8254, 16550A, MC146818, exit port) wired on a port
//! bus with a virtual clock, driven through port I/O the way a kernel would, checking that device
//! interrupts arrive at the CPU as the vectors the PIC was programmed with.

use std::cell::RefCell;
use std::rc::Rc;

use devices::bus::PioBus;
use devices::clock::VirtualClock;
use devices::irq::RecordingIrq;
use devices::pc::cmos_rtc::CmosRtc;
use devices::pc::exit_port::ExitPort;
use devices::pc::pic8259::{Pic8259, PicInput, PicPortDevice, PicPorts};
use devices::pc::pit8254::{Pit8254, PitPortDevice, PitPorts};
use devices::pc::uart16550::Uart16550;

type Pic = Rc<RefCell<Pic8259<RecordingIrq>>>;

struct Pc {
    bus: PioBus,
    clock: Rc<VirtualClock>,
    pic: Pic,
    intr: RecordingIrq,
    pit: Rc<RefCell<Pit8254<PicInput<RecordingIrq>, Rc<VirtualClock>>>>,
    uart: Rc<RefCell<Uart16550<PicInput<RecordingIrq>, Vec<u8>>>>,
    rtc: Rc<RefCell<CmosRtc<PicInput<RecordingIrq>, Rc<VirtualClock>>>>,
    exit: Rc<RefCell<ExitPort>>,
}

impl Pc {
    fn new() -> Self {
        let clock = Rc::new(VirtualClock::new(1));
        let intr = RecordingIrq::default();
        let pic: Pic = Rc::new(RefCell::new(Pic8259::new(intr.clone())));
        let line = |irq| PicInput { pic: pic.clone(), irq };
        let pit = Rc::new(RefCell::new(Pit8254::new(line(0), clock.clone())));
        let uart = Rc::new(RefCell::new(Uart16550::new(line(4), Vec::new())));
        let rtc = Rc::new(RefCell::new(CmosRtc::new(line(8), clock.clone(), 1_000_000_000)));
        let exit = Rc::new(RefCell::new(ExitPort::default()));
        let mut bus = PioBus::new();
        bus.register(0x20, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Master })).unwrap();
        bus.register(0xa0, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Slave })).unwrap();
        bus.register(0x4d0, 2, Box::new(PicPortDevice { pic: pic.clone(), ports: PicPorts::Elcr })).unwrap();
        bus.register(0x40, 4, Box::new(PitPortDevice { pit: pit.clone(), ports: PitPorts::Timer })).unwrap();
        bus.register(0x61, 1, Box::new(PitPortDevice { pit: pit.clone(), ports: PitPorts::SystemControl })).unwrap();
        bus.register(0x3f8, 8, Box::new(uart.clone())).unwrap();
        bus.register(0x70, 2, Box::new(rtc.clone())).unwrap();
        bus.register(0xf4, 4, Box::new(exit.clone())).unwrap();
        Self { bus, clock, pic, intr, pit, uart, rtc, exit }
    }

    fn outb(&mut self, port: u16, v: u8) {
        self.bus.write(port, &[v]);
    }

    fn inb(&mut self, port: u16) -> u8 {
        let mut b = [0];
        self.bus.read(port, &mut b);
        b[0]
    }

    /// The machine loop's device step: let timers catch up.
    fn poll(&mut self) {
        self.pit.borrow_mut().poll_irq();
        self.rtc.borrow_mut().poll_irq();
    }

    /// The CPU takes an interrupt if INTR is up.
    fn interrupt(&mut self) -> Option<u8> {
        self.intr.level().then(|| self.pic.borrow_mut().acknowledge())
    }
}

#[test]
fn kernel_style_bring_up() {
    let mut pc = Pc::new();
    // PIC init as Linux does it (vectors 0x30/0x38), then unmask IRQ0, IRQ2 (cascade), IRQ4, IRQ8.
    for (base, words) in [(0x20, [0x11, 0x30, 0x04, 0x01]), (0xa0, [0x11, 0x38, 0x02, 0x01])] {
        pc.outb(base, words[0]);
        for w in &words[1..] {
            pc.outb(base + 1, *w);
        }
    }
    pc.outb(0x21, !0b0001_0101);
    pc.outb(0xa1, !0b0000_0001);

    // The periodic tick: PIT mode 2 at 100 Hz.
    pc.outb(0x43, 0x34);
    pc.outb(0x40, 0x9c);
    pc.outb(0x40, 0x2e);
    // The control word raised OUT0 already (a first IRQ0 edge); take and end it.
    assert_eq!(pc.interrupt(), Some(0x30));
    pc.outb(0x20, 0x20);
    assert_eq!(pc.interrupt(), None);
    let wake = pc.pit.borrow().next_event_ns().unwrap();
    pc.clock.advance_to(wake);
    pc.poll();
    assert_eq!(pc.interrupt(), Some(0x30));
    pc.outb(0x20, 0x20);

    // Serial input: RX interrupt through OUT2 to IRQ4.
    pc.outb(0x3fa, 0x07); // FIFOs on and cleared (without them a second byte would overrun)
    pc.outb(0x3f9, 0x01);
    pc.outb(0x3fc, 0x0b);
    assert_eq!(pc.uart.borrow().rx_space(), 16);
    pc.uart.borrow_mut().enqueue_input(b"ok");
    assert_eq!(pc.interrupt(), Some(0x34));
    assert_eq!(pc.inb(0x3fd) & 1, 1);
    assert_eq!([pc.inb(0x3f8), pc.inb(0x3f8)], *b"ok");
    pc.outb(0x20, 0x20);
    assert_eq!(pc.interrupt(), None);
    for &b in b"hello\n" {
        pc.outb(0x3f8, b);
    }
    assert_eq!(pc.uart.borrow().output(), b"hello\n");

    // RTC update-ended interrupt on IRQ8, through the slave.
    pc.outb(0x70, 0x0b);
    pc.outb(0x71, 0x12);
    pc.clock.advance_to(1_000_000_000);
    pc.poll();
    // The timer ticked meanwhile and IRQ0 outranks IRQ8 (via IR2): it comes first.
    assert_eq!(pc.interrupt(), Some(0x30));
    pc.outb(0x20, 0x20);
    assert_eq!(pc.interrupt(), Some(0x38));
    pc.outb(0x70, 0x0c);
    assert_eq!(pc.inb(0x71) & 0x90, 0x90);
    pc.outb(0xa0, 0x20);
    pc.outb(0x20, 0x20);
    assert_eq!(pc.pic.borrow().state().master.isr, 0);

    // An unclaimed port floats high; the exit port reports its status.
    assert_eq!(pc.inb(0x80), 0xff);
    pc.outb(0xf4, 0x10);
    assert_eq!(pc.exit.borrow().exit_status(), Some(0x21));
}
