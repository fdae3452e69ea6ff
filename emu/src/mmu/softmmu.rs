//! `SoftMmu`: the caches an engine that runs guest code in software keeps beside the
//! architectural machine. Tier 0's interpreter loop is one user; the JIT will share them.
//!
//! It holds the software TLB, which 64-byte lines of each physical RAM page hold decoded code,
//! the queue of code pages a store has hit since the run loop last looked, and the "stop this
//! block" flag a store into code raises.
//!
//! Code is tracked by line so data sharing a page with code does not evict it: every store to
//! a page holding code leaves the TLB's fast path (its write tag stays invalid), but only a
//! store that touches a line holding decoded bytes reports the page (and its blocks are
//! dropped); a store elsewhere in the page is written and nothing else happens. None of it is architectural: dropping it all (a TLB flush, a
//! `flush_code`) changes speed only. `Cpu` holds one `SoftMmu` so the memory paths every
//! instruction handler takes reach it.

use super::tlb::Tlb;
use super::walk::Translation;

/// The software-MMU caches (see the module doc).
pub struct SoftMmu {
    tlb: Tlb,
    /// Per physical page of RAM, one bit per 64-byte line: set while the line holds bytes of a
    /// decoded block. A page holds code while its word is not 0.
    code_lines: Vec<u64>,
    /// Physical pages written while marked as code; the run loop drops their blocks.
    modified_code: Vec<u64>,
    /// Set (through the memory slow path) when the rest of the current block must not run.
    stop_block: bool,
    /// With a BIOS: bit n set when stores to page 0xC0000 + n * 4 KiB must take the slow path
    /// (PAM sends them to the ROM or the hidden RAM; `firmware/shadow.rs`). 0 otherwise.
    rom_write_protect: u64,
    /// Set with `stop_block` by a store that may have made an interrupt deliverable (a write
    /// to the local APIC: a self-IPI, EOI, TPR): the run loop returns to the machine at once.
    poll_requested: bool,
    /// The same request from another thread (an I/O thread's completion, [`SoftMmu::kicker`]),
    /// seen between blocks: the current block runs to its end, as hardware takes an interrupt
    /// at an instruction boundary.
    kick: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SoftMmu {
    /// Where the TLB lies inside a `SoftMmu` (for generated code; see `Tlb::SETS_OFFSET`).
    pub const TLB_OFFSET: usize = std::mem::offset_of!(SoftMmu, tlb);

    /// Empty caches for `ram_len` bytes of guest RAM.
    pub fn new(ram_len: u64) -> Self {
        let pages = ram_len.div_ceil(4096) as usize;
        SoftMmu {
            tlb: Tlb::default(),
            code_lines: vec![0; pages],
            modified_code: Vec::new(),
            stop_block: false,
            rom_write_protect: 0,
            poll_requested: false,
            kick: std::sync::Arc::default(),
        }
    }

    /// The TLB, for the memory fast paths.
    #[inline(always)]
    pub fn tlb(&self) -> &Tlb {
        &self.tlb
    }

    /// Caches a page walk's result for linear address `la`; `ram_host` is the host address of
    /// guest physical 0. Writes to a page holding code stay on the slow path, so the store is seen.
    pub fn fill_tlb(&mut self, user: bool, la: u64, t: &Translation, ram_host: u64, in_ram: bool) {
        let code = self.is_code_page(t.page) || self.rom_write_protected(t.page);
        self.tlb.fill(user, la, t, ram_host, in_ram, code);
    }

    /// Physical address for a `bytes`-long store at `la` (one page) that needs no walk but
    /// must take the slow path because its page holds code ([`Tlb::code_write_paddr`]).
    #[inline(always)]
    pub fn code_write_paddr(&self, user: bool, la: u64, bytes: usize) -> Option<u64> {
        self.tlb.code_write_paddr(user, la, bytes)
    }

    /// Sets which pages of 0xC0000-0xFFFFF are write-protected (see the field); the caller
    /// flushes the TLB.
    pub fn set_rom_write_protect(&mut self, mask: u64) {
        self.rom_write_protect = mask;
    }

    /// True if a store to physical `paddr` must go to the BIOS's shadow logic, not RAM.
    #[inline(always)]
    pub fn rom_write_protected(&self, paddr: u64) -> bool {
        let off = paddr.wrapping_sub(crate::firmware::shadow::SHADOW_BASE);
        off < crate::firmware::shadow::SHADOW_END - crate::firmware::shadow::SHADOW_BASE
            && self.rom_write_protect >> (off >> 12) & 1 != 0
    }

    /// Drops every cached translation (CR0.PG/WP/PE, CR4 paging bits or EFER.NXE changed; a
    /// loader or runner rewrote the page tables).
    pub fn flush_tlb(&mut self) {
        self.tlb.flush_all();
    }

    /// Drops the non-global translations (a CR3 write); global ones go too (an over-flush).
    pub fn flush_tlb_non_global(&mut self) {
        self.tlb.flush_non_global();
    }

    /// Drops the translation of one page (INVLPG).
    pub fn flush_tlb_page(&mut self, la: u64) {
        self.tlb.flush_page(la);
    }

    /// Bumped by every TLB flush: caches keyed by linear address compare it to know to forget.
    #[inline(always)]
    pub fn tlb_generation(&self) -> u64 {
        self.tlb.generation
    }

    /// True if physical page `paddr` (page-aligned) holds decoded code.
    #[inline(always)]
    pub fn is_code_page(&self, paddr: u64) -> bool {
        self.code_lines.get((paddr >> 12) as usize).is_some_and(|&w| w != 0)
    }

    /// True if a `bytes`-long store at physical `pa` (within one page) touches a line holding
    /// decoded code.
    #[inline(always)]
    pub fn writes_code(&self, pa: u64, bytes: usize) -> bool {
        self.code_lines.get((pa >> 12) as usize).is_some_and(|&w| w != 0 && w & line_mask(pa, bytes as u64) != 0)
    }

    /// Marks a whole physical page as holding code: stores to it will take the slow path.
    pub fn mark_code_page(&mut self, paddr: u64) {
        self.mark_code(paddr & !0xfff, 4096);
    }

    /// Marks the lines of `len` bytes at physical `pa` (clipped to its page) as holding code;
    /// the first mark of a page takes its stores off the TLB's fast path.
    pub fn mark_code(&mut self, pa: u64, len: u64) {
        let page = pa & !0xfff;
        if let Some(w) = self.code_lines.get_mut((page >> 12) as usize) {
            let was_code = *w != 0;
            *w |= line_mask(pa, len.clamp(1, 4096 - (pa & 0xfff)));
            if !was_code {
                self.tlb.protect_code_page(page);
            }
        }
    }

    /// Unmarks a code page (its blocks must be dropped by the caller).
    pub fn clear_code_page(&mut self, paddr: u64) {
        if let Some(w) = self.code_lines.get_mut((paddr >> 12) as usize) {
            *w = 0;
        }
    }

    /// A store hit code page `page`: unmark it, queue it for the run loop, and stop the block.
    pub fn code_written(&mut self, page: u64) {
        self.clear_code_page(page);
        self.modified_code.push(page);
        self.stop_block = true;
    }

    /// Physical page `frame` (page-aligned) was written by someone other than a guest store (the
    /// user-mode kernel, a loader): if it holds decoded code, it is unmarked and queued for the
    /// engine to drop, as a guest store's is, so the writer needs no engine. No block is running,
    /// so none is stopped.
    pub fn note_code_written(&mut self, frame: u64) {
        if self.is_code_page(frame) {
            self.clear_code_page(frame);
            self.modified_code.push(frame);
        }
    }

    /// True when stores hit code pages whose blocks are not dropped yet.
    #[inline(always)]
    pub fn has_modified_code(&self) -> bool {
        !self.modified_code.is_empty()
    }

    /// Hands `drop_blocks` each code page stores hit since the last call, oldest first, and
    /// empties the queue.
    pub fn drain_modified_code(&mut self, mut drop_blocks: impl FnMut(u64)) {
        for page in self.modified_code.drain(..) {
            drop_blocks(page);
        }
    }

    /// True when the rest of the running block must not execute (a store hit its code).
    #[inline(always)]
    pub fn stop_block(&self) -> bool {
        self.stop_block
    }

    /// A store may have made an interrupt deliverable: stop the block, and have the run loop
    /// return to the machine so it looks at the interrupt controllers now, as hardware does at
    /// the next instruction boundary (not a slice of up to 20,000 instructions later).
    pub fn request_poll(&mut self) {
        self.stop_block = true;
        self.poll_requested = true;
    }

    /// Takes the poll request (`request_poll`, or a kick from another thread), for the run
    /// loops between blocks.
    #[inline(always)]
    pub fn take_poll_request(&mut self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        // Relaxed: the flag only says "look at the devices"; what a device finished reaches the
        // CPU thread through its own channel, which orders it.
        std::mem::take(&mut self.poll_requested) | (self.kick.load(Relaxed) && self.kick.swap(false, Relaxed))
    }

    /// A flag another thread raises to end the current run at the next block boundary with
    /// [`crate::engine::Exit::Poll`] (the run loops check it with `take_poll_request`).
    pub fn kicker(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.kick.clone()
    }

    /// Lowers the stop-block flag (the run loop has stopped the block).
    #[inline(always)]
    pub fn clear_stop_block(&mut self) {
        self.stop_block = false;
    }
}

/// The bits of the 64-byte lines that `len` (>= 1) bytes at `pa` touch within its page.
#[inline(always)]
fn line_mask(pa: u64, len: u64) -> u64 {
    let first = (pa & 0xfff) >> 6;
    let last = ((pa & 0xfff) + len - 1).min(0xfff) >> 6;
    (u64::MAX >> (63 - last)) & (u64::MAX << first)
}
