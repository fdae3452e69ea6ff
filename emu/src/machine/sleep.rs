//! ACPI S3 (suspend to RAM) and the wake through the FACS waking vector.
//!
//! When the guest writes SLP_EN with the S3 type (`devices::pc::acpi_pm::S3_SLP_TYP`), the CPU
//! stops: nothing runs and no interrupt is taken (its context is lost, as in S3), while time
//! passes and the devices keep being polled. An enabled wake event ends it: the RTC alarm with
//! PM1_EN.RTC_EN set (ACPI 6.5, 4.8.3.1.1 and 16.3). The platform then does what firmware does
//! on resume: WAK_STS (and RTC_STS) in PM1_STS, the CPU in its reset state, and control to the
//! FACS's Firmware Waking Vector in real mode with CS = vector >> 4, IP = vector & 0Fh (ACPI 6.5,
//! 5.2.10, "Firmware Waking Vector"). The FACS is found as an OS finds it: the RSDP in the BIOS
//! area (E0000h-FFFFFh, 16-byte aligned), the RSDT or XSDT, the FADT's FIRMWARE_CTRL or
//! X_FIRMWARE_CTRL. RAM is kept; the devices are not reset (QEMU resets them; the OS's resume
//! path reprograms what it uses). A guest with no FACS or a zero vector stays asleep.

use super::{Machine, RunEnd};

impl Machine {
    /// The guest asked for S3.
    pub(super) fn enter_s3(&mut self) {
        self.record("ACPI S3 sleep");
        self.asleep = true;
        self.halted = false;
    }

    /// One round while asleep: wake on the RTC alarm, else let time pass.
    pub(super) fn sleep_round(&mut self) -> Option<RunEnd> {
        let (rtc, pm) = {
            let b = self.board.borrow();
            (b.rtc.clone(), b.acpi_pm.clone())
        };
        let rtc_wake = pm.borrow().rtc_wake_enabled() && rtc.borrow().alarm_interrupt();
        if !rtc_wake {
            self.wait_for_event();
            return None;
        }
        let Some(vector) = self.waking_vector().filter(|&v| v != 0) else {
            self.wait_for_event();
            return None;
        };
        pm.borrow_mut().woke(true);
        self.asleep = false;
        crate::firmware::reset_cpu(&mut self.cpu);
        let cs = &mut self.cpu.state.segs[1];
        cs.selector = (vector >> 4) as u16;
        cs.base = u64::from(vector >> 4) << 4;
        self.cpu.state.rip = u64::from(vector & 0xf);
        self.cpu.softmmu.flush_tlb();
        self.interp.flush_code(&mut self.cpu);
        self.record("ACPI S3 wake");
        if let Err(e) = self.reload_state() {
            self.engine_error = Some(e.to_string());
            return Some(RunEnd::EngineError);
        }
        None
    }

    /// The FACS's 32-bit Firmware Waking Vector, found through the RSDP.
    fn waking_vector(&self) -> Option<u32> {
        let ram = &self.cpu.ram;
        let u32_at = |pa: u64| ram.slice(pa, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let u64_at = |pa: u64| Some(u64::from(u32_at(pa)?) | u64::from(u32_at(pa + 4)?) << 32);
        let sig = |pa: u64, s: &[u8]| ram.slice(pa, s.len()).is_some_and(|b| b == s);
        let rsdp = (0xe_0000u64..0x10_0000).step_by(16).find(|&pa| sig(pa, b"RSD PTR "))?;
        // XSDT (revision 2+) with 8-byte entries, else the RSDT with 4-byte ones.
        let revision = ram.slice(rsdp + 15, 1)?[0];
        let (table, entry) = match revision {
            r if r >= 2 && u64_at(rsdp + 24).is_some_and(|x| x != 0) => (u64_at(rsdp + 24)?, 8),
            _ => (u64::from(u32_at(rsdp + 16)?), 4),
        };
        let len = u64::from(u32_at(table + 4)?);
        let fadt = (36..len.min(36 + 8 * 64)).step_by(entry).find_map(|off| {
            let pa = if entry == 8 { u64_at(table + off)? } else { u64::from(u32_at(table + off)?) };
            sig(pa, b"FACP").then_some(pa)
        })?;
        let fadt_len = u64::from(u32_at(fadt + 4)?);
        let x_ctrl = if fadt_len >= 140 { u64_at(fadt + 132).unwrap_or(0) } else { 0 };
        let facs = if x_ctrl != 0 { x_ctrl } else { u64::from(u32_at(fadt + 36)?) };
        if !sig(facs, b"FACS") {
            return None;
        }
        u32_at(facs + 12)
    }
}
