//! emu: Strata's CPU and machine.
//!
//! | module | what it holds |
//! |---|---|
//! | `state` | `CpuState`: the one architectural state every engine shares |
//! | `flags` | lazy arithmetic flags and the operand-width trait |
//! | `mem` | guest physical RAM (one anonymous mapping) |
//! | `mmu` | page walk, software TLB, memory access fast and slow paths |
//! | `cpu` | `Cpu`: state + RAM + TLB + code-page marks + I/O bus |
//! | `decode` | iced-x86 -> compact `Instr` entries; the handler table |
//! | `cache` | decoded-block cache, self-modifying-code invalidation |
//! | `interp` | tier 0: the run loop and one file per instruction family |
//! | `exception` | guest faults and stop reasons |
//! | `system` | descriptors, interrupt delivery, control registers, MSRs |
//! | `loaders` | bzImage (Linux boot protocol), Multiboot v1, MP table, the memory map |
//! | `machine` | the virtual PC: devices on the board, the machine loop, the boot timeline |
//! | `snapshot` | machine snapshots: the file format, save, copy-on-write restore |
//! | `user` | the Linux user-mode runner (ELF loading, system calls) |
//! | `hostcpu` | the host CPU as CPUID names it, for host-differential tests (x86-64 hosts) |

pub mod cache;
pub mod cpu;
pub mod decode;
pub mod exception;
pub mod flags;
#[cfg(target_arch = "x86_64")]
pub mod hostcpu;
pub mod interp;
pub mod loaders;
pub mod machine;
pub mod mem;
pub mod mmu;
pub mod snapshot;
pub mod state;
pub mod system;
pub mod user;

pub use cpu::Cpu;
pub use interp::{Exit, Interp};
