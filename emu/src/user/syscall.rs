//! Linux system calls for the user-mode runner (x86-64 numbering, `arch/x86/entry/syscalls`).
//!
//! Arguments are translated: guest pointers are read and written through the guest MMU, never
//! handed to the host as raw memory, so the runner behaves the same on any host. An unsupported
//! call returns -ENOSYS and is reported once.

use super::aspace::{PAGE, PROT_EXEC, PROT_READ, PROT_WRITE};
use super::{Process, ProcessEnd, MMAP_TOP};
use crate::state::gpr;
use std::collections::HashSet;
use std::io::Write;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGFPE: i32 = 8;
pub const SIGSEGV: i32 = 11;

const ENOENT: i64 = 2;
const EBADF: i64 = 9;
const ENOMEM: i64 = 12;
const EFAULT: i64 = 14;
const EINVAL: i64 = 22;
const ENOSYS: i64 = 38;

/// Per-process kernel state.
pub struct SysState {
    pub brk_start: u64,
    pub brk: u64,
    pub fs_base: u64,
    unsupported_seen: HashSet<u64>,
}

impl SysState {
    pub fn new(brk: u64) -> Self {
        SysState { brk_start: brk, brk, fs_base: 0, unsupported_seen: HashSet::new() }
    }
}

/// Builds argv, envp and the auxiliary vector on the new stack (System V x86-64 psABI, 3.4.1).
/// Returns the initial RSP.
pub fn build_initial_stack(
    p: &mut Process,
    path: &str,
    argv: &[String],
    envp: &[String],
    phdr: u64,
    phnum: u16,
    entry: u64,
) -> Option<u64> {
    let mut sp = super::STACK_TOP;
    let push_bytes = |p: &mut Process, sp: &mut u64, b: &[u8]| -> Option<u64> {
        *sp -= b.len() as u64;
        p.write_mem(*sp, b)?;
        Some(*sp)
    };
    let mut strs = Vec::new();
    for a in argv {
        let mut b = a.as_bytes().to_vec();
        b.push(0);
        strs.push(push_bytes(p, &mut sp, &b)?);
    }
    let mut envs = Vec::new();
    for e in envp {
        let mut b = e.as_bytes().to_vec();
        b.push(0);
        envs.push(push_bytes(p, &mut sp, &b)?);
    }
    let mut execfn = path.as_bytes().to_vec();
    execfn.push(0);
    let execfn = push_bytes(p, &mut sp, &execfn)?;
    let platform = push_bytes(p, &mut sp, b"x86_64\0")?;
    let mut random = [0u8; 16];
    fill_random(&mut random);
    let random = push_bytes(p, &mut sp, &random)?;
    sp &= !15;
    let auxv: [(u64, u64); 16] = [
        (3, phdr),                           // AT_PHDR
        (4, 56),                             // AT_PHENT
        (5, phnum as u64),                   // AT_PHNUM
        (6, PAGE),                           // AT_PAGESZ
        (7, 0),                              // AT_BASE
        (8, 0),                              // AT_FLAGS
        (9, entry),                          // AT_ENTRY
        (11, 1000),                          // AT_UID
        (12, 1000),                          // AT_EUID
        (13, 1000),                          // AT_GID
        (14, 1000),                          // AT_EGID
        (16, crate::user::syscall::hwcap()), // AT_HWCAP
        (17, 100),                           // AT_CLKTCK
        (25, random),                        // AT_RANDOM
        (31, execfn),                        // AT_EXECFN
        (15, platform),                      // AT_PLATFORM
    ];
    let words = 1 + strs.len() + 1 + envs.len() + 1 + 2 * (auxv.len() + 2);
    sp -= 8 * words as u64;
    sp &= !15;
    let mut w = sp;
    let mut put = |p: &mut Process, v: u64| -> Option<()> {
        p.write_u64(w, v)?;
        w += 8;
        Some(())
    };
    put(p, strs.len() as u64)?;
    for s in &strs {
        put(p, *s)?;
    }
    put(p, 0)?;
    for e in &envs {
        put(p, *e)?;
    }
    put(p, 0)?;
    for (k, v) in auxv {
        put(p, k)?;
        put(p, v)?;
    }
    put(p, 23)?; // AT_SECURE
    put(p, 0)?;
    put(p, 0)?; // AT_NULL
    put(p, 0)?;
    Some(sp)
}

/// AT_HWCAP: CPUID.1:EDX of the CPU the guest sees.
pub fn hwcap() -> u64 {
    crate::interp::misc::cpuid(1, 0)[3] as u64
}

fn fill_random(buf: &mut [u8]) {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0);
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Carries out the system call the guest just made. Returns `Some` when the process ended.
pub fn dispatch(p: &mut Process) -> Option<ProcessEnd> {
    let g = p.interp.cpu.state.gpr;
    let (nr, a0, a1, a2) = (g[gpr::RAX], g[gpr::RDI], g[gpr::RSI], g[gpr::RDX]);
    let (a3, a4, a5) = (g[10], g[8], g[9]);
    let ret: i64 = match nr {
        1 => sys_write(p, a0, a1, a2),
        9 => sys_mmap(p, a0, a1, a2, a3, a4, a5),
        10 => sys_mprotect(p, a0, a1, a2),
        11 => sys_munmap(p, a0, a1),
        12 => sys_brk(p, a0),
        60 | 231 => return Some(ProcessEnd::Exited(a0 as i32)),
        158 => sys_arch_prctl(p, a0, a1),
        218 => 1, // set_tid_address: the thread id
        _ => {
            if p.sys.unsupported_seen.insert(nr) {
                eprintln!("strata: unsupported system call {nr}; returning -ENOSYS");
            }
            -ENOSYS
        }
    };
    let _ = (a3, a4, a5, ENOENT, EBADF);
    p.interp.cpu.state.gpr[gpr::RAX] = ret as u64;
    None
}

/// A synchronous fault the program has no handler for: it dies with the signal.
pub fn deliver_fault_signal(p: &mut Process, sig: i32, addr: u64, _error: u32) -> Option<ProcessEnd> {
    let rip = p.interp.cpu.state.rip;
    eprintln!("strata: guest killed by signal {sig} at rip {rip:#x} (address {addr:#x})");
    Some(ProcessEnd::Signaled(sig))
}

fn sys_write(p: &mut Process, fd: u64, buf: u64, len: u64) -> i64 {
    let len = len.min(1 << 20) as usize;
    let mut data = vec![0u8; len];
    if p.read_mem(buf, &mut data).is_none() {
        return -EFAULT;
    }
    let r = match fd {
        1 => std::io::stdout().write_all(&data).and_then(|_| std::io::stdout().flush()),
        2 => std::io::stderr().write_all(&data),
        _ => return -EBADF,
    };
    match r {
        Ok(()) => len as i64,
        Err(e) => -(e.raw_os_error().unwrap_or(5) as i64),
    }
}

fn sys_brk(p: &mut Process, addr: u64) -> i64 {
    if addr <= p.sys.brk_start {
        return p.sys.brk as i64;
    }
    let old_end = p.sys.brk.div_ceil(PAGE) * PAGE;
    let new_end = addr.div_ceil(PAGE) * PAGE;
    if new_end > old_end {
        if p.aspace.region_at(old_end).is_some() || new_end > MMAP_TOP {
            return p.sys.brk as i64;
        }
        let cpu = &mut p.interp.cpu;
        p.aspace.add_region(&mut cpu.ram, old_end, new_end, PROT_READ | PROT_WRITE);
    } else if new_end < old_end {
        let cpu = &mut p.interp.cpu;
        let freed = p.aspace.remove_range(&mut cpu.ram, new_end, old_end);
        p.mappings_changed(&freed);
    }
    p.sys.brk = addr;
    addr as i64
}

const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

fn sys_mmap(p: &mut Process, addr: u64, len: u64, prot: u64, flags: u64, _fd: u64, _off: u64) -> i64 {
    if len == 0 || !addr.is_multiple_of(PAGE) {
        return -EINVAL;
    }
    if flags & MAP_ANONYMOUS == 0 {
        return -ENOSYS; // file mappings come with the file system calls
    }
    let len = len.div_ceil(PAGE) * PAGE;
    let prot = (prot as u32) & (PROT_READ | PROT_WRITE | PROT_EXEC);
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        addr
    } else {
        match p.aspace.find_free(len, MMAP_TOP) {
            Some(a) => a,
            None => return -ENOMEM,
        }
    };
    if start.checked_add(len).is_none_or(|e| e > super::aspace::USER_TOP) {
        return -ENOMEM;
    }
    let cpu = &mut p.interp.cpu;
    let freed = p.aspace.add_region(&mut cpu.ram, start, start + len, prot);
    p.mappings_changed(&freed);
    start as i64
}

fn sys_munmap(p: &mut Process, addr: u64, len: u64) -> i64 {
    if !addr.is_multiple_of(PAGE) || len == 0 {
        return -EINVAL;
    }
    let cpu = &mut p.interp.cpu;
    let freed = p.aspace.remove_range(&mut cpu.ram, addr, addr + len.div_ceil(PAGE) * PAGE);
    p.mappings_changed(&freed);
    0
}

fn sys_mprotect(p: &mut Process, addr: u64, len: u64, prot: u64) -> i64 {
    if !addr.is_multiple_of(PAGE) {
        return -EINVAL;
    }
    let cpu = &mut p.interp.cpu;
    let end = addr + len.div_ceil(PAGE) * PAGE;
    if !p.aspace.protect(&mut cpu.ram, addr, end, prot as u32 & 7) {
        return -ENOMEM;
    }
    p.mappings_changed(&[]);
    0
}

fn sys_arch_prctl(p: &mut Process, code: u64, addr: u64) -> i64 {
    match code {
        0x1002 => {
            // ARCH_SET_FS
            p.sys.fs_base = addr;
            p.interp.cpu.state.segs[4].base = addr;
            0
        }
        0x1001 => {
            p.interp.cpu.state.segs[5].base = addr;
            0
        }
        0x1003 => {
            let v = p.interp.cpu.state.segs[4].base;
            if p.write_u64(addr, v).is_none() {
                return -EFAULT;
            }
            0
        }
        _ => -EINVAL,
    }
}
