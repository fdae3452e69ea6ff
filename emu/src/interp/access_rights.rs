//! The instructions of the page access-rights extensions (SDM Vol. 2; Vol. 3, 4.6): STAC and
//! CLAC (EFLAGS.AC, which lets explicit supervisor accesses reach user pages under SMAP), and
//! RDPKRU/WRPKRU (PKRU, the protection-key rights of user pages). The checks themselves are in
//! the page walk (`mmu/walk.rs`); PKRU lives in `Cpu::pkru`.
//!
//! STAC/CLAC are #UD where the CPU model does not report SMAP or at CPL > 0 (they are
//! privileged); RDPKRU/WRPKRU are #UD with CR4.PKE clear and #GP(0) for a non-zero ECX (and
//! EDX, for WRPKRU).

use crate::cpu::Cpu;
use crate::decoded::{Instr, Row};
use crate::exception::{vector, ExecResult, Fault, Stop};
use crate::state::rflags;
use iced_x86::Code as C;

/// CR4.PKE: protection keys for user pages enabled.
const CR4_PKE: u64 = 1 << 22;

fn ud() -> Stop {
    Stop::Fault(Fault::new(vector::UD))
}

/// `stac` / `clac` (`SET`: stac): EFLAGS.AC.
pub fn exec_stac_clac<const SET: bool>(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    // SDM Vol. 2, CLAC/STAC: #UD if CPUID.(7,0):EBX.SMAP is 0 or CPL > 0 (real mode runs at
    // CPL 0; virtual-8086 mode is not modelled).
    if !cpu.config.model.has_smap() || cpu.state.cpl != 0 {
        return Err(ud());
    }
    if SET {
        cpu.state.rflags_other |= rflags::AC;
    } else {
        cpu.state.rflags_other &= !rflags::AC;
    }
    Ok(())
}

/// `rdpkru`: EAX = PKRU, EDX = 0.
pub fn exec_rdpkru(cpu: &mut Cpu, _e: &Instr) -> ExecResult {
    if cpu.state.cr4 & CR4_PKE == 0 {
        return Err(ud());
    }
    if cpu.state.gpr[1] as u32 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    cpu.state.gpr[0] = u64::from(cpu.pkru);
    cpu.state.gpr[2] = 0;
    Ok(())
}

/// `wrpkru`: PKRU = EAX. Cached translations of user pages carry the old rights, so the TLB is
/// flushed and the block ends (translated code re-checks the TLB generation on entry).
pub fn exec_wrpkru(cpu: &mut Cpu, e: &Instr) -> ExecResult {
    if cpu.state.cr4 & CR4_PKE == 0 {
        return Err(ud());
    }
    if cpu.state.gpr[1] as u32 != 0 || cpu.state.gpr[2] as u32 != 0 {
        return Err(Stop::Fault(Fault::gp0()));
    }
    cpu.pkru = cpu.state.gpr[0] as u32;
    cpu.softmmu.flush_tlb();
    cpu.state.rip = e.next_rip;
    Err(Stop::Yield)
}

const ACCESS_RIGHTS: &[Row] = &[
    Row::reg(C::Stac, exec_stac_clac::<true>),
    Row::reg(C::Clac, exec_stac_clac::<false>),
    Row::reg(C::Rdpkru, exec_rdpkru),
    Row::reg(C::Wrpkru, exec_wrpkru),
];

pub(crate) const ROWS: &[Row] = ACCESS_RIGHTS;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::hosttest::Guest;
    use crate::exception::{vector, Stop};
    use crate::state::rflags;
    use crate::system::cpu_model::{BROADWELL, K8, SAPPHIRE_RAPIDS};

    const STAC: [u8; 3] = [0x0f, 0x01, 0xcb];
    const CLAC: [u8; 3] = [0x0f, 0x01, 0xca];
    const RDPKRU: [u8; 3] = [0x0f, 0x01, 0xee];
    const WRPKRU: [u8; 3] = [0x0f, 0x01, 0xef];

    fn vector_of(r: Result<(), Stop>) -> Option<(u8, u32)> {
        match r {
            Err(Stop::Fault(f)) => Some((f.vector, f.error_code)),
            _ => None,
        }
    }

    #[test]
    fn stac_and_clac_need_smap_and_cpl0() {
        // SDM Vol. 2, CLAC/STAC: #UD without CPUID SMAP, #UD at CPL > 0.
        let mut g = Guest::new();
        g.cpu.config.model = &K8;
        g.cpu.state.cpl = 0;
        assert_eq!(vector_of(g.exec(&STAC)), Some((vector::UD, 0)), "k8 reports no SMAP");
        g.cpu.config.model = &BROADWELL;
        g.cpu.state.cpl = 3;
        assert_eq!(vector_of(g.exec(&STAC)), Some((vector::UD, 0)), "CPL 3");
        g.cpu.state.cpl = 0;
        assert!(g.exec(&STAC).is_ok());
        assert_ne!(g.cpu.state.rflags_other & rflags::AC, 0);
        assert!(g.exec(&CLAC).is_ok());
        assert_eq!(g.cpu.state.rflags_other & rflags::AC, 0);
    }

    #[test]
    fn rdpkru_and_wrpkru_follow_cr4_pke_and_check_ecx_edx() {
        // SDM Vol. 2, RDPKRU/WRPKRU: #UD if CR4.PKE = 0; #GP(0) if ECX (or EDX for WRPKRU) is
        // not 0; WRPKRU writes EAX, RDPKRU reads it back with EDX cleared.
        let mut g = Guest::new();
        g.cpu.config.model = &SAPPHIRE_RAPIDS;
        assert_eq!(vector_of(g.exec(&RDPKRU)), Some((vector::UD, 0)));
        g.cpu.state.cr4 |= 1 << 22;
        g.cpu.state.gpr[1] = 1;
        assert_eq!(vector_of(g.exec(&WRPKRU)), Some((vector::GP, 0)));
        assert_eq!(vector_of(g.exec(&RDPKRU)), Some((vector::GP, 0)));
        g.cpu.state.gpr[1] = 0;
        g.cpu.state.gpr[2] = 1;
        assert_eq!(vector_of(g.exec(&WRPKRU)), Some((vector::GP, 0)));
        g.cpu.state.gpr[0] = 0x5555_000c;
        g.cpu.state.gpr[2] = 0;
        assert_eq!(g.exec(&WRPKRU), Err(Stop::Yield));
        assert_eq!(g.cpu.pkru, 0x5555_000c);
        g.cpu.state.gpr[0] = 0;
        g.cpu.state.gpr[2] = u64::MAX;
        assert!(g.exec(&RDPKRU).is_ok());
        assert_eq!((g.cpu.state.gpr[0], g.cpu.state.gpr[2]), (0x5555_000c, 0));
    }
}
