//! `strata run --device NAME[,PROP=VALUE...]`: QEMU's test devices, for external test suites
//! (kvm-unit-tests runs `-device pc-testdev -device isa-debug-exit,iobase=0xf4,iosize=0x4`).
//!
//! - `pc-testdev`: plugged in on request (`devices::pc::testdev`);
//! - `isa-debug-exit`: always present on Strata's board at port 0xf4 (see
//!   `devices::pc::exit_port`), so the option only checks that the properties asked for are
//!   that port (`iobase=0xf4`, `iosize=1..4`) and fails otherwise rather than silently differ.
//!
//! - `pci-testdev`: QEMU's PCI test device (`devices::pc::pci_testdev`), at the next free PCI
//!   slot after the drives.
//!
//! Anything else is a one-line error.

use emu::machine::Machine;

/// A device `--device` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestDevice {
    PcTestdev,
    IsaDebugExit,
    PciTestdev,
}

/// Parses a QEMU-style integer property (`0xf4` or `244`).
fn parse_int(name: &str, v: &str) -> Result<u64, String> {
    let r = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    r.map_err(|_| format!("{name}={v}: not a number"))
}

/// Parses one `--device` value.
pub fn parse_device(spec: &str) -> Result<TestDevice, String> {
    let mut parts = spec.split(',');
    let name = parts.next().unwrap_or_default();
    let props: Vec<&str> = parts.collect();
    let err = |m: String| format!("--device {spec}: {m}");
    match name {
        "pc-testdev" => match props.first() {
            None => Ok(TestDevice::PcTestdev),
            Some(p) => Err(err(format!("pc-testdev has no property {p}"))),
        },
        "isa-debug-exit" => {
            for p in props {
                let (k, v) = p.split_once('=').ok_or_else(|| err(format!("{p}: use PROP=VALUE")))?;
                let n = parse_int(k, v).map_err(err)?;
                let ok = match k {
                    "iobase" => n == u64::from(devices::pc::exit_port::EXIT_PORT_BASE),
                    "iosize" => (1..=u64::from(devices::pc::exit_port::EXIT_PORT_SIZE)).contains(&n),
                    _ => return Err(err(format!("isa-debug-exit has no property {k}"))),
                };
                if !ok {
                    return Err(err(format!("{k}={v}: Strata's exit port is iobase=0xf4,iosize=0x4")));
                }
            }
            Ok(TestDevice::IsaDebugExit)
        }
        "pci-testdev" => match props.first() {
            None => Ok(TestDevice::PciTestdev),
            Some(p) => Err(err(format!("pci-testdev has no property {p} (membar= is not modelled)"))),
        },
        _ => Err(err("unknown device (known: pc-testdev, pci-testdev, isa-debug-exit)".into())),
    }
}

/// Parses every `--device` and plugs the devices into `m`'s board.
pub fn attach(m: &mut Machine, specs: &[String]) -> Result<(), String> {
    let mut plugged = Vec::new();
    for spec in specs {
        let d = parse_device(spec)?;
        if plugged.contains(&d) {
            return Err(format!("--device {spec}: given twice"));
        }
        if d == TestDevice::PcTestdev {
            m.board
                .borrow_mut()
                .attach_pc_testdev()
                .map_err(|e| format!("--device {spec}: its ports or memory are taken ({e})"))?;
        }
        if d == TestDevice::PciTestdev {
            m.board
                .borrow_mut()
                .attach_pci_testdev()
                .map_err(|e| format!("--device {spec}: its I/O ports are taken ({e})"))?;
        }
        plugged.push(d);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suites_device_flags_parse() {
        assert_eq!(parse_device("pc-testdev"), Ok(TestDevice::PcTestdev));
        assert_eq!(parse_device("isa-debug-exit,iobase=0xf4,iosize=0x4"), Ok(TestDevice::IsaDebugExit));
        assert_eq!(parse_device("isa-debug-exit"), Ok(TestDevice::IsaDebugExit));
        assert_eq!(parse_device("pci-testdev"), Ok(TestDevice::PciTestdev));
    }

    #[test]
    fn other_devices_and_ports_are_one_line_errors() {
        for bad in [
            "isa-debug-exit,iobase=0x501",
            "isa-debug-exit,iosize=8",
            "isa-debug-exit,iobase",
            "isa-debug-exit,chardev=x",
            "pc-testdev,x=1",
            "pci-testdev,membar=1M",
            "e1000",
            "",
        ] {
            let e = parse_device(bad).unwrap_err();
            assert!(e.starts_with("--device ") && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
