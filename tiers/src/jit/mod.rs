//! Tier 1: hot blocks compiled to x86-64 host code (issue 10; DESIGN.md decision 9).
//!
//! **Where it sits.** The JIT is tier 0 with promotion on: it owns a tier-0 [`Interp`] (its
//! block cache and `step`), runs cold blocks through tier 0's `run_block`, and compiles a block
//! once the cache has counted `threshold` entries into it (`--jit-threshold`, default 16; a hot
//! block with under a quarter inline forms stays on tier 0, except at threshold 1, where every
//! block is compiled so the checks below run everything as translated code). A
//! translation is one of tier 0's blocks or, in 64-bit code, a region of them (see "Regions"
//! below). Faults, system calls, HLT and the other stops go through tier
//! 0's `handle_stop`, so the machine and the user-mode runner see exactly what tier 0 shows.
//!
//! **Code generation.** [`forms`] picks the instructions the backend (behind the [`backend`]
//! trait; on x86-64 hosts [`x64`], dynasm-rs)
//! emits inline: register-only MOV, LEA, NOT, BSWAP, MOVSXD, MOVZX/MOVSX, CMOVcc, SETcc, NOP;
//! ADD/OR/ADC/SBB/AND/SUB/XOR/CMP/TEST and INC/DEC at every size (a byte or word operation
//! works on the low part of the whole host register, which keeps the rest); SHL/SHR/SAR by an
//! immediate or 1 (every size) and by CL (32/64), with the record written as tier 0 writes it
//! where their flags are live; DIV r32/r64 (a zero divisor or a too-wide quotient takes the
//! handler, which raises #DE) and DIV of memory; NEG; rotates by an immediate and IMUL (the
//! record written as tier 0 writes it where their flags are live); with 64-bit addressing
//! (FS/GS-relative too), MOV of an immediate to memory, MOVSX r64 loads, MOV/MOVZX/MOVSXD
//! loads, 8- to 64-bit MOV loads and stores, the ALU forms reading memory and the
//! read-modify-write ones (INC/DEC of memory included), PUSH/POP,
//! CALL/RET and JMP/CALL r/m64; a block-ending Jcc or JMP. Every other instruction is a call of its tier-0
//! handler through one trampoline ([`host::call_handler`]) with the decoded
//! [`Instr`](emu::decoded::Instr) embedded as a constant (`--jit-fallback-only`: every
//! instruction, step 1 of the issue, x87 included), except, with inline forms on, the x87
//! register-stack forms, whose handlers translated code calls directly ([`x87`]); of those,
//! FLD ST(i), FLD1, FLDZ and FSTP ST(0) are done inline on the register file when no stack
//! fault, pending exception, EM/TS or real/V86 mode is in the way (seventh round, part Y:
//! `x64::x87::emit_x87_move`), the direct call otherwise; FADD/FMUL/FSUB/FSUBR/FDIV/FDIVR in their
//! register forms (pops included) and FSQRT are done inline around one call of the x87float
//! operation (`x87::arith_value`) under the same conditions, with both operands in use and no
//! unmasked exception raised, the direct call otherwise (part Z: `x64::x87::emit_x87_arith`).
//!
//! **Register mapping.** `rbx` holds the run's [`RunCtx`], `rbp` the `Cpu` (both callee-saved,
//! so they survive handler calls); `rax`, `rcx`, `rdx` are scratch; `r12b` holds the outcome of
//! a block-ending Jcc evaluated right after the instruction that set its flags; `r13` an
//! indirect branch's target, or within a block the host RFLAGS of a pending flag record. The
//! guest registers a block's inline forms use at least twice get host registers (`rsi`, `rdi`,
//! `r8`–`r11`, `r14`, `r15`, most used first; in a block that loops to itself, every register
//! it uses; in a region whose code sets no condition in `r12b` and that uses more than eight,
//! `r12` too: eighth round, part A, `x64::region::compile_region`): loaded from
//! `cpu.state.gpr` at first use, written back (only the changed ones) before every handler call
//! and at the block's end, and forgotten after a handler call. An inline form's miss path
//! writes back what was changed before its branch, calls the handler, and reloads what the hit
//! path holds where the two meet. So a handler, a fault or a stop sees exactly `cpu.state`.
//! Inline forms work on those host registers directly (`add rsi, rdi`, `lea r8, [rsi+rdi*4+8]`,
//! loads into and stores from them; a byte or word form on the low part, a 32-bit one
//! zero-extending as x86 does); a guest register without one is the memory operand itself
//! (`add qword [rbp+..], 7`) where the x86 semantics allow, else goes through rax (`mov
//! eax,[slot]; ror eax,2; mov [slot],rax`); a register form right after one that stored it
//! from rax takes it from rax instead of reloading the slot (eighth round, part A:
//! `RegCache::rax_holds`, valid only while nothing else was emitted since the store and
//! only between register forms, which bind no label there). Each miss path is emitted out of
//! line after the block's exits, so hit paths fall through.
//!
//! **Flags.** An inline ALU instruction is the same host instruction, so host EFLAGS hold the
//! guest's flags after it. They are written to the lazy record (`cpu.state.lazy`: the result
//! sign-extended, stored from the result's own register, and `aux` = CF<<63 | (CF^OF)<<62 |
//! AF<<3, read from a table indexed by the captured CF, AF and OF bits, or 0 for logic
//! operations) only where they are live: not when a later inline instruction of the block
//! overwrites all six before anything can read them ([`forms::flags_dead_after`]; flag-neutral
//! forms, rotates and INC/DEC, which write flags without reading any, may come between, and an
//! INC/DEC whose own flags are dead takes no CF into the host flags). The record
//! is therefore exact, bit for bit as tier 0 writes it, at every handler call, fault and block
//! exit. ADC/SBB and INC/DEC take the guest CF from the host flags when those are valid, else
//! from the record (`bt aux, 63`). Where a setter's flags are live only across inline loads,
//! stores, PUSH and POP (whose TLB probes clobber the host flags) up to an inline ADC/SBB/INC/
//! DEC or a form that overwrites them ([`forms::aux_deferrable`]), only the record's `result` is
//! written; its `aux` waits in `r13` as the captured host flags (the record *pending*): the
//! next reader takes CF with a `bt` of `r13`, and every path that needs the record (a probe's
//! miss path before its handler, any other form, every exit) computes `aux` from `r13` first.
//! The capture is `lahf; seto al; mov r13d, eax` (CF in bit 8, AF in 12, OF in 0) where the
//! host runs LAHF in 64-bit mode, else `pushfq; pop r13` (RFLAGS), which is microcoded and
//! about three times as slow (eighth round, part C: `x64::Capture`, `capture_flags`,
//! `cf_to_host`, `aux_from_capture`; `STRATA_JIT_PUSHF` forces `pushfq`). A logic setter's record read by nothing but the handlers of the probes before
//! the next setter (a load, store, PUSH, POP or memory ALU form, up to a form that overwrites
//! all six flags without reading CF: [`forms::record_only_on_misses`]) is not written at all:
//! its result waits in `r13` and those miss paths write `result` and `aux` 0 before their
//! handler (seventh round, part M). A block that loops to itself with its flags dead at its head
//! ([`forms::flags_dead_at_entry`]) leaves its last setter's record pending across the back
//! edge; its exits compute it. A block-ending Jcc right after an inline register flag setter
//! branches on the host flags themselves, and the setter's record is written only on the
//! ways that need it (each exit; a back edge only if the flags are live at the loop's head;
//! sixth round, part F). The same holds after a memory-operand setter (CMP/TEST/ALU reading
//! or read-modify-writing memory; seventh round, part M): its probe's miss path, after the
//! handler wrote the record, loads the host flags from it (`popfq` of the six arithmetic flags)
//! and the result register from its `result`, so both paths reach the Jcc alike (a fault in
//! the handler leaves from the handler, the record tier 0's). Any other Jcc, CMOVcc or SETcc
//! right after an inline flag setter gets its condition in `r12b` from the host flags;
//! elsewhere it reads it from the record (ZF and CF inline, the others through
//! `host::lazy_cond`).
//!
//! **Memory.** Inline loads and stores probe the software TLB as tier 0's fast path does
//! (`emu::mmu::tlb`: index, a tag compare against the page of the access's last byte with the
//! current generation, so a page crossing misses; then the addend), way 0 then, only when it
//! misses, way 1 of the two-way TLB (two hot pages sharing an index both stay inline). A miss
//! in both ways, a page crossing, MMIO, a page holding code or not yet dirty (no valid write
//! tag) all go to the handler, which
//! takes tier 0's slow path; the inline path has changed nothing before that. A
//! read-modify-write form probes the write tag (a writable page is readable) before it reads,
//! as tier 0 translates such an operand for write first. The probe takes the table's size,
//! entry layout and offsets from `emu::mmu::tlb` (`TLB_ENTRIES`, `layout`, `Tlb::SETS_OFFSET`):
//! one source of truth, so resizing the TLB needs no change here. A store into a page holding
//! code leaves translations alone unless it touches a 64-byte line holding decoded bytes
//! (`emu::mmu::softmmu`): the handler's slow path writes it without a walk. The index is one
//! `rorx` and a mask on a host with BMI2 (`Layout::bmi2`; `mov`, `shr` and the mask
//! otherwise), and an access at an address known when compiling (absolute or RIP-relative, no
//! FS/GS) has its entry's offset and its tag's page as constants (`x64.rs`
//! `emit_probe_known`; eighth round, part G).
//!
//! **Shared probes** (seventh round, part P; [`forms::probe_groups`], `x64.rs`
//! `emit_access_probe`). Within a block, the inline accesses off one base register (no index,
//! the same segment, no write to the base and no handler call between them) whose bytes lie
//! within 256 bytes form a group of up to [`forms::GROUP_SLOTS`] open at once. The group's
//! first access probes the whole range (indexed by its first byte, the tag compared with the
//! page of its last, the write tag if any access of the group writes) and on a hit keeps the
//! range's host address in a slot of the [`RunCtx`] (`[rbx + ..]`); the later accesses load it
//! (`mov rcx, slot; test rcx, rcx; jz own probe; lea rax, [rcx + offset]`) instead of probing.
//! Every miss path clears the slots after its handler (which may have changed the TLB), and a
//! handler call emitted inline ends the groups at compile time, so a slot is non-zero only
//! where a probe made then would find the same page. An empty slot (the range crossed a page,
//! missed, held code, was not dirty) sends each later access to its own probe, out of line,
//! from the range's linear address kept beside the host one. Where the host flags hold the
//! guest's, a later access that is a load, a store or an ADC/SBB of memory keeps them (eighth
//! round, part K; [`forms::keeps_host_flags`]): `mov rcx, slot; jrcxz island; lea rax, [rcx +
//! offset]` (`jrcxz` reads no flags; its rel8 reaches 127 bytes, so its `jmp own probe` waits
//! in an island shared with the next few kept accesses, stepped over by the hit path; a
//! translation where one does not reach is compiled again with an island beside each), its
//! own probe saves and restores them (`pushfq`/`popfq` around it, both
//! ways out), and its miss path puts them back from the record after the handler. An
//! arithmetic setter followed, through such accesses and flag-neutral forms only, by an inline
//! register ALU or INC/DEC form or an ADC/SBB of memory that keeps them
//! ([`forms::aux_stays_in_host_flags`]) writes only its record's `result`: its `aux` stays
//! in the host flags, the reader takes CF from them, and any other form or path leaving the
//! hit path (every such access's miss path before its handler) computes `aux` from them
//! first. So adc_chain's carries no longer go through `r13`.
//!
//! **SSE/SSE2** ([`sse`], `x64/sse.rs`): XMM moves (to and from memory, registers and GPRs),
//! the packed integer and logic operations and ADD/SUB/MUL/DIV/SQRT/MIN/MAX in PS/PD/SS/SD
//! forms run inline on `cpu.state.xmm` with the same host instruction (host `xmm0`/`xmm1`).
//! The first form of a run of consecutive SSE forms checks CR0.EM/TS and CR4.OSFXSR; a
//! 16-byte memory operand is checked for alignment before the probe; a floating-point form
//! runs only when every exception is masked in the guest's MXCSR, which is loaded into the
//! host's for the run (the host's saved at `[rsp]`) and stored back at its end, merging the
//! sticky flags; a handler called inside the run sees the guest's MXCSR in `cpu.state` and
//! runs under the host's. Any failed check calls the handler, which faults as tier 0 does.
//!
//! **Stubs and precise state.** The shared stubs at the start of code memory are the entry
//! (saves the callee-saved registers, loads `rbx`/`rbp`, jumps to a block), the exit, "leave"
//! (a handler stopped) and "bail" (back to the run loop). The trampoline does what tier 0's
//! `run_block` does when a handler stops: a fault leaves RIP at the instruction and counts the
//! instructions before it; other stops and a store into code count it too. Inline instructions
//! cannot fault (a load or store that would goes to its handler first). So a fault inside
//! translated code leaves exactly tier 0's state. No host signal handlers are involved.
//!
//! **Budget.** Every translation starts with the check tier 0 makes before each block:
//! `cpu.retired` against the run's limit. Blocks are the same blocks tier 0 runs and `retired`
//! is added per block as tier 0 does, so `--deterministic` and `--max-instructions` retire
//! exactly as under tier 0. That one compare also covers what else must send the next entry
//! back to the run loop: a handler that changed the TLB generation (links are made by linear
//! address) or set RF sets the limit to 0 (`exec_one`). RF, which tier 0 clears at every
//! block's start, is cleared by the run loop before it enters translated code; inline code
//! cannot set it, so a chained entry finds it clear.
//!
//! **Chaining.** A translation ends in a chain site for each successor known from its block
//! (the fall-through address, a direct branch's target and next address): an inline Jcc
//! branches on its outcome straight to the exit of each way (which stores its RIP and jumps
//! through its site), a JMP rel and a fall-through store theirs; a branch run by its handler
//! compares the new RIP with each successor. A site is a `jmp rel32` that first leads to a
//! stub returning the site to the run loop;
//! the loop looks the target up as tier 0 would and, if it is translated, patches the site to
//! jump straight to the target's entry.
//!
//! **Indirect branches.** A block ending in JMP/CALL r/m or RET ends with an inline lookup of
//! the engine's indirect-branch table ([`IndirectSlot`], `INDIRECT_SLOTS` slots indexed by a
//! hash of the new RIP): a slot whose RIP matches and whose tag is the table's generation and
//! the block's mode key (a near branch keeps the mode) jumps straight to the target's entry,
//! whose check of the budget runs as for any entry. A miss returns to the
//! run loop, which fills the slot when it enters the target's translation. A slot also holds
//! where the software TLB entry its target's page was fetched through lies and that entry's
//! addend: a hit needs that entry's exec tag to be of the current TLB generation and its
//! addend unchanged, i.e. the page fetchable without a walk and mapped to the same frame, so
//! the block cache's lookup (by frame, linear address and mode) would give the same block
//! (seventh round, part B). Slots therefore survive TLB flushes (the boot's 17,604 CR3/CR4
//! writes) that left their target's mapping alone; a target whose page was remapped, or not
//! walked again since, misses. Blocks crossing into a second page are not put in the table.
//! The table is emptied (its generation bumped, O(1)) wherever links are undone for another
//! reason than a change of mappings: dropped blocks, another CS base, a flushed code memory.
//! RET is looked up the same way when its prediction misses.
//!
//! **RET prediction** ([`shadow`]): a 64-bit block ending in a near CALL pushes a pair (guest
//! return address, host return point) on the host stack and enters its target with a host
//! `call`; a block ending in a near RET compares the RIP it popped with the top pair's guest
//! address and, equal, returns there with `ret 8`, so the host's return predictor follows the
//! guest's calls. The return point is a chain site for the return address, linked and unlinked
//! like any other. Pairs live for one entry into translated code (the exit stub restores
//! `rsp`), within which no link, translation, mode or CS base changes, so they need no tag.
//!
//! **Invalidation.** A link is only a shortcut for the lookup the run loop would make: it holds
//! while the mode, CS base and linear mappings stay as they were, so every link is undone
//! (patched back to its stub) when the CS base differs from the one links were made under, and
//! for the target's links when its block is dropped (a store into its code, a flush); when the
//! block cache's [`CodeObserver`] reports changed mappings, only the links across linear pages
//! are undone: a link within a page stays exact ([`links`] says why). Blocks whose translations
//! self-modifying code dropped [`MAX_RETRANSLATIONS`] times stay on tier 0.
//!
//! **Code memory.** A memfd mapped twice, never writable and executable at one address
//! ([`host`]). It is bounded (`--jit-code-mib`, default 64); when full it is flushed whole:
//! every translation is detached from its block and compilation starts again at the beginning.
//!
//! **Loops.** A block of 64-bit code that branches back to its own start loads all its
//! cached registers once and, at the back edge (an inline Jcc's or JMP's way to the block's
//! start goes there directly), adds its instructions to `retired`, checks the budget (writing
//! the registers back and leaving if it fails) and jumps to its head with the registers still
//! in host registers. Such a loop ending in a Jcc whose instructions never call a handler
//! (register ALU, INC/DEC, MOV, LEA) counts down instead (part F): on entry r15 = r14 = the
//! back edges the budget allows plus one, ceil((limit - retired) / n); each back edge is
//! `lea r15, [r15 - 1]; mov rcx, r15; jrcxz out; jmp head` (no memory, the host flags kept,
//! so a record dead at the head is never written there), and each way out adds
//! (r14 - r15) * n to `retired`. Nothing inside can change the limit or read `retired`, so
//! it stops exactly where the memory check would.
//!
//! **Regions** (seventh round, part R). A hot block of 64-bit code is compiled with the blocks the
//! cache holds that it reaches by direct branches and fall-throughs (both ways of a Jcc, a JMP's
//! target), breadth first, up to [`MAX_REGION_BLOCKS`]: each in the head's mode, wholly in the
//! head's linear page, ending in an inline Jcc or JMP or falling through (CALL, RET, indirect
//! branches and branches run by their handler end a region), and only when one of them branches
//! back to the head (a loop: `JitEngine::region_of`). The translation's entry is the head's; a way
//! from a member to a member is a host jump (an internal edge), every other way an exit with its
//! chain site as in a block (`x64::compile_region`). The guest registers all members' inline forms
//! use get one allocation for the region, the most used first, each use weighted by 16 to the
//! power of its member's loop depth within the region (eighth round, part A:
//! `x64::region::loop_depths`; sha256sum's round loop, an inner loop, outweighs the members
//! run once per block of input): loaded at its entry, kept in host registers across
//! internal edges, written back at exits and before handler calls (and reloaded at the next
//! internal edge). The lazy record is made exact at an internal edge unless the target member's
//! flags are dead at its start (eighth round, part E; `x64::region`): a member that overwrites
//! all six before anything reads them ([`forms::flags_dead_at_entry`]; ROR/ROL and INC/DEC may
//! come first) is entered with the last setter's record unwritten (its result moved to r13, its
//! flags still the host's), and a member of register moves only that jumps on to such a member
//! carries an arithmetic setter's record through the same way; the edge's budget check then
//! keeps the host flags (`lea`, `not`, `cqo`, `jrcxz`: a sign test, exact because a run's
//! `limit - retired` stays below [`MAX_RUN_BUDGET`]) and writes the record only on its way out
//! when the budget stops. Each internal edge makes tier
//! 0's check before a block: a region of register forms only (no handler call can read `retired` or
//! change the limit) counts its budget down (r14 = r15 = limit - retired at the entry, `sub r15, n;
//! ja member` per edge, r14 - r15 added to `retired` at each way out); any other adds n to
//! `retired` in memory and compares it with the limit. Invalidation needs nothing new: the cache
//! drops every block of a physical page when a store hits code in it, so a store into any member
//! drops the head's block too, and with it the region's translation (its incoming links undone as
//! for any dropped translation); the region's jumps stay within one linear page, so they stay exact
//! through a change of mappings as a same-page link does ([`links`]). `--stats` counts regions and
//! their members; the dump lists a region's members.
//!
//! **Dumps.** `STRATA_JIT_DUMP=1` prints each compiled block ([`dump`]): its guest instructions
//! (`*` where an inline form exists) and the host code, disassembled by iced-x86.
//!
//! **How it is checked** (`conformance/`): against tier 0 in lockstep (`lockstep/jit.rs`: the
//! same guest on both engines, every register, flag, MSR and RAM byte compared at pseudo-random
//! instruction counts, over the test kernels, user programs and the Debian boot), by random
//! programs with loops, self-modifying stores, page crossings and faults (`jitfuzz.rs`), and
//! against the host CPU (the instruction differential at threshold 1).
//!
//! **Counts** (`--stats`, `--timeline`): the run loop counts, on its side only, its entries
//! into translated code and why translated code came back (unlinked chain site, dispatch,
//! indirect miss, stop), and the instructions the engine retired (the translated share);
//! generated code counts indirect-table hits and RET-prediction hits and misses (one `inc`
//! each on those paths); with `STRATA_JIT_COUNT` set, each translation's entry counts itself
//! too, for the chain hit rate.
//!
//! All `unsafe` is in [`host`]; the backend ([`x64`]) only encodes. `STRATA_JIT_HISTOGRAM=1`
//! with `--stats` (user) or `--timeline` (run) prints the opcodes still run through the
//! trampoline, most frequent first, and those run in blocks left to tier 0 (each block's
//! instructions counted per entry).

mod backend;
mod dump;
mod forms;
mod host;
mod links;
mod operand;
mod shadow;
mod sse;
mod x64;
mod x87;

use crate::{JitOptions, JitStats};
use backend::{Backend, CompileRequest};

/// The backend of this host (the only one so far: the JIT is built for x86-64 hosts).
type Host = x64::X64;
use emu::cache::{CodeObserver, TranslationHandle};
use emu::cpu::Cpu;
use emu::decoded::Instr;
use emu::engine::{Engine, EngineError, EngineKind, Exit, Limit};
use emu::exception::Stop;
use emu::mmu::softmmu::SoftMmu;
use emu::mmu::tlb::Tlb;
use emu::state::{rflags, CpuState};
use emu::system::Event;
use emu::tier0::{handle_stop, run_block, run_to_limit, Interp, NoObserver};
use hashbrown::HashMap;
use std::cell::RefCell;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::Instant;

/// Set (to anything) to count the instructions translated code runs through the trampoline by
/// opcode; `--stats` prints the most frequent (`JitStats::histogram_table`).
pub const HISTOGRAM_VAR: &str = "STRATA_JIT_HISTOGRAM";

/// Set (to anything) to count every entry into a translation (one `inc` each), which gives
/// `--stats` the chain hit rate; off by default, as it costs an instruction per block.
pub const COUNT_VAR: &str = "STRATA_JIT_COUNT";

/// The most instructions one `run_blocks` runs (an unlimited run comes back to the run loop's
/// caller after that many, about a century at 1 G instructions/s): `limit - retired` stays
/// below 2^62, so translated code may compare `retired` with the limit by the sign of their
/// difference, which needs no host flags (eighth round, part E: `x64::region`).
pub const MAX_RUN_BUDGET: u64 = 1 << 62;

/// Set (to anything): generated code captures host flags with `pushfq` even where the host
/// has LAHF in 64-bit mode (to compare the two captures on one build; see `x64::Capture`).
pub const PUSHF_VAR: &str = "STRATA_JIT_PUSHF";

/// A block whose translation self-modifying code dropped this many times stays on tier 0.
pub const MAX_RETRANSLATIONS: u32 = 8;

/// Slots of the indirect-branch table (a power of two).
pub const INDIRECT_SLOTS: usize = 4096;

/// One slot of the indirect-branch table: guest RIP `rip`, looked up under `tag` (the table's
/// generation << 32 | the mode key), runs the translation whose entry is at host address
/// `host`, as long as the software TLB's entry at byte offset `tlb_entry` (from the start of its
/// entries) still lets the target's linear page `page` be fetched in the current TLB generation
/// with addend `addend` (the same frame): the slot then outlives TLB flushes that left that
/// mapping as it was. `repr(C)`, 64 bytes: generated code indexes and reads it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct IndirectSlot {
    rip: u64,
    tag: u64,
    host: u64,
    page: u64,
    addend: u64,
    tlb_entry: u64,
    _pad: [u64; 2],
}

const _: () = assert!(std::mem::size_of::<IndirectSlot>() == 1 << INDIRECT_SLOT_SHIFT);

/// log2 of an [`IndirectSlot`]'s size (generated code shifts the slot number by it).
pub const INDIRECT_SLOT_SHIFT: u32 = 6;

/// The slot of guest RIP `rip` (the backends compute the same: `(rip ^ rip >> 10) & mask`).
pub fn indirect_slot(rip: u64) -> usize {
    ((rip ^ (rip >> 10)) as usize) & (INDIRECT_SLOTS - 1)
}

/// What generated code reads and the trampoline writes during one entry into translated code.
/// `repr(C)`: generated code reads `cpu`, `limit`, `generation` and the indirect-branch
/// table's fields at fixed offsets.
#[repr(C)]
pub struct RunCtx {
    cpu: *mut Cpu,
    /// The block-entry check leaves when `cpu.retired` reaches this.
    limit: u64,
    /// The TLB generation links were made under.
    generation: u64,
    /// The indirect-branch table (`INDIRECT_SLOTS` slots) and the tag bits of its current
    /// generation (`generation << 32`): a slot filled under an older one never matches.
    indirect: *const IndirectSlot,
    indirect_tag: u64,
    /// Lookups of the indirect-branch table that hit, counted by generated code.
    indirect_hits: u64,
    /// RET prediction ([`shadow`]): the host `rsp` the entry stub saved (the exit stub goes
    /// back to it), the lowest `rsp` a CALL may push a pair at, and the RETs whose target was
    /// (hits) or was not (misses) the top pair's return address, counted by generated code.
    host_rsp: u64,
    ret_floor: u64,
    ret_hits: u64,
    ret_misses: u64,
    /// Entries into translations, counted by generated code with `STRATA_JIT_COUNT` set.
    block_entries: u64,
    /// The host's MXCSR while a run of inline SSE forms holds the guest's (`x64/sse.rs`). Not
    /// on the host stack: its top is the shadow stack's last pair.
    host_mxcsr: u64,
    /// Shared probes (seventh round, part P; `x64.rs`, `probe_group`): per group slot, the
    /// host address of the lowest byte of the range its first access probed (0: no valid
    /// probe, the group's later accesses probe for themselves), and that byte's linear address.
    group_hosts: [u64; forms::GROUP_SLOTS],
    group_las: [u64; forms::GROUP_SLOTS],
    /// Set by the trampoline when it leaves: the stop to deliver (`None`: a store hit code).
    stop: Option<Stop>,
    /// Instructions run through the trampoline, by `Instr::code` (`STRATA_JIT_HISTOGRAM`;
    /// empty otherwise).
    histogram: Vec<u64>,
    /// The same for the instructions of blocks run on tier 0 (`JitStats::tier0_histogram`).
    tier0_histogram: Vec<u64>,
}

/// Offsets generated code uses (from `rbp` = `Cpu`, `rbx` = `RunCtx`).
pub struct Layout {
    gpr: i32,
    lazy_result: i32,
    lazy_aux: i32,
    retired: i32,
    rip: i32,
    /// The pointer to the TLB's entries, and the generation its tags carry.
    tlb_sets: i32,
    tlb_gen: i32,
    ctx_limit: i32,
    ctx_indirect: i32,
    ctx_indirect_tag: i32,
    ctx_indirect_hits: i32,
    ctx_host_rsp: i32,
    ctx_ret_floor: i32,
    ctx_ret_hits: i32,
    ctx_ret_misses: i32,
    ctx_block_entries: i32,
    ctx_group_hosts: i32,
    ctx_group_las: i32,
    /// `STRATA_JIT_COUNT` is set: each translation's entry counts itself.
    count_entries: bool,
    /// The host has BMI2: the inline TLB probe takes the entry's index with `rorx` (no flags,
    /// three operands), one instruction fewer than `mov`, `shr` (eighth round, part G).
    bmi2: bool,
    /// How generated code captures host flags (`lahf` where the host has it in 64-bit mode).
    capture: x64::Capture,
    /// What the inline x87 stack moves read and write (`x64::x87::emit_x87_move`): CR0, RFLAGS.VM
    /// and the FPU's control, status and tag words, registers, FIP and FCS.
    cr0: i32,
    rflags_other: i32,
    fpu_fcw: i32,
    fpu_fsw: i32,
    fpu_ftw: i32,
    fpu_regs: i32,
    fpu_fip: i32,
    fpu_fcs: i32,
}

impl Layout {
    fn new() -> Layout {
        use std::mem::offset_of;
        let state = offset_of!(Cpu, state);
        let lazy = state + offset_of!(CpuState, lazy);
        let l = [
            state + offset_of!(CpuState, gpr),
            lazy + offset_of!(emu::flags::LazyFlags, result),
            lazy + offset_of!(emu::flags::LazyFlags, aux),
            offset_of!(Cpu, retired),
            state + offset_of!(CpuState, rip),
            offset_of!(Cpu, softmmu) + SoftMmu::TLB_OFFSET + Tlb::SETS_OFFSET,
            offset_of!(Cpu, softmmu) + SoftMmu::TLB_OFFSET + Tlb::GEN_OFFSET,
            offset_of!(RunCtx, limit),
            offset_of!(RunCtx, indirect),
            offset_of!(RunCtx, indirect_tag),
            offset_of!(RunCtx, indirect_hits),
            offset_of!(RunCtx, host_rsp),
            offset_of!(RunCtx, ret_floor),
            offset_of!(RunCtx, ret_hits),
            offset_of!(RunCtx, ret_misses),
            offset_of!(RunCtx, block_entries),
            offset_of!(RunCtx, group_hosts),
            offset_of!(RunCtx, group_las),
        ]
        .map(|o| i32::try_from(o).expect("a Cpu is smaller than 2 GiB"));
        assert_eq!(offset_of!(RunCtx, cpu), 0, "the entry stub loads the CPU from [rdi]");
        let fpu = state + offset_of!(CpuState, fpu);
        let fpu_l = [
            state + offset_of!(CpuState, cr0),
            state + offset_of!(CpuState, rflags_other),
            fpu + offset_of!(emu::state::FpuState, fcw),
            fpu + offset_of!(emu::state::FpuState, fsw),
            fpu + offset_of!(emu::state::FpuState, ftw),
            fpu + offset_of!(emu::state::FpuState, regs),
            fpu + offset_of!(emu::state::FpuState, fip),
            fpu + offset_of!(emu::state::FpuState, fcs),
        ]
        .map(|o| i32::try_from(o).expect("a Cpu is smaller than 2 GiB"));
        // The inline stack moves address ST registers as `regs + 2 * physical * 8` (16-byte
        // registers: the 64-bit significand, then the sign and exponent and zero padding).
        assert_eq!(std::mem::size_of::<emu::state::X87Reg>(), 16);
        Layout {
            gpr: l[0],
            lazy_result: l[1],
            lazy_aux: l[2],
            retired: l[3],
            rip: l[4],
            tlb_sets: l[5],
            tlb_gen: l[6],
            ctx_limit: l[7],
            ctx_indirect: l[8],
            ctx_indirect_tag: l[9],
            ctx_indirect_hits: l[10],
            ctx_host_rsp: l[11],
            ctx_ret_floor: l[12],
            ctx_ret_hits: l[13],
            ctx_ret_misses: l[14],
            ctx_block_entries: l[15],
            ctx_group_hosts: l[16],
            ctx_group_las: l[17],
            count_entries: std::env::var_os(COUNT_VAR).is_some(),
            bmi2: std::arch::is_x86_feature_detected!("bmi2"),
            capture: if std::env::var_os(PUSHF_VAR).is_some() { x64::Capture::Pushf } else { x64::Capture::of_host() },
            cr0: fpu_l[0],
            rflags_other: fpu_l[1],
            fpu_fcw: fpu_l[2],
            fpu_fsw: fpu_l[3],
            fpu_ftw: fpu_l[4],
            fpu_regs: fpu_l[5],
            fpu_fip: fpu_l[6],
            fpu_fcs: fpu_l[7],
        }
    }
}

/// Runs one instruction for translated code (called by `host::call_handler`): 0 to go on, 1 to
/// leave with `stop` set as tier 0's `run_block` would leave the CPU.
fn exec_one(ctx: &mut RunCtx, cpu: &mut Cpu, e: &Instr, info: u32) -> u32 {
    if let Some(n) = ctx.histogram.get_mut(e.code as usize) {
        *n += 1;
    }
    let stop = &mut ctx.stop;
    let i = u64::from(info & !backend::INFO_BRANCH);
    let result = (e.exec)(cpu, e);
    // Block entries check only the budget: a handler that changed the TLB generation (links
    // are made by linear address) or set RF (which tier 0 clears at the next block's start,
    // and the run loop clears before it enters translated code) makes the next entry leave.
    if cpu.softmmu.tlb_generation() != ctx.generation || cpu.state.rflags_other & rflags::RF != 0 {
        ctx.limit = 0;
    }
    if result.is_ok() && !cpu.softmmu.stop_block() {
        return 0;
    }
    cpu.softmmu.clear_stop_block();
    match result {
        Ok(()) => {
            // A store hit a page holding code: the rest of the block may be stale.
            cpu.retired += i + 1;
            if info & backend::INFO_BRANCH == 0 {
                cpu.state.rip = e.next_rip;
            }
            *stop = None;
        }
        Err(Stop::Fault(f)) => {
            cpu.retired += i;
            cpu.state.rip = e.rip();
            *stop = Some(Stop::Fault(f));
        }
        Err(other) => {
            cpu.retired += i + 1;
            *stop = Some(other);
        }
    }
    1
}

/// Blocks a region holds at most: bounds its code (each member is compiled into every region
/// that reaches it) and the time spent compiling it.
pub const MAX_REGION_BLOCKS: usize = 8;

/// Whether block `b` can be a region member: it ends in an inline Jcc or JMP (whose ways the
/// region compiles as jumps or exits) or falls through. Calls, returns, indirect branches and
/// branches run by their handler end regions (RET prediction and the indirect table stay with
/// single-block translations).
fn region_end(b: &emu::cache::Block) -> bool {
    match b.instrs.last() {
        Some(last) if b.ends_in_branch => {
            matches!(forms::form_of(last, true), Some(forms::Form::Jcc { .. } | forms::Form::Jmp))
        }
        Some(_) => true,
        None => false,
    }
}

/// The guest RIPs block `b` may end at that are known from it: a direct branch's target and
/// next address, or the fall-through address (none for a near indirect branch). For other
/// branches these never match (or match correctly: a link only replaces the lookup the run
/// loop would make).
fn direct_successors(b: &emu::cache::Block) -> Vec<u64> {
    let mut successors = Vec::with_capacity(2);
    if !b.ends_in_branch {
        successors.push(b.end_rip);
    } else if let Some(last) = b.instrs.last().filter(|e| !forms::is_near_indirect(e)) {
        successors.push(last.imm);
        if last.next_rip != last.imm {
            successors.push(last.next_rip);
        }
    }
    successors
}

/// The ways block `b` (a possible region member, `region_end`) can go: both of a Jcc, a
/// JMP's target only (not its next address, which `direct_successors` lists too), the
/// fall-through address.
fn region_successors(b: &emu::cache::Block) -> Vec<u64> {
    match b.instrs.last() {
        Some(last) if b.ends_in_branch && forms::form_of(last, true) == Some(forms::Form::Jmp) => vec![last.imm],
        _ => direct_successors(b),
    }
}

/// One compiled block.
struct Translation {
    /// Its block in the cache.
    block: u32,
    /// The block's linear address.
    la: u64,
    /// Entry offset in code memory.
    entry: usize,
    /// Chain sites linked to this translation.
    incoming: Vec<links::Link>,
    live: bool,
    /// The block's bytes lie in one linear page (a link from a block of that page may outlive
    /// a change of mappings: `links`).
    one_page: bool,
    /// Listed in `JitEngine::cross_linked`.
    cross_listed: bool,
}

/// What the block cache told the observer since the run loop last looked.
#[derive(Default)]
struct Events {
    dropped: Vec<TranslationHandle>,
    mappings_changed: bool,
}

struct Observer(Rc<RefCell<Events>>);

impl CodeObserver for Observer {
    fn blocks_dropped(&mut self, handles: &[TranslationHandle]) {
        self.0.borrow_mut().dropped.extend_from_slice(handles);
    }
    fn mappings_changed(&mut self) {
        self.0.borrow_mut().mappings_changed = true;
    }
}

/// The tier-1 engine (see the module doc).
pub struct JitEngine {
    interp: Interp,
    mem: host::CodeMemory,
    stubs: <Host as Backend>::Stubs,
    layout: Layout,
    /// Bytes of code memory in use (stubs included).
    used: usize,
    /// Where compiled blocks start (after the stubs).
    code_start: usize,
    translations: Vec<Translation>,
    events: Rc<RefCell<Events>>,
    opts: JitOptions,
    stats: Rc<RefCell<JitStats>>,
    /// CS base the current links were made under.
    links_cs_base: u64,
    /// Translations of a block address dropped by stores into code.
    dropped_at: HashMap<u64, u32>,
    /// The indirect-branch table generated code looks RIPs up in (see the module doc).
    indirect: Box<[IndirectSlot]>,
    /// Its generation (1..): bumped wherever links are undone, which empties it at once.
    indirect_generation: u64,
    /// `STRATA_JIT_DUMP` is set: print each compiled block.
    dump: bool,
    /// Translations (indices) that may hold incoming links across linear pages: the ones a
    /// change of mappings undoes (`links`).
    cross_linked: Vec<u32>,
}

impl JitEngine {
    /// The same JIT capturing host flags with `pushfq` (the fallback for hosts without LAHF in
    /// 64-bit mode), for tests; call before anything is compiled.
    #[cfg(test)]
    fn with_pushf_capture(mut self) -> JitEngine {
        assert!(self.translations.is_empty(), "the capture is chosen before compiling");
        self.layout.capture = x64::Capture::Pushf;
        self
    }

    /// A JIT with empty caches; `stats` is updated as it runs.
    ///
    /// # Errors
    /// Code memory could not be set up.
    pub fn new(opts: JitOptions, stats: Rc<RefCell<JitStats>>) -> std::io::Result<JitEngine> {
        let mut mem = host::CodeMemory::new(opts.code_bytes.max(1 << 16))?;
        let layout = Layout::new();
        let (stub_code, stubs) = Host::emit_stubs(mem.exec_base(), &layout);
        mem.bytes_mut()[..stub_code.len()].copy_from_slice(&stub_code);
        let code_start = stub_code.len().next_multiple_of(16);
        let events = Rc::new(RefCell::new(Events::default()));
        let mut interp = Interp::new();
        interp.cache.set_observer(Box::new(Observer(events.clone())));
        stats.borrow_mut().code_capacity = mem.len() as u64;
        if std::env::var_os(HISTOGRAM_VAR).is_some() {
            stats.borrow_mut().histogram = vec![0; 1 << 13];
            stats.borrow_mut().tier0_histogram = vec![0; 1 << 13];
        }
        Ok(JitEngine {
            interp,
            mem,
            stubs,
            layout,
            used: code_start,
            code_start,
            translations: Vec::new(),
            events,
            opts,
            stats,
            links_cs_base: 0,
            dropped_at: HashMap::new(),
            indirect: vec![IndirectSlot::default(); INDIRECT_SLOTS].into_boxed_slice(),
            indirect_generation: 1,
            dump: std::env::var_os(dump::DUMP_VAR).is_some(),
            cross_linked: Vec::new(),
        })
    }

    /// Runs `cpu` until an instruction stops or about `budget` instructions have retired
    /// (checked at block boundaries, exactly where tier 0's `Interp::run` checks).
    fn run_blocks(&mut self, cpu: &mut Cpu, budget: u64) -> Exit {
        let limit = cpu.retired.saturating_add(budget.min(MAX_RUN_BUDGET));
        self.interp.cache.forget_mode();
        // Moved in and out of the shared statistics (a pointer move, not a copy).
        let histogram = std::mem::take(&mut self.stats.borrow_mut().histogram);
        let tier0_histogram = std::mem::take(&mut self.stats.borrow_mut().tier0_histogram);
        let mut ctx = RunCtx {
            cpu: std::ptr::null_mut(),
            limit,
            generation: 0,
            indirect: self.indirect.as_ptr(),
            indirect_tag: 0,
            indirect_hits: 0,
            host_rsp: 0,
            ret_floor: 0,
            ret_hits: 0,
            ret_misses: 0,
            block_entries: 0,
            host_mxcsr: 0,
            group_hosts: [0; forms::GROUP_SLOTS],
            group_las: [0; forms::GROUP_SLOTS],
            stop: None,
            histogram,
            tier0_histogram,
        };
        let exit = self.run_loop(cpu, &mut ctx);
        let mut stats = self.stats.borrow_mut();
        stats.histogram = std::mem::take(&mut ctx.histogram);
        stats.tier0_histogram = std::mem::take(&mut ctx.tier0_histogram);
        stats.indirect_hits += ctx.indirect_hits;
        stats.ret_hits += ctx.ret_hits;
        stats.ret_misses += ctx.ret_misses;
        stats.block_entries += ctx.block_entries;
        exit
    }

    /// `run_blocks`' loop, with its context.
    fn run_loop(&mut self, cpu: &mut Cpu, ctx: &mut RunCtx) -> Exit {
        let limit = ctx.limit;
        // A chain site whose target the loop is about to look up (offset in code memory).
        let mut pending: Option<usize> = None;
        // The block tier 0 ran last (the cache's own chaining, as in tier 0's loop).
        let mut prev: Option<u32> = None;
        // A translation missed in the indirect-branch table: the next translation entered
        // fills the slot of its RIP.
        let mut fill_indirect = false;
        loop {
            if cpu.softmmu.has_modified_code() {
                self.drop_modified_code(cpu);
                prev = None;
            }
            if self.process_events() {
                pending = None;
            }
            if cpu.softmmu.take_poll_request() {
                return Exit::Poll;
            }
            if cpu.retired >= limit {
                return Exit::Limit;
            }
            let idx = match self.interp.cache.lookup_after(cpu, prev.take()) {
                Ok(idx) => idx,
                Err(stop) => {
                    if let Some(exit) = self.after_stop(cpu, stop) {
                        return exit;
                    }
                    pending = None;
                    continue;
                }
            };
            if self.process_events() {
                pending = None;
            }
            let block = self.interp.cache.enter(idx);
            let (mut handle, executions, la) = (block.translation(), block.executions(), block.la);
            if handle.is_none() && executions >= self.opts.threshold && self.worth_compiling(la) {
                // At threshold 1 every block is compiled, as the checks that run "everything as
                // translated code" need (the instruction differential, the fuzzer, the lockstep).
                if self.opts.threshold > 1 && self.mostly_fallbacks(idx) {
                    // Tier 0's loop runs handler calls faster than the trampoline does.
                    self.dropped_at.insert(la, MAX_RETRANSLATIONS);
                    self.stats.borrow_mut().left_on_tier0 += 1;
                } else {
                    handle = self.compile(idx);
                    if handle.is_none() {
                        pending = None;
                    }
                }
            }
            let result = match handle {
                Some(h) => {
                    let cs_base = if cpu.state.code_bits() == 64 { 0 } else { cpu.state.segs[1].base };
                    if cs_base != self.links_cs_base {
                        self.unlink_all();
                        self.links_cs_base = cs_base;
                        pending = None;
                    }
                    let entry = self.translations[h.0.get() as usize - 1].entry;
                    if let Some(site) = pending.take() {
                        self.link(site, h);
                    }
                    // Any RIP maps to the translation entered for it now (this mode, CS base
                    // and generation), so a fill is never wrong, only maybe not useful.
                    let tag = self.indirect_generation << 32;
                    if std::mem::take(&mut fill_indirect) {
                        self.fill_indirect_slot(cpu, idx, entry, tag);
                    }
                    // Translations do not clear RF at their entries (a handler that sets it
                    // ends the chain: `exec_one`); tier 0 clears it at a block's start.
                    cpu.state.rflags_other &= !rflags::RF;
                    ctx.cpu = cpu;
                    ctx.indirect_tag = tag;
                    ctx.generation = cpu.softmmu.tlb_generation();
                    ctx.limit = limit;
                    let before = cpu.retired;
                    let r = self.mem.enter(ctx, entry);
                    // Counted here, on the run loop's side: nothing on translated code's paths.
                    let mut stats = self.stats.borrow_mut();
                    stats.translated_instructions += cpu.retired - before;
                    stats.entries += 1;
                    match r {
                        backend::RESULT_DISPATCH => {
                            stats.exits_dispatch += 1;
                            Ok(())
                        }
                        backend::RESULT_INDIRECT => {
                            fill_indirect = true;
                            stats.indirect_misses += 1;
                            Ok(())
                        }
                        backend::RESULT_STOP => {
                            stats.exits_stop += 1;
                            match ctx.stop.take() {
                                Some(stop) => Err(stop),
                                None => Ok(()),
                            }
                        }
                        site => {
                            stats.exits_unlinked += 1;
                            pending = Some(site as usize - self.mem.exec_base());
                            Ok(())
                        }
                    }
                }
                None => {
                    pending = None;
                    prev = Some(idx);
                    let block = self.interp.cache.block(idx);
                    if !ctx.tier0_histogram.is_empty() {
                        for e in &block.instrs {
                            if let Some(n) = ctx.tier0_histogram.get_mut(e.code as usize) {
                                *n += 1;
                            }
                        }
                    }
                    run_block(cpu, block, &mut NoObserver)
                }
            };
            if let Err(stop) = result {
                pending = None;
                prev = None;
                if let Some(exit) = self.after_stop(cpu, stop) {
                    return exit;
                }
            }
        }
    }

    /// What tier 0's loop does after a stop: drop blocks stores hit, forget the mode, deliver
    /// the stop (system guests) or return it.
    fn after_stop(&mut self, cpu: &mut Cpu, stop: Stop) -> Option<Exit> {
        if cpu.softmmu.has_modified_code() {
            self.drop_modified_code(cpu);
        }
        self.interp.cache.forget_mode();
        handle_stop(cpu, stop)
    }

    #[inline(never)]
    fn drop_modified_code(&mut self, cpu: &mut Cpu) {
        let cache = &mut self.interp.cache;
        cpu.softmmu.drain_modified_code(|page| cache.invalidate_page(page));
        for h in &self.events.borrow().dropped {
            let la = self.translations[h.0.get() as usize - 1].la;
            *self.dropped_at.entry(la).or_default() += 1;
        }
    }

    /// With inline forms on: whether fewer than a quarter of block `idx`'s instructions have
    /// one (such a block stays on tier 0).
    fn mostly_fallbacks(&self, idx: u32) -> bool {
        if !self.opts.inline {
            return false;
        }
        let block = self.interp.cache.block(idx);
        let bits64 = block.mode & 0xff == 64;
        // x87 register-stack forms count as inline: their direct call (jit/x87.rs, part X) is
        // cheaper than tier 0's loop.
        let inline = block.instrs.iter().filter(|e| forms::form_of(e, bits64).is_some() || x87::direct(e)).count();
        inline * 4 < block.instrs.len()
    }

    /// Whether a block at `la` may be compiled (self-modifying code has not dropped it too
    /// often, and it was not found to be mostly handler calls).
    fn worth_compiling(&self, la: u64) -> bool {
        self.dropped_at.get(&la).is_none_or(|&n| n < MAX_RETRANSLATIONS)
    }

    /// Applies what the observer was told; true if anything was (pending links are then stale).
    #[inline(always)]
    fn process_events(&mut self) -> bool {
        let ev = self.events.borrow();
        if ev.dropped.is_empty() && !ev.mappings_changed {
            return false;
        }
        drop(ev);
        self.apply_events();
        true
    }

    /// `process_events`' work, out of the run loop's line.
    #[inline(never)]
    fn apply_events(&mut self) {
        let mut ev = self.events.borrow_mut();
        let dropped = std::mem::take(&mut ev.dropped);
        let mappings = std::mem::take(&mut ev.mappings_changed);
        drop(ev);
        let mut stats = self.stats.borrow_mut();
        stats.dropped += dropped.len() as u64;
        drop(stats);
        let dropped_any = !dropped.is_empty();
        for h in dropped {
            let t = &mut self.translations[h.0.get() as usize - 1];
            t.live = false;
            let incoming = std::mem::take(&mut t.incoming);
            for l in incoming {
                Host::patch_jump(self.mem.bytes_mut(), l.site, l.stub);
            }
        }
        if mappings {
            self.unlink_cross_page();
        }
        if dropped_any {
            self.forget_indirect();
        }
    }

    /// Fills the indirect-branch table's slot of the current RIP with the translation of block
    /// `idx` (entry offset `entry`) under table tag `tag`, with the TLB entry its page was
    /// fetched through (see [`IndirectSlot`]). Not for a block crossing into a second page
    /// (the TLB check covers the first page only) or one whose page is not in the TLB now
    /// (the block cache found it without a fetch): those miss every time, which is only slower.
    fn fill_indirect_slot(&mut self, cpu: &Cpu, idx: u32, entry: usize, tag: u64) {
        let block = self.interp.cache.block(idx);
        if block.pages[1] != u64::MAX {
            return;
        }
        let Some((tlb_entry, addend)) = cpu.softmmu.tlb().exec_entry(cpu.state.cpl == 3, block.la) else {
            return;
        };
        let rip = cpu.state.rip;
        self.indirect[indirect_slot(rip)] = IndirectSlot {
            rip,
            tag: tag | u64::from(block.mode),
            host: (self.mem.exec_base() + entry) as u64,
            page: block.la & !0xfff,
            addend,
            tlb_entry: tlb_entry as u64,
            _pad: [0; 2],
        };
    }

    /// Empties the indirect-branch table (its slots may name dropped translations or hold RIPs
    /// of another CS base): a new generation, so no old slot matches. A change of mappings
    /// does not need it: each slot checks its target's TLB entry ([`IndirectSlot`]).
    fn forget_indirect(&mut self) {
        self.indirect_generation += 1;
        if self.indirect_generation >= 1 << 31 {
            // Never in practice; wrapping would let a stale slot match again.
            self.indirect.fill(IndirectSlot::default());
            self.indirect_generation = 1;
        }
    }

    /// Undoes every chain link (and the indirect-branch table's shortcuts).
    fn unlink_all(&mut self) {
        self.forget_indirect();
        for t in &mut self.translations {
            for l in t.incoming.drain(..) {
                Host::patch_jump(self.mem.bytes_mut(), l.site, l.stub);
            }
            t.cross_listed = false;
        }
        self.cross_linked.clear();
    }

    /// Links chain site `site` (unlinked now) to translation `to`.
    fn link(&mut self, site: usize, to: TranslationHandle) {
        let stub = Host::jump_target(self.mem.bytes(), site);
        let to = to.0.get() as usize - 1;
        let same_page = links::same_page(&self.translations, site, to);
        let t = &mut self.translations[to];
        Host::patch_jump(self.mem.bytes_mut(), site, t.entry);
        t.incoming.push(links::Link { site, stub, same_page });
        if !same_page && !t.cross_listed {
            t.cross_listed = true;
            self.cross_linked.push(to as u32);
        }
        self.stats.borrow_mut().links += 1;
    }

    /// Compiles block `idx` and attaches the translation; `None` if it does not fit even in an
    /// empty code memory.
    fn compile(&mut self, idx: u32) -> Option<TranslationHandle> {
        let start = Instant::now();
        let compiled = match self.compile_at(idx) {
            Some(c) => c,
            None => {
                self.flush_translations();
                self.stats.borrow_mut().full_flushes += 1;
                self.compile_at(idx)?
            }
        };
        let (at, len) = compiled;
        let la = self.interp.cache.block(idx).la;
        self.used = at + len;
        let handle = TranslationHandle(NonZeroU32::new(self.translations.len() as u32 + 1).expect("n + 1 > 0"));
        let one_page = self.interp.cache.block(idx).pages[1] == u64::MAX;
        self.translations.push(Translation {
            block: idx,
            la,
            entry: at,
            incoming: Vec::new(),
            live: true,
            one_page,
            cross_listed: false,
        });
        self.interp.cache.set_translation(idx, Some(handle));
        let mut stats = self.stats.borrow_mut();
        stats.compiled += 1;
        stats.code_bytes += len as u64;
        stats.compile_ns += start.elapsed().as_nanos() as u64;
        Some(handle)
    }

    /// Assembles block `idx` at the end of the used code memory and writes it there: (offset,
    /// length), or `None` when it does not fit.
    fn compile_at(&mut self, idx: u32) -> Option<(usize, usize)> {
        let members = self.region_of(idx);
        let block = self.interp.cache.block(idx);
        let region: Vec<backend::RegionMember> = if members.len() > 1 {
            let cache = &self.interp.cache;
            members
                .iter()
                .map(|&m| {
                    let b = cache.block(m);
                    backend::RegionMember { block: b, successors: direct_successors(b) }
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut successors = Vec::with_capacity(2);
        // A near indirect branch ends with the table lookup instead of chain sites.
        let indirect = block.ends_in_branch && block.instrs.last().is_some_and(forms::is_near_indirect);
        if indirect {
            // No successor known before it runs.
        } else if block.ends_in_branch {
            // A direct branch's target and the next address; for other branches these never
            // match (or match correctly: a link only replaces the lookup the loop would make).
            if let Some(last) = block.instrs.last() {
                successors.push(last.imm);
                if last.next_rip != last.imm {
                    successors.push(last.next_rip);
                }
            }
        } else {
            successors.push(block.end_rip);
        }
        let at = self.used.next_multiple_of(16);
        let base = self.mem.exec_base();
        let req = CompileRequest {
            block,
            successors: &successors,
            indirect,
            at: base + at,
            base,
            inline: self.opts.inline,
            region: &region,
        };
        let code = Host::compile(&req, &self.stubs, &self.layout);
        self.stats.borrow_mut().x87_direct_sites += x87::take_direct_sites();
        if at + code.len() > self.mem.len() {
            return None;
        }
        self.mem.bytes_mut()[at..at + code.len()].copy_from_slice(&code);
        if self.dump {
            if region.is_empty() {
                eprint!("{}", dump::dump(block, &code, (base + at) as u64));
            } else {
                let blocks: Vec<&emu::cache::Block> = region.iter().map(|m| m.block).collect();
                eprint!("{}", dump::dump_region(&blocks, &code, (base + at) as u64));
            }
        }
        if !region.is_empty() {
            let mut stats = self.stats.borrow_mut();
            stats.regions += 1;
            stats.region_members += region.len() as u64;
        }
        Some((at, code.len()))
    }

    /// The blocks of the region headed by block `idx` (seventh round, part R), the head first:
    /// the blocks the cache holds that the head reaches by direct branches and fall-throughs
    /// (breadth first, at most [`MAX_REGION_BLOCKS`]), each in 64-bit code, in the head's mode
    /// and wholly in the head's linear page (so in its physical page), ending in an inline Jcc
    /// or JMP or falling through, provided one of them branches back to the head (a loop).
    /// Just `[idx]` when there is no such block or loop, or inline forms are off.
    ///
    /// One page because a store into any member's code then drops the head's block too (the
    /// cache drops every block of a page a store into code hits) and with it the region's
    /// translation; and because a jump within the head's linear page stays exact through a
    /// change of mappings, as a same-page link does (`links`).
    fn region_of(&self, idx: u32) -> Vec<u32> {
        let cache = &self.interp.cache;
        let head = cache.block(idx);
        let mut members = vec![idx];
        if !self.opts.inline || head.mode & 0xff != 64 || head.pages[1] != u64::MAX || !region_end(head) {
            return members;
        }
        let mut next = 0;
        while next < members.len() && members.len() < MAX_REGION_BLOCKS {
            for rip in region_successors(cache.block(members[next])) {
                if rip >> 12 != head.la >> 12 || members.len() >= MAX_REGION_BLOCKS {
                    continue;
                }
                let Some(m) = cache.find(head.pages[0] | (rip & 0xfff), rip, head.mode) else { continue };
                let b = cache.block(m);
                if !members.contains(&m) && b.pages[1] == u64::MAX && region_end(b) && self.worth_compiling(rip) {
                    members.push(m);
                }
            }
            next += 1;
        }
        // Only loops through the head: a region that is entered and left once per run of its
        // blocks costs its entry (every register loaded, the countdown set up) and gains
        // little over chained blocks (the bytecode workload ran 1% more host instructions).
        let cache = &self.interp.cache;
        if !members.iter().any(|&m| region_successors(cache.block(m)).contains(&head.la)) {
            members.truncate(1);
        }
        members
    }

    /// Detaches every translation and empties code memory (it is full, or the code was flushed).
    fn flush_translations(&mut self) {
        for (n, t) in self.translations.iter().enumerate() {
            let h = TranslationHandle(NonZeroU32::new(n as u32 + 1).expect("n + 1 > 0"));
            if t.live && self.interp.cache.block(t.block).translation() == Some(h) {
                self.interp.cache.set_translation(t.block, None);
            }
        }
        self.translations.clear();
        self.cross_linked.clear();
        self.forget_indirect();
        self.used = self.code_start;
        self.events.borrow_mut().dropped.clear();
    }
}

impl Engine for JitEngine {
    fn block_cache(&self) -> Option<&emu::cache::BlockCache> {
        Some(&self.interp.cache)
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Jit
    }

    fn load_state(&mut self, _cpu: &mut Cpu) -> Result<(), EngineError> {
        // Runs on `cpu.state` directly, as tier 0 does.
        Ok(())
    }

    fn store_state(&mut self, _cpu: &mut Cpu) -> Result<(), EngineError> {
        Ok(())
    }

    /// Tier 0's `Engine::run` with `run_blocks` for its block loop: whole blocks while the
    /// limit is more than a block away, then tier 0's `step`, so limits are exact.
    fn run(&mut self, cpu: &mut Cpu, limit: &Limit) -> Result<Exit, EngineError> {
        let before = cpu.retired;
        let exit = if *limit == Limit::NONE {
            self.run_blocks(cpu, u64::MAX)
        } else {
            run_to_limit(
                self,
                cpu,
                limit,
                |jit, cpu, budget| jit.run_blocks(cpu, budget),
                |jit, cpu| jit.interp.step(cpu),
            )
        };
        // The base of the translated share (`--stats`).
        self.stats.borrow_mut().retired += cpu.retired - before;
        Ok(exit)
    }

    fn interrupt_ready(&self, cpu: &Cpu) -> bool {
        cpu.state.rflags_other & rflags::IF != 0
    }

    fn interrupts_enabled(&self, cpu: &Cpu) -> bool {
        cpu.state.rflags_other & rflags::IF != 0
    }

    fn inject_interrupt(&mut self, cpu: &mut Cpu, vector: u8) -> Result<Option<Exit>, EngineError> {
        Ok(cpu.deliver(Event::External(vector)).is_err().then_some(Exit::TripleFault))
    }

    fn software_nmi(&self) -> bool {
        true
    }

    fn step_one(&mut self, cpu: &mut Cpu) -> Option<Option<Exit>> {
        Some(self.interp.step(cpu))
    }

    fn flush_code(&mut self, cpu: &mut Cpu) {
        self.interp.flush_code(cpu);
        self.flush_translations();
        self.events.borrow_mut().mappings_changed = false;
        self.stats.borrow_mut().flushes += 1;
    }
}

#[cfg(test)]
impl JitEngine {
    /// The JIT as on a host without BMI2 (the probe's `mov`/`shr` index), for tests of both
    /// forms on any host.
    fn without_bmi2(mut self) -> JitEngine {
        self.layout.bmi2 = false;
        self
    }

    /// Whether this JIT's probes take the `rorx` index.
    fn uses_bmi2(&self) -> bool {
        self.layout.bmi2
    }
}

#[cfg(test)]
mod tests;
