//! Fuzz target: the Linux boot protocol loader (`emu::loaders::bzimage`) with an initrd. Input:
//! a byte for the command line's length, two for the initrd's, then the command line, the initrd
//! and the kernel image. Loading into a 64 MiB guest must succeed or be a `LoadError`, never a
//! panic (every size in the setup header is checked against the file and RAM).
#![no_main]

use emu::cpu::Cpu;
use emu::mem::GuestRam;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let cmdline_len = usize::from(data[0]);
    let initrd_len = usize::from(u16::from_le_bytes([data[1], data[2]]));
    let rest = &data[3..];
    if rest.len() < cmdline_len + initrd_len {
        return;
    }
    let (cmdline, rest) = rest.split_at(cmdline_len);
    let (initrd, image) = rest.split_at(initrd_len);
    let cmdline = String::from_utf8_lossy(cmdline);
    let mut cpu = Cpu::new(GuestRam::new(64 << 20).expect("guest RAM"));
    let initrd = (initrd_len > 0).then_some(("initrd", initrd));
    let _ = emu::loaders::bzimage::load(&mut cpu, "bzImage", image, &cmdline, initrd);
});
