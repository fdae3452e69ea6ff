//! Guest RAM in lockstep: the KVM side's private copy, page comparisons, whole-RAM checks.
//!
//! Pages are compared as 4 KiB byte slices. A page neither side ever touched reads as the host's
//! shared zero page, so scanning all of RAM costs little more than the guest's working set.

use emu::mem::{GuestRam, PAGE_SIZE};

/// Differing pages listed in full before the rest are only counted.
const PAGES_SHOWN: usize = 4;

/// Copies every page of `from` that differs from `to` (the first copy, and reloads after a
/// stretch KVM did not step). Untouched zero pages stay unallocated in `to`.
pub fn copy_changed(from: &GuestRam, to: &mut GuestRam) {
    let len = from.len().min(to.len());
    let mut pa = 0;
    while pa + PAGE_SIZE <= len {
        if let (Some(a), Some(b)) = (from.slice(pa, PAGE_SIZE as usize), to.slice(pa, PAGE_SIZE as usize)) {
            if a != b {
                let copy = a.to_vec();
                if let Some(dst) = to.slice_mut(pa, PAGE_SIZE as usize) {
                    dst.copy_from_slice(&copy);
                }
            }
        }
        pa += PAGE_SIZE;
    }
}

/// Describes how page `pa` differs between tier 0's RAM `t` and KVM's `k` (nothing if equal).
pub fn page_diff(t: &GuestRam, k: &GuestRam, pa: u64, out: &mut Vec<String>) {
    let (Some(a), Some(b)) = (t.slice(pa, PAGE_SIZE as usize), k.slice(pa, PAGE_SIZE as usize)) else { return };
    if a == b {
        return;
    }
    let first = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0);
    let last = a.iter().zip(b).rposition(|(x, y)| x != y).unwrap_or(first);
    let count = a.iter().zip(b).filter(|(x, y)| x != y).count();
    let show = first..(first + 16).min(last + 1);
    out.push(format!(
        "memory {:#x}: {count} bytes differ in {:#x}..={:#x}; from {:#x}: tier0 {:02x?}  kvm {:02x?}",
        pa,
        pa + first as u64,
        pa + last as u64,
        pa + first as u64,
        &a[show.clone()],
        &b[show]
    ));
}

/// Compares all of RAM; lists the first few differing pages and counts the rest.
pub fn ram_diff(t: &GuestRam, k: &GuestRam, out: &mut Vec<String>) {
    let len = t.len().min(k.len());
    let mut differing = 0usize;
    let mut pa = 0;
    while pa + PAGE_SIZE <= len {
        if t.slice(pa, PAGE_SIZE as usize) != k.slice(pa, PAGE_SIZE as usize) {
            if differing < PAGES_SHOWN {
                page_diff(t, k, pa, out);
            }
            differing += 1;
        }
        pa += PAGE_SIZE;
    }
    if differing > PAGES_SHOWN {
        out.push(format!("... {} more pages differ", differing - PAGES_SHOWN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_makes_equal_and_diff_names_the_bytes() {
        let mut a = GuestRam::new(4 * PAGE_SIZE).unwrap();
        let mut b = GuestRam::new(4 * PAGE_SIZE).unwrap();
        a.slice_mut(0x1ff0, 4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
        let mut out = Vec::new();
        ram_diff(&a, &b, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("4 bytes differ in 0x1ff0..=0x1ff3"), "{}", out[0]);
        copy_changed(&a, &mut b);
        out.clear();
        ram_diff(&a, &b, &mut out);
        assert!(out.is_empty());
    }
}
