//! The CPU section: every field of [`CpuState`], one by one, in declaration order.
//!
//! RFLAGS is stored materialized (`rflags()` / `set_rflags()`), not as the lazy-flags record,
//! which is an implementation detail of tier 0. Segment registers keep their hidden parts (base,
//! limit, attributes), so a snapshot taken in any mode resumes in that mode. The encoder
//! destructures `CpuState` completely: a field added to it breaks the build here until it is
//! saved (and the format version is bumped).

use super::codec::{Decoded, Reader, Writer};
use crate::state::{CpuState, DescriptorTable, FpuState, Msrs, Segment, X87Reg};

fn put_segment(w: &mut Writer, s: &Segment) {
    let Segment { base, limit, selector, attr } = *s;
    w.u64(base);
    w.u32(limit);
    w.u16(selector);
    w.u16(attr);
}

fn get_segment(r: &mut Reader) -> Decoded<Segment> {
    Ok(Segment { base: r.u64()?, limit: r.u32()?, selector: r.u16()?, attr: r.u16()? })
}

fn put_table(w: &mut Writer, t: &DescriptorTable) {
    let DescriptorTable { base, limit, _pad } = *t;
    w.u64(base);
    w.u16(limit);
}

fn get_table(r: &mut Reader) -> Decoded<DescriptorTable> {
    Ok(DescriptorTable { base: r.u64()?, limit: r.u16()?, _pad: [0; 3] })
}

fn put_fpu(w: &mut Writer, f: &FpuState) {
    let FpuState { regs, fcw, fsw, ftw, fop, fip, fdp, fcs, fds, _pad } = *f;
    for X87Reg { signif, sign_exp, _pad } in regs {
        w.u64(signif);
        w.u16(sign_exp);
    }
    w.u16(fcw);
    w.u16(fsw);
    w.u16(ftw);
    w.u16(fop);
    w.u64(fip);
    w.u64(fdp);
    w.u16(fcs);
    w.u16(fds);
}

fn get_fpu(r: &mut Reader) -> Decoded<FpuState> {
    let mut regs = [X87Reg::default(); 8];
    for reg in &mut regs {
        *reg = X87Reg { signif: r.u64()?, sign_exp: r.u16()?, _pad: [0; 3] };
    }
    Ok(FpuState {
        regs,
        fcw: r.u16()?,
        fsw: r.u16()?,
        ftw: r.u16()?,
        fop: r.u16()?,
        fip: r.u64()?,
        fdp: r.u64()?,
        fcs: r.u16()?,
        fds: r.u16()?,
        _pad: [0; 2],
    })
}

fn put_msrs(w: &mut Writer, m: &Msrs) {
    let Msrs {
        star,
        lstar,
        cstar,
        sfmask,
        kernel_gs_base,
        sysenter_cs,
        sysenter_esp,
        sysenter_eip,
        pat,
        tsc_aux,
        apic_base,
        misc_enable,
    } = *m;
    for v in [
        star,
        lstar,
        cstar,
        sfmask,
        kernel_gs_base,
        sysenter_cs,
        sysenter_esp,
        sysenter_eip,
        pat,
        tsc_aux,
        apic_base,
        misc_enable,
    ] {
        w.u64(v);
    }
}

fn get_msrs(r: &mut Reader) -> Decoded<Msrs> {
    Ok(Msrs {
        star: r.u64()?,
        lstar: r.u64()?,
        cstar: r.u64()?,
        sfmask: r.u64()?,
        kernel_gs_base: r.u64()?,
        sysenter_cs: r.u64()?,
        sysenter_esp: r.u64()?,
        sysenter_eip: r.u64()?,
        pat: r.u64()?,
        tsc_aux: r.u64()?,
        apic_base: r.u64()?,
        misc_enable: r.u64()?,
    })
}

/// Encodes the whole architectural state.
pub fn encode(s: &CpuState) -> Vec<u8> {
    let mut w = Writer::default();
    let rflags = s.rflags();
    let CpuState {
        gpr,
        rip,
        lazy: _,         // stored as part of `rflags`
        rflags_other: _, // likewise
        segs,
        ldtr,
        tr,
        gdtr,
        idtr,
        cr0,
        cr2,
        cr3,
        cr4,
        cr8,
        efer,
        dr,
        xcr0,
        xmm,
        mxcsr,
        cpl,
        _pad,
        fpu,
        msr,
        tsc_offset,
    } = s;
    for v in gpr {
        w.u64(*v);
    }
    w.u64(*rip);
    w.u64(rflags);
    for seg in segs.iter().chain([ldtr, tr]) {
        put_segment(&mut w, seg);
    }
    put_table(&mut w, gdtr);
    put_table(&mut w, idtr);
    for v in [cr0, cr2, cr3, cr4, cr8, efer] {
        w.u64(*v);
    }
    for v in dr {
        w.u64(*v);
    }
    w.u64(*xcr0);
    for [lo, hi] in xmm {
        w.u64(*lo);
        w.u64(*hi);
    }
    w.u32(*mxcsr);
    w.u8(*cpl);
    put_fpu(&mut w, fpu);
    put_msrs(&mut w, msr);
    w.u64(*tsc_offset);
    w.buf
}

/// Decodes what [`encode`] wrote; every byte must be used.
pub fn decode(data: &[u8]) -> Decoded<CpuState> {
    let mut r = Reader::new(data);
    let mut s = CpuState::default();
    for v in &mut s.gpr {
        *v = r.u64()?;
    }
    s.rip = r.u64()?;
    let rflags = r.u64()?;
    s.set_rflags(rflags);
    for seg in &mut s.segs {
        *seg = get_segment(&mut r)?;
    }
    s.ldtr = get_segment(&mut r)?;
    s.tr = get_segment(&mut r)?;
    s.gdtr = get_table(&mut r)?;
    s.idtr = get_table(&mut r)?;
    for v in [&mut s.cr0, &mut s.cr2, &mut s.cr3, &mut s.cr4, &mut s.cr8, &mut s.efer] {
        *v = r.u64()?;
    }
    for v in &mut s.dr {
        *v = r.u64()?;
    }
    s.xcr0 = r.u64()?;
    for lanes in &mut s.xmm {
        *lanes = [r.u64()?, r.u64()?];
    }
    s.mxcsr = r.u32()?;
    s.cpl = r.u8()?;
    s.fpu = get_fpu(&mut r)?;
    s.msr = get_msrs(&mut r)?;
    s.tsc_offset = r.u64()?;
    r.finish()?;
    Ok(s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A state with every field set to a value of its own (a counter, so no two fields agree and
    /// a field stored in the wrong place or dropped shows up).
    pub(crate) fn distinct_state() -> CpuState {
        let mut n = 0x0101_0101_0101_0101u64;
        let mut next = || {
            n = n.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            n
        };
        let mut s = CpuState { gpr: std::array::from_fn(|_| next()), rip: next(), ..CpuState::default() };
        s.set_rflags(0x0025_0ed7); // CF PF AF ZF SF TF IF DF OF, AC, ID
        let mut seg = || Segment { base: next(), limit: next() as u32, selector: next() as u16, attr: next() as u16 };
        s.segs = std::array::from_fn(|_| seg());
        s.ldtr = seg();
        s.tr = seg();
        s.gdtr = DescriptorTable { base: next(), limit: next() as u16, _pad: [0; 3] };
        s.idtr = DescriptorTable { base: next(), limit: next() as u16, _pad: [0; 3] };
        (s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer) = (next(), next(), next(), next(), next(), next());
        s.dr = std::array::from_fn(|_| next());
        s.xcr0 = next();
        s.xmm = std::array::from_fn(|_| [next(), next()]);
        s.mxcsr = next() as u32;
        s.cpl = 3;
        s.fpu.regs = std::array::from_fn(|_| X87Reg { signif: next(), sign_exp: next() as u16, _pad: [0; 3] });
        (s.fpu.fcw, s.fpu.fsw, s.fpu.ftw, s.fpu.fop) = (next() as u16, next() as u16, next() as u16, next() as u16);
        (s.fpu.fip, s.fpu.fdp, s.fpu.fcs, s.fpu.fds) = (next(), next(), next() as u16, next() as u16);
        let m = &mut s.msr;
        (m.star, m.lstar, m.cstar, m.sfmask, m.kernel_gs_base, m.sysenter_cs) =
            (next(), next(), next(), next(), next(), next());
        (m.sysenter_esp, m.sysenter_eip, m.pat, m.tsc_aux, m.apic_base, m.misc_enable) =
            (next(), next(), next(), next(), next(), next());
        s.tsc_offset = next();
        s
    }

    #[test]
    fn every_field_round_trips() {
        let s = distinct_state();
        let bytes = encode(&s);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.rflags(), s.rflags());
        // Compare everything else through Debug (CpuState has no PartialEq), with the lazy-flags
        // record normalized: it is not part of the format, only the RFLAGS it produces.
        let mut norm = s.clone();
        norm.set_rflags(s.rflags());
        assert_eq!(format!("{back:?}"), format!("{norm:?}"));
        // Size from the layout: 16+1+1 u64, 8 segments of 16, 2 tables of 10, 6 CRs, 8 DRs,
        // XCR0, 32 XMM halves, MXCSR 4, CPL 1, x87 8x10 + 4x2 + 2x8 + 2x2, 12 MSRs, TSC offset.
        let expected = 18 * 8 + 8 * 16 + 2 * 10 + 6 * 8 + 8 * 8 + 8 + 32 * 8 + 4 + 1 + 80 + 8 + 16 + 4 + 12 * 8 + 8;
        assert_eq!(bytes.len(), expected);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }
}
