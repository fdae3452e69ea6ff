//! emu: Strata's CPU and machine.
//!
//! | module | what it holds |
//! |---|---|
//! | `state` | `CpuState`: the one architectural state every engine shares |
//! | `flags` | lazy arithmetic flags and the operand-width trait |
//! | `mem` | guest physical RAM (one anonymous mapping) |
//! | `mmu` | page walk, software TLB and the `SoftMmu` caches, memory access fast and slow paths |
//! | `cpu` | `Cpu`: state + RAM + I/O bus + TSC, and the `SoftMmu` caches |
//! | `decode` | iced-x86 -> compact `Instr` entries; the handler table |
//! | `cache` | decoded-block cache, self-modifying-code invalidation |
//! | `interp` | tier 0: the run loop and one file per instruction family |
//! | `exception` | guest faults and stop reasons |
//! | `system` | descriptors, interrupt delivery, control registers, MSRs |
//! | `loaders` | bzImage (Linux boot protocol), Multiboot v1, MP table, the memory map |
//! | `machine` | the virtual PC: devices on the board, the machine loop, the boot timeline |
//! | `snapshot` | machine snapshots: the file format, save, copy-on-write restore |
//! | `user` | the Linux user-mode runner (ELF loading, system calls) |

pub mod cache;
pub mod cpu;
pub mod decode;
pub mod exception;
pub mod flags;
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
