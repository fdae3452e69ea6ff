//! Instruction forms the differential harness does not run, each with the reason.
//!
//! A form is excluded when running it natively at CPL 3 would stop the host process (privileged,
//! port I/O, traps), when its result differs from the host by design (CPUID, time stamps,
//! random numbers), or when the harness does not model the state it touches yet (x87, MMX,
//! YMM, segment registers, far transfers). Everything else tier 0 implements is tested.

use iced_x86::{Code, CpuidFeature, EncodingKind, FlowControl, Mnemonic, OpCodeOperandKind as K};

/// Why `code` is not run by the harness, or `None` if it is.
pub fn exclusion(code: Code) -> Option<&'static str> {
    use Mnemonic as M;
    let op = code.op_code();
    if !op.is_instruction() {
        return Some("not an instruction (data directive or invalid)");
    }
    if !op.mode64() {
        return Some("not valid in 64-bit mode");
    }
    if op.fwait() {
        return Some("FWAIT-prefixed alias: encodes as WAIT plus the FN form, which are tested");
    }
    // VEX forms whose operands are all general-purpose (BMI1/BMI2: ANDN, BEXTR, PDEP, SHLX, ...)
    // touch no YMM or mask state and are compared like legacy forms.
    let gpr_only_vex = code.encoding() == EncodingKind::VEX
        && op.op_kinds().iter().all(|k| {
            !matches!(
                k,
                K::xmm_or_mem
                    | K::xmm_reg
                    | K::xmm_rm
                    | K::xmm_vvvv
                    | K::xmm_is4
                    | K::ymm_or_mem
                    | K::ymm_reg
                    | K::ymm_rm
                    | K::ymm_vvvv
                    | K::ymm_is4
                    | K::k_reg
                    | K::k_rm
                    | K::k_vvvv
                    | K::k_or_mem
            )
        });
    if code.encoding() != EncodingKind::Legacy && !gpr_only_vex {
        return Some("VEX/EVEX/XOP/3DNow! encoding: YMM and mask state are not compared yet");
    }
    match code.mnemonic() {
        M::Syscall | M::Sysenter => return Some("enters the kernel natively; the interpreter stops for the runner"),
        M::Cpuid => return Some("differs by design: tier 0 reports its own feature set"),
        M::Rdtsc | M::Rdtscp | M::Rdpmc => return Some("time stamp: differs by design"),
        M::Rdrand | M::Rdseed => return Some("random number: differs by design"),
        M::Rdpid => return Some("processor id: differs by design"),
        M::Cli | M::Sti | M::In | M::Out | M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd => {
            return Some("IOPL-sensitive: #GP at CPL 3 natively")
        }
        M::Int | M::Int1 | M::Int3 | M::Into | M::Ud0 | M::Ud1 | M::Ud2 | M::Hlt => {
            return Some("raises an exception by design (fault behaviour is tested separately)")
        }
        M::Iret | M::Iretd | M::Iretq | M::Sysret | M::Sysretq | M::Sysexit | M::Sysexitq | M::Swapgs => {
            return Some("privileged return or mode switch")
        }
        M::Lfence | M::Mfence | M::Sfence | M::Pause | M::Clflush | M::Clflushopt | M::Prefetchnta => {}
        M::Xgetbv | M::Xsave | M::Xsave64 | M::Xrstor | M::Xrstor64 | M::Xsaveopt | M::Xsaveopt64 | M::Xsavec => {
            return Some("XSAVE state differs with the host's enabled features")
        }
        M::Fxsave | M::Fxsave64 | M::Fxrstor | M::Fxrstor64 => {
            return Some("FXSAVE image includes x87 state the harness does not compare yet")
        }
        M::Emms | M::Femms => return Some("MMX/x87 state is not compared yet"),
        _ => {}
    }
    if code.is_privileged() {
        return Some("privileged: #GP at CPL 3 natively");
    }
    match code.mnemonic() {
        M::Fldenv | M::Frstor => {
            return Some("x87: loads a whole environment (control word included) from random memory")
        }
        M::Fnstenv | M::Fstenv | M::Fnsave | M::Fsave => {
            return Some(
                "x87: stores FIP/FDP/FOP/FCS/FDS, whose values are model-specific (SDM Vol. 1, 8.1.8-8.1.9; \
                 see MODEL_SPECIFIC); emu's x87 tests compare these images with the model-specific fields masked",
            )
        }
        _ => {}
    }
    let op16_branch = op.op_kinds().iter().any(|k| matches!(k, K::br16_1 | K::br16_2))
        || (code.flow_control() != FlowControl::Next && op.operand_size() == 16);
    if op16_branch {
        return Some("16-bit operand-size branch: RIP is truncated to 16 bits, outside any mapping here");
    }
    match code.flow_control() {
        FlowControl::Next | FlowControl::ConditionalBranch | FlowControl::UnconditionalBranch => {}
        FlowControl::Call | FlowControl::Return | FlowControl::IndirectBranch | FlowControl::IndirectCall => {}
        FlowControl::Interrupt | FlowControl::Exception => return Some("raises an exception by design"),
        FlowControl::XbeginXabortXend => return Some("transactional memory"),
    }
    for k in op.op_kinds() {
        match k {
            K::farbr2_2 | K::farbr4_2 => return Some("far transfer: segment state"),
            K::seg_reg | K::es | K::cs | K::ss | K::ds | K::fs | K::gs => {
                return Some("segment register operand: not compared")
            }
            K::mm_or_mem | K::mm_reg | K::mm_rm => return Some("MMX register: state not compared yet"),
            K::cr_reg | K::dr_reg | K::tr_reg => return Some("privileged: control/debug registers"),
            K::bnd_or_mem_mpx | K::bnd_reg | K::mem_mpx | K::r32_or_mem_mpx | K::r64_or_mem_mpx | K::mem_mib => {
                return Some("MPX: not on the host")
            }
            _ => {}
        }
    }
    if code.cpuid_features().iter().any(|f| !host_has(*f)) {
        return Some("the host CPU lacks the required CPUID feature");
    }
    if is_0f0d_reserved_nop(code) && !host_is_intel() {
        return Some(
            "0F 0D with a register operand: a reserved NOP on Intel (SDM Vol. 2, NOP and PREFETCHW), \
             #UD on AMD (APM Vol. 3, PREFETCH/PREFETCHW: the operand is a register); compared on Intel hosts only",
        );
    }
    if matches!(code.mnemonic(), M::Retf | M::Call | M::Jmp) && op.op_kinds().contains(&K::mem) {
        // JMP/CALL FAR m16:64 (`mem` operand on a JMP/CALL is always the far form).
        return Some("far transfer: segment state");
    }
    match code.mnemonic() {
        M::Retf | M::Lss | M::Lfs | M::Lgs | M::Lar | M::Lsl | M::Verr | M::Verw | M::Sldt | M::Str | M::Smsw => {
            Some("segment or descriptor state: not compared")
        }
        M::Sgdt | M::Sidt => Some("descriptor table addresses differ by design"),
        _ => None,
    }
}

/// What a host-differential test must not compare because Intel and AMD CPUs (or generations of
/// one vendor) legitimately differ there, each with its reference and where it is masked. The
/// suite was written on an AMD EPYC and must pass on any x86-64 host; the test binaries name
/// the host CPU (`emu::hostcpu::announce`) so a failure log says which CPU it ran on.
pub const MODEL_SPECIFIC: &[(&str, &str)] = &[
    (
        "flags an instruction leaves undefined (MUL/IMUL SF/ZF/AF/PF, DIV/IDIV all six, shift and \
         rotate OF for counts other than 1 and AF, BSF/BSR/TZCNT/LZCNT/BT*, logical AF, AAA/DAA...)",
        "SDM Vol. 2, each instruction's Flags Affected; masked by iced-x86's rflags_undefined() in \
         compare::compare, emu hosttest::check (compared only on the reference Intel model there)",
    ),
    (
        "BSF/BSR destination when the source is zero",
        "AMD: unchanged (APM Vol. 3); Intel: undefined (SDM Vol. 2); compare::instance_undefined",
    ),
    (
        "shift/rotate flags that depend on the count: OF for counts other than 1, CF of SHL/SHR for \
         counts of at least the operand size; 16-bit SHLD/SHRD past 16: the result and all flags",
        "SDM Vol. 2, SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD; compare::instance_undefined; \
         emu shift tests compare them on the reference host only",
    ),
    (
        "x87 transcendental results (FSIN, FCOS, FSINCOS, FPTAN, FPATAN, F2XM1, FYL2X, FYL2XP1) and C1",
        "SDM Vol. 1, 8.3.10: error below 1 ulp (round to nearest) or 1.5 ulps (other modes); \
         compared within 1 or 2 ulps (compare::compare_x87, emu x87 program test)",
    ),
    (
        "x87 FCS/FDS, FDP after non-faulting instructions, FOP without a pending exception",
        "SDM Vol. 1, 8.1.8 (CPUID.(EAX=7,ECX=0):EBX[13] and [6]) and 8.1.9.1 (fopcode compatibility); \
         emu x87 tests harness::clear_model_specific; FNSTENV/FNSAVE excluded here",
    ),
    (
        "FXSAVE image: MXCSR_MASK, reserved bytes and bits, FCS/FDS, FIP/FDP bits 63:48, FSW.ES/B after \
         FXRSTOR, FOP/FIP/FDP with ES clear on AMD without RstrFpErrPtrs",
        "SDM Vol. 1, 10.5.1 and 11.6.6; APM Vol. 4, FXSAVE; emu sse::fxsave tests::compared_bits; \
         FXSAVE/FXRSTOR excluded here",
    ),
    (
        "0F 0D (reserved NOP / PREFETCH group) with a register operand",
        "Intel: NOP (SDM Vol. 2); AMD: #UD (APM Vol. 3, PREFETCH); run on Intel hosts only, by exclusion() above",
    ),
    (
        "RCPPS/RCPSS/RSQRTPS/RSQRTSS result bits",
        "SDM Vol. 2: relative error at most 1.5 * 2^-12; compare::is_approximation",
    ),
    (
        "CPUID, RDTSC/RDTSCP/TSC_AUX, RDPID, RDRAND/RDSEED, XSAVE layouts",
        "differ by design or by enabled features; excluded by exclusion() above",
    ),
    (
        "instructions the host lacks (MOVBE, POPCNT, LZCNT, BMI1/2, ADX, SHA, ...)",
        "CPUID feature bits; excluded per host by host_has (LZCNT/TZCNT would run as BSR/BSF)",
    ),
];

/// The reserved-NOP forms in the 0F 0D opcode space (the PREFETCH group on AMD).
fn is_0f0d_reserved_nop(code: Code) -> bool {
    matches!(code, Code::Reservednop_rm16_r16_0F0D | Code::Reservednop_rm32_r32_0F0D | Code::Reservednop_rm64_r64_0F0D)
}

/// True on an Intel host (other vendors follow AMD where the two differ).
fn host_is_intel() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        emu::hostcpu::host_cpu().is_intel()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True if the host CPU has `f` (base x86-64 features are always there).
pub fn host_has(f: CpuidFeature) -> bool {
    use CpuidFeature as F;
    #[cfg(target_arch = "x86_64")]
    {
        match f {
            F::INTEL8086 | F::INTEL8086_ONLY | F::INTEL186 | F::INTEL286 | F::INTEL386 | F::INTEL486 | F::X64 => true,
            F::CMOV | F::CX8 | F::FPU | F::FXSR | F::SSE | F::SSE2 | F::MULTIBYTENOP | F::SYSCALL => true,
            F::CPUID | F::TSC | F::PAUSE | F::CLFSH | F::FPU287 | F::FPU387 => true,
            // Hint-space encodings every x86-64 CPU executes (as a NOP where unsupported).
            F::PREFETCHW | F::CET_IBT => true,
            F::SSE3 => std::arch::is_x86_feature_detected!("sse3"),
            F::SSSE3 => std::arch::is_x86_feature_detected!("ssse3"),
            F::SSE4_1 => std::arch::is_x86_feature_detected!("sse4.1"),
            F::SSE4_2 => std::arch::is_x86_feature_detected!("sse4.2"),
            F::SSE4A => std::arch::is_x86_feature_detected!("sse4a"),
            F::POPCNT => std::arch::is_x86_feature_detected!("popcnt"),
            F::LZCNT => std::arch::is_x86_feature_detected!("lzcnt"),
            F::BMI1 => std::arch::is_x86_feature_detected!("bmi1"),
            F::BMI2 => std::arch::is_x86_feature_detected!("bmi2"),
            F::ADX => std::arch::is_x86_feature_detected!("adx"),
            F::MOVBE => std::arch::is_x86_feature_detected!("movbe"),
            F::CMPXCHG16B => std::arch::is_x86_feature_detected!("cmpxchg16b"),
            F::PCLMULQDQ => std::arch::is_x86_feature_detected!("pclmulqdq"),
            F::AES => std::arch::is_x86_feature_detected!("aes"),
            F::SHA => std::arch::is_x86_feature_detected!("sha"),
            F::AVX => std::arch::is_x86_feature_detected!("avx"),
            F::AVX2 => std::arch::is_x86_feature_detected!("avx2"),
            F::FMA => std::arch::is_x86_feature_detected!("fma"),
            F::F16C => std::arch::is_x86_feature_detected!("f16c"),
            _ => false,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = f;
        false
    }
}
