//! Fuzz target: the Multiboot v1 loader (`emu::loaders::multiboot`), a.out kludge and ELF32
//! paths, with modules. Input: a byte giving the module count (0-3) and two bytes per module
//! for its length, then the modules' bytes, then the kernel image. Loading into a 16 MiB guest
//! must succeed or be a `LoadError`, never a panic.
#![no_main]

use emu::cpu::Cpu;
use emu::loaders::multiboot::{load_with_modules, Module};
use emu::mem::GuestRam;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&n, mut rest)) = data.split_first() else { return };
    let count = usize::from(n % 4);
    if rest.len() < count * 2 {
        return;
    }
    let lens: Vec<usize> =
        rest[..count * 2].chunks_exact(2).map(|l| usize::from(u16::from_le_bytes([l[0], l[1]]))).collect();
    rest = &rest[count * 2..];
    let mut modules = Vec::new();
    for len in lens {
        if rest.len() < len {
            return;
        }
        let (m, r) = rest.split_at(len);
        modules.push(Module { data: m, string: "module arg" });
        rest = r;
    }
    let mut cpu = Cpu::new(GuestRam::new(16 << 20).expect("guest RAM"));
    let _ = load_with_modules(&mut cpu, "kernel.elf", rest, "console=ttyS0", &modules);
});
