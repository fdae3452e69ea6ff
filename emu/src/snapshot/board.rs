//! The devices section: every chip's `…State` from the `devices` crate, and the messages queued
//! between the APICs, encoded field by field; and how a [`Board`] is read into and put back from
//! one [`BoardState`].
//!
//! Order in the section: PIC pair, PIT, RTC, UART, i8042, IOAPIC, LAPIC, exit port, PCI host,
//! queued IOAPIC-to-LAPIC messages, queued EOI broadcasts. Each encoder destructures its state
//! struct completely, so a field added in `devices` breaks the build here until it is saved.
//!
//! Restoring is ordered: the chips that drive interrupt lines (PIT, RTC, UART, i8042) are restored
//! first, then the PIC and IOAPIC, whose saved input levels overwrite whatever those lines did on
//! the way; the message queues are replaced last. So the restored board equals the saved one.

use super::codec::{DecodeError, Decoded, Reader, Writer};
use crate::machine::board::Board;
use devices::pc::cmos_rtc::CmosRtcState;
use devices::pc::exit_port::ExitPortState;
use devices::pc::i8042::{I8042Source, I8042State};
use devices::pc::ioapic::{IoApicState, PIN_COUNT};
use devices::pc::lapic::{ApicMessage, LapicState};
use devices::pc::pci_host::{HostBridgeState, PciHostState};
use devices::pc::pic8259::{Pic8259ChipState, Pic8259State};
use devices::pc::pit8254::{Pit8254CounterState, Pit8254State};
use devices::pc::uart16550::{Uart16550State, FIFO_SIZE};

/// Messages or EOIs more than this in one queue make a section malformed (a slice of the
/// machine loop queues a handful).
const MAX_QUEUE: usize = 4096;

/// Every device of the board, as plain data.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardState {
    pub pic: Pic8259State,
    pub pit: Pit8254State,
    pub rtc: CmosRtcState,
    pub uart: Uart16550State,
    pub i8042: I8042State,
    pub ioapic: IoApicState,
    pub lapic: LapicState,
    pub exit: ExitPortState,
    pub pci: PciHostState,
    /// IOAPIC messages not yet handed to the LAPIC.
    pub apic_messages: Vec<ApicMessage>,
    /// LAPIC EOI broadcasts not yet handed to the IOAPIC.
    pub eois: Vec<u8>,
}

impl BoardState {
    /// Reads every device of `board`.
    pub fn capture(board: &Board) -> Self {
        BoardState {
            pic: board.pic.borrow().save_state(),
            pit: board.pit.borrow().save_state(),
            rtc: board.rtc.borrow().save_state(),
            uart: board.uart.borrow().save_state(),
            i8042: board.i8042.borrow().save_state(),
            ioapic: board.ioapic.borrow().save_state(),
            lapic: board.lapic.borrow().save_state(),
            exit: board.exit.borrow().save_state(),
            pci: board.pci.borrow().save_state(),
            apic_messages: board.apic_messages.0.borrow().clone(),
            eois: board.eois.0.borrow().clone(),
        }
    }

    /// Puts every device of `board` in this state (see the module doc for the order).
    pub fn apply(&self, board: &Board) {
        board.pit.borrow_mut().restore_state(&self.pit);
        board.rtc.borrow_mut().restore_state(&self.rtc);
        board.uart.borrow_mut().restore_state(&self.uart);
        board.i8042.borrow_mut().restore_state(&self.i8042);
        board.pic.borrow_mut().restore_state(&self.pic);
        board.ioapic.borrow_mut().restore_state(&self.ioapic);
        board.lapic.borrow_mut().restore_state(&self.lapic);
        board.exit.borrow_mut().restore_state(&self.exit);
        board.pci.borrow_mut().restore_state(&self.pci);
        *board.apic_messages.0.borrow_mut() = self.apic_messages.clone();
        *board.eois.0.borrow_mut() = self.eois.clone();
    }
}

fn put_pic_chip(w: &mut Writer, c: &Pic8259ChipState) {
    let Pic8259ChipState {
        irr,
        isr,
        imr,
        pins,
        elcr,
        priority_base,
        vector_base,
        icw3,
        init_step,
        expect_icw4,
        single,
        ltim,
        auto_eoi,
        mode_8086,
        sfnm,
        rotate_on_aeoi,
        special_mask,
        read_isr,
        poll,
    } = c;
    w.raw(&[*irr, *isr, *imr, *pins, *elcr, *priority_base, *vector_base, *icw3, *init_step]);
    for b in [expect_icw4, single, ltim, auto_eoi, mode_8086, sfnm, rotate_on_aeoi, special_mask, read_isr, poll] {
        w.bool(*b);
    }
}

fn get_pic_chip(r: &mut Reader) -> Decoded<Pic8259ChipState> {
    let [irr, isr, imr, pins, elcr, priority_base, vector_base, icw3, init_step] = r.array::<9>()?;
    Ok(Pic8259ChipState {
        irr,
        isr,
        imr,
        pins,
        elcr,
        priority_base: priority_base & 7,
        vector_base,
        icw3,
        init_step,
        expect_icw4: r.bool()?,
        single: r.bool()?,
        ltim: r.bool()?,
        auto_eoi: r.bool()?,
        mode_8086: r.bool()?,
        sfnm: r.bool()?,
        rotate_on_aeoi: r.bool()?,
        special_mask: r.bool()?,
        read_isr: r.bool()?,
        poll: r.bool()?,
    })
}

fn put_pit_counter(w: &mut Writer, c: &Pit8254CounterState) {
    let Pit8254CounterState {
        mode,
        bcd,
        rw,
        count_register,
        has_count,
        counting,
        start_tick,
        paused_elapsed,
        idle_count,
        idle_out,
        gate,
        null_count,
        write_lsb,
        read_msb_next,
        latched_count,
        latched_msb_next,
        latched_status,
    } = c;
    w.u8(*mode);
    w.bool(*bcd);
    w.u8(*rw);
    w.u16(*count_register);
    w.bool(*has_count);
    w.bool(*counting);
    w.u64(*start_tick);
    w.opt(*paused_elapsed, Writer::u64);
    w.u16(*idle_count);
    w.bool(*idle_out);
    w.bool(*gate);
    w.bool(*null_count);
    w.opt(*write_lsb, Writer::u8);
    w.bool(*read_msb_next);
    w.opt(*latched_count, Writer::u16);
    w.bool(*latched_msb_next);
    w.opt(*latched_status, Writer::u8);
}

fn get_pit_counter(r: &mut Reader) -> Decoded<Pit8254CounterState> {
    Ok(Pit8254CounterState {
        mode: r.u8()?,
        bcd: r.bool()?,
        rw: r.u8()?,
        count_register: r.u16()?,
        has_count: r.bool()?,
        counting: r.bool()?,
        start_tick: r.u64()?,
        paused_elapsed: r.opt(Reader::u64)?,
        idle_count: r.u16()?,
        idle_out: r.bool()?,
        gate: r.bool()?,
        null_count: r.bool()?,
        write_lsb: r.opt(Reader::u8)?,
        read_msb_next: r.bool()?,
        latched_count: r.opt(Reader::u16)?,
        latched_msb_next: r.bool()?,
        latched_status: r.opt(Reader::u8)?,
    })
}

fn put_source(w: &mut Writer, (byte, source): (u8, I8042Source)) {
    w.u8(byte);
    w.u8(match source {
        I8042Source::Keyboard => 0,
        I8042Source::Aux => 1,
    });
}

fn get_source(r: &mut Reader) -> Decoded<(u8, I8042Source)> {
    let byte = r.u8()?;
    let source = match r.u8()? {
        0 => I8042Source::Keyboard,
        1 => I8042Source::Aux,
        v => return Err(DecodeError(format!("i8042 byte source {v} is neither keyboard (0) nor aux (1)"))),
    };
    Ok((byte, source))
}

fn put_message(w: &mut Writer, m: &ApicMessage) {
    let ApicMessage { vector, delivery_mode, logical_destination, destination, level_triggered } = *m;
    w.raw(&[vector, delivery_mode]);
    w.bool(logical_destination);
    w.u8(destination);
    w.bool(level_triggered);
}

fn get_message(r: &mut Reader) -> Decoded<ApicMessage> {
    Ok(ApicMessage {
        vector: r.u8()?,
        delivery_mode: r.u8()? & 7,
        logical_destination: r.bool()?,
        destination: r.u8()?,
        level_triggered: r.bool()?,
    })
}

fn put_lapic(w: &mut Writer, s: &LapicState) {
    let LapicState {
        id,
        tpr,
        ldr,
        dfr,
        svr,
        isr,
        tmr,
        irr,
        esr,
        esr_pending,
        icr,
        lvt,
        timer_initial,
        timer_divide,
        timer_start_ns,
        timer_armed,
        timer_periods,
        tsc_deadline,
        tsc_deadline_ns,
        lint,
        nmi_pending,
        init_pending,
        sipi_vector,
        saved_at_ns,
    } = s;
    w.u8(*id);
    w.u8(*tpr);
    for v in [ldr, dfr, svr] {
        w.u32(*v);
    }
    for v in isr.iter().chain(tmr).chain(irr) {
        w.u32(*v);
    }
    w.u32(*esr);
    w.u32(*esr_pending);
    w.u64(*icr);
    for v in lvt {
        w.u32(*v);
    }
    w.u32(*timer_initial);
    w.u32(*timer_divide);
    w.u64(*timer_start_ns);
    w.bool(*timer_armed);
    w.u64(*timer_periods);
    w.u64(*tsc_deadline);
    w.opt(*tsc_deadline_ns, Writer::u64);
    w.bool(lint[0]);
    w.bool(lint[1]);
    w.bool(*nmi_pending);
    w.bool(*init_pending);
    w.opt(*sipi_vector, Writer::u8);
    w.u64(*saved_at_ns);
}

fn get_words<const N: usize>(r: &mut Reader) -> Decoded<[u32; N]> {
    let mut out = [0u32; N];
    for v in &mut out {
        *v = r.u32()?;
    }
    Ok(out)
}

fn get_lapic(r: &mut Reader) -> Decoded<LapicState> {
    Ok(LapicState {
        id: r.u8()?,
        tpr: r.u8()?,
        ldr: r.u32()?,
        dfr: r.u32()?,
        svr: r.u32()?,
        isr: get_words(r)?,
        tmr: get_words(r)?,
        irr: get_words(r)?,
        esr: r.u32()?,
        esr_pending: r.u32()?,
        icr: r.u64()?,
        lvt: get_words(r)?,
        timer_initial: r.u32()?,
        timer_divide: r.u32()?,
        timer_start_ns: r.u64()?,
        timer_armed: r.bool()?,
        timer_periods: r.u64()?,
        tsc_deadline: r.u64()?,
        tsc_deadline_ns: r.opt(Reader::u64)?,
        lint: [r.bool()?, r.bool()?],
        nmi_pending: r.bool()?,
        init_pending: r.bool()?,
        sipi_vector: r.opt(Reader::u8)?,
        saved_at_ns: r.u64()?,
    })
}

/// Encodes the devices section.
pub fn encode(s: &BoardState) -> Vec<u8> {
    let mut w = Writer::default();
    let BoardState { pic, pit, rtc, uart, i8042, ioapic, lapic, exit, pci, apic_messages, eois } = s;

    put_pic_chip(&mut w, &pic.master);
    put_pic_chip(&mut w, &pic.slave);

    let Pit8254State { counters, port_b, last_poll_tick, saved_at_ns } = pit;
    for c in counters {
        put_pit_counter(&mut w, c);
    }
    w.u8(*port_b);
    w.u64(*last_poll_tick);
    w.u64(*saved_at_ns);

    let CmosRtcState {
        ram,
        index,
        nmi_disabled,
        origin_unix_ns,
        held_secs,
        flags,
        last_update_sec,
        last_periodic,
        saved_at_ns,
    } = rtc;
    w.bytes(ram);
    w.u8(*index);
    w.bool(*nmi_disabled);
    w.i128(*origin_unix_ns);
    w.opt(*held_secs, Writer::i64);
    w.u8(*flags);
    w.i64(*last_update_sec);
    w.u64(*last_periodic);
    w.u64(*saved_at_ns);

    let Uart16550State { divisor, ier, fcr, lcr, mcr, lsr_errors, msr_delta, modem_inputs, scr, thre_pending, rx_fifo } =
        uart;
    w.u16(*divisor);
    w.raw(&[*ier, *fcr, *lcr, *mcr, *lsr_errors, *msr_delta, *modem_inputs, *scr]);
    w.bool(*thre_pending);
    w.bytes(rx_fifo);

    let I8042State {
        ram,
        output_port,
        status,
        pending_command,
        pending_kbd_command,
        output_buffer,
        controller_queue,
        keyboard_queue,
        scanning,
        last_kbd_byte,
        last_output,
        reset_requested,
    } = i8042;
    w.raw(ram);
    w.u8(*output_port);
    w.u8(*status);
    w.opt(*pending_command, Writer::u8);
    w.opt(*pending_kbd_command, Writer::u8);
    w.opt(*output_buffer, put_source);
    w.u32(controller_queue.len() as u32);
    for entry in controller_queue {
        put_source(&mut w, *entry);
    }
    w.bytes(keyboard_queue);
    w.bool(*scanning);
    w.u8(*last_kbd_byte);
    w.u8(*last_output);
    w.bool(*reset_requested);

    let IoApicState { select, id, redirection, pins } = ioapic;
    w.u8(*select);
    w.u8(*id);
    for v in redirection {
        w.u64(*v);
    }
    w.u32(*pins);

    put_lapic(&mut w, lapic);

    let ExitPortState { status } = exit;
    w.opt(*status, Writer::u32);

    let PciHostState { config_address, host_bridge: HostBridgeState { config } } = pci;
    w.u32(*config_address);
    w.bytes(config);

    w.u32(apic_messages.len() as u32);
    for m in apic_messages {
        put_message(&mut w, m);
    }
    w.bytes(eois);
    w.buf
}

/// Decodes what [`encode`] wrote; every byte must be used.
pub fn decode(data: &[u8]) -> Decoded<BoardState> {
    let r = &mut Reader::new(data);
    let pic = Pic8259State { master: get_pic_chip(r)?, slave: get_pic_chip(r)? };
    let pit = Pit8254State {
        counters: [get_pit_counter(r)?, get_pit_counter(r)?, get_pit_counter(r)?],
        port_b: r.u8()?,
        last_poll_tick: r.u64()?,
        saved_at_ns: r.u64()?,
    };
    let rtc_ram = r.bytes(128)?;
    if rtc_ram.len() != 128 {
        return Err(DecodeError(format!("CMOS RAM of {} bytes, not 128", rtc_ram.len())));
    }
    let rtc = CmosRtcState {
        ram: rtc_ram,
        index: r.u8()? & 0x7f,
        nmi_disabled: r.bool()?,
        origin_unix_ns: r.i128()?,
        held_secs: r.opt(Reader::i64)?,
        flags: r.u8()?,
        last_update_sec: r.i64()?,
        last_periodic: r.u64()?,
        saved_at_ns: r.u64()?,
    };
    // The date arithmetic is exact within ±35,000 years; a time outside that is not a saved RTC.
    const MAX_SECS: i64 = 1 << 40;
    let secs_ok = |s: i64| (-MAX_SECS..=MAX_SECS).contains(&s);
    if !secs_ok(rtc.last_update_sec)
        || matches!(rtc.held_secs, Some(s) if !secs_ok(s))
        || rtc.origin_unix_ns.unsigned_abs() > (MAX_SECS as u128) * 1_000_000_000
    {
        return Err(DecodeError("RTC time outside ±2^40 seconds".into()));
    }
    let divisor = r.u16()?;
    let [ier, fcr, lcr, mcr, lsr_errors, msr_delta, modem_inputs, scr] = r.array::<8>()?;
    let uart = Uart16550State {
        divisor,
        ier,
        fcr,
        lcr,
        mcr,
        lsr_errors,
        msr_delta,
        modem_inputs,
        scr,
        thre_pending: r.bool()?,
        rx_fifo: r.bytes(FIFO_SIZE)?,
    };
    let i8042 = I8042State {
        ram: r.array::<32>()?,
        output_port: r.u8()?,
        status: r.u8()?,
        pending_command: r.opt(Reader::u8)?,
        pending_kbd_command: r.opt(Reader::u8)?,
        output_buffer: r.opt(get_source)?,
        controller_queue: {
            let n = r.count(MAX_QUEUE)?;
            (0..n).map(|_| get_source(r)).collect::<Decoded<_>>()?
        },
        keyboard_queue: r.bytes(MAX_QUEUE)?,
        scanning: r.bool()?,
        last_kbd_byte: r.u8()?,
        last_output: r.u8()?,
        reset_requested: r.bool()?,
    };
    let select = r.u8()?;
    let id = r.u8()?;
    let mut redirection = [0u64; PIN_COUNT];
    for v in &mut redirection {
        *v = r.u64()?;
    }
    let ioapic = IoApicState { select, id, redirection, pins: r.u32()? };
    let lapic = get_lapic(r)?;
    let exit = ExitPortState { status: r.opt(Reader::u32)? };
    let config_address = r.u32()?;
    let config = r.bytes(256)?;
    if config.len() != 256 {
        return Err(DecodeError(format!("PCI host bridge configuration of {} bytes, not 256", config.len())));
    }
    let pci = PciHostState { config_address, host_bridge: HostBridgeState { config } };
    let n = r.count(MAX_QUEUE)?;
    let apic_messages = (0..n).map(|_| get_message(r)).collect::<Decoded<_>>()?;
    let eois = r.bytes(MAX_QUEUE)?;
    r.finish()?;
    Ok(BoardState { pic, pit, rtc, uart, i8042, ioapic, lapic, exit, pci, apic_messages, eois })
}
