//! Memory management calls: brk, mmap, munmap, mprotect, mremap, madvise (`mm/mmap.c`,
//! `mm/mremap.c`, man-pages mmap(2)).
//!
//! Regions are recorded in the address space and pages come on first touch (see `aspace.rs`).
//! A private file mapping copies the file's bytes in when it is made (a later change to the file
//! is not seen, which POSIX leaves unspecified for MAP_PRIVATE). Writable shared file mappings
//! are refused with ENODEV; read-only shared ones behave as private. MADV_DONTNEED drops the
//! pages, so they read back as zeros, as on Linux for private anonymous memory.

use super::{Errno, SysResult, EBADF, EEXIST, EINVAL, ENOMEM};
use crate::user::aspace::{PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, USER_TOP};
use crate::user::{Process, MMAP_TOP};
use std::os::unix::fs::FileExt;

const MAP_SHARED: u64 = 0x01;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MADV_DONTNEED: u64 = 4;
const ENODEV: Errno = Errno(19);

fn page_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE - 1).map(|l| l & !(PAGE - 1))
}

/// `[start, start + len)` as a valid user range, or EINVAL/ENOMEM.
fn user_range(start: u64, len: u64) -> Result<u64, Errno> {
    let end = start.checked_add(len).ok_or(ENOMEM)?;
    if end > USER_TOP {
        return Err(ENOMEM);
    }
    Ok(end)
}

pub fn sys_brk(p: &mut Process, addr: u64) -> SysResult {
    if addr <= p.sys.brk_start {
        return Ok(p.sys.brk);
    }
    let old_end = p.sys.brk.div_ceil(PAGE) * PAGE;
    let Some(new_end) = page_up(addr) else { return Ok(p.sys.brk) };
    if new_end > old_end {
        if !p.aspace.is_free(old_end, new_end) || new_end > MMAP_TOP {
            return Ok(p.sys.brk); // failure: the old break
        }
        let cpu = &mut p.cpu;
        p.aspace.add_region(&mut cpu.ram, old_end, new_end, PROT_READ | PROT_WRITE);
    } else if new_end < old_end {
        let cpu = &mut p.cpu;
        let freed = p.aspace.remove_range(&mut cpu.ram, new_end, old_end);
        p.mappings_changed(&freed);
    }
    p.sys.brk = addr;
    Ok(addr)
}

/// Picks where a new mapping of `len` bytes goes: the hint if it is free, else below MMAP_TOP.
fn place(p: &Process, hint: u64, len: u64) -> Result<u64, Errno> {
    if hint != 0 && hint.is_multiple_of(PAGE) {
        if let Ok(end) = user_range(hint, len) {
            if p.aspace.is_free(hint, end) {
                return Ok(hint);
            }
        }
    }
    p.aspace.find_free(len, MMAP_TOP).ok_or(ENOMEM)
}

pub fn sys_mmap(p: &mut Process, addr: u64, len: u64, prot: u64, flags: u64, fd: u64, off: u64) -> SysResult {
    let len = page_up(len).filter(|&l| l != 0).ok_or(EINVAL)?;
    if !off.is_multiple_of(PAGE) || flags & MAP_TYPE == 0 {
        return Err(EINVAL);
    }
    let prot = (prot as u32) & (PROT_READ | PROT_WRITE | PROT_EXEC);
    let anon = flags & MAP_ANONYMOUS != 0;
    let file = if anon {
        None
    } else {
        let f = p.sys.fds.get(fd as u32 as u64)?;
        if flags & MAP_TYPE & MAP_SHARED != 0 && prot & PROT_WRITE != 0 {
            return Err(ENODEV);
        }
        let h = f.borrow().host_file().ok_or(ENODEV)?.try_clone().map_err(|_| EBADF)?;
        Some(h)
    };
    let start = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 {
        if !addr.is_multiple_of(PAGE) {
            return Err(EINVAL);
        }
        let end = user_range(addr, len)?;
        if flags & MAP_FIXED == 0 && !p.aspace.is_free(addr, end) {
            return Err(EEXIST);
        }
        addr
    } else {
        place(p, addr & !(PAGE - 1), len)?
    };
    user_range(start, len)?;
    let cpu = &mut p.cpu;
    let freed = p.aspace.add_region(&mut cpu.ram, start, start + len, prot);
    p.mappings_changed(&freed);
    if let Some(h) = file {
        // Only the part of the file inside the mapping; the rest of the pages read as zeros.
        let size = h.metadata().map(|m| m.len()).unwrap_or(0);
        let avail = size.saturating_sub(off).min(len).min(super::io::MAX_IO as u64 * 16);
        let mut data = vec![0u8; avail as usize];
        let mut got = 0;
        while got < data.len() {
            match h.read_at(&mut data[got..], off.wrapping_add(got as u64)) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(e.into()),
            }
        }
        p.fill_pages(start, &data[..got], prot).ok_or(ENOMEM)?;
    }
    Ok(start)
}

pub fn sys_munmap(p: &mut Process, addr: u64, len: u64) -> SysResult {
    let len = page_up(len).filter(|&l| l != 0).ok_or(EINVAL)?;
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let end = user_range(addr, len).map_err(|_| EINVAL)?;
    let cpu = &mut p.cpu;
    let freed = p.aspace.remove_range(&mut cpu.ram, addr, end);
    p.mappings_changed(&freed);
    Ok(0)
}

pub fn sys_mprotect(p: &mut Process, addr: u64, len: u64, prot: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    let len = page_up(len).ok_or(ENOMEM)?;
    let end = user_range(addr, len)?;
    let cpu = &mut p.cpu;
    if !p.aspace.protect(&mut cpu.ram, addr, end, prot as u32 & 7) {
        return Err(ENOMEM);
    }
    p.mappings_changed(&[]);
    Ok(0)
}

pub fn sys_mremap(p: &mut Process, old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    if !old.is_multiple_of(PAGE) || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 {
        return Err(EINVAL);
    }
    let old_len = page_up(old_len).ok_or(EINVAL)?;
    let new_len = page_up(new_len).filter(|&l| l != 0).ok_or(EINVAL)?;
    let old_end = user_range(old, old_len).map_err(|_| EINVAL)?;
    let (_, region) = p.aspace.region_at(old).ok_or(Errno(14))?; // EFAULT: nothing mapped there
    let fixed = flags & MREMAP_FIXED != 0;
    if fixed && flags & MREMAP_MAYMOVE == 0 {
        return Err(EINVAL);
    }
    if !fixed && new_len <= old_len {
        let cpu = &mut p.cpu;
        let freed = p.aspace.remove_range(&mut cpu.ram, old + new_len, old_end);
        p.mappings_changed(&freed);
        return Ok(old);
    }
    if !fixed {
        let grow_end = user_range(old, new_len)?;
        if p.aspace.is_free(old_end, grow_end) {
            let cpu = &mut p.cpu;
            p.aspace.add_region(&mut cpu.ram, old_end, grow_end, region.prot);
            return Ok(old);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(ENOMEM);
        }
    }
    let dest = if fixed {
        if !new_addr.is_multiple_of(PAGE) {
            return Err(EINVAL);
        }
        user_range(new_addr, new_len)?;
        new_addr
    } else {
        place(p, 0, new_len)?
    };
    let cpu = &mut p.cpu;
    let mut touched = p.aspace.add_region(&mut cpu.ram, dest, dest + new_len, region.prot);
    let keep_end = old + old_len.min(new_len);
    for (va, _) in p.aspace.present_pages(&mut cpu.ram, old, keep_end) {
        if let Some(f) = p.aspace.move_page(&mut cpu.ram, va, dest + (va - old)) {
            touched.push(f);
        }
    }
    touched.extend(p.aspace.remove_range(&mut cpu.ram, old, old_end));
    p.mappings_changed(&touched);
    Ok(dest)
}

pub fn sys_madvise(p: &mut Process, addr: u64, len: u64, advice: u64) -> SysResult {
    if !addr.is_multiple_of(PAGE) {
        return Err(EINVAL);
    }
    if advice == MADV_DONTNEED {
        let end = user_range(addr, page_up(len).ok_or(EINVAL)?).map_err(|_| EINVAL)?;
        let cpu = &mut p.cpu;
        let freed = p.aspace.discard(&mut cpu.ram, addr, end);
        p.mappings_changed(&freed);
    }
    Ok(0)
}
