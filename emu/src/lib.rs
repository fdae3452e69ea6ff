//! emu: Strata's CPU and machine.
//!
//! | module | what it holds |
//! |---|---|
//! | `exception` | guest faults and stop reasons |
//! | `rflags` | the RFLAGS bits |
//! | `flags` | lazy arithmetic flags and the operand-width trait |
//! | `state` | `CpuState`: the one architectural state every engine shares |
//! | `mem` | guest physical RAM (one anonymous mapping) |
//! | `mmu` | page walk, software TLB and the `SoftMmu` caches, memory access fast and slow paths |
//! | `cpu` | `Cpu`: state + RAM + I/O bus + TSC, and the `SoftMmu` caches |
//! | `system` | descriptors, interrupt delivery, control registers, MSRs |
//! | `decoded` | the decoded form: `Instr`, `Handler`, the table's `Row` |
//! | `interp` | tier 0's handlers, one file per instruction family |
//! | `decode` | iced-x86 -> compact `Instr` entries; the handler table |
//! | `cache` | decoded-block cache, self-modifying-code invalidation |
//! | `engine` | the engine contract: the `Engine` trait, `Limit`, `Exit`, `EngineKind` |
//! | `tier0` | tier 0's run loop (`Interp`, re-exported here with `Exit`), tier 0's `Engine` |
//! | `loaders` | bzImage (Linux boot protocol), Multiboot v1, MP table, the memory map |
//! | `firmware` | a BIOS from the reset vector: the ROM, PAM shadowing, the reset state |
//! | `user` | the Linux user-mode runner (ELF loading, system calls) |
//! | `machine` | the virtual PC: devices on the board, the machine loop, the boot timeline |
//! | `snapshot` | machine snapshots: the file format, save, copy-on-write restore |
//! | `hostcpu` | the host CPU as CPUID names it, for host-differential tests (x86-64 hosts) |
//!
//! The modules stack in layers; each imports only modules below it, so there is no import
//! cycle. Bottom to top:
//! 1. `exception`, `rflags`: plain definitions;
//! 2. `flags` (lazy flags), then `state` (which holds them);
//! 3. `mem`, `mmu`, `cpu` (`mmu/access.rs` adds the memory access paths to `Cpu` as methods);
//!    `system`, `loaders` and `firmware` on the CPU; `engine`, the contract every engine implements (tier 0,
//!    KVM in `tiers`, the JIT), on the CPU;
//! 4. `decoded`: the decoded form every part of tier 0 shares;
//! 5. `interp`: the instruction families (their handlers and table rows);
//! 6. `decode`: iced-x86 to `Instr`, and the table built from the families' rows;
//! 7. `cache`: decoded blocks, built by `decode`;
//! 8. `tier0`: the run loop over cached blocks, tier 0's `Engine`;
//! 9. `user` and `machine` drive engines through the contract; `snapshot` saves and restores machines.
//!
//! Test support that drives the decoder or the run loop (`interp/tests/`, `interp/sse/tests/`)
//! sits with the tests, above every layer.

pub mod cache;
pub mod cpu;
pub mod decode;
pub mod decoded;
pub mod engine;
pub mod exception;
pub mod firmware;
pub mod flags;
#[cfg(target_arch = "x86_64")]
pub mod hostcpu;
pub mod interp;
pub mod loaders;
pub mod machine;
pub mod mem;
pub mod mmu;
pub mod rflags;
pub mod snapshot;
pub mod state;
pub mod system;
pub mod tier0;
pub mod user;

pub use cpu::Cpu;
pub use tier0::{Exit, Interp};
