//! Snapshot tests: a machine saved and restored is the same machine (CPU, devices, RAM); a
//! corrupt, truncated, foreign or wrong-version file is the matching [`SnapshotError`], never a
//! panic; RAM is sparse on disk. (The guest-level proof, a test kernel whose serial output after
//! save-and-restore equals an uninterrupted run, is `tests/snapshot.rs` at the workspace root.)

use super::*;
use crate::machine::{Machine, MachineConfig};
use proptest::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

const MEM: u64 = 16 << 20;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A machine with RAM, CPU and device state that differ from power-on.
fn busy_machine() -> Machine {
    let cfg = MachineConfig { mem: MEM, deterministic: true, marker: None };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink()), Instant::now()).unwrap();
    let cpu = &mut m.cpu;
    cpu.state = super::cpu::tests::distinct_state();
    cpu.retired = 1234;
    cpu.tsc_deadline = 99;
    // The event state beside the registers: an STI shadow open, an NMI handler running, PMU
    // counters (format version 2).
    cpu.interrupt_shadow = true;
    cpu.nmi_blocked = true;
    for (n, msr) in (0xc001_0000u32..0xc001_0008).enumerate() {
        cpu.amd_pmu.write(msr, 0x0043_0076 + n as u64).unwrap();
    }
    cpu.ram.slice_mut(0x1000, 4).unwrap().copy_from_slice(b"abcd");
    cpu.ram.slice_mut(MEM - 1, 1).unwrap()[0] = 0x5a;
    // The PIT running in mode 2, a UART byte waiting, the RTC's periodic interrupt on.
    for (port, value) in [(0x43, 0x34), (0x40, 0x9c), (0x40, 0x2e), (0x3fb, 0x03), (0x3fc, 0x1b), (0x3f8, 0x78)] {
        cpu.bus.pio_write(port, 1, value as u32);
    }
    cpu.bus.pio_write(0x70, 1, 0x0b);
    cpu.bus.pio_write(0x71, 1, 0x42);
    m.board.borrow().apic_messages.0.borrow_mut().push(devices::pc::lapic::ApicMessage {
        vector: 0x30,
        delivery_mode: 0,
        logical_destination: false,
        destination: 0,
        level_triggered: false,
    });
    m.virtual_clock().unwrap().advance_ns(123_456_789);
    m
}

fn saved(name: &str) -> (PathBuf, Machine) {
    let path = scratch(name);
    let mut m = busy_machine();
    let info = m.save_snapshot(&path).unwrap();
    assert_eq!(info.ram_bytes, MEM);
    assert_eq!(info.retired, 1234);
    (path, m)
}

fn restore(path: &std::path::Path) -> Result<Machine, SnapshotError> {
    Machine::restore_snapshot(path, Box::new(std::io::sink()), Instant::now(), true, None)
}

#[test]
fn restore_gives_back_the_same_machine() {
    let (path, m) = saved("same.snap");
    let r = restore(&path).unwrap();
    assert_eq!(super::cpu::encode(&r.cpu.state), super::cpu::encode(&m.cpu.state));
    assert_eq!(BoardState::capture(&r.board.borrow()), BoardState::capture(&m.board.borrow()));
    assert_eq!((r.cpu.retired, r.cpu.tsc_deadline), (1234, 99));
    assert!(r.cpu.interrupt_shadow && r.cpu.nmi_blocked);
    assert_eq!(r.cpu.amd_pmu, m.cpu.amd_pmu);
    assert_ne!(r.cpu.amd_pmu, crate::system::pmu::AmdPmu::default());
    let ram = |m: &Machine| m.cpu.ram.slice(0, MEM as usize).unwrap().to_vec();
    assert!(ram(&r) == ram(&m));
    verify_snapshot(&path).unwrap();
    // The restored RAM is private: writing it changes neither the file nor a second restore.
    let mut r = r;
    r.cpu.ram.slice_mut(0x1000, 1).unwrap()[0] = b'Z';
    let again = restore(&path).unwrap();
    assert_eq!(again.cpu.ram.slice(0x1000, 4).unwrap(), b"abcd");
    verify_snapshot(&path).unwrap();
}

#[test]
fn a_snapshot_of_a_restored_machine_is_the_same_file() {
    let (path, _) = saved("twice-a.snap");
    let mut r = restore(&path).unwrap();
    let second = scratch("twice-b.snap");
    r.save_snapshot(&second).unwrap();
    assert!(std::fs::read(&path).unwrap() == std::fs::read(&second).unwrap());
    // Saving over the file the machine's RAM is mapped from leaves that RAM intact.
    r.save_snapshot(&path).unwrap();
    assert_eq!(r.cpu.ram.slice(0x1000, 4).unwrap(), b"abcd");
}

#[test]
fn zero_pages_are_holes() {
    use std::os::unix::fs::MetadataExt;
    let (path, _) = saved("sparse.snap");
    let meta = std::fs::metadata(&path).unwrap();
    assert!(meta.len() >= MEM);
    // Two RAM pages, the BIOS-free low memory the machine wrote, and the small sections: far
    // less than the 16 MiB of RAM the file spans.
    assert!(meta.blocks() * 512 < MEM / 8, "{} bytes allocated", meta.blocks() * 512);
}

fn layout(path: &std::path::Path) -> Vec<(u64, u64)> {
    let d = std::fs::read(path).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
    (0..4).map(|i| (u64_at(32 + 32 * i + 8), u64_at(32 + 32 * i + 16))).collect()
}

fn corrupt(path: &std::path::Path, name: &str, at: u64) -> PathBuf {
    let mut d = std::fs::read(path).unwrap();
    d[at as usize] ^= 0x40;
    let out = scratch(name);
    std::fs::write(&out, d).unwrap();
    out
}

#[test]
fn a_corrupt_byte_names_its_section() {
    let (path, _) = saved("corrupt.snap");
    let sections = layout(&path);
    let checksum = |p: &std::path::Path| match verify_snapshot(p) {
        Err(SnapshotError::ChecksumMismatch { section, .. }) => section,
        other => panic!("{other:?}"),
    };
    // The header: a byte of the section table.
    assert_eq!(checksum(&corrupt(&path, "c-header", 60)), "header");
    for ((offset, len), name) in sections.iter().zip(["cpu", "devices", "machine"]) {
        let p = corrupt(&path, &format!("c-{name}"), offset + len / 2);
        assert_eq!(checksum(&p), name);
        assert!(matches!(restore(&p), Err(SnapshotError::ChecksumMismatch { section, .. }) if section == name));
    }
    let (ram_offset, _) = sections[3];
    for (at, name) in [(0x1000 + 2, "c-ram-data"), (0x8000, "c-ram-hole")] {
        let p = corrupt(&path, name, ram_offset + at);
        assert_eq!(checksum(&p), "ram");
    }
    // Magic and version come before any checksum.
    assert!(matches!(restore(&corrupt(&path, "c-magic", 3)), Err(SnapshotError::NotASnapshot { .. })));
    match restore(&corrupt(&path, "c-version", 8)).map(|_| ()) {
        Err(e @ SnapshotError::UnsupportedVersion { found: 0x42, supported: 2, .. }) => {
            assert!(e.to_string().contains("version 66 is not supported"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_empty_foreign_and_directory() {
    let (path, _) = saved("trunc.snap");
    let data = std::fs::read(&path).unwrap();
    let sections = layout(&path);
    let cuts = [4, 11, 20, 100, 170, sections[1].0 + 3, sections[3].0, sections[3].0 + 4096, data.len() as u64 - 1];
    for cut in cuts {
        let p = scratch("cut.snap");
        std::fs::write(&p, &data[..cut as usize]).unwrap();
        match restore(&p).map(|_| ()) {
            Err(SnapshotError::Truncated { actual, .. }) => assert_eq!(actual, cut),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let empty = scratch("empty.snap");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(restore(&empty), Err(SnapshotError::NotASnapshot { reason: "an empty file", .. })));
    let foreign = scratch("foreign.snap");
    std::fs::write(&foreign, b"\x7fELF and then some more bytes than a header").unwrap();
    assert!(matches!(restore(&foreign), Err(SnapshotError::NotASnapshot { reason: "bad magic", .. })));
    let dir = scratch("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(restore(&dir), Err(SnapshotError::NotAFile { .. })));
    assert!(matches!(restore(&scratch("missing.snap")), Err(SnapshotError::Io { .. })));
    let e = restore(&empty).err().unwrap().to_string();
    assert!(e.contains("empty.snap") && e.contains("not a Strata snapshot"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single flipped byte or truncation is an error (never a panic), except a flip in the
    /// zero padding before the RAM image, which no check covers and nothing reads.
    #[test]
    fn random_damage_is_an_error(at in 0usize..(MEM as usize + 70_000), bit in 0u8..8, cut in any::<bool>()) {
        let path = scratch("prop-base.snap");
        if !path.exists() {
            busy_machine().save_snapshot(&path).unwrap();
        }
        let mut d = std::fs::read(&path).unwrap();
        let at = at % d.len();
        let sections = layout(&path);
        let machine_end = sections[2].0 + sections[2].1;
        let p = scratch(&format!("prop-{at}-{bit}-{cut}.snap"));
        if cut {
            d.truncate(at);
        } else {
            d[at] ^= 1 << bit;
        }
        std::fs::write(&p, &d).unwrap();
        let padding = !cut && (machine_end..sections[3].0).contains(&(at as u64));
        prop_assert_eq!(verify_snapshot(&p).is_ok(), padding);
        if at < sections[3].0 as usize || cut {
            prop_assert_eq!(restore(&p).is_ok(), padding);
        }
        std::fs::remove_file(&p).unwrap();
    }
}
