//! The machine section (clock, halt state, retired count, TSC deadline, the serial tap's partial
//! line; from version 2 the CPU's interrupt shadow, NMI blocking and PMU registers) and the two entry points: [`Machine::save_snapshot`] and [`Machine::restore_snapshot`].

use super::board::{self, BoardState};
use super::codec::{DecodeError, Decoded, Reader, Writer};
use super::disks::{self, SavedFunction};
use super::file::{self, Section};
use super::{cpu, SnapshotError, SnapshotInfo};
use crate::machine::{Machine, MachineConfig};
use crate::mem::GuestRam;
use devices::clock::Clock;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// A serial line longer than this is not one the tap buffered.
const MAX_LINE: usize = 1 << 20;

/// The machine loop's own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSection {
    /// The machine clock when saved (ns); devices and the TSC are anchored to it.
    pub clock_ns: u64,
    /// The clock was the virtual one (`--deterministic`).
    pub deterministic: bool,
    /// The CPU was halted waiting for an interrupt.
    pub halted: bool,
    /// Instructions retired so far.
    pub retired: u64,
    /// IA32_TSC_DEADLINE as last written.
    pub tsc_deadline: u64,
    /// Serial bytes printed so far.
    pub serial_bytes: u64,
    /// The serial line being printed (no newline yet).
    pub serial_line: Vec<u8>,
    /// STI's interrupt shadow was open (version 2; v1 files read false).
    pub interrupt_shadow: bool,
    /// An NMI handler was running (version 2; v1 files read false).
    pub nmi_blocked: bool,
    /// The AMD PMU's event selects then counters (version 2; v1 files read zeros).
    pub pmu: [u64; 8],
}

fn encode(m: &MachineSection) -> Vec<u8> {
    let MachineSection {
        clock_ns,
        deterministic,
        halted,
        retired,
        tsc_deadline,
        serial_bytes,
        serial_line,
        interrupt_shadow,
        nmi_blocked,
        pmu,
    } = m;
    let mut w = Writer::default();
    w.u64(*clock_ns);
    w.bool(*deterministic);
    w.bool(*halted);
    w.u64(*retired);
    w.u64(*tsc_deadline);
    w.u64(*serial_bytes);
    w.bytes(serial_line);
    w.bool(*interrupt_shadow);
    w.bool(*nmi_blocked);
    for v in pmu {
        w.u64(*v);
    }
    w.buf
}

/// Decodes the machine section of a file of format `version` (see the module doc of `mod.rs`).
pub(super) fn decode_section(data: &[u8], version: u32) -> Decoded<MachineSection> {
    let r = &mut Reader::new(data);
    let mut m = MachineSection {
        clock_ns: r.u64()?,
        deterministic: r.bool()?,
        halted: r.bool()?,
        retired: r.u64()?,
        tsc_deadline: r.u64()?,
        serial_bytes: r.u64()?,
        serial_line: r.bytes(MAX_LINE)?,
        interrupt_shadow: false,
        nmi_blocked: false,
        pmu: [0; 8],
    };
    if version >= 2 {
        m.interrupt_shadow = r.bool()?;
        m.nmi_blocked = r.bool()?;
        for v in &mut m.pmu {
            *v = r.u64()?;
        }
    }
    r.finish()?;
    Ok(m)
}

fn inconsistent(path: &Path, section: Section) -> impl Fn(DecodeError) -> SnapshotError + '_ {
    move |DecodeError(detail)| SnapshotError::Inconsistent { path: path.to_path_buf(), section: section.name(), detail }
}

impl Machine {
    /// Saves the whole machine to `path` (replacing it atomically). Call it between runs: `run`
    /// returns at a device-poll point, where the machine is complete (a
    /// [`Watch`](crate::machine::Watch) ends a run at such a point). The CPU state is first
    /// copied out of an active accelerator, so any engine's machine can be saved.
    ///
    /// # Errors
    /// The accelerator cannot report its state ([`SnapshotError::Engine`]), or the file cannot
    /// be created or written ([`SnapshotError::Io`]).
    pub fn save_snapshot(&mut self, path: &Path) -> Result<SnapshotInfo, SnapshotError> {
        let start = Instant::now();
        self.sync_state().map_err(|e| SnapshotError::Engine { detail: e.to_string() })?;
        let disks_bytes = self.save_virtio(path)?.map(|f| disks::encode(&f));
        let cpu_bytes = cpu::encode(&self.cpu.state);
        let board = self.board.borrow();
        let devices_bytes = board::encode(&BoardState::capture(&board));
        let tap = self.tap.borrow();
        let section = MachineSection {
            clock_ns: board.clock.now_ns(),
            deterministic: self.virtual_clock().is_some(),
            halted: self.halted,
            retired: self.cpu.retired,
            tsc_deadline: self.cpu.tsc_deadline,
            serial_bytes: tap.bytes,
            serial_line: tap.line.clone(),
            interrupt_shadow: self.cpu.interrupt_shadow,
            nmi_blocked: self.cpu.nmi_blocked,
            pmu: self.cpu.amd_pmu.registers(),
        };
        let ram = &self.cpu.ram;
        let ram_bytes = ram.slice(0, ram.len() as usize).unwrap_or_default();
        // Pages the host never backed are zeros: skip them unread (a mostly empty 4 GiB guest
        // would otherwise fault in a million zero pages just to find them empty).
        let known_zero = ram.never_backed_pages();
        let written = file::write(
            path,
            &cpu_bytes,
            &devices_bytes,
            &encode(&section),
            disks_bytes.as_deref(),
            ram_bytes,
            known_zero.as_deref(),
        )?;
        Ok(SnapshotInfo {
            path: path.to_path_buf(),
            ram_bytes: ram.len(),
            ram_data_bytes: written.ram_data_bytes,
            file_bytes: written.file_len,
            retired: section.retired,
            clock_ns: section.clock_ns,
            elapsed: start.elapsed(),
        })
    }

    /// The virtio functions' states, in slot order, after their in-flight requests are done;
    /// each drive is frozen and continues on an overlay beside the snapshot file
    /// (`devices::block::snapshot`). None when the machine has no virtio function.
    fn save_virtio(&mut self, path: &Path) -> Result<Option<Vec<SavedFunction>>, SnapshotError> {
        let functions = self.board.borrow().virtio.clone();
        let functions = functions.borrow();
        if functions.is_empty() {
            return Ok(None);
        }
        let mut saved = Vec::with_capacity(functions.len());
        for (i, f) in functions.iter().enumerate() {
            let overlay = devices::block::snapshot::overlay_path(path, i);
            let state = f.borrow_mut().save_state(&mut self.cpu, &overlay).map_err(|e| SnapshotError::Disk {
                detail: format!("cannot save vd{}: {e}", (b'a' + i as u8) as char),
            })?;
            saved.push(state);
        }
        Ok(Some(saved))
    }

    /// Builds a machine from a snapshot: RAM (its size comes from the file) is mapped
    /// copy-on-write from the file, not read, so this takes the same time for any RAM size. The
    /// serial port writes to `serial`; `deterministic` picks the virtual clock (it then starts at
    /// the saved clock time, so instruction counts and times match an uninterrupted run) or host
    /// time; `marker` is the timeline's marker text. Everything is checked and decoded before the
    /// machine is built, so an error leaves nothing behind.
    ///
    /// # Errors
    /// Not a snapshot, an unsupported version, a truncated file, a checksum mismatch in a section,
    /// inconsistent sizes, or an I/O error (each naming the file; see [`SnapshotError`]).
    pub fn restore_snapshot(
        path: &Path,
        serial: Box<dyn Write>,
        process_start: Instant,
        deterministic: bool,
        marker: Option<String>,
    ) -> Result<Machine, SnapshotError> {
        Self::restore_snapshot_at(path, serial, process_start, deterministic, marker, None)
    }

    /// [`Machine::restore_snapshot`] with the virtual clock started at `clock_ns` instead of the
    /// saved time (tests use it to show that nothing depends on where the clock starts).
    #[doc(hidden)]
    pub fn restore_snapshot_at(
        path: &Path,
        serial: Box<dyn Write>,
        process_start: Instant,
        deterministic: bool,
        marker: Option<String>,
        clock_ns: Option<u64>,
    ) -> Result<Machine, SnapshotError> {
        let opened = file::open(path)?;
        let cpu_state = cpu::decode(&opened.cpu).map_err(inconsistent(path, Section::Cpu))?;
        let devices = board::decode(&opened.devices).map_err(inconsistent(path, Section::Devices))?;
        let section = decode_section(&opened.machine, opened.version).map_err(inconsistent(path, Section::Machine))?;
        let saved_disks = match &opened.disks {
            Some(d) => disks::decode(d, opened.version).map_err(inconsistent(path, Section::Disks))?,
            None => Vec::new(),
        };
        // Each drive's frozen chain is checked and its overlay recreated before anything is built.
        let disk_error = |detail: String| SnapshotError::Disk { detail: format!("{}: {detail}", path.display()) };
        let mut drives = Vec::with_capacity(saved_disks.len());
        for (_, device) in &saved_disks {
            let devices::virtio::DeviceSnapshot::Blk { serial, drive } = device;
            let d = devices::block::Drive::reopen(drive).map_err(|e| disk_error(e.to_string()))?;
            drives.push((d, serial.clone()));
        }
        let ram = GuestRam::map_file_copy(&opened.file, opened.ram_offset, opened.ram_len)
            .map_err(|source| SnapshotError::Io { path: path.to_path_buf(), source })?;

        // From here on only starting a drive's I/O thread can fail.
        let cfg = MachineConfig { mem: opened.ram_len, deterministic, marker };
        let mut m = Machine::with_ram(ram, &cfg, serial, process_start);
        if let Some(v) = m.virtual_clock() {
            v.advance_to(clock_ns.unwrap_or(section.clock_ns));
        }
        let now = m.board.borrow().clock.now_ns();
        // The virtio functions first: their interrupt levels are set again, then the interrupt
        // controllers' saved state is put over whatever that did.
        for ((state, _), (drive, serial)) in saved_disks.iter().zip(drives) {
            use devices::virtio::blk::VirtioBlk;
            let dev = if deterministic {
                VirtioBlk::new(drive, &serial)
            } else {
                VirtioBlk::with_io_thread(drive, &serial, m.io_waker())
                    .map_err(|e| disk_error(format!("cannot start an I/O thread: {e}")))?
            };
            m.board
                .borrow_mut()
                .add_virtio(Box::new(dev))
                .ok_or_else(|| disk_error("too many virtio functions".into()))?;
            let f = m.board.borrow().virtio.borrow().last().cloned();
            if let Some(f) = f {
                f.borrow_mut().restore_state(state).map_err(disk_error)?;
            }
        }
        devices.apply(&m.board.borrow());
        let cpu = &mut m.cpu;
        cpu.state = cpu_state;
        // The guest's TSC is the clock plus the offset: keep its value across the change of clock.
        cpu.state.tsc_offset = cpu.state.tsc_offset.wrapping_add(section.clock_ns).wrapping_sub(now);
        cpu.retired = section.retired;
        cpu.tsc_deadline = section.tsc_deadline;
        cpu.interrupt_shadow = section.interrupt_shadow;
        cpu.nmi_blocked = section.nmi_blocked;
        cpu.amd_pmu = crate::system::pmu::AmdPmu::from_registers(section.pmu);
        m.halted = section.halted;
        {
            let mut tap = m.tap.borrow_mut();
            tap.retired = section.retired;
            tap.bytes = section.serial_bytes;
            tap.line = section.serial_line;
            tap.timeline.record("snapshot restored", section.retired);
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_section_round_trips() {
        let m = MachineSection {
            clock_ns: 123_456_789,
            deterministic: true,
            halted: true,
            retired: 42,
            tsc_deadline: 7,
            serial_bytes: 99,
            serial_line: b"partial".to_vec(),
            interrupt_shadow: true,
            nmi_blocked: true,
            pmu: [1, 2, 3, 4, 5, 6, 7, 8],
        };
        let bytes = encode(&m);
        assert_eq!(decode_section(&bytes, 2), Ok(m.clone()));
        assert!(decode_section(&bytes[..bytes.len() - 1], 2).is_err());
        // Version 1 ends after the serial line: those bytes read back with the v2 fields clear,
        // and a v1 reader refuses the v2 tail.
        let v1 = &bytes[..bytes.len() - 2 - 8 * 8];
        let old = MachineSection { interrupt_shadow: false, nmi_blocked: false, pmu: [0; 8], ..m };
        assert_eq!(decode_section(v1, 1), Ok(old));
        assert!(decode_section(&bytes, 1).is_err());
        assert!(decode_section(v1, 2).is_err());
    }
}
