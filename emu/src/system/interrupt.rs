//! Exception and interrupt delivery (SDM Vol. 3, chapter 6): real mode through the IVT,
//! protected mode through 32-bit interrupt/trap gates, IA-32e mode through 64-bit gates with
//! the TSS stack switch and IST. Double faults and triple faults follow Table 6-5.
//!
//! Not modelled: task gates and hardware task switching, 16-bit gates, virtual-8086 mode.

use crate::cpu::Cpu;
use crate::exception::{vector, Fault, Stop};
use crate::flags::{W16, W32, W64};
use crate::state::{attr, rflags, SegReg, Segment};

/// What is being delivered (defined beside `Fault` so the CPU state can record it without
/// importing the delivery code).
pub use crate::exception::Event;

/// The outcome of a delivery that itself failed beyond recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripleFault;

/// `STRATA_TRACE_EXCEPTIONS=1` prints every exception and software interrupt as it is delivered.
fn trace_enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("STRATA_TRACE_EXCEPTIONS").is_some())
}

/// Table 6-4/6-5 classes.
fn class(v: u8) -> u8 {
    match v {
        vector::DE | vector::TS | vector::NP | vector::SS | vector::GP => 1, // contributory
        vector::PF => 2,
        vector::DF => 3,
        _ => 0, // benign
    }
}

fn gate_error(v: u8, ext: bool) -> u32 {
    (v as u32) << 3 | 2 | ext as u32
}

impl Cpu {
    /// Delivers `ev`, escalating to #DF and then to a triple fault as hardware does.
    ///
    /// # Errors
    /// [`TripleFault`] when delivery of a double fault fails (the machine shuts down).
    pub fn deliver(&mut self, ev: Event) -> Result<(), TripleFault> {
        if trace_enabled() && !matches!(ev, Event::External(_)) {
            let s = &self.state;
            eprintln!(
                "strata-trace: {:?} at rip {:#x} cpl {} cs {:#x} cr2 {:#x} fault_addr {:#x} gs {:#x} kgs {:#x} retired {}",
                ev, s.rip, s.cpl, s.segs[1].selector, s.cr2, self.fault_addr, s.segs[5].base, s.msr.kernel_gs_base, self.retired
            );
        }
        let mut ev = ev;
        let mut first: Option<u8> = None;
        loop {
            match self.deliver_once(ev) {
                Ok(()) => {
                    self.last_event = Some(ev);
                    return Ok(());
                }
                Err(Stop::Fault(f)) => {
                    // A software interrupt that faults is a fault of its instruction.
                    if matches!(ev, Event::Software(_)) {
                        self.state.rip = self.soft_int_rip;
                    }
                    let prev = match ev {
                        Event::Exception(p) => p.vector,
                        _ => 0xff,
                    };
                    if prev == vector::DF || first == Some(vector::DF) {
                        return Err(TripleFault);
                    }
                    let (c1, c2) = (if prev == 0xff { 0 } else { class(prev) }, class(f.vector));
                    let double = (c1 == 1 && c2 == 1) || (c1 == 2 && (c2 == 1 || c2 == 2));
                    first = Some(prev);
                    ev = if double { Event::Exception(Fault::with_code(vector::DF, 0)) } else { Event::Exception(f) };
                }
                Err(_) => return Err(TripleFault),
            }
        }
    }

    fn deliver_once(&mut self, ev: Event) -> Result<(), Stop> {
        if let Event::Exception(f) = ev {
            if f.vector == vector::PF {
                self.state.cr2 = self.fault_addr;
            }
        }
        if !self.protected_mode() {
            return self.deliver_real(ev);
        }
        if self.state.efer & crate::state::ctrl::EFER_LMA != 0 {
            self.deliver_long(ev)
        } else {
            self.deliver_protected(ev)
        }
    }

    fn vector_and_code(ev: Event) -> (u8, Option<u32>, bool, bool) {
        // (vector, error code, software, external)
        match ev {
            Event::Exception(f) => (f.vector, f.has_error_code.then_some(f.error_code), false, false),
            Event::Software(v) => (v, None, true, false),
            Event::External(v) => (v, None, false, true),
        }
    }

    /// RFLAGS as the event's frame holds it: a fault-class exception pushes RF = 1, so the
    /// handler's IRET back to the faulting instruction does not hit its instruction breakpoint
    /// again (SDM Vol. 3, 17.3.1.1). Traps (INT1's #DB), aborts, software and external
    /// interrupts push RF as it is.
    fn pushed_rflags(&self, ev: Event) -> u64 {
        let f = self.state.rflags();
        match ev {
            Event::Exception(e) if !matches!(e.vector, vector::DB | vector::DF | vector::MC) => f | rflags::RF,
            _ => f,
        }
    }

    fn deliver_real(&mut self, ev: Event) -> Result<(), Stop> {
        let (v, _, _, _) = Self::vector_and_code(ev);
        let entry = self.state.idtr.base.wrapping_add(v as u64 * 4);
        if v as u64 * 4 + 3 > self.state.idtr.limit as u64 {
            return Err(Stop::Fault(Fault::with_code(vector::GP, 0)));
        }
        let ip = self.sys_read::<W16>(entry)?;
        let cs = self.sys_read::<W16>(entry + 2)?;
        let flags = self.state.rflags();
        let ss_base = self.state.segs[SegReg::Ss as usize].base;
        let mut sp = self.state.gpr[4] as u16;
        for val in [flags & 0xffff, self.state.segs[SegReg::Cs as usize].selector as u64, self.state.rip & 0xffff] {
            sp = sp.wrapping_sub(2);
            self.sys_write::<W16>(ss_base.wrapping_add(sp as u64), val)?;
        }
        self.state.gpr[4] = (self.state.gpr[4] & !0xffff) | sp as u64;
        let c = &mut self.state.segs[SegReg::Cs as usize];
        c.selector = cs as u16;
        c.base = cs << 4;
        self.state.rip = ip;
        self.state.rflags_other &= !(rflags::IF | rflags::TF | rflags::AC | rflags::RF);
        Ok(())
    }

    fn deliver_protected(&mut self, ev: Event) -> Result<(), Stop> {
        let (v, code, soft, ext) = Self::vector_and_code(ev);
        if v as u64 * 8 + 7 > self.state.idtr.limit as u64 {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        let gate = self.sys_read::<W64>(self.state.idtr.base.wrapping_add(v as u64 * 8))?;
        let gtype = ((gate >> 40) & 0x1f) as u8; // includes S
        let dpl = ((gate >> 45) & 3) as u8;
        if gtype != 0xe && gtype != 0xf {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        if soft && dpl < self.state.cpl {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        if gate >> 47 & 1 == 0 {
            return Err(Stop::Fault(Fault::with_code(vector::NP, gate_error(v, ext))));
        }
        let sel = ((gate >> 16) & 0xffff) as u16;
        let offset = (gate & 0xffff) | ((gate >> 32) & 0xffff_0000);
        let d = self.read_descriptor(sel, false)?;
        if !d.is_code() || !d.present() {
            return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32 | ext as u32)));
        }
        let new_cpl = if d.attr() & super::descriptor::TYPE_CONFORMING != 0 { self.state.cpl } else { d.dpl() };
        let old_cs = self.state.segs[SegReg::Cs as usize].selector as u64;
        let old_ss = self.state.segs[SegReg::Ss as usize];
        let old_esp = self.state.gpr[4] & 0xffff_ffff;
        let flags = self.pushed_rflags(ev);
        let (mut ss, mut esp) = (old_ss, old_esp);
        let switch = new_cpl < self.state.cpl;
        if switch {
            let tss = self.state.tr.base;
            esp = self.sys_read::<W32>(tss.wrapping_add(4 + 8 * new_cpl as u64))?;
            let ss_sel = self.sys_read::<W16>(tss.wrapping_add(8 + 8 * new_cpl as u64))? as u16;
            let sd = self.read_descriptor(ss_sel, false)?;
            ss = sd.to_segment(ss_sel);
        }
        let mut pushes: Vec<u64> = Vec::with_capacity(6);
        if switch {
            pushes.push(old_ss.selector as u64);
            pushes.push(old_esp);
        }
        pushes.extend([flags & 0xffff_ffff, old_cs, self.state.rip & 0xffff_ffff]);
        if let Some(c) = code {
            pushes.push(c as u64);
        }
        let big = ss.attr & attr::DB != 0;
        for val in pushes {
            esp = esp.wrapping_sub(4) & if big { 0xffff_ffff } else { 0xffff };
            self.sys_write::<W32>(ss.base.wrapping_add(esp) & 0xffff_ffff, val)?;
        }
        if switch {
            self.state.segs[SegReg::Ss as usize] = ss;
        }
        self.state.gpr[4] = esp;
        let mut cs = d.to_segment((sel & !3) | new_cpl as u16);
        cs.attr &= !attr::L;
        self.state.segs[SegReg::Cs as usize] = cs;
        self.state.cpl = new_cpl;
        self.state.rip = offset;
        let mut clear = rflags::TF | rflags::NT | rflags::RF | rflags::VM;
        if gtype == 0xe {
            clear |= rflags::IF;
        }
        self.state.rflags_other &= !clear;
        Ok(())
    }

    fn deliver_long(&mut self, ev: Event) -> Result<(), Stop> {
        let (v, code, soft, ext) = Self::vector_and_code(ev);
        if v as u64 * 16 + 15 > self.state.idtr.limit as u64 {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        let base = self.state.idtr.base.wrapping_add(v as u64 * 16);
        let lo = self.sys_read::<W64>(base)?;
        let hi = self.sys_read::<W64>(base + 8)?;
        let gtype = ((lo >> 40) & 0x1f) as u8;
        let dpl = ((lo >> 45) & 3) as u8;
        if gtype != 0xe && gtype != 0xf {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        if soft && dpl < self.state.cpl {
            return Err(Stop::Fault(Fault::with_code(vector::GP, gate_error(v, ext))));
        }
        if lo >> 47 & 1 == 0 {
            return Err(Stop::Fault(Fault::with_code(vector::NP, gate_error(v, ext))));
        }
        let sel = ((lo >> 16) & 0xffff) as u16;
        let offset = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000) | (hi & 0xffff_ffff) << 32;
        let ist = (lo >> 32) & 7;
        let d = self.read_descriptor(sel, false)?;
        if !d.is_code() || d.attr() & attr::L == 0 || d.attr() & attr::DB != 0 {
            return Err(Stop::Fault(Fault::with_code(vector::GP, (sel & !3) as u32 | ext as u32)));
        }
        if !d.present() {
            return Err(Stop::Fault(Fault::with_code(vector::NP, (sel & !3) as u32 | ext as u32)));
        }
        let new_cpl = if d.attr() & super::descriptor::TYPE_CONFORMING != 0 { self.state.cpl } else { d.dpl() };
        let tss = self.state.tr.base;
        let mut rsp = if ist != 0 {
            self.sys_read::<W64>(tss.wrapping_add(0x24 + 8 * (ist - 1)))?
        } else if new_cpl < self.state.cpl {
            self.sys_read::<W64>(tss.wrapping_add(4 + 8 * new_cpl as u64))?
        } else {
            self.state.gpr[4]
        };
        rsp &= !0xf;
        let old_ss = self.state.segs[SegReg::Ss as usize].selector as u64;
        let frame = [
            old_ss,
            self.state.gpr[4],
            self.pushed_rflags(ev),
            self.state.segs[SegReg::Cs as usize].selector as u64,
            self.state.rip,
        ];
        let n = frame.len() + code.is_some() as usize;
        // Check the whole frame is writable before writing any of it.
        for i in 1..=n as u64 {
            let la = rsp.wrapping_sub(8 * i);
            if !crate::mmu::walk::is_canonical(la) {
                return Err(Stop::Fault(Fault::with_code(vector::SS, 0)));
            }
        }
        for val in frame.into_iter().chain(code.map(|c| c as u64)) {
            rsp = rsp.wrapping_sub(8);
            self.sys_write::<W64>(rsp, val)?;
        }
        if new_cpl != self.state.cpl {
            // The new SS is a null selector with RPL = new CPL (SDM 6.14.4).
            self.state.segs[SegReg::Ss as usize] = Segment {
                base: 0,
                limit: 0xffff_ffff,
                selector: new_cpl as u16,
                attr: attr::P | attr::S | 0x3 | (new_cpl as u16) << attr::DPL_SHIFT | attr::DB | attr::G,
            };
        }
        self.state.gpr[4] = rsp;
        self.state.segs[SegReg::Cs as usize] = d.to_segment((sel & !3) | new_cpl as u16);
        self.state.cpl = new_cpl;
        self.state.rip = offset;
        let mut clear = rflags::TF | rflags::NT | rflags::RF | rflags::VM;
        if gtype == 0xe {
            clear |= rflags::IF;
        }
        self.state.rflags_other &= !clear;
        Ok(())
    }
}
