//! The CPU state survives a round trip through a real KVM vCPU: everything `set_state` hands
//! to KVM comes back from `get_state` unchanged (KVM is the external party: it validates and
//! stores the state in its own format). Then one instruction runs in KVM and its effect is
//! checked against the SDM. Skipped, with a message, where /dev/kvm is not usable.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use emu::mem::GuestRam;
use emu::state::{ctrl, DescriptorTable, SegReg, Segment, X87Reg};
use emu::Cpu;
use tiers::kvm::{KvmVm, VmExit};

fn kvm_usable() -> bool {
    if let Err(e) = tiers::kvm::probe() {
        eprintln!("SKIP: {e}");
        return false;
    }
    true
}

/// A 64-bit CPU at CPL0 with identity-mapped 2 MiB pages over the first 4 MiB, code at 0x10000.
fn long_mode_cpu() -> Cpu {
    let mut cpu = Cpu::new(GuestRam::new(4 << 20).unwrap());
    let ram = &mut cpu.ram;
    let mut w64 = |a: u64, v: u64| ram.slice_mut(a, 8).unwrap().copy_from_slice(&v.to_le_bytes());
    w64(0x1000, 0x2000 | 3);
    w64(0x2000, 0x3000 | 3);
    w64(0x3000, 0x83);
    w64(0x3008, 0x20_0000 | 0x83);
    w64(0x500, 0);
    w64(0x508, 0x00af_9b00_0000_ffff);
    w64(0x510, 0x00cf_9300_0000_ffff);
    let s = &mut cpu.state;
    s.cr0 = ctrl::CR0_PE | ctrl::CR0_MP | ctrl::CR0_ET | ctrl::CR0_NE | ctrl::CR0_WP | ctrl::CR0_PG;
    s.cr3 = 0x1000;
    s.cr4 = ctrl::CR4_PAE | ctrl::CR4_OSFXSR | ctrl::CR4_OSXMMEXCPT;
    s.efer = ctrl::EFER_SCE | ctrl::EFER_LME | ctrl::EFER_LMA | ctrl::EFER_NXE;
    s.gdtr = DescriptorTable { base: 0x500, limit: 0x17, _pad: [0; 3] };
    s.idtr = DescriptorTable { base: 0x8000, limit: 0xfff, _pad: [0; 3] };
    s.segs[SegReg::Cs as usize] = Segment::flat_code64(0x08, 0);
    for r in [SegReg::Ss, SegReg::Ds, SegReg::Es] {
        s.segs[r as usize] = Segment::flat_data(0x10, 0);
    }
    s.segs[SegReg::Fs as usize] = Segment { base: 0x7fff_1234_5000, ..Segment::flat_data(0x10, 0) };
    s.segs[SegReg::Gs as usize] = Segment { base: 0xffff_8880_0000_0000, ..Segment::flat_data(0x10, 0) };
    s.tr = Segment { base: 0x9000, limit: 0x67, selector: 0x18, attr: 0x8b };
    s.rip = 0x10000;
    for (i, g) in s.gpr.iter_mut().enumerate() {
        *g = 0x0101_0101_0101_0101u64.wrapping_mul(i as u64 + 3);
    }
    s.gpr[4] = 0x8_0000;
    s.set_rflags(0x2 | 0x1 | 0x4 | 0x80 | 0x400 | 0x800);
    s.cr2 = 0xdead_b000;
    s.msr.star = 0x0023_0010_0000_0000;
    s.msr.lstar = 0xffff_ffff_8100_0000;
    s.msr.sfmask = 0x4_7700;
    s.msr.kernel_gs_base = 0xffff_8881_0000_0000;
    s.msr.sysenter_cs = 0x10;
    s.msr.pat = 0x0007_0406_0007_0406;
    s.msr.apic_base = 0xfee0_0900;
    // x87: three values pushed (TOP = 5), one of them zero; the rest empty.
    s.fpu.fsw = 5 << 11;
    s.fpu.regs[5] = X87Reg { signif: 0xc90f_daa2_2168_c235, sign_exp: 0x4000, _pad: [0; 3] }; // pi
    s.fpu.regs[6] = X87Reg { signif: 0, sign_exp: 0, _pad: [0; 3] }; // +0
    s.fpu.regs[7] = X87Reg { signif: 0x8000_0000_0000_0000, sign_exp: 0xbfff, _pad: [0; 3] }; // -1
    s.fpu.ftw = 0x03ff | (1 << 12); // R0-R4 empty (11), R5 valid (00), R6 zero (01), R7 valid (00)
    s.fpu.fcw = 0x027f;
    for (i, x) in s.xmm.iter_mut().enumerate() {
        *x = [0x1111_2222_3333_4444 ^ i as u64, 0x5555_6666_7777_8888 ^ (i as u64) << 8];
    }
    s.mxcsr = 0x1f80 | 0x6000; // round toward zero
    cpu
}

#[test]
fn the_state_comes_back_from_kvm_unchanged() {
    if !kvm_usable() {
        return;
    }
    let cpu = long_mode_cpu();
    let mut vm = KvmVm::new(&cpu.ram).expect("VM");
    vm.set_state(&cpu).expect("set_state");
    let mut back = Cpu::new(GuestRam::new(4096).unwrap());
    vm.get_state(&mut back).expect("get_state");
    let (a, b) = (&cpu.state, &back.state);
    assert_eq!(b.gpr, a.gpr);
    assert_eq!(b.rip, a.rip);
    assert_eq!(b.rflags(), a.rflags());
    for i in 0..6 {
        let (x, y) = (a.segs[i], b.segs[i]);
        assert_eq!((y.base, y.limit, y.selector, y.attr | 1), (x.base, x.limit, x.selector, x.attr | 1), "segment {i}");
    }
    assert_eq!(b.tr, a.tr);
    assert_eq!((b.gdtr, b.idtr), (a.gdtr, a.idtr));
    assert_eq!((b.cr0, b.cr2, b.cr3, b.cr4, b.efer), (a.cr0, a.cr2, a.cr3, a.cr4, a.efer));
    assert_eq!(b.cpl, 0);
    assert_eq!(b.msr.star, a.msr.star);
    assert_eq!(b.msr.lstar, a.msr.lstar);
    assert_eq!(b.msr.sfmask, a.msr.sfmask);
    assert_eq!(b.msr.kernel_gs_base, a.msr.kernel_gs_base);
    assert_eq!(b.msr.sysenter_cs, a.msr.sysenter_cs);
    assert_eq!(b.msr.pat, a.msr.pat);
    assert_eq!(b.msr.apic_base, a.msr.apic_base);
    assert_eq!(b.fpu.regs, a.fpu.regs);
    assert_eq!((b.fpu.fcw, b.fpu.fsw, b.fpu.ftw), (a.fpu.fcw | 0x40, a.fpu.fsw, a.fpu.ftw));
    assert_eq!(b.xmm, a.xmm);
    assert_eq!(b.mxcsr, a.mxcsr);
}

#[test]
fn an_instruction_runs_in_kvm_on_the_converted_state() {
    if !kvm_usable() {
        return;
    }
    let mut cpu = long_mode_cpu();
    // add rax, rbx ; pushfq ; pop rcx ; out 0xf4, al
    let code = [0x48, 0x01, 0xd8, 0x9c, 0x59, 0xe6, 0xf4];
    cpu.ram.slice_mut(0x10000, code.len()).unwrap().copy_from_slice(&code);
    cpu.state.gpr[0] = u64::MAX;
    cpu.state.gpr[3] = 1;
    let mut vm = KvmVm::new(&cpu.ram).expect("VM");
    vm.set_state(&cpu).expect("set_state");
    let mut bus = emu::cpu::NullBus;
    let mut exits = 0;
    loop {
        let e = vm.run(&cpu.ram, &mut bus).expect("run");
        exits += 1;
        if e == VmExit::Io || exits > 1000 {
            break;
        }
        assert!(matches!(e, VmExit::Interrupted), "unexpected exit {e:?}");
    }
    vm.get_state(&mut cpu).expect("get_state");
    let s = &cpu.state;
    assert_eq!(s.rip, 0x10007, "RIP after OUT");
    assert_eq!(s.gpr[0], 0, "RAX = -1 + 1");
    // SDM ADD: CF=1 (carry out), ZF=1, PF=1 (zero has even parity), AF=1, SF=0, OF=0; DF kept.
    let f = s.gpr[1];
    assert_eq!(f & 0x8d5, 0x1 | 0x4 | 0x10 | 0x40, "arithmetic flags {f:#x}");
    assert_eq!(f & 0x400, 0x400, "DF survives the round trip");
}

/// The guest's TSC moves with the CPU state: after `set_state`, KVM counts on from our value
/// (SDM Vol. 3, 18.17: a WRMSR to IA32_TSC sets the counter), not from the host's. The bound
/// only separates "ours" (about 1e6) from "the host's" (the host's uptime in cycles).
#[test]
fn the_time_stamp_counter_moves_with_the_cpu() {
    if !kvm_usable() {
        return;
    }
    let mut cpu = long_mode_cpu();
    let now = cpu.tsc.tsc(cpu.retired);
    cpu.state.tsc_offset = 1_000_000u64.wrapping_sub(now);
    let mut vm = KvmVm::new(&cpu.ram).expect("VM");
    vm.set_state(&cpu).expect("set_state");
    let mut back = long_mode_cpu();
    vm.get_state(&mut back).expect("get_state");
    let guest_tsc = back.tsc.tsc(back.retired).wrapping_add(back.state.tsc_offset);
    if tiers::kvm::is_pvm() && guest_tsc > 1_000_000_000_000 {
        eprintln!("note: kvm_pvm ignores writes to IA32_TSC (guest TSC {guest_tsc}); not checked on this host");
        return;
    }
    assert!((1_000_000..1_000_000_000_000).contains(&guest_tsc), "guest TSC {guest_tsc}");
}
