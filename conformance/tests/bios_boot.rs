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

// --- Boot paths 2 and 3 (issue 14): from a virtio-blk disk through SeaBIOS and a bootloader ---

/// The disk tools `scripts/make-boot-disk.sh` needs (Debian's syslinux, syslinux-common,
/// mtools, fdisk, dosfstools), or a SKIP message naming what is missing.
fn disk_tools_missing() -> bool {
    for tool in ["syslinux", "mcopy", "sfdisk", "mkfs.fat"] {
        let found = Command::new("sh").arg("-c").arg(format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}")).output();
        if found.map(|o| !o.status.success()).unwrap_or(true) {
            eprintln!("SKIP: {tool} is missing (syslinux, mtools, fdisk, dosfstools: scripts/install-deps.sh)");
            return true;
        }
    }
    for f in [SYSLINUX_MODULES, "/usr/lib/syslinux/mbr/mbr.bin"] {
        if !Path::new(f).exists() {
            eprintln!("SKIP: {f} is missing (syslinux-common: scripts/install-deps.sh)");
            return true;
        }
    }
    false
}

const SYSLINUX_MODULES: &str = "/usr/lib/syslinux/modules/bios";

/// The test kernels' verdict lines, also where one follows SeaBIOS's serial-console text on
/// the same line (SeaBIOS buffers that console's output, so a kernel that never calls the
/// BIOS again can write its first line right after "Booting from Hard Disk..").
fn verdicts_after_bios(serial: &str) -> Vec<String> {
    serial.lines().filter_map(|l| l.find("PASS ").or_else(|| l.find("FAIL ")).map(|at| l[at..].to_string())).collect()
}

/// An MBR-partitioned raw image with Syslinux, `config` as its syslinux.cfg and `files` at the
/// FAT partition's root, made by the project's script from Debian's packages.
fn syslinux_disk(dir: &Path, name: &str, config: &str, files: &[&Path]) -> std::path::PathBuf {
    let image = dir.join(format!("{name}.img"));
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(&cfg, config).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-boot-disk.sh");
    let o = Command::new("bash").arg(script).arg(&image).arg(&cfg).args(files).output().unwrap();
    assert!(o.status.success(), "make-boot-disk.sh: {}", String::from_utf8_lossy(&o.stderr));
    image
}

/// Runs Strata through SeaBIOS from `drive` (`--drive` value), alone; (status, serial, stderr).
fn strata_from_disk(
    dir: &Path,
    tag: &str,
    drive: &str,
    extra: &[&str],
    limit: Duration,
) -> (Option<i32>, String, String) {
    let serial = dir.join(format!("{tag}.strata.serial"));
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--bios", BIOS_256K, "--drive", drive]).args(extra);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    run_capturing(cmd, &serial, limit)
}

/// Runs QEMU (`-M pc`, TCG) through the same SeaBIOS from `image` on virtio-blk, as Strata's
/// reference; `None` when QEMU is not installed.
fn qemu_from_disk(dir: &Path, tag: &str, image: &Path) -> Option<(Option<i32>, String)> {
    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return None;
    }
    let serial = dir.join(format!("{tag}.qemu.serial"));
    let mut q = Command::new("qemu-system-x86_64");
    q.args(["-M", "pc", "-accel", "tcg", "-m", "256M", "-nodefaults", "-display", "none", "-bios", BIOS_256K]);
    q.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-drive"]);
    q.arg(format!("file={},format=raw,if=virtio", image.display()));
    q.arg("-serial").arg(format!("file:{}", serial.display()));
    let (status, out, _) = run_capturing(q, &serial, Duration::from_secs(120));
    Some((status, out))
}

/// Boot path 3: a Multiboot test kernel (`conformance/kernels/interrupts.S`: PIT, RTC, UART and
/// LAPIC timer interrupts) loaded by Syslinux's `mboot.c32` from a qcow2 disk, and a boot
/// sector (`realmode.S`: real mode, then protected and long mode) as a disk's MBR, each booted
/// by SeaBIOS from virtio-blk: the same verdict lines and exit-port status as QEMU with the
/// same firmware and image (the kernels' checks themselves come from the SDM and datasheets).
#[test]
fn a_multiboot_kernel_via_syslinux_and_a_boot_sector_from_a_disk_as_under_qemu() {
    if firmware_missing() || disk_tools_missing() {
        return;
    }
    let dir = Scratch::new("bios-disk-kernels");
    let kernel = kernel_support::build("interrupts", dir.path()).expect("build interrupts.S");
    let modules = Path::new(SYSLINUX_MODULES);
    let config =
        "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT mb\nLABEL mb\n  KERNEL mboot.c32\n  APPEND interrupts.elf\n";
    let raw = syslinux_disk(
        dir.path(),
        "multiboot",
        config,
        &[&kernel, &modules.join("mboot.c32"), &modules.join("libcom32.c32")],
    );
    // Strata boots the qcow2 form of it (qemu-img's), QEMU the raw one.
    let qcow2 = dir.path().join("multiboot.qcow2");
    let o = Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(&raw).arg(&qcow2).output();
    let drive = match o {
        Ok(o) if o.status.success() => format!("file={},format=qcow2", qcow2.display()),
        _ => {
            eprintln!("qemu-img is missing: the raw image instead of a qcow2 one");
            format!("file={},format=raw", raw.display())
        }
    };
    let (status, out, err) = strata_from_disk(dir.path(), "multiboot", &drive, &[], Duration::from_secs(120));
    let verdicts = verdicts_after_bios(&out);
    // Syslinux writes to COM1 itself (SERIAL) and through INT 10h, which SeaBIOS's serial
    // console (etc/sercon-port) also sends to COM1, so its lines come twice, interleaved.
    assert!(out.contains("SYSLINUX 6"), "no Syslinux: {out}\n{err}");
    assert_eq!(status, Some(1), "the kernel did not pass through the exit port:\n{out}\n{err}");
    assert!(verdicts.len() >= 5 && verdicts.iter().all(|v| v.starts_with("PASS")), "{out}");

    let sector = kernel_support::build("realmode", dir.path()).expect("build realmode.S");
    let mbr = dir.path().join("bootsector.img");
    let mut image = std::fs::read(&sector).unwrap();
    assert_eq!(image.len(), 512, "realmode.S is one boot sector");
    image.resize(1 << 20, 0);
    std::fs::write(&mbr, image).unwrap();
    let drive_mbr = format!("file={},format=raw", mbr.display());
    let (rstatus, rout, rerr) = strata_from_disk(dir.path(), "bootsector", &drive_mbr, &[], Duration::from_secs(60));
    let rverdicts = verdicts_after_bios(&rout);
    assert_eq!(rstatus, Some(1), "{rout}\n{rerr}");
    assert!(rverdicts.len() == 3 && rverdicts.iter().all(|v| v.starts_with("PASS")), "{rout}");

    let Some((qstatus, qout)) = qemu_from_disk(dir.path(), "multiboot", &raw) else { return };
    assert_eq!((qstatus, verdicts_after_bios(&qout)), (status, verdicts), "QEMU differs (multiboot):\n{qout}");
    let Some((qstatus, qout)) = qemu_from_disk(dir.path(), "bootsector", &mbr) else { return };
    assert_eq!((qstatus, verdicts_after_bios(&qout)), (rstatus, rverdicts), "QEMU differs (boot sector):\n{qout}");
}

/// Boot path 2: the Debian guest's kernel and initramfs on a FAT partition of an MBR disk,
/// Syslinux configured for the serial console, booted by SeaBIOS from virtio-blk to the
/// guest's marker on tier 0, with SeaBIOS's PCI layout as on QEMU's i440FX (the PIIX3 at
/// 00:01.0, the disk at 00:02.0 with its BAR where SeaBIOS put it) and no platform complaint.
#[test]
fn debian_guest_boots_from_a_disk_through_seabios_and_syslinux() {
    if firmware_missing() || disk_tools_missing() {
        return;
    }
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/guest");
    if !guest.join("vmlinuz").exists() {
        eprintln!("SKIP: no Debian guest at {} (scripts/build-guest.sh build/guest makes it)", guest.display());
        return;
    }
    let marker = std::fs::read_to_string(guest.join("marker")).expect("marker file").trim().to_string();
    let dir = Scratch::new("bios-disk-linux");
    let initrd = dir.path().join("initrd.gz");
    std::fs::copy(guest.join("initramfs-marker.cpio.gz"), &initrd).unwrap();
    let config = "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\n  APPEND initrd=initrd.gz console=ttyS0\n";
    let image = syslinux_disk(dir.path(), "linux", config, &[&guest.join("vmlinuz"), &initrd]);
    let debugcon = dir.path().join("seabios.log");
    let drive = format!("file={},format=raw", image.display());
    let extra = ["--tier", "interp", "--marker", &marker, "--debugcon", &format!("file:{}", debugcon.display())];
    let (status, out, err) = strata_from_disk(dir.path(), "linux", &drive, &extra, Duration::from_secs(900));
    assert!(out.contains("SYSLINUX 6"), "no Syslinux:\n{out}\n{err}");
    assert!(out.contains("Command line: BOOT_IMAGE=vmlinuz initrd=initrd.gz console=ttyS0"), "{out}");
    assert!(out.contains(&marker), "no marker from the disk boot (exit {status:?}):\n{out}\n{err}");
    assert_eq!(status, Some(0), "the guest's power-off (ACPI S5) should end the run with 0: {err}");
    let log = std::fs::read_to_string(&debugcon).unwrap_or_default();
    assert!(log.contains("init bdf=00:01.0 id=8086:7000") && log.contains("init bdf=00:02.0 id=1af4:1042"), "{log}");
    assert!(log.contains("found virtio-blk at 00:02.0"), "{log}");
    // Linux found the disk at the BAR SeaBIOS assigned, and the root bus window that holds it.
    assert!(out.contains("pci 0000:00:02.0: [1af4:1042]") && out.contains("vda"), "{out}");
    for complaint in [
        "unknown, using generic init",
        "mce: Unable to init",
        "ACPI BIOS Error",
        "ACPI Error",
        "can't claim BAR",
        "no compatible bridge window",
    ] {
        assert!(!out.contains(complaint), "the kernel complained ({complaint}):\n{out}");
    }
}

/// A Multiboot `--kernel` through SeaBIOS and QEMU's `multiboot_dma.bin` (as `qemu-system-x86_64
/// -bios ... -kernel K` boots it): the interrupts test kernel (`kernels/interrupts.S`: PIT,
/// RTC, UART and LAPIC timer interrupts) with a module, reaching the same verdict lines and
/// exit-port status as QEMU with the same firmware, kernel and module.
#[test]
fn a_multiboot_kernel_through_seabios_and_multiboot_dma_as_under_qemu() {
    if firmware_missing() || !Path::new("/usr/share/qemu/multiboot_dma.bin").exists() {
        return;
    }
    let dir = Scratch::new("bios-multiboot");
    let kernel = kernel_support::build("interrupts", dir.path()).expect("build interrupts.S");
    let module = dir.path().join("module.txt");
    std::fs::write(&module, "a module\n").unwrap();
    let serial = dir.path().join("strata.serial");
    let mut cmd = Command::new(strata_bin());
    cmd.args(["run", "--bios", BIOS_256K, "--kernel"]).arg(&kernel).arg("--initrd").arg(&module);
    cmd.arg("--serial").arg(format!("file:{}", serial.display()));
    let (status, out, err) = run_capturing(cmd, &serial, Duration::from_secs(120));
    let verdicts = verdicts_after_bios(&out);
    assert!(out.contains("SeaBIOS"), "SeaBIOS did not run: {out}\n{err}");
    assert_eq!(status, Some(1), "the kernel did not pass through the exit port:\n{out}\n{err}");
    assert!(verdicts.len() >= 5 && verdicts.iter().all(|v| v.starts_with("PASS")), "{out}");

    if Command::new("qemu-system-x86_64").arg("--version").output().is_err() {
        eprintln!("SKIP (QEMU part): qemu-system-x86_64 is not installed");
        return;
    }
    let qserial = dir.path().join("qemu.serial");
    let mut q = Command::new("qemu-system-x86_64");
    q.args(["-M", "pc", "-accel", "tcg", "-m", "256M", "-nodefaults", "-display", "none", "-bios", BIOS_256K]);
    q.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x4", "-kernel"]).arg(&kernel);
    q.arg("-initrd").arg(&module).arg("-serial").arg(format!("file:{}", qserial.display()));
    let (qstatus, qout, _) = run_capturing(q, &qserial, Duration::from_secs(120));
    assert_eq!((qstatus, verdicts_after_bios(&qout)), (status, verdicts), "QEMU differs:\n{qout}");
}
