//! Booting through SeaBIOS from the reset vector (`strata run --bios`, issue 14), checked
//! against the firmware itself and against QEMU:
//!
//! - a stand-in bzImage whose kernel entry (the setup code at 0x10200) writes the exit port
//!   goes from the reset vector through SeaBIOS (Debian's bios-256k.bin and the 128 KiB
//!   bios.bin) and QEMU's linuxboot_dma.bin to that first kernel instruction: Strata and
//!   `qemu-system-x86_64 -M pc -accel tcg` (when installed) exit there with the same status,
//!   SeaBIOS's own log (port 0x402) shows it found the i440FX, unlocked its shadow RAM and
//!   booted the option ROM, and the timeline has the firmware phases in order;
//! - a 64 KiB ROM of our own, run alone (`--bios` without `--kernel`), starts at the reset
//!   vector, reaches its copy below 1 MiB, and ends with the same serial output and exit status
//!   under Strata and QEMU;
//! - the Debian guest boots through SeaBIOS to its marker (on the JIT where there is one, else
//!   tier 0) with the memory map, SMBIOS and ACPI tables SeaBIOS hands over (SeaBIOS copies
//!   the RSDP into its F-segment, so the kernel finding it there shows the PAM write path) and
//!   no platform complaint in the kernel log.
//!
//! The SeaBIOS tests are skipped, with a message, when Debian's seabios or qemu-system-data is
//! not installed (scripts/install-deps.sh installs both, so CI runs them); the QEMU comparisons
//! when qemu-system-x86_64 is missing.

mod kernel_support;
mod user_support;

use kernel_support::run_capturing;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use user_support::{jit_unavailable, strata_bin, Scratch};

const BIOS_256K: &str = "/usr/share/seabios/bios-256k.bin";
const BIOS_128K: &str = "/usr/share/seabios/bios.bin";
const LINUXBOOT_DMA: &str = "/usr/share/qemu/linuxboot_dma.bin";

fn firmware_missing() -> bool {
    for f in [BIOS_256K, BIOS_128K, LINUXBOOT_DMA] {
        if !Path::new(f).exists() {
            eprintln!("SKIP: {f} is missing (Debian's seabios and qemu-system-data: scripts/install-deps.sh)");
            return true;
        }
    }
    false
}

/// A bzImage as the Linux boot protocol (Documentation/x86/boot.rst) lays it out, as small as
/// QEMU and Strata accept: one setup sector after the boot sector, header version 2.06,
/// LOADED_HIGH, then `kernel_len` bytes of protected-mode kernel. The setup code's entry at
/// offset 0x200 jumps over the header to `mov al, 0; out 0xf4, al; hlt`: its first action is
/// to write isa-debug-exit, so a run ends exactly at the kernel's entry with status 1.
fn exit_at_entry_kernel(kernel_len: usize) -> Vec<u8> {
    let mut k = vec![0u8; 1024 + kernel_len];
    k[0x1f1] = 1; // setup_sects
    k[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    k[0x200..0x202].copy_from_slice(&[0xeb, 0x6e]); // jmp 0x270
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x0206u16.to_le_bytes());
    k[0x211] = 0x01; // loadflags: LOADED_HIGH
    k[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes()); // initrd_addr_max
    k[0x270..0x277].copy_from_slice(&[0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
    k
}

/// The labels of a `--timeline-json` file, in order.
fn timeline_labels(json: &str) -> Vec<String> {
    let events: Vec<serde_json::Value> = serde_json::from_str(json).expect("timeline JSON");
    events.iter().filter_map(|e| Some(e["label"].as_str()?.to_string())).collect()
}

#[test]
fn seabios_reaches_the_kernels_first_instruction_as_under_qemu() {
    if firmware_missing() {
        return;
    }
    let dir = Scratch::new("bios-entry");
    let kernel = dir.path().join("exit-at-entry.bzImage");
    std::fs::write(&kernel, exit_at_entry_kernel(64 << 10)).unwrap();
    for bios in [BIOS_256K, BIOS_128K] {
        let tag = Path::new(bios).file_stem().unwrap().to_string_lossy().into_owned();
        let serial = dir.path().join(format!("{tag}.serial"));
        let debugcon = dir.path().join(format!("{tag}.debugcon"));
        let timeline = dir.path().join(format!("{tag}.json"));
        let mut cmd = Command::new(strata_bin());
        cmd.args(["run", "--bios", bios, "--kernel"]).arg(&kernel);
        cmd.arg("--serial").arg(format!("file:{}", serial.display()));
        cmd.arg("--debugcon").arg(format!("file:{}", debugcon.display()));
        cmd.arg("--timeline-json").arg(&timeline);
        let (status, out, err) = run_capturing(cmd, &serial, Duration::from_secs(120));
        let log = std::fs::read_to_string(&debugcon).unwrap_or_default();
        assert_eq!(
            status,
            Some(1),
            "{bios}: no exit at the kernel's entry\nserial:\n{out}\nstderr:\n{err}\nSeaBIOS log:\n{log}"
        );
        // On the serial console (sercon), with either image: SeaBIOS ran the option ROM.
        assert!(out.contains("SeaBIOS") && out.contains("Booting from ROM"), "{bios}: serial:\n{out}");
        // SeaBIOS's own account on port 0x402: QEMU's i440FX found, shadow RAM unlocked (its
        // message when the bridge or PAM is missing is "Unable to unlock ram"), the option ROM
        // booted. Only bios-256k.bin logs there: Debian builds the 128 KiB bios.bin of
        // seabios 1.16.3 (bookworm-backports) without debug output.
        if bios == BIOS_256K {
            assert!(log.contains("Found QEMU fw_cfg") && log.contains("init bdf=00:00.0 id=8086:1237"), "{log}");
            assert!(log.contains("init bdf=00:01.0 id=8086:7000"), "no PIIX3 ISA bridge: {log}");
            assert!(!log.contains("Unable to unlock ram"), "{log}");
            assert!(log.contains("Booting from ROM"), "{log}");
        }
        let labels = timeline_labels(&std::fs::read_to_string(&timeline).unwrap());
        let at = |l: &str| labels.iter().position(|x| x.starts_with(l)).unwrap_or_else(|| panic!("{l}: {labels:?}"));
        assert!(at("reset") < at("first instruction: BIOS start"), "{labels:?}");
        assert!(at("first instruction: BIOS start") < at("option ROM"), "{labels:?}");
        assert!(at("option ROM") < at("kernel entry"), "{labels:?}");
    }
    // The reference: QEMU with the same firmware and kernel exits at the same instruction.
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return;
    }
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-M", "pc", "-accel", "tcg", "-m", "256M", "-nodefaults", "-display", "none", "-serial", "null"]);
    qemu.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-bios", BIOS_256K, "-kernel"]).arg(&kernel);
    let qemu_serial = dir.path().join("qemu.serial");
    let (status, _, err) = run_capturing(qemu, &qemu_serial, Duration::from_secs(60));
    assert_eq!(status, Some(1), "QEMU did not exit at the kernel's entry either (the stand-in kernel is wrong): {err}");
}

/// A 64 KiB ROM (the smallest image `-bios` takes) whose reset vector (offset FFF0h, fetched at
/// FFFFFFF0h) far-jumps to F000:E000, i.e. into the copy below 1 MiB, which prints "OK" on COM1
/// and writes the byte it reads at CS:FFF0h (the jump's opcode, EAh, through the low copy) to
/// isa-debug-exit: status (EAh << 1) | 1, which the process exit code truncates to D5h.
fn reset_vector_rom() -> Vec<u8> {
    let mut rom = vec![0xf4u8; 0x1_0000];
    rom[0xfff0..0xfff5].copy_from_slice(&[0xea, 0x00, 0xe0, 0x00, 0xf0]); // jmp far f000:e000
    let code = [
        0xba, 0xf8, 0x03, // mov dx, 0x3f8
        0xb0, b'O', 0xee, // mov al, 'O'; out dx, al
        0xb0, b'K', 0xee, // mov al, 'K'; out dx, al
        0xb0, b'\n', 0xee, // mov al, '\n'; out dx, al
        0x2e, 0xa0, 0xf0, 0xff, // mov al, cs:[0xfff0]
        0xe6, 0xf4, // out 0xf4, al
        0xf4, // hlt
    ];
    rom[0xe000..0xe000 + code.len()].copy_from_slice(&code);
    rom
}

#[test]
fn a_rom_alone_starts_at_the_reset_vector_as_under_qemu() {
    let dir = Scratch::new("bios-rom");
    let rom = dir.path().join("reset.rom");
    std::fs::write(&rom, reset_vector_rom()).unwrap();
    let serial = dir.path().join("strata.serial");
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--bios"]).arg(&rom).arg("--serial").arg(format!("file:{}", serial.display()));
    let (status, out, err) = run_capturing(cmd, &serial, Duration::from_secs(60));
    assert_eq!((status, out.as_str()), (Some(0xd5), "OK\n"), "{err}");
    // Wrong sizes are refused with one line.
    let bad = dir.path().join("bad.rom");
    std::fs::write(&bad, vec![0u8; 0x1_8000]).unwrap();
    let o = Command::new(strata_bin()).args(["run", "--bios"]).arg(&bad).output().unwrap();
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && msg.trim().lines().count() == 1 && msg.contains("64, 128 or 256 KiB"), "{msg}");
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return;
    }
    let qserial = dir.path().join("qemu.serial");
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-M", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-bios"]).arg(&rom);
    qemu.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-serial"])
        .arg(format!("file:{}", qserial.display()));
    let (qstatus, qout, qerr) = run_capturing(qemu, &qserial, Duration::from_secs(60));
    assert_eq!((qstatus, qout.as_str()), (status, out.as_str()), "QEMU differs: {qerr}");
}

/// The Debian guest (`build/guest`, from scripts/build-guest.sh; skipped when missing) boots
/// through SeaBIOS and linuxboot_dma.bin to its marker.
#[test]
fn debian_guest_boots_through_seabios_to_its_marker() {
    if firmware_missing() {
        return;
    }
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    if !guest.join("vmlinuz").exists() {
        eprintln!("SKIP: no Debian guest at {} (scripts/build-guest.sh build/guest makes it)", guest.display());
        return;
    }
    let marker = std::fs::read_to_string(guest.join("marker")).expect("marker file").trim().to_string();
    let tier = if jit_unavailable().is_none() { "jit" } else { "interp" };
    let dir = Scratch::new("bios-guest");
    let serial = dir.path().join("serial.txt");
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--tier", tier, "--bios", BIOS_256K, "--kernel"]).arg(guest.join("vmlinuz"));
    cmd.arg("--initrd").arg(guest.join("initramfs-marker.cpio.gz"));
    cmd.args(["--append", "console=ttyS0", "--marker", &marker]);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    let (status, out, err) = run_capturing(cmd, &serial, Duration::from_secs(400));
    assert!(out.contains(&marker), "no marker through SeaBIOS on {tier} (exit {status:?}):\n{out}\n{err}");
    assert_eq!(status, Some(0), "the guest's power-off (ACPI S5) should end the run with 0: {err}");
    // What SeaBIOS handed over: its INT 15h E820 map, its SMBIOS ("Bochs" is SeaBIOS's
    // default), and the RSDP it allocated in the F-segment while PAM made it RAM.
    assert!(out.contains("BIOS-e820: [mem 0x00000000000f0000-0x00000000000fffff] reserved"), "{out}");
    assert!(out.contains("DMI: Bochs Bochs, BIOS Bochs"), "{out}");
    let rsdp = out.lines().find(|l| l.contains("ACPI: RSDP 0x")).unwrap_or_else(|| panic!("no RSDP line: {out}"));
    assert!(rsdp.contains("ACPI: RSDP 0x00000000000F"), "RSDP outside the F-segment: {rsdp}");
    for complaint in [
        "unknown, using generic init",
        "Your system may be unstable",
        "mce: Unable to init",
        "ACPI BIOS Error",
        "ACPI Error",
        "RSDP was not found",
        "unchecked MSR access",
    ] {
        assert!(!out.contains(complaint), "the kernel complained ({complaint}):\n{out}");
    }
}
