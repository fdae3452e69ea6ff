//! Host pages at a chosen address modulo 4 GiB, for the native half of the differential runs.
//!
//! In 64-bit mode FNSAVE/FNSTENV store only the low 32 bits of FIP and FDP (the 14/94-byte
//! forms only the low 16), so the harness must decide "this pointer is the instruction / the
//! operand" from truncated values. When the host code and operand sit at addresses congruent
//! to the guest's CODE_VA/MEM_VA modulo 4 GiB, the truncated pointers of the two runs are equal
//! and that decision is the same on both sides, whatever pointer an input image holds. A heap
//! buffer does not give this: a random image's FDP of 7788h, say, reads as "inside the operand"
//! in a 14-byte image whenever the heap happens to put the operand at ...7700h.
//!
//! Linux x86-64 only: raw `mmap` with MAP_FIXED_NOREPLACE (Linux 4.17), `mprotect`, `munmap`.
//! Leaves out: any other host.

/// Linux x86-64 system call numbers and flags (`asm/unistd_64.h`, `asm-generic/mman*.h`).
const SYS_MMAP: u64 = 9;
const SYS_MPROTECT: u64 = 10;
const SYS_MUNMAP: u64 = 11;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

const PAGE: u64 = 4096;
/// The 4 GiB windows tried, from 1 TiB up to 64 TiB: far from the executable, the heap and
/// the usual mmap area, inside the 47-bit user address space.
const FIRST_WINDOW: u64 = 0x100;
const LAST_WINDOW: u64 = 0x4000;

/// A raw Linux system call with up to six arguments; returns RAX (negative errno on error).
///
/// # Safety
/// The call must be one of the memory-mapping calls above, on a range this module owns
/// (or a fresh one, for `mmap`).
unsafe fn syscall6(nr: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the caller guarantees the call only creates, changes or removes mappings this
    // module owns; SYSCALL clobbers only RCX and R11 besides RAX, all declared.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as i64 => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Anonymous host pages whose address is `low` modulo 4 GiB.
pub struct HostPages {
    addr: u64,
    len: u64,
}

impl HostPages {
    /// `len` bytes (rounded up to whole pages), zeroed, read-write, at an address whose low
    /// 32 bits are `low` (page aligned). Tries one 4 GiB window after another, so threads that
    /// want the same `low` each get their own.
    pub fn at_low32(low: u64, len: usize) -> HostPages {
        assert!(low.is_multiple_of(PAGE) && low >> 32 == 0, "low {low:#x}");
        let len = (len as u64).div_ceil(PAGE) * PAGE;
        for window in FIRST_WINDOW..LAST_WINDOW {
            let want = window << 32 | low;
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
            // SAFETY: NOREPLACE never replaces an existing mapping: the call either creates a
            // fresh one, which this value then owns, or fails.
            let got = unsafe { syscall6(SYS_MMAP, [want, len, PROT_READ | PROT_WRITE, flags, u64::MAX, 0]) };
            if got as u64 == want {
                return HostPages { addr: want, len };
            }
            if got >= 0 {
                // A kernel without NOREPLACE took the address as a hint and mapped elsewhere.
                // SAFETY: `got` is the mapping just created here, used by nothing else.
                unsafe { syscall6(SYS_MUNMAP, [got as u64, len, 0, 0, 0, 0]) };
            }
        }
        panic!("no free host range at {low:#x} modulo 4 GiB");
    }

    pub fn addr(&self) -> u64 {
        self.addr
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the range is mapped read-write (until `make_exec`), owned by `self` and
        // reached only through `self`; `&mut self` makes this the only live reference.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len as usize) }
    }

    /// Makes the pages read-execute (and no longer writable).
    pub fn make_exec(&mut self) {
        // SAFETY: changes the protection of this value's own mapping only.
        let r = unsafe { syscall6(SYS_MPROTECT, [self.addr, self.len, PROT_READ | PROT_EXEC, 0, 0, 0]) };
        assert_eq!(r, 0, "mprotect");
    }
}

impl Drop for HostPages {
    fn drop(&mut self) {
        // SAFETY: removes this value's own mapping; no reference into it outlives `self`.
        unsafe { syscall6(SYS_MUNMAP, [self.addr, self.len, 0, 0, 0, 0]) };
    }
}
