//! ACPI tables for Strata's PC (ACPI 6.5, chapter 5), written to RAM for a direct boot: the
//! RSDP in the BIOS area (0xE0000, where an OS scans for it: 5.2.5.1), then FACS, DSDT, FADT,
//! MADT and XSDT behind it. rust-vmm's `acpi_tables` crate builds the RSDP, XSDT, FADT, FACS
//! and the DSDT's AML; the MADT is written here because the crate's MADT has no interrupt
//! source override entries and no flags, both of which a PC needs.
//!
//! What they describe:
//! - FADT: the PM1a event/control blocks and the PM timer of `devices::pc::acpi_pm` (SCI on
//!   IRQ 9, no SMI command port: always in ACPI mode), a reset register (the i8042's pulse:
//!   0xFE to port 0x64), legacy devices and an 8042 present.
//! - MADT: the LAPIC, the IOAPIC (GSI 0-23), ISA IRQ 0 on GSI 2 and the SCI level-triggered,
//!   LINT1 as NMI; the same wiring as the MP table (`mptable.rs`).
//! - DSDT: `\_SB.PCI0` (PNP0A03, bus 0) with its resources and a `_PRT` routing INTx of slots
//!   1-31 to GSIs 16-23: slot n's INTA on GSI 16 + (n - 1) mod 8 (IOAPIC pins 16-23, as on
//!   QEMU's PC), INTB-D rotated by one each (the usual swizzle); `\_S5` with the SLP_TYP the PM
//!   device powers off on.

use crate::loaders::layout::{IOAPIC_BASE, LAPIC_BASE, MMIO_HOLE};
use acpi_tables::{aml, Aml};
use devices::pc::acpi_pm::{ACPI_PM_BASE, PM1_CNT, PM_TMR, S5_SLP_TYP};

/// Where the RSDP goes (16-byte aligned, inside the 0xE0000-0xFFFFF area an OS scans).
pub const RSDP_ADDR: u64 = 0xe_0000;
/// OEM identification in every table header.
const OEM_ID: [u8; 6] = *b"STRATA";
const OEM_TABLE_ID: [u8; 8] = *b"STRATAPC";
/// The SCI's ISA IRQ.
pub const SCI_IRQ: u8 = 9;
/// IOAPIC ID (the MP table gives it the number after the last CPU).
const IOAPIC_ID: u8 = 1;
/// First GSI that PCI INTx lines use (`_PRT`), and how many there are.
pub const PCI_GSI_BASE: u32 = 16;
pub const PCI_GSI_COUNT: u32 = 8;

/// The tables, laid out for `base` (the RSDP's address): `(address, bytes)` pairs in address
/// order, the RSDP first.
pub fn build(base: u64) -> Vec<(u64, Vec<u8>)> {
    let (rsdp, tables) = layout(base, base + 0x40);
    let mut out = vec![(base, rsdp)];
    out.extend(tables.into_iter().map(|t| (t.at, t.bytes)));
    out
}

/// One placed table.
struct Placed {
    at: u64,
    bytes: Vec<u8>,
}

/// The RSDP (for `rsdp_at`) and the other tables placed from `tables_at` up (FACS first, 64-byte
/// aligned); every pointer is absolute, so with `tables_at` = 0 they are offsets into the blob.
fn layout(rsdp_at: u64, tables_at: u64) -> (Vec<u8>, Vec<Placed>) {
    let _ = rsdp_at; // the RSDP holds no pointer to itself
    let mut out: Vec<Placed> = Vec::new();
    let mut next = tables_at;
    let mut place = |bytes: Vec<u8>, align: u64, out: &mut Vec<Placed>| {
        let at = next.div_ceil(align) * align;
        next = at + bytes.len() as u64;
        out.push(Placed { at, bytes });
        at
    };
    let facs = place(bytes_of(&acpi_tables::facs::FACS::new()), 64, &mut out);
    let dsdt = place(dsdt(), 16, &mut out);
    let fadt = place(fadt(facs, dsdt), 16, &mut out);
    let madt = place(madt(), 16, &mut out);
    let mut xsdt = acpi_tables::xsdt::XSDT::new(OEM_ID, OEM_TABLE_ID, 1);
    xsdt.add_entry(fadt);
    xsdt.add_entry(madt);
    let xsdt = place(bytes_of(&xsdt), 16, &mut out);
    (bytes_of(&acpi_tables::rsdp::Rsdp::new(OEM_ID, xsdt)), out)
}

/// The tables as a firmware gets them through fw_cfg (QEMU's linker/loader interface, as
/// SeaBIOS and OVMF read it): `etc/acpi/rsdp`, `etc/acpi/tables` (every other table, pointers
/// as offsets into this blob) and `etc/table-loader`, the commands that place both blobs,
/// turn the offsets into addresses and fix the checksums.
pub struct LoaderBlobs {
    pub rsdp: Vec<u8>,
    pub tables: Vec<u8>,
    pub loader: Vec<u8>,
}

/// File names of the blobs.
pub const RSDP_FILE: &str = "etc/acpi/rsdp";
pub const TABLES_FILE: &str = "etc/acpi/tables";
pub const LOADER_FILE: &str = "etc/table-loader";

/// Builds the fw_cfg blobs and the loader script (128-byte little-endian commands: ALLOCATE
/// = 1 {file, align, zone 1 high / 2 F-segment}, ADD_POINTER = 2 {dest file, src file,
/// offset, size}, ADD_CHECKSUM = 3 {file, result offset, start, length}).
pub fn loader_blobs() -> LoaderBlobs {
    let (rsdp, placed) = layout(0, 0);
    let end = placed.iter().map(|p| p.at as usize + p.bytes.len()).max().unwrap_or(0);
    let mut tables = vec![0u8; end];
    for p in &placed {
        tables[p.at as usize..p.at as usize + p.bytes.len()].copy_from_slice(&p.bytes);
    }
    let find = |sig: &[u8; 4]| placed.iter().find(|p| &p.bytes[..4] == sig).map_or(0, |p| p.at as u32);
    let (fadt, xsdt) = (find(b"FACP"), find(b"XSDT"));
    let xsdt_len = placed.iter().find(|p| p.at == u64::from(xsdt)).map_or(0, |p| p.bytes.len() as u32);
    let mut cmds = Vec::new();
    let name = |n: &str| {
        let mut b = [0u8; 56];
        b[..n.len()].copy_from_slice(n.as_bytes());
        b
    };
    let mut cmd = |kind: u32, body: &[u8]| {
        let mut c = [0u8; 128];
        c[..4].copy_from_slice(&kind.to_le_bytes());
        c[4..4 + body.len()].copy_from_slice(body);
        cmds.extend_from_slice(&c);
    };
    let alloc = |file: &str, align: u32, zone: u8| [&name(file)[..], &align.to_le_bytes(), &[zone]].concat();
    let pointer = |dest: &str, src: &str, offset: u32, size: u8| {
        [&name(dest)[..], &name(src), &offset.to_le_bytes(), &[size]].concat()
    };
    let checksum = |file: &str, result: u32, start: u32, len: u32| {
        [&name(file)[..], &result.to_le_bytes(), &start.to_le_bytes(), &len.to_le_bytes()].concat()
    };
    cmd(1, &alloc(RSDP_FILE, 16, 2));
    cmd(1, &alloc(TABLES_FILE, 64, 1));
    // RSDP.XsdtAddress (offset 24, 8 bytes), then its extended checksum (offset 32, all 36).
    cmd(2, &pointer(RSDP_FILE, TABLES_FILE, 24, 8));
    cmd(3, &checksum(RSDP_FILE, 32, 0, rsdp.len() as u32));
    // XSDT entries, 8 bytes each from offset 36.
    for i in 0..(xsdt_len.saturating_sub(36) / 8) {
        cmd(2, &pointer(TABLES_FILE, TABLES_FILE, xsdt + 36 + 8 * i, 8));
    }
    cmd(3, &checksum(TABLES_FILE, xsdt + 9, xsdt, xsdt_len));
    // FADT.FIRMWARE_CTRL (offset 36, 4 bytes) and X_DSDT (offset 140, 8 bytes).
    cmd(2, &pointer(TABLES_FILE, TABLES_FILE, fadt + 36, 4));
    cmd(2, &pointer(TABLES_FILE, TABLES_FILE, fadt + 140, 8));
    let fadt_len = placed.iter().find(|p| p.at == u64::from(fadt)).map_or(0, |p| p.bytes.len() as u32);
    cmd(3, &checksum(TABLES_FILE, fadt + 9, fadt, fadt_len));
    LoaderBlobs { rsdp, tables, loader: cmds }
}

/// Writes the tables to RAM at [`RSDP_ADDR`].
///
/// # Errors
/// RAM is too small to hold them (never for the 16 MiB minimum).
pub fn write(cpu: &mut crate::cpu::Cpu) -> Result<(), super::LoadError> {
    for (addr, bytes) in build(RSDP_ADDR) {
        super::put(cpu, addr, &bytes, "ACPI tables")?;
    }
    Ok(())
}

fn bytes_of(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

fn fadt(facs: u64, dsdt: u64) -> Vec<u8> {
    use acpi_tables::fadt::{FADTBuilder, Flags};
    use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
    let io = |width: u8, size: AccessSize, port: u16| GAS::new(AddressSpace::SystemIo, width, 0, size, port.into());
    let mut f = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, 1)
        .firmware_ctrl_32(facs as u32)
        .dsdt_64(dsdt)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        // No fixed power or sleep button (a control-method one would live in the DSDT).
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup);
    f.sci_int = u16::from(SCI_IRQ).into();
    // SMI_CMD = 0: no transition to make, SCI_EN reads 1 (ACPI 6.5, 5.2.9).
    f.smi_cmd = 0.into();
    f.pm1a_evt_blk = u32::from(ACPI_PM_BASE).into();
    f.pm1a_cnt_blk = u32::from(ACPI_PM_BASE + PM1_CNT).into();
    f.pm_tmr_blk = u32::from(ACPI_PM_BASE + PM_TMR).into();
    f.pm1_evt_len = 4;
    f.pm1_cnt_len = 2;
    f.pm_tmr_len = 4;
    f.x_pm1a_evt_blk = io(32, AccessSize::WordAccess, ACPI_PM_BASE);
    f.x_pm1a_cnt_blk = io(16, AccessSize::WordAccess, ACPI_PM_BASE + PM1_CNT);
    f.x_pm_tmr_blk = io(32, AccessSize::DwordAccess, ACPI_PM_BASE + PM_TMR);
    // C2/C3 latencies above 100/1000 us: no C2/C3 (5.2.9).
    f.p_lvl2_lat = 101.into();
    f.p_lvl3_lat = 1001.into();
    // RTC century byte at CMOS 0x32.
    f.century = 0x32;
    // IAPC_BOOT_ARCH: LEGACY_DEVICES (0), 8042 (1).
    f.iapc_boot_arch = 0x3.into();
    // Reset: 0xFE to the i8042 command port pulses the reset line.
    f.reset_reg = io(8, AccessSize::ByteAccess, 0x64);
    f.reset_value = 0xfe;
    bytes_of(&f.finalize())
}

/// The MADT (5.2.12): header, LAPIC address, PCAT_COMPAT, then the entries.
fn madt() -> Vec<u8> {
    let mut t = header(*b"APIC", 5);
    t.extend_from_slice(&(LAPIC_BASE as u32).to_le_bytes());
    t.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT: 8259s present
                                              // Processor local APIC: UID 0, APIC ID 0, enabled.
    t.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    // I/O APIC: ID, reserved, address, GSI base 0.
    t.extend_from_slice(&[1, 12, IOAPIC_ID, 0]);
    t.extend_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    t.extend_from_slice(&0u32.to_le_bytes());
    // Interrupt source overrides (bus 0 = ISA): IRQ 0 -> GSI 2 (conforming); the SCI
    // level-triggered, active high (flags: polarity 01 = high, trigger 11 = level).
    for (irq, gsi, flags) in [(0u8, 2u32, 0u16), (SCI_IRQ, u32::from(SCI_IRQ), 0x000d)] {
        t.extend_from_slice(&[2, 10, 0, irq]);
        t.extend_from_slice(&gsi.to_le_bytes());
        t.extend_from_slice(&flags.to_le_bytes());
    }
    // Local APIC NMI: all processors (UID 0xFF), conforming, LINT1.
    t.extend_from_slice(&[4, 6, 0xff, 0, 0, 1]);
    finish(t)
}

/// The DSDT's AML: the PCI root bridge with `_CRS` and `_PRT`, and `\_S5`.
fn dsdt() -> Vec<u8> {
    use aml::{AddressSpace, AddressSpaceCacheable, Device, EISAName, Name, Package, ResourceTemplate, Scope, IO};
    // _PRT entries (6.2.13): (slot << 16 | 0xFFFF, pin 0-3 = INTA-D, source 0, GSI) for slots
    // 1-31 (slot 0 is the host bridge).
    let addrs: Vec<u32> = (0..32u32).map(|slot| slot << 16 | 0xffff).collect();
    let pins: [u8; 4] = [0, 1, 2, 3];
    let gsis: Vec<u32> = (0..32u32).flat_map(|slot| (0..4u32).map(move |pin| prt_gsi(slot, pin))).collect();
    let zero = 0u8;
    let entries: Vec<Package> = (1..32usize)
        .flat_map(|slot| (0..4usize).map(move |pin| (slot, pin)))
        .map(|(slot, pin)| Package::new(vec![&addrs[slot] as &dyn Aml, &pins[pin], &zero, &gsis[slot * 4 + pin]]))
        .collect();
    let prt = Package::new(entries.iter().map(|p| p as &dyn Aml).collect());
    let bus = AddressSpace::new_bus_number(0u16, 0xffu16);
    let cf8 = IO::new(0xcf8, 0xcf8, 1, 8);
    let io_low = AddressSpace::new_io(0u16, 0xcf7u16, None);
    let io_high = AddressSpace::new_io(0xd00u16, 0xffffu16, None);
    let vga = AddressSpace::new_memory(AddressSpaceCacheable::NotCacheable, true, 0xa_0000u32, 0xb_ffffu32, None);
    let hole = AddressSpace::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        MMIO_HOLE as u32,
        (IOAPIC_BASE - 1) as u32,
        None,
    );
    let crs = ResourceTemplate::new(vec![&bus, &cf8, &io_low, &io_high, &vga, &hole]);
    let (hid, uid, adr, crs, prt) = (
        Name::new("_HID".into(), &EISAName::new("PNP0A03")),
        Name::new("_UID".into(), &zero),
        Name::new("_ADR".into(), &zero),
        Name::new("_CRS".into(), &crs),
        Name::new("_PRT".into(), &prt),
    );
    let pci0 = Device::new("PCI0".into(), vec![&hid, &uid, &adr, &crs, &prt]);
    let sb = Scope::new("\\_SB_".into(), vec![&pci0]);
    let s5_typ = S5_SLP_TYP as u8;
    let s5_pkg = Package::new(vec![&s5_typ, &s5_typ, &zero, &zero]);
    let s5 = Name::new("_S5_".into(), &s5_pkg);
    let mut body = Vec::new();
    sb.to_aml_bytes(&mut body);
    s5.to_aml_bytes(&mut body);
    let mut t = header(*b"DSDT", 2);
    t.extend_from_slice(&body);
    finish(t)
}

/// The GSI of PCI slot `slot`'s interrupt pin `pin` (0 = INTA).
pub fn prt_gsi(slot: u32, pin: u32) -> u32 {
    PCI_GSI_BASE + (slot + PCI_GSI_COUNT - 1 + pin) % PCI_GSI_COUNT
}

/// A 36-byte table header (5.2.6) with length and checksum to be filled by [`finish`].
fn header(signature: [u8; 4], revision: u8) -> Vec<u8> {
    let mut h = Vec::with_capacity(64);
    h.extend_from_slice(&signature);
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&[revision, 0]);
    h.extend_from_slice(&OEM_ID);
    h.extend_from_slice(&OEM_TABLE_ID);
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(b"STRA");
    h.extend_from_slice(&1u32.to_le_bytes());
    h
}

/// Sets the length and the checksum (all bytes sum to 0).
fn finish(mut t: Vec<u8>) -> Vec<u8> {
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t[9] = 0;
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    fn table<'a>(tables: &'a [(u64, Vec<u8>)], sig: &[u8; 4]) -> &'a (u64, Vec<u8>) {
        tables.iter().find(|(_, b)| &b[..4] == sig).unwrap()
    }

    #[test]
    fn every_table_checksums_and_the_pointers_chain() {
        // ACPI 6.5, 5.2.5.3: RSDP checksum over the first 20 bytes, extended over all 36;
        // 5.2.6: every table's bytes sum to zero; the XSDT lists the FADT and MADT; the FADT
        // points at the FACS and the DSDT.
        let t = build(RSDP_ADDR);
        let (at, rsdp) = &t[0];
        assert_eq!((*at, &rsdp[..8]), (RSDP_ADDR, &b"RSD PTR "[..]));
        assert_eq!((sum(&rsdp[..20]), sum(rsdp), rsdp[15]), (0, 0, 2));
        let xsdt_at = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
        let (x_at, xsdt) = table(&t, b"XSDT");
        assert_eq!(*x_at, xsdt_at);
        for (_, b) in &t[1..] {
            if &b[..4] != b"FACS" {
                assert_eq!(sum(b), 0, "{}", String::from_utf8_lossy(&b[..4]));
                assert_eq!(u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize, b.len());
            }
        }
        let listed: Vec<u64> = xsdt[36..].chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(listed, vec![table(&t, b"FACP").0, table(&t, b"APIC").0]);
        let (_, fadt) = table(&t, b"FACP");
        let facs = u32::from_le_bytes(fadt[36..40].try_into().unwrap()) as u64;
        assert_eq!(facs, table(&t, b"FACS").0);
        assert_eq!(facs % 64, 0, "FACS is 64-byte aligned (5.2.10)");
        let x_dsdt = u64::from_le_bytes(fadt[140..148].try_into().unwrap());
        assert_eq!(x_dsdt, table(&t, b"DSDT").0);
        // FADT fixed fields (5.2.9, table 5.9): SCI_INT at 46, PM1a_EVT_BLK at 56, PM_TMR_BLK
        // at 76, PM1_EVT_LEN at 88, PM_TMR_LEN at 91, reset register at 116 and value at 128.
        assert_eq!(u16::from_le_bytes([fadt[46], fadt[47]]), 9);
        assert_eq!(u32::from_le_bytes(fadt[56..60].try_into().unwrap()), 0x600);
        assert_eq!(u32::from_le_bytes(fadt[76..80].try_into().unwrap()), 0x608);
        assert_eq!((fadt[88], fadt[91]), (4, 4));
        assert_eq!((fadt[116], u64::from_le_bytes(fadt[120..128].try_into().unwrap()), fadt[128]), (1, 0x64, 0xfe));
        assert!(t.last().unwrap().0 + t.last().unwrap().1.len() as u64 <= 0x10_0000);
    }

    /// Runs a loader script as a firmware does (SeaBIOS `romfile_loader_*`: allocate, add the
    /// source file's address to the little-endian field, subtract the range's sum from the
    /// result byte) and checks the placed tables against the directly written ones.
    #[test]
    fn the_table_loader_script_reproduces_the_direct_tables() {
        let b = loader_blobs();
        assert_eq!(b.loader.len() % 128, 0);
        let (rsdp_at, tables_at) = (0xf_0000u64, 0x7ff_0000u64);
        let mut files = std::collections::HashMap::new();
        files.insert(RSDP_FILE.to_string(), (rsdp_at, b.rsdp.clone()));
        files.insert(TABLES_FILE.to_string(), (tables_at, b.tables.clone()));
        let s = |b: &[u8]| String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(56)]).into_owned();
        for c in b.loader.chunks(128) {
            let kind = u32::from_le_bytes(c[..4].try_into().unwrap());
            let p = &c[4..];
            match kind {
                1 => assert!(files.contains_key(&s(&p[..56])), "allocates a known file"),
                2 => {
                    let src_addr = files[&s(&p[56..112])].0;
                    let off = u32::from_le_bytes(p[112..116].try_into().unwrap()) as usize;
                    let size = p[116] as usize;
                    let data = &mut files.get_mut(&s(&p[..56])).unwrap().1;
                    let mut v = [0u8; 8];
                    v[..size].copy_from_slice(&data[off..off + size]);
                    let n = u64::from_le_bytes(v).wrapping_add(src_addr);
                    data[off..off + size].copy_from_slice(&n.to_le_bytes()[..size]);
                }
                3 => {
                    let data = &mut files.get_mut(&s(&p[..56])).unwrap().1;
                    let r = u32::from_le_bytes(p[56..60].try_into().unwrap()) as usize;
                    let st = u32::from_le_bytes(p[60..64].try_into().unwrap()) as usize;
                    let len = u32::from_le_bytes(p[64..68].try_into().unwrap()) as usize;
                    let sum = data[st..st + len].iter().fold(0u8, |a, &x| a.wrapping_add(x));
                    data[r] = data[r].wrapping_sub(sum);
                }
                k => panic!("unknown command {k}"),
            }
        }
        // The result equals the tables written directly at the same place: every pointer
        // patched, every checksum right.
        let (rsdp, placed) = layout(rsdp_at, tables_at);
        assert_eq!(files[RSDP_FILE].1, rsdp);
        for p in placed {
            let off = (p.at - tables_at) as usize;
            assert_eq!(
                &files[TABLES_FILE].1[off..off + p.bytes.len()],
                &p.bytes[..],
                "{}",
                String::from_utf8_lossy(&p.bytes[..4])
            );
        }
    }

    #[test]
    fn madt_entries_follow_the_spec_layout() {
        // 5.2.12: after the 44-byte header come entries of (type, length); types 0 (LAPIC),
        // 1 (IOAPIC), 2 (override) and 4 (LAPIC NMI) with lengths 8, 12, 10, 6.
        let t = build(RSDP_ADDR);
        let (_, m) = table(&t, b"APIC");
        let mut i = 44;
        let mut seen = Vec::new();
        while i < m.len() {
            seen.push((m[i], m[i + 1]));
            i += m[i + 1] as usize;
        }
        assert_eq!(i, m.len());
        assert_eq!(seen, vec![(0, 8), (1, 12), (2, 10), (2, 10), (4, 6)]);
        // IRQ 0 -> GSI 2.
        let iso = &m[44 + 8 + 12..];
        assert_eq!((iso[3], u32::from_le_bytes(iso[4..8].try_into().unwrap())), (0, 2));
    }

    #[test]
    fn the_dsdt_names_the_root_bridge_the_routing_and_s5() {
        let t = build(RSDP_ADDR);
        let (_, d) = table(&t, b"DSDT");
        let has = |s: &[u8]| d.windows(s.len()).any(|w| w == s);
        assert!(has(b"PCI0") && has(b"_PRT") && has(b"_CRS") && has(b"_S5_"));
        // EISA ID PNP0A03 compressed (5.6.5, _HID): 0x030AD041 stored little-endian.
        assert!(has(&[0x0c, 0x41, 0xd0, 0x0a, 0x03]));
        // Slot 1 INTA on IOAPIC pin 16, slot 8 INTA on 23, slot 9 wraps to 16; INTB shifts one.
        assert_eq!((prt_gsi(1, 0), prt_gsi(8, 0), prt_gsi(9, 0), prt_gsi(1, 1)), (16, 23, 16, 17));
    }
}
