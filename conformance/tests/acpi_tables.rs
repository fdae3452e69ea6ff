//! Strata's ACPI tables checked by an outside tool: ACPICA's `iasl -d` (Debian's acpica-tools,
//! installed by scripts/install-deps.sh) disassembles each table; it must accept every one
//! (valid header, checksum and AML) and read back the fields the PC depends on.

use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-acpi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Disassembles `bytes` as `name.dat`; returns iasl's listing (the .dsl file) and its stderr.
fn disassemble(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let dat = dir.join(format!("{name}.dat"));
    std::fs::write(&dat, bytes).unwrap();
    let out = Command::new("iasl")
        .arg("-d")
        .arg(&dat)
        .current_dir(dir)
        .output()
        .expect("iasl not found: run scripts/install-deps.sh (Debian package acpica-tools)");
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "iasl -d {name}: {log}");
    assert!(!log.contains("Invalid checksum") && !log.contains("Error"), "iasl -d {name}: {log}");
    std::fs::read_to_string(dir.join(format!("{name}.dsl"))).unwrap_or_else(|e| panic!("{name}.dsl: {e}\n{log}"))
}

#[test]
fn iasl_reads_every_table_and_the_fields_the_pc_needs() {
    let dir = scratch();
    let tables = emu::loaders::acpi::build(emu::loaders::acpi::RSDP_ADDR);
    let mut seen = Vec::new();
    // The RSDP has no table header, which `iasl -d` needs; its checksums and pointer are
    // checked by the unit tests in emu/src/loaders/acpi.rs.
    for (_, bytes) in tables.iter().filter(|(_, b)| !b.starts_with(b"RSD PTR ")) {
        let sig = String::from_utf8_lossy(&bytes[..4]).into_owned();
        let dsl = disassemble(&dir, &sig.to_lowercase(), bytes);
        let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = squash(&dsl);
        let has = |needle: &str| assert!(text.contains(&squash(needle)), "{sig}: no \"{needle}\" in:\n{dsl}");
        match sig.as_str() {
            "FACP" => {
                has("SCI Interrupt : 0009");
                has("PM1A Event Block Address : 00000600");
                has("PM1A Control Block Address : 00000604");
                has("PM Timer Block Address : 00000608");
                has("Reset Register Supported (V2) : 1");
                has("Value to cause reset : FE");
            }
            "APIC" => {
                has("Local Apic Address : FEE00000");
                has("Address : FEC00000");
                has("Source : 00");
                has("Interrupt : 00000002");
                has("Source : 09");
            }
            "DSDT" => {
                has("Device (PCI0)");
                has("EisaId (\"PNP0A03\")");
                has("Name (_PRT, Package");
                has("Name (_S5, Package");
                has("0x0CF8, // Range Minimum");
            }
            _ => {}
        }
        seen.push(sig);
    }
    seen.sort();
    assert_eq!(seen, ["APIC", "DSDT", "FACP", "FACS", "XSDT"]);
    let _ = std::fs::remove_dir_all(&dir);
}
