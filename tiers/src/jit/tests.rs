//! Unit tests of the JIT: real-mode and 64-bit programs run at threshold 1 (every block
//! translated), with and without inline templates, give the results arithmetic predicts and
//! the state (registers, flags) and retired count tier 0 leaves, also when stopped at every
//! instruction limit, and with code that rewrites itself.

use super::*;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
use emu::mem::GuestRam;
use emu::user::aspace::{AddressSpace, PROT_EXEC, PROT_READ, PROT_WRITE};

/// A real-mode CPU (CS = DS = 0) with `code` at 0x1000, RIP there.
fn cpu_with(code: &[u8]) -> Cpu {
    let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
    cpu.ram.slice_mut(0x1000, code.len()).unwrap().copy_from_slice(code);
    cpu.state.rip = 0x1000;
    cpu
}

fn jit(threshold: u64) -> JitEngine {
    JitEngine::new(JitOptions { threshold, code_bytes: 1 << 20, inline: true }, Rc::default()).unwrap()
}

/// Step 1's JIT: every instruction through the trampoline.
fn jit_fallback_only(threshold: u64) -> JitEngine {
    JitEngine::new(JitOptions { threshold, code_bytes: 1 << 20, inline: false }, Rc::default()).unwrap()
}

/// Runs `engine` until HLT (or `limit` instructions), returning the exit.
fn run(engine: &mut dyn Engine, cpu: &mut Cpu, limit: u64) -> Exit {
    loop {
        let left = limit - cpu.retired;
        match engine.run(cpu, &Limit::instructions(left)).unwrap() {
            Exit::Stop(Stop::Yield) => continue,
            e => return e,
        }
    }
}

/// mov cx, 1000 ; l: add ax, cx ; dec cx ; jnz l ; hlt
const SUM_LOOP: &[u8] = &[0xb9, 0xe8, 0x03, 0x01, 0xc8, 0x49, 0x75, 0xfb, 0xf4];

/// mov cx, 100 ; l: mov bx, 0 (its immediate is at 0x1004) ; add ax, bx ;
/// inc word [0x1004] ; dec cx ; jnz l ; hlt — the loop rewrites its own block each time.
const SMC_LOOP: &[u8] =
    &[0xb9, 0x64, 0x00, 0xbb, 0x00, 0x00, 0x01, 0xd8, 0xff, 0x06, 0x04, 0x10, 0x49, 0x75, 0xf4, 0xf4];

#[test]
fn a_translated_loop_computes_the_sum() {
    let mut cpu = cpu_with(SUM_LOOP);
    // 16-bit code has no inline forms: with them on, the JIT would leave it to tier 0.
    let mut j = jit_fallback_only(1);
    assert_eq!(run(&mut j, &mut cpu, u64::MAX), Exit::Stop(Stop::Halt));
    // 1 + 2 + ... + 1000, modulo 2^16.
    assert_eq!(cpu.state.gpr[0] & 0xffff, 500_500 % 65_536);
    // mov, 1000 x (add, dec, jnz), hlt.
    assert_eq!(cpu.retired, 1 + 3 * 1000 + 1);
    let s = j.stats.borrow().clone();
    assert!(s.compiled >= 2 && s.links >= 1, "{s}");
    assert!(s.translated_instructions >= 3 * 999, "{s}");
}

#[test]
fn self_modifying_code_is_seen_at_once() {
    let mut cpu = cpu_with(SMC_LOOP);
    let mut j = jit_fallback_only(1);
    assert_eq!(run(&mut j, &mut cpu, u64::MAX), Exit::Stop(Stop::Halt));
    // bx takes 0, 1, ..., 99: the sum is 4950.
    assert_eq!(cpu.state.gpr[0] & 0xffff, 4950);
    assert_eq!(cpu.ram.slice_mut(0x1004, 2).unwrap(), &100u16.to_le_bytes());
    let s = j.stats.borrow().clone();
    assert!(s.dropped >= MAX_RETRANSLATIONS as u64, "{s}");
}

/// Every instruction limit stops the JIT where it stops tier 0, with the same state.
#[test]
fn limits_stop_where_tier0_stops() {
    for code in [SUM_LOOP, SMC_LOOP] {
        limits_agree(code, cpu_with);
    }
}

/// `code` run to its end on tier 0 and on the JIT at threshold 1, each on its own CPU made by
/// `make`: both must stop the same way with the same retired count, RIP, registers and flags.
/// Returns tier 0's exit, tier 0's CPU, the JIT's CPU and the JIT's counts.
fn run_to_end_on_both(code: &[u8], make: fn(&[u8]) -> Cpu) -> (Exit, Cpu, Cpu, JitStats) {
    let (mut a, mut b) = (make(code), make(code));
    let mut j = jit(1);
    let ea = run(&mut Interp::new(), &mut a, u64::MAX);
    let eb = run(&mut j, &mut b, u64::MAX);
    assert_eq!(ea, eb);
    assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr));
    assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize());
    let stats = j.stats.borrow().clone();
    (ea, a, b, stats)
}

/// For `n` in steps through the run of `code`: tier 0 and both JITs stopped after `n / 2`, then
/// `n` instructions leave the same registers, flags and RIP.
fn limits_agree(code: &[u8], make: fn(&[u8]) -> Cpu) {
    {
        let mut reference = make(code);
        let total = {
            let mut t0 = Interp::new();
            run(&mut t0, &mut reference, u64::MAX);
            reference.retired
        };
        for n in (1..total).step_by(7) {
            for inline in [false, true] {
                let (mut a, mut b) = (make(code), make(code));
                let mut t0 = Interp::new();
                let mut j = if inline { jit(1) } else { jit_fallback_only(1) };
                // Two runs each, so translations made in the first are entered in the second.
                for limit in [n / 2, n] {
                    assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
                    assert_eq!(a.retired, limit);
                    assert_eq!(b.retired, limit);
                    assert_eq!(a.state.rip, b.state.rip, "RIP at limit {limit}, inline {inline}");
                    assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}, inline {inline}");
                    assert_eq!(
                        a.state.lazy.materialize(),
                        b.state.lazy.materialize(),
                        "flags at limit {limit}, inline {inline}"
                    );
                }
            }
        }
    }
}

/// A fault in translated code leaves RIP at the instruction and counts the ones before it.
#[test]
fn a_fault_in_translated_code_is_precise() {
    // mov cx, 3 ; l: dec cx ; jnz l ; ud2
    let code = [0xb9, 0x03, 0x00, 0x49, 0x75, 0xfd, 0x0f, 0x0b];
    let mut cpu = cpu_with(&code);
    let mut j = jit_fallback_only(1);
    let exit = run(&mut j, &mut cpu, u64::MAX);
    assert!(matches!(exit, Exit::Stop(Stop::Fault(f)) if f.vector == 6), "{exit:?}");
    assert_eq!(cpu.state.rip, 0x1006);
    assert_eq!(cpu.retired, 1 + 2 * 3);
}

/// A full code cache is emptied and compilation goes on.
#[test]
fn a_full_code_cache_is_flushed_whole() {
    let mut cpu = cpu_with(SUM_LOOP);
    let mut j = JitEngine::new(JitOptions { threshold: 1, code_bytes: 1 << 16, inline: true }, Rc::default()).unwrap();
    // Fill the cache: compile the same block until it no longer fits.
    let idx = j.interp.cache.lookup(&mut cpu).unwrap();
    let mut flushed = false;
    for _ in 0..10_000 {
        j.interp.cache.set_translation(idx, None);
        j.compile(idx).unwrap();
        if j.stats.borrow().full_flushes > 0 {
            flushed = true;
            break;
        }
    }
    assert!(flushed, "64 KiB filled up");
    assert_eq!(run(&mut j, &mut cpu, u64::MAX), Exit::Stop(Stop::Halt));
    assert_eq!(cpu.state.gpr[0] & 0xffff, 500_500 % 65_536);
}

/// Where the 64-bit test code lives.
const CODE64: u64 = 0x40_0000;

/// A 64-bit CPL3 CPU (the user-mode set-up) with `code` at `CODE64` and a writable page after.
fn cpu64_with(code: &[u8]) -> Cpu {
    cpu64_prot(code, PROT_READ | PROT_EXEC)
}

/// `cpu64_with`, the code page also writable (self-modifying code).
fn cpu64_rwx_with(code: &[u8]) -> Cpu {
    cpu64_prot(code, PROT_READ | PROT_WRITE | PROT_EXEC)
}

fn cpu64_prot(code: &[u8], prot: u32) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, prot);
    let frame = aspace.populate(&mut cpu.ram, CODE64, prot).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    let rw = PROT_READ | PROT_WRITE;
    aspace.add_region(&mut cpu.ram, CODE64 + 0x1000, CODE64 + 0x2000, rw);
    aspace.populate(&mut cpu.ram, CODE64 + 0x1000, rw).unwrap();
    cpu.state.rip = CODE64;
    cpu
}

/// A 64-bit loop over every inline form (ALU with registers and immediates at both sizes, ADC
/// and SBB after a flag-setting form and after a handler call, INC/DEC keeping CF, LEA, MOV,
/// loads and stores, PUSH/POP, CALL, shifts and IMUL where their flags are dead and where they
/// are not, Jcc after a flag setter), mixed with forms that go through the trampoline (a memory
/// operand, a shift, PUSHF, which reads every flag the inline forms left), ending in HLT (#GP
/// at CPL3).
fn mixed_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 300
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rbx, -5
        ; mov rsi, 0x40_1000
        ; mov rsp, 0x40_2000
        ; ->top:
        ; add rax, rbx
        ; pushfq
        ; pop r15
        ; add rbp, r15
        ; adc rdx, rcx
        ; sbb ebx, 7
        ; inc rdx
        ; pushfq
        ; pop r15
        ; add rbp, r15
        ; sub eax, ebx
        ; pushfq
        ; pop r15
        ; add rbp, r15
        ; lea rdi, [rax + rcx * 8 + 0x44]
        ; lea r8d, [rdi + rdx - 3]
        ; xor r9, r8
        ; or r9d, 0x1f
        ; and r10, r9
        ; sub r10, rcx
        ; shr rax, 3
        ; adc r11, r11
        ; mov [rsi], r9
        ; add r12, [rsi]
        ; mov r14, [rsi + 8]
        ; mov [rsi + 8], r12d
        ; movzx r15d, BYTE [rsi + 1]
        ; movzx r15, WORD [rsi + 2]
        ; push r14
        ; push rsp
        ; pop r14
        ; pop r13
        ; shl r15, 5
        ; sar r15d, 2
        ; imul r15, r14
        ; imul r14d, r15d, 77
        ; add r15, r14
        ; call ->sub
        ; shr r10, 7
        ; sub r10, rbx
        ; cmp r10, [rsi + 8]
        ; jl >less
        ; add r10d, [rsi]
        ; adc r9, [rsi + 8]
        ; sbb r9d, [rsi]
        ; and r9, [rsi]
        ; test [rsi + 8], r10
        ; cmp DWORD [rsi], 12345
        ; jbe >less
        ; inc r10
        ; less:
        ; cmp r12, rdi
        ; jb >skip
        ; dec r12d
        ; test r12, r12
        ; js >skip
        ; add r13, 1
        ; skip:
        ; inc ebx
        ; mov r14d, ebx
        ; dec ecx
        ; jnz ->top
        ; hlt
        ; ->sub:
        ; add rbp, r13
        ; push rax
        ; call ->sub2
        ; ret
        ; ->sub2:
        ; inc rbp
        ; ret 8 // drops the pushed rax too
    );
    a.finalize().unwrap()
}

#[test]
fn inline_forms_match_tier0_at_every_limit() {
    limits_agree(&mixed_loop(), cpu64_with);
}

#[test]
fn inline_forms_are_compiled_and_leave_tier0s_state() {
    let (ea, a, _, s) = run_to_end_on_both(&mixed_loop(), cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
}

/// A 64-bit loop through every indirect branch form: `jmp [table + i * 8]`, `jmp r64`, `call r64`,
/// `call [m64]`, RET (the indirect-branch table's hits), a RET to a return address the callee
/// rewrote, a recursion 200 calls deep, and a store that rewrites one jump target's code every
/// 16 iterations (its translation dropped, the table emptied, the new code seen at once).
fn indirect_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 120
        ; mov rsp, 0x40_2000
        ; mov rsi, 0x40_1000
        ; lea rax, [->h0]
        ; mov [rsi], rax
        ; lea rax, [->h1]
        ; mov [rsi + 8], rax
        ; lea rax, [->h2]
        ; mov [rsi + 16], rax
        ; lea rax, [->h3]
        ; mov [rsi + 24], rax
        ; lea rax, [->f2]
        ; mov [rsi + 32], rax
        ; ->top:
        ; mov eax, ecx
        ; and eax, 3
        ; jmp QWORD [rsi + rax * 8]
        ; ->h0:
        ; add rbx, 1
        ; jmp ->next
        ; ->h1:
        ; add rbx, 10
        ; lea rdx, [->h1b]
        ; jmp rdx
        ; ->h1b:
        ; add rbx, 5
        ; jmp ->next
        ; ->h2:
        ; lea rdx, [->f]
        ; call rdx
        ; mov edi, 200
        ; call ->rec
        ; jmp ->next
        ; ->h3:
        ; call QWORD [rsi + 32]
        ; add rbx, 3
        ; jmp ->next
        ; ->next:
        ; test ecx, 15
        ; jnz >keep
        // h0's `add rbx, imm8`: the immediate becomes the counter's low byte.
        ; lea rdi, [->h0]
        ; mov [rdi + 3], cl
        ; keep:
        ; dec ecx
        ; jnz ->top
        ; hlt
        ; ->f:
        ; add rbx, 100
        ; ret
        ; ->f2:
        ; add rbx, 1000
        ; lea rax, [->skip]
        ; mov [rsp], rax
        ; ret
        ; ->skip:
        ; add rbx, 7
        ; jmp ->next
        ; ->rec:
        ; add rbp, rdi
        ; dec edi
        ; jz >done
        ; call ->rec
        ; done:
        ; ret
    );
    a.finalize().unwrap()
}

#[test]
fn indirect_branches_match_tier0_at_every_limit() {
    limits_agree(&indirect_loop(), cpu64_rwx_with);
}

#[test]
fn indirect_branches_use_the_table_and_leave_tier0s_state() {
    let (ea, _, b, s) = run_to_end_on_both(&indirect_loop(), cpu64_rwx_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    // The sums the program's arithmetic predicts (independent of either engine): rbx gains,
    // per iteration i = 120..1 by i % 4: 0 -> h0's immediate, 1 -> 15, 2 -> 100, 3 -> 1007
    // (f2 returns to `skip`, past h3's `add rbx, 3`); rbp gains 200 * 201 / 2 per `i % 4 == 2`.
    let mut imm = 1u64;
    let (mut rbx, mut rbp) = (0u64, 0u64);
    for i in (1..=120u64).rev() {
        rbx += match i % 4 {
            0 => imm,
            1 => 15,
            2 => 100,
            _ => 1007,
        };
        if i % 4 == 2 {
            rbp += 200 * 201 / 2;
        }
        if i % 16 == 0 {
            imm = i & 0xff;
        }
    }
    assert_eq!(b.state.gpr[3], rbx);
    assert_eq!(b.state.gpr[5], rbp);
    // The recursion's RETs: predicted by the shadow stack, else found in the table.
    assert!(s.indirect_hits + s.ret_hits > 200 * 30, "{s}");
    assert!(s.dropped >= 7, "the rewritten block was dropped each time: {s}");
}

/// A block whose registers live in host registers, with a load that faults (#PF: it walks off
/// the data page) after three of them changed: the fault must leave exactly tier 0's state.
fn cached_fault_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 3
        ; mov rsi, 0x40_1000
        ; ->top:
        ; add rax, rcx
        ; lea rdx, [rax + rcx * 4 + 9]
        ; inc r8
        ; mov r9, [rsi]
        ; add r10, r9
        ; add rsi, 64
        ; add rbx, rdx
        ; add rcx, rax
        ; jmp ->top
    );
    a.finalize().unwrap()
}

#[test]
fn a_fault_in_a_register_cached_block_leaves_tier0s_state() {
    let code = cached_fault_loop();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "#PF: {ea:?}");
    // 64 loads of 64 bytes apart stay on the data page; the 65th faults.
    assert_eq!(a.retired, 2 + 64 * 9 + 3);
    assert_eq!(a.fault_addr, b.fault_addr);
    assert!(s.translated_instructions > 500, "{s}");
    limits_agree(&code, cpu64_with);
}

/// ROL/ROR, NOT, BSWAP, MOVSXD (register and memory), 8/16-bit loads and stores (and the
/// AH..BH ones left to the handler), read-modify-write ALU forms and CMOVcc inline, in a block
/// that loops on itself (registers kept in host registers across the back edge, a handler call
/// in the middle), with rotates whose
/// flags are dead (a later XOR kills them, also through a rotate after a SHR) and live (PUSHF
/// reads them), CMOVcc on the condition its flag setter left and on another one.
fn more_forms_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 200
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, -77
        ; mov rsi, 0x40_1000
        ; mov rsp, 0x40_2000
        ; ->top:
        ; ror eax, 7
        ; rol rdx, 13
        ; xor edx, eax
        ; not r8
        ; not r9d
        ; bswap r9d
        ; bswap r10
        ; add r9, r8
        ; shr r11, 3
        ; ror r11d, 5
        ; xor r11, rax
        ; movsxd r12, r9d
        ; movsxd r13, DWORD [rsi]
        ; cmp r9, r10
        ; cmovb r14, r9
        ; cmovae r14d, r10d
        ; sub r15, rcx
        ; cmovl r15, rax
        ; mov [rsi], edx
        ; mov [rsi + 9], r9w
        ; mov [rsi + 3], dl
        ; mov r13b, [rsi + 1]
        ; mov r12w, [rsi + 2]
        ; mov ah, [rsi + 5]
        ; mov [rsi + 7], ch
        ; add rbp, r13
        ; add rbp, r12
        ; add [rsi + 16], rcx
        ; adc QWORD [rsi + 24], 5
        ; sbb DWORD [rsi + 32], edx
        ; xor [rsi + 40], r9
        ; and DWORD [rsi + 44], -3
        ; or [rsi + 48], r10d
        ; sub QWORD [rsi + 56], 1
        ; cmovz rbp, rsi
        ; rol rax, 1
        ; pushfq
        ; pop rbx
        ; add rbp, rbx
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn more_inline_forms_match_tier0_at_every_limit() {
    let code = more_forms_loop();
    limits_agree(&code, cpu64_with);
    let (_, a, _, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(s.translated_instructions > a.retired / 2, "{s}");
}

/// A read-modify-write whose operand crosses from the data page into an unmapped one: #PF with
/// nothing written, as on tier 0 (which checks both pages before writing), after the same
/// instruction ran inline on the page's first bytes in earlier iterations.
#[test]
fn a_page_crossing_read_modify_write_faults_as_on_tier0() {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov rsi, 0x40_1000
        ; mov rcx, QWORD 0x0101_0101_0101_0101
        ; ->top:
        ; add [rsi], rcx
        ; add rsi, 0x333
        ; jmp ->top
    );
    let code = a.finalize().unwrap();
    let (ea, mut a, mut b, _) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "#PF: {ea:?}");
    // 5 * 0x333 = 0xfff: the sixth store would write 1 byte on the page and 7 on the next.
    assert_eq!(b.state.gpr[6], 0x40_1000 + 5 * 0x333);
    let page = |c: &mut Cpu| {
        let mut bytes = vec![0u8; 0x1000];
        c.read_bytes(0x40_1000, &mut bytes).unwrap();
        bytes
    };
    let (pa, pb) = (page(&mut a), page(&mut b));
    assert_eq!(pa, pb);
    assert_eq!(pb[0xfff], 0, "nothing written before the fault");
    assert_eq!(pb[0], 1);
}

/// The byte and word forms, conditions read from the lazy record, SETcc, MOVZX/MOVSX from
/// registers, DIV and shifts whose flags are live: a 64-bit loop of them (high-byte registers
/// mixed in, which stay on the handler), each Jcc/SETcc/CMOVcc once right after an inline flag
/// setter and once after a handler or a memory form, ending in HLT (#GP at CPL3).
fn narrow_forms_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 300
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, -77
        ; mov rsi, 0x40_1000
        ; mov rdi, 0x40_1800
        ; mov r8, 0x7fff
        ; mov r9, 0x80
        ; mov rsp, 0x40_2000
        ; ->top:
        // Results whose byte or word is 0 in a register whose other bits are not: the record
        // must hold them sign-extended from the operand size (ZF, SF).
        ; mov r10, -256
        ; add r10b, 0
        ; pushfq
        ; pop rbx
        ; add [rdi + 0x200], rbx
        ; mov r10, QWORD 0x7fff_0000_0001_0000
        ; or r10w, [rdi + 0x100]
        ; pushfq
        ; pop rbx
        ; add [rdi + 0x200], rbx
        ; add al, cl
        ; adc ah, dl
        ; sub dx, cx
        ; sbb r8w, 0x1234
        ; cmp al, 0x7f
        ; setl bl
        ; setg bh
        ; cmp dl, r9b
        ; jbe ->skip1
        ; xor r9b, al
        ; ->skip1:
        ; inc r8b
        ; dec r9w
        ; seto r10b
        ; movzx r11d, r9b
        ; movsx r12, r8w
        ; movsx r13d, dl
        ; movzx r14, dx
        ; add [rsi + rcx], al
        ; cmp BYTE [rsi + rcx + 1], 0x40
        ; setae r15b
        ; cmp [rdi], dx
        ; cmovg r14, rax
        ; test BYTE [rsi + 3], 0x21
        ; jz ->skip2
        ; or WORD [rdi + 6], 0x0101
        ; ->skip2:
        ; and r8b, [rsi + 9]
        ; xor dx, [rdi + 2]
        ; test r9w, r8w
        ; js ->skip3
        ; add WORD [rdi + 10], 7
        ; ->skip3:
        ; mov rbp, rax
        ; shl rbp, 3
        ; adc r11, 0
        ; shr r12d, 5
        ; jc ->skip4
        ; sar r13, 2
        ; jl ->skip4
        ; shl r13d, 9
        ; jo ->skip4
        ; inc r11
        ; ->skip4:
        ; shl r11d, cl
        ; sar r12, cl
        ; add r12, r11
        ; shr r11d, cl
        ; pushfq
        ; pop rbx
        ; add [rdi + 0x200], rbx
        ; sar rdx, cl
        ; jle ->skip5
        ; inc WORD [rdi + 0x20]
        ; dec DWORD [rdi + 0x24]
        ; ->skip5:
        ; shr r8w, 5
        ; pushfq
        ; pop rbx
        ; add [rdi + 0x200], rbx
        ; sar r9b, 1
        ; jns ->skip6
        ; shl dx, 3
        ; ->skip6:
        ; shl r11d, 1
        ; adc r11, 0
        ; shl r13b, 3
        ; jo ->skip7
        ; nop DWORD [rax + rax]
        ; shr r8w, 3
        ; add r8, 1
        ; ->skip7:
        ; inc BYTE [rsi + 0x30]
        ; setz r10b
        ; stc
        ; dec QWORD [rdi + 0x28]
        ; adc r10, 0
        ; mov [rdi + 16], r11
        ; push rdx
        ; push rax
        ; mov rax, r14
        ; xor edx, edx
        ; lea rbx, [rcx + 3]
        ; div rbx
        ; add r15, rdx
        ; mov eax, r13d
        ; mov edx, 2
        ; div ebx
        ; pop rax
        ; pop rdx
        ; add rax, r15
        ; pushfq
        ; pop rbx
        ; add [rdi + 0x200], rbx
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn narrow_forms_match_tier0_at_every_limit() {
    let code = narrow_forms_loop();
    limits_agree(&code, cpu64_with);
    let (_, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let mut pa = vec![0u8; 0x1000];
    let mut pb = vec![0u8; 0x1000];
    let (mut a, mut b) = (a, b);
    a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
    b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
    assert_eq!(pa, pb, "the data page");
}

/// DIV by zero and with a quotient too wide raise #DE from translated code with nothing
/// changed, as on tier 0, after the same DIV ran inline in earlier iterations.
#[test]
fn a_divide_error_in_translated_code_is_precise() {
    for wide in [true, false] {
        let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
        dynasm!(a
            ; .arch x64
            ; mov ecx, 40
            ; mov r8, 5
            ; ->top:
            ; mov eax, 1000
            ; mov edx, 0
            ; cmp ecx, 20
            ; cmovb edx, ecx
        );
        if wide {
            dynasm!(a ; .arch x64 ; div r8);
        } else {
            dynasm!(a ; .arch x64 ; div r8d);
        }
        dynasm!(a
            ; .arch x64
            ; add r9, rax
            ; add r10, rdx
            ; dec ecx
            ; jnz ->top
            ; mov r8, 0
            ; div r8
            ; hlt
        );
        let code = a.finalize().unwrap();
        let (ea, a, _, _) = run_to_end_on_both(&code, cpu64_with);
        // The quotient of (cx << 64 | 1000) / 5 is too wide once ecx < 20 (and, for 32 bits,
        // edx >= 5): #DE there, before the final DIV by zero.
        assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 0), "#DE: {ea:?}");
        assert_eq!(a.state.gpr[1], 19, "the first iteration with edx >= the divisor");
    }
}

/// `cpu64_rwx_with` with a 64 KiB stack under `STACK_TOP` (deep recursion).
const STACK_TOP: u64 = CODE64 + 0x11000;

fn cpu64_deep_stack(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let (rwx, rw) = (PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ | PROT_WRITE);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, rwx);
    let frame = aspace.populate(&mut cpu.ram, CODE64, rwx).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    aspace.add_region(&mut cpu.ram, CODE64 + 0x1000, STACK_TOP, rw);
    for page in (CODE64 + 0x1000..STACK_TOP).step_by(0x1000) {
        aspace.populate(&mut cpu.ram, page, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// RET prediction's cases (`shadow`), `rounds` times: a recursion `depth` deep (beyond the
/// shadow stack's depth when `depth` > `shadow::MAX_PAIRS`), a callee that returns past its
/// call site (its RET's target is not the top pair's address), and a callee that rewrites the
/// code at its own return site every fourth round (a store into code while pairs are on the
/// host stack), ending in HLT (#GP at CPL3).
fn ret_loop(depth: i32, rounds: i32) -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov rsp, QWORD STACK_TOP as i64
        ; xor ebx, ebx
        ; xor ebp, ebp
        ; mov r12d, rounds
        ; ->top:
        ; mov edi, depth
        ; call ->rec
        ; call ->past
        ; add rbx, 1000
        ; ->after_past:
        ; add rbx, 7
        ; call ->patch
        ; ->ret_patch:
        // `add rbx, imm8`: `patch` increments the immediate (at ret_patch + 3).
        ; add rbx, 1
        ; dec r12d
        ; jnz ->top
        ; hlt
        ; ->rec:
        ; add rbp, rdi
        ; dec edi
        ; jz >done
        ; call ->rec
        ; done:
        ; ret
        ; ->past:
        ; lea rax, [->after_past]
        ; mov [rsp], rax
        ; ret
        ; ->patch:
        ; test r12d, 3
        ; jnz >skip
        ; lea rax, [->ret_patch]
        ; inc BYTE [rax + 3]
        ; skip:
        ; ret
    );
    a.finalize().unwrap()
}

/// The sums `ret_loop` computes (from the program's arithmetic, independent of either engine):
/// (rbx, rbp).
fn ret_loop_sums(depth: u64, rounds: u64) -> (u64, u64) {
    let (mut rbx, mut imm) = (0, 1);
    for round in (1..=rounds).rev() {
        if round % 4 == 0 {
            imm += 1;
        }
        rbx += 7 + imm;
    }
    (rbx, rounds * depth * (depth + 1) / 2)
}

#[test]
fn predicted_returns_match_tier0_at_every_limit() {
    limits_agree(&ret_loop(12, 6), cpu64_deep_stack);
}

#[test]
fn predicted_returns_leave_tier0s_state() {
    let (depth, rounds) = (3000, 12);
    let (ea, a, b, s) = run_to_end_on_both(&ret_loop(depth, rounds), cpu64_deep_stack);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    let (rbx, rbp) = ret_loop_sums(depth as u64, rounds as u64);
    assert_eq!((a.state.gpr[3], a.state.gpr[5]), (rbx, rbp), "tier 0");
    assert_eq!((b.state.gpr[3], b.state.gpr[5]), (rbx, rbp), "the JIT");
    assert!(s.ret_hits > 5_000 && s.ret_misses >= rounds as u64, "{s}");
    assert!(s.dropped >= 2, "the patched return site was dropped: {s}");
    // Without a limit one entry runs a whole round: the shadow stack fills to its depth, and
    // the deeper returns fall back to the table. A round after a round that compiled blocks
    // (the first, and each after `patch` dropped the page's translations) links the return
    // sites; the rounds after that predict up to the depth (5 of the 12).
    let mut c = cpu64_deep_stack(&ret_loop(depth, rounds));
    let mut j = jit(1);
    let exit = loop {
        match j.run(&mut c, &Limit::NONE).unwrap() {
            Exit::Stop(Stop::Yield) => continue,
            e => break e,
        }
    };
    assert_eq!((exit, c.retired, c.state.gpr), (ea, a.retired, a.state.gpr));
    let s = j.stats.borrow().clone();
    let pairs = shadow::MAX_PAIRS as u64;
    assert!(s.ret_hits > 4 * (pairs - 2) && s.ret_hits <= 5 * (pairs + 2), "{s}");
    assert!(s.ret_misses >= (rounds as u64 - 1) * (depth as u64 - pairs), "{s}");
}

/// A 64-bit loop over every inline SSE form kind (fifth round, part E): aligned and unaligned
/// 128-bit loads and stores, scalar loads and stores, MOVD/MOVQ to and from GPRs,
/// MOVSS/MOVSD/MOVQ between registers, packed integer and logic operations, and the IEEE
/// arithmetic in PS/PD/SS/SD forms with memory and register sources. Each iteration loads
/// another MXCSR (the four rounding modes, DAZ, FTZ; flags cleared) and stores it at the end
/// with STMXCSR (a handler), so the sticky flags the inline forms raised are compared too.
/// Once `ecx` reaches `stop_at`, the precision exception is unmasked: the next inexact
/// operation must raise #XM from translated code with nothing changed, as on tier 0. A
/// `misaligned` run instead ends on a MOVAPS from an address that is not 16-byte aligned (#GP).
fn sse_loop(stop_at: i32, misaligned: bool) -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 64
        ; mov rsi, 0x40_1000
        ; mov rsp, 0x40_2000
        // Doubles and integers to start from; the table of MXCSR values at 0x80.
        ; mov rax, QWORD 0x3ff8_0000_0000_0000 // 1.5
        ; mov [rsi], rax
        ; mov rax, QWORD 0x0010_0000_0000_0001 // near the smallest normal
        ; mov [rsi + 8], rax
        ; mov rax, QWORD 0x4009_21fb_5444_2d18 // pi
        ; mov [rsi + 0x10], rax
        ; mov rax, QWORD 0x000f_ffff_ffff_ffff // a denormal
        ; mov [rsi + 0x18], rax
        ; mov rax, QWORD 0x3f80_0001_0080_0001 // singles: ~1, a tiny normal
        ; mov [rsi + 0x20], rax
        ; mov rax, QWORD 0x4049_0fdb_0000_0003 // singles: pi, a denormal
        ; mov [rsi + 0x28], rax
        ; mov DWORD [rsi + 0x80], 0x1f80
        ; mov DWORD [rsi + 0x84], 0x3fc0
        ; mov DWORD [rsi + 0x88], 0xdf80
        ; mov DWORD [rsi + 0x8c], 0xffc0
        ; movdqu xmm8, [rsi]
        ; movdqu xmm9, [rsi + 0x10]
        ; ->top:
        ; mov eax, ecx
        ; and eax, 3
        ; ldmxcsr [rsi + 0x80 + rax * 4]
        ; movapd xmm0, [rsi]
        ; movdqu xmm1, [rsi + 0x13]
        ; movups xmm2, [rsi + 0x20]
        ; mulpd xmm0, xmm9
        ; addpd xmm0, [rsi + 0x10]
        ; subsd xmm8, [rsi + 0x18]
        ; divsd xmm8, xmm0
        ; sqrtpd xmm3, xmm0
        ; sqrtsd xmm4, [rsi + 8]
        ; mulps xmm2, xmm2
        ; addss xmm2, [rsi + 0x28]
        ; divps xmm2, [rsi + 0x20]
        ; minpd xmm3, xmm8
        ; maxss xmm2, xmm1
        ; minsd xmm4, [rsi + 0x10]
        ; subps xmm1, xmm2
        ; paddq xmm5, xmm1
        ; psubd xmm5, xmm3
        ; pxor xmm6, xmm5
        ; pcmpeqb xmm7, xmm6
        ; paddb xmm7, [rsi + 0x30]
        ; punpcklbw xmm7, xmm5
        ; pand xmm6, xmm7
        ; por xmm6, [rsi]
        ; pmuludq xmm6, xmm1
        ; andpd xmm3, xmm6
        ; xorps xmm1, xmm3
        ; movq rax, xmm5
        ; add r8, rax
        ; movd xmm10, ecx
        ; movq xmm11, r8
        ; movd r9d, xmm6
        ; movsd xmm12, xmm0
        ; movss xmm12, xmm2
        ; movq xmm13, xmm3
        ; movq xmm14, [rsi + 0x10]
        ; movd xmm15, [rsi + 0x24]
        ; movaps [rsi + 0x40], xmm0
        ; movups [rsi + 0x53], xmm1
        ; movdqa [rsi + 0x30], xmm7
        ; movq [rsi + 0x68], xmm4
        ; movsd [rsi + 0x10], xmm3
        ; movss [rsi + 0x24], xmm2
        ; movd [rsi + 0x2c], xmm12
        ; movq [rsi + 0x70], xmm13
        ; stmxcsr [rsi + 0x78]
        ; add r10d, [rsi + 0x78]
        ; cmp ecx, stop_at
        ; jne >go
        ; mov DWORD [rsi + 0x80], 0x0f80
        ; mov DWORD [rsi + 0x84], 0x0f80
        ; mov DWORD [rsi + 0x88], 0x0f80
        ; mov DWORD [rsi + 0x8c], 0x0f80
        ; go:
        ; dec ecx
        ; jnz ->top
    );
    if misaligned {
        dynasm!(a ; .arch x64 ; movaps xmm0, [rsi + 8]);
    }
    dynasm!(a ; .arch x64 ; hlt);
    a.finalize().unwrap()
}

/// `sse_loop` on tier 0 and on the JIT at threshold 1, stopped at every 7th instruction limit
/// and run to its end: the same exit, registers, flags, XMM registers, MXCSR and data page.
#[test]
fn sse_forms_match_tier0_at_every_limit() {
    for (stop_at, misaligned) in [(20, false), (-1, true)] {
        let code = sse_loop(stop_at, misaligned);
        limits_agree(&code, cpu64_with);
        let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
        let want = if misaligned { 13 } else { 19 };
        assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == want), "{ea:?}");
        assert!(s.translated_instructions > a.retired / 2, "{s}");
        assert_eq!(s.histogram.iter().sum::<u64>(), 0, "no histogram without its variable");
        assert_eq!(a.state.xmm, b.state.xmm, "XMM registers");
        assert_eq!(a.state.mxcsr, b.state.mxcsr, "MXCSR");
        let (mut pa, mut pb) = (vec![0u8; 0x1000], vec![0u8; 0x1000]);
        let (mut a, mut b) = (a, b);
        a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
        b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
        assert_eq!(pa, pb, "the data page");
        // The loop's MXCSR sums: tier 0's flags were raised (so the comparison means something).
        assert_ne!(a.state.gpr[10], 0);
    }
}

/// Every SSE form of the loop above runs inline (no handler call in it but LDMXCSR and
/// STMXCSR): `sse::form_of` covers what the loop uses.
#[test]
fn sse_loop_forms_are_inline() {
    let code = sse_loop(-1, false);
    let mut cpu = cpu64_with(&code);
    let mut j = jit(1);
    j.stats.borrow_mut().histogram = vec![0; 1 << 13];
    run(&mut j, &mut cpu, u64::MAX);
    let h = j.stats.borrow().histogram.clone();
    let mut fallbacks: Vec<String> = h
        .iter()
        .enumerate()
        .filter(|&(_, &n)| n > 0)
        .map(|(c, _)| format!("{:?}", iced_x86::Code::try_from(c).unwrap()))
        .collect();
    fallbacks.sort();
    // The prologue's first store into the fresh data page (a TLB miss), the MXCSR loads and
    // stores, HLT (#GP at CPL3).
    assert_eq!(fallbacks, ["Hlt", "Ldmxcsr_m32", "Mov_rm64_r64", "Stmxcsr_m32"]);
}

/// NEG of registers at every size (its flags read by a Jcc, SETcc and ADC, and written to the
/// record before a handler reads them with PUSHF), MOV of immediates to memory at every size
/// (the first store into the fresh data page misses the TLB), FS/GS-relative operands, MOVSX
/// loads, CDQE, NOPs, IMUL and rotates with live flags, DIV of memory (ending in #DE): tier
/// 0's state at every limit, and the same data page.
#[test]
fn fifth_round_integer_forms_match_tier0_at_every_limit() {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 100
        ; mov rsi, 0x40_1000
        ; mov rsp, 0x40_2000
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; ->top:
        ; mov QWORD [rsi + rcx * 8], -3
        ; mov DWORD [rsi + 0x400], 0x8000_0001u32 as i32
        ; mov WORD [rsi + rcx * 2 + 0x800], 0x7fff
        ; mov BYTE [rsi + rcx + 0xa00], 0x80u8 as i8
        ; mov rdx, rcx
        ; sub rdx, 50
        ; neg rdx
        ; setc bl
        ; neg edx
        ; adc r8, rdx
        ; neg dx
        ; pushfq
        ; pop r9
        ; add r10, r9
        ; neg dl
        ; jo >skip
        ; neg rax
        ; js >skip
        ; add r11, [rsi + rcx * 8]
        ; skip:
        ; add r12, rdx
        // FS- and GS-relative operands (the bases set by `cpu64_fs_gs`), MOVSX loads, CDQE
        // and the NOPs.
        // (0x64 = FS, 0x65 = GS prefix)
        ; .u8 0x65 ; add rdx, QWORD [rcx * 8 + 0x100]
        ; .u8 0x64 ; mov QWORD [rcx * 4], rdx
        ; .u8 0x65 ; inc DWORD [0x140]
        ; .u8 0x64 ; movsx r13, BYTE [rcx]
        ; add r12, r13
        ; movsx r13, WORD [rsi + rcx * 2]
        ; add r12, r13
        ; mov rax, r12
        ; cdqe
        ; pause
        ; nop
        // IMUL with live flags (read by a Jcc, SETcc, ADC and PUSHF), overflowing or not, zero
        // or not.
        ; mov r13, rcx
        ; shl r13, 57
        ; imul r13, rcx
        ; jo >noov
        ; inc r11
        ; noov:
        ; imul r13d, ecx, 0x0100_0000
        ; setc bl
        ; adc r11, rbx
        ; imul rdx, r13
        ; pushfq
        ; pop r9
        ; add r10, r9
        ; imul r9d, r10d
        ; jz >nz
        ; inc r11
        ; nz:
        // ROL/ROR by immediates with live flags: counts of 1 (OF computed, also from an
        // immediate that masks to 1) and above (OF kept), after an ADD that set OF.
        ; mov r13, rcx
        ; add r13, 0x7fff_ffff
        ; add r13d, 0x7fff_ffff
        ; rol r13, 5
        ; jc >rc
        ; inc r11
        ; rc:
        ; ror r13d, 1
        ; jo >ro
        ; inc r11
        ; ro:
        ; rol r13d, 33
        ; pushfq
        ; pop r9
        ; add r10, r9
        ; ror r13, 7
        ; adc r11, 0
        ; seto bl
        ; add r11, rbx
        ; add r12, r13
        // DIV of memory at both sizes: at ecx = 2 the 32-bit quotient is too wide (#DE).
        ; mov [rsi + 0x600], rcx
        ; dec QWORD [rsi + 0x600]
        ; xor edx, edx
        ; div QWORD [rsi + 0x600]
        ; add r14, rdx
        ; mov eax, ecx
        ; mov edx, 1
        ; div DWORD [rsi + 0x600]
        ; add r14, rax
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    let code = a.finalize().unwrap();
    fn cpu64_fs_gs(code: &[u8]) -> Cpu {
        let mut cpu = cpu64_with(code);
        cpu.state.segs[4].base = 0x40_1800;
        cpu.state.segs[5].base = 0x40_1000 - 0x100;
        cpu
    }
    limits_agree(&code, cpu64_fs_gs);
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_fs_gs);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 0), "#DE: {ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let (mut pa, mut pb) = (vec![0u8; 0x1000], vec![0u8; 0x1000]);
    let (mut a, mut b) = (a, b);
    a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
    b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
    assert_eq!(pa, pb, "the data page");
}

/// SSE arithmetic inside called functions, with RET prediction on (the merge of parts D and
/// E): the floating-point forms save the host's MXCSR in a scratch slot while they run, which
/// must not be the top of the host stack, where the shadow stack keeps its (guest return
/// address, host return point) pairs. A loop calls a function that calls another; both do
/// ADDPD/MULPD and return. Tier 0's state and XMM at every 7th limit and at the end, and the
/// returns predicted.
#[test]
fn sse_in_called_functions_keeps_the_shadow_stack() {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 300
        ; mov rsp, 0x40_2000
        ; mov rax, QWORD 0x3ff0_0000_0000_0001 // just above 1.0: products are inexact
        ; movq xmm0, rax
        ; movq xmm1, rax
        ; ->top:
        ; call ->outer
        ; dec ecx
        ; jnz ->top
        ; hlt
        ; ->outer:
        ; addpd xmm0, xmm1
        ; call ->inner
        ; mulpd xmm0, xmm1
        ; ret
        ; ->inner:
        ; mulpd xmm1, xmm1
        ; addpd xmm1, xmm0
        ; ret
    );
    let code = a.finalize().unwrap();
    limits_agree(&code, cpu64_with);
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    assert_eq!((a.state.xmm, a.state.mxcsr), (b.state.xmm, b.state.mxcsr));
    assert!(s.ret_hits > 300, "{s}");
}

/// A 64-bit loop of register forms at every size on guest registers the register cache holds
/// (a self-looping block caches every register it uses, so byte forms land on host registers
/// that need a REX prefix, SIL and DIL), with loads and stores straight into and out of them,
/// then a loop over several blocks whose Jcc exits go both ways.
fn register_direct_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 40
        ; mov rsi, QWORD 0x1234_5678_9abc_def0
        ; mov rdi, -5
        ; mov r8, 7
        ; mov rbx, CODE64 as i32 + 0x1000
        ; ->top:
        ; add sil, dil
        ; adc si, di
        ; sub esi, 0x1234
        ; xor rdi, rsi
        ; cmp dil, 0x40
        ; setb al
        ; lea r9, [rsi + rdi * 4 + 8]
        ; lea r10d, [rsi + 3]
        ; mov r11d, esi
        ; test r9b, 1
        ; cmovnz r8, r9
        ; inc r10w
        ; dec dil
        ; sbb r11, r8
        ; and r9d, 0xff00
        ; or sil, 0x41
        ; mov [rbx + rcx * 8], sil
        ; mov [rbx + rcx * 8 + 2], r10w
        ; movzx edx, BYTE [rbx + rcx * 8 + 1]
        ; mov dil, [rbx + rcx * 8]
        ; add rdx, rdi
        ; mov r12, 3
        ; imul r12, rdx
        ; mov r13d, 0x77
        ; not r13
        ; dec ecx
        ; jnz ->top
        ; mov ecx, 30
        ; ->second:
        ; cmp ecx, 15
        ; jb ->low
        ; add rsi, rcx
        ; sub dil, cl
        ; jmp ->join
        ; ->low:
        ; xor rsi, rcx
        ; shl rdi, 3
        ; ->join:
        ; test cl, 3
        ; jnz ->skip
        ; mov [rbx + rcx * 4], esi
        ; ->skip:
        ; dec ecx
        ; jnz ->second
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn register_direct_forms_match_tier0_at_every_limit() {
    let code = register_direct_loop();
    limits_agree(&code, cpu64_with);
    let (_, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let (mut pa, mut pb) = (vec![0u8; 0x1000], vec![0u8; 0x1000]);
    let (mut a, mut b) = (a, b);
    a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
    b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
    assert_eq!(pa, pb, "the data page");
}

/// Translations leave clearing RF to the run loop (and to a handler that sets it ending the
/// chain): RF set when the run starts is clear after it, as tier 0 clears it at a block's start.
#[test]
fn rf_is_cleared_as_tier0_clears_it() {
    for code in [SUM_LOOP.to_vec(), register_direct_loop()] {
        let make = if code == SUM_LOOP { cpu_with } else { cpu64_with };
        let (mut a, mut b) = (make(&code), make(&code));
        a.state.rflags_other |= rflags::RF;
        b.state.rflags_other |= rflags::RF;
        let limit = u64::MAX;
        let mut j = jit(1);
        assert_eq!(run(&mut Interp::new(), &mut a, limit), run(&mut j, &mut b, limit));
        assert_eq!((a.retired, a.state.rip), (b.retired, b.state.rip));
        assert_eq!(a.state.rflags_other, b.state.rflags_other);
        assert_eq!(b.state.rflags_other & rflags::RF, 0);
        assert!(j.stats.borrow().translated_instructions > 0);
    }
}

/// A loop whose flag setters' records wait in a host register (`x64::write_record`, pending)
/// across loads, stores, PUSH and POP to an ADC/SBB/INC/DEC that reads CF (from a register,
/// from memory and read-modify-write), with the flags dead at its head (its back edge skips the
/// record, its exits write it: PUSHF after the loop reads it), then a load after a pending CMP
/// that faults: #PF with the flags of that CMP, as on tier 0. The first iteration's probes miss
/// (cold TLB, clean page), so the miss paths compute the record before their handlers. Each
/// pending record's `aux` differs from the one last written (TEST's, 0).
fn pending_flags_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 50
        ; mov rsi, 0x40_1000
        ; mov rdi, 0x40_1040
        ; mov r9, QWORD 0x7fff_fff0_8000_0009
        ; mov rsp, 0x40_2000
        ; ->top:
        ; add rax, r9
        ; mov rdx, [rsi]
        ; mov [rsi + 8], rax
        ; push rdx
        ; pop r10
        ; adc rax, [rsi + 16]
        ; mov r11, [rsi + 24]
        ; adc [rsi + 32], r11
        ; mov rbx, [rsi + 40]
        ; inc r8
        ; mov [rsi + 48], r8b
        ; sbb r12, rdx
        ; add rbx, r9
        ; mov r13, [rdi]
        ; adc r13, rbx
        ; test rbx, rbx
        ; mov [rsi + 56], r9
        // CF set, left pending across the load.
        ; sub rdi, -64
        ; mov r14, [rdi]
        ; add r15, r14
        ; sub r9, rcx
        // CF set, kept by DEC, whose record the back edge leaves pending.
        ; cmp ecx, 1000
        ; mov [rsi + 64], r9
        ; dec ecx
        ; jnz ->top
        ; pushfq
        ; pop rbp
        // CF, SF and AF set, pending across a load that faults.
        ; cmp ecx, 5
        ; mov rax, [0x40_3000]
        ; add rax, rbx
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn pending_flag_records_match_tier0_at_every_limit_and_fault() {
    let code = pending_flags_loop();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "#PF: {ea:?}");
    assert_eq!(a.fault_addr, 0x40_3000);
    assert_eq!(a.fault_addr, b.fault_addr);
    // PUSHF after the loop saw DEC's flags: CF (kept from the CMP), ZF, PF.
    assert_eq!(b.state.gpr[5] & 0x8d5, 0x45, "PUSHF after the loop");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    limits_agree(&code, cpu64_with);
    // A soft limit (as the machine polls its devices) returns at the first block boundary past
    // it, the loop's back edge included: the flags there are tier 0's too.
    for n in (1..a.retired).step_by(3) {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let limit = Limit { poll_after: n, ..Limit::NONE };
        let ea = Engine::run(&mut Interp::new(), &mut a, &limit).unwrap();
        let eb = jit(1).run(&mut b, &limit).unwrap();
        assert_eq!(ea, eb, "poll after {n}");
        assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr), "poll after {n}");
        assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags, poll after {n}");
    }
}

/// The tables generated code reads the record's `aux` from decode, through tier 0's own
/// reading of the record (`LazyFlags`), to the CF, AF and OF they were indexed by: for `pushfq`
/// at their RFLAGS bits, for `lahf; seto al` at bits 8 + their RFLAGS bit (AH) and 0 (AL = OF).
#[test]
fn the_aux_tables_give_back_cf_af_and_of() {
    use emu::state::rflags::{AF, CF, OF};
    for (capture, bits) in [(x64::Capture::Pushf, [CF, AF, OF]), (x64::Capture::Lahf, [CF << 8, AF << 8, 1])] {
        for f in 0..8u64 {
            let pick = |set: [u64; 3]| (0..3).filter(|&b| f >> b & 1 != 0).fold(0, |m, b| m | set[b]);
            let lazy = emu::flags::LazyFlags { result: 1, aux: capture.aux_table()[pick(bits) as usize] };
            assert_eq!(lazy.materialize() & (CF | AF | OF), pick([CF, AF, OF]), "{capture:?} {f:#x}");
        }
    }
}

/// A loop that writes data into its own code page every iteration, beside its code (other
/// 64-byte lines: a read-modify-write, a store, the page's last byte), and rewrites an
/// immediate of its code every 32nd iteration.
fn data_beside_code_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 200
        ; mov rsi, 0x40_0800
        ; lea rdi, [->top]
        ; ->top:
        ; mov eax, 0
        ; add [rsi], rax
        ; add rbx, rax
        ; mov [rsi + 0x400], rcx
        ; mov [rsi + 0x7ff], cl
        ; test ecx, 31
        ; jnz >keep
        // The `mov eax, imm32` at `top`: its immediate becomes the counter.
        ; mov [rdi + 1], ecx
        ; keep:
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

/// Code is tracked by 64-byte line (emu::mmu::softmmu): the data stores into the code's page
/// leave its translations alone, the rewrites of the code drop them, and everything ends as on
/// tier 0 and as the program's arithmetic says. With code tracked by page, every iteration's
/// stores would drop the loop's translations until it stayed on tier 0.
#[test]
fn data_stores_beside_code_keep_its_translations() {
    let (ea, _, mut b, s) = run_to_end_on_both(&data_beside_code_loop(), cpu64_rwx_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    let (mut imm, mut sum) = (0u64, 0u64);
    for i in (1..=200u64).rev() {
        sum += imm;
        if i % 32 == 0 {
            imm = i;
        }
    }
    assert_eq!(b.state.gpr[3], sum);
    assert_eq!(b.read::<emu::flags::W64>(0x40_0800).unwrap(), sum);
    assert_eq!(b.read::<emu::flags::W64>(0x40_0c00).unwrap(), 1);
    assert_eq!(b.read::<emu::flags::W8>(0x40_0fff).unwrap(), 1);
    // Six rewrites, each dropping the few blocks of the page; the loop ran translated.
    assert!((6..=6 * 5).contains(&s.dropped), "{s}");
    assert!(s.translated_instructions >= 200 * 8 / 2, "{s}");
}

/// Sixth round, part G: a loop over more guest registers than the register cache has host
/// registers (so some live only in `cpu.state.gpr`), with the forms emitted straight on host
/// registers: rotates of a cached register, ALU operations, MOV and MOVSXD whose register
/// source has no host register (a memory operand on its `cpu.state.gpr` slot), `op reg, [m]`
/// into a cached register at every size (ADC/SBB reading CF), `cmp/test [m], reg` with a
/// cached register, 32-bit LEAs, and shifts of memory with their flags dead and live.
fn busybox_forms_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 37
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, QWORD 0x7edc_ba98_7654_3211
        ; mov rsi, -3
        ; mov rdi, 0x55
        ; mov r8, QWORD -0x7fff_ffff_ffff_ffff
        ; mov r9, 0x7fff_ffff
        ; mov r10, -0x8000
        ; mov r11, 0x80
        ; mov r12, 0x1357
        ; mov r13, QWORD -0xffff_ffff
        ; mov r14, 0x42
        ; mov r15, 0x99
        ; mov rbp, 0x3c
        ; mov rbx, CODE64 as i32 + 0x1000
        ; mov [rbx + 0x800], rax
        ; mov [rbx + 0x808], rdx
        ; mov [rbx + 0x810], rax
        ; mov [rbx + 0x818], rdx
        ; ->top:
        // The most used registers get host registers; r12..r15 and rbp are used once.
        ; ror eax, 6
        ; rol rdx, 13
        ; ror esi, 31
        ; rol edi, 1
        ; xor eax, edx
        ; and esi, r12d
        ; add rdx, r13
        ; sub di, r14w
        ; adc sil, r15b
        ; cmp eax, ebp
        ; sbb r8d, r12d
        ; test rdx, r15
        ; xor r9, r13
        ; mov eax, r12d
        ; mov rsi, r13
        ; movsxd rdi, r14d
        ; add eax, [rbx + rcx * 8]
        ; adc rdx, [rbx + 0x800]
        ; sub si, [rbx + rcx * 4 + 2]
        ; sbb dil, [rbx + 0x801]
        ; xor r8d, [rbx + 0x804]
        ; or r9, [rbx + rcx * 2]
        ; and r10w, [rbx + 0x806]
        ; cmp [rbx + rcx * 8], eax
        ; setb r11b
        ; test [rbx + 0x808], dl
        ; jz ->skip
        ; cmp [rbx + 0x80a], si
        ; adc r11d, 7
        ; ->skip:
        ; lea r9d, [rax + rdx * 4 + 0x7fff_fff0]
        ; lea r10d, [rsi + rdi]
        ; lea r8d, [rdi * 8 - 3]
        ; mov [rbx + rcx * 8], r9
        ; mov [rbx + rcx * 4 + 0x400], r11d
        // Shifts of memory where their flags are dead (inline), and where they are not.
        ; shr DWORD [rbx + rcx * 4 + 0x400], 3
        ; add esi, 1
        ; shl BYTE [rbx + 0x810], 1
        ; test al, 1
        ; xor [rbx + 0x810], dl
        ; sar QWORD [rbx + 0x818], 5
        ; cmp edx, 3
        ; shl WORD [rbx + 0x818], 1
        ; adc r11d, 0
        ; sar BYTE [rbx + 0x811], 7
        ; jc ->carry
        ; shl DWORD [rbx + 0x81a], 1
        ; ->carry:
        ; shr QWORD [rbx + 0x812], 1
        ; sub r11d, esi
        ; add r12d, eax
        ; rol r13, 7
        ; inc r14
        ; sub r15, rdx
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn busybox_forms_match_tier0_at_every_limit() {
    let code = busybox_forms_loop();
    limits_agree(&code, cpu64_with);
    let (_, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let (mut pa, mut pb) = (vec![0u8; 0x1000], vec![0u8; 0x1000]);
    let (mut a, mut b) = (a, b);
    a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
    b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
    assert_eq!(pa, pb, "the data page");
}

/// Blocks whose last flag setter is followed by their ending Jcc (part F, sixth round: the Jcc
/// branches on the host flags and the record is written only on the ways that need it): a
/// self-loop with its flags dead at its head (no record on its back edge, its budget counted
/// down in r15), one whose ADC reads the CF the loop's previous round left (the record on the
/// back edge too), a self-loop whose body loads (the memory budget check, the record pending
/// on the back edge), and chained blocks ending in each condition after 8/16/32/64-bit and
/// logic setters, taken both ways. PUSHF at the end reads every flag the last one left.
fn deferred_flags_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 40
        ; mov edx, 3
        ; mov r8, QWORD 0x7fff_ffff_ffff_fff0
        ; mov rsi, 0x40_1000
        ; mov rsp, 0x40_2000
        ; ->dead:
        ; add rax, rcx
        ; add rax, 7
        ; lea rbx, [rax + rdx * 2]
        ; add rdx, rax
        ; dec rcx
        ; jnz ->dead
        ; mov ecx, 30
        ; ->live:
        ; adc rax, r8
        ; adc edx, ecx
        ; mov rbx, rax
        ; sub ecx, 1
        ; jne ->live
        ; mov ecx, 20
        ; ->loads:
        ; add rax, [rsi]
        ; mov [rsi + 8], rax
        ; xor r9, rax
        ; dec ecx
        ; jnz ->loads
        ; mov ecx, 25
        ; ->narrow:
        ; add r8w, cx
        ; jo >o
        ; inc r11
        ; o:
        ; sub r8b, 3
        ; jp >p
        ; inc r11
        ; p:
        ; and edx, 0x8000_00ff_u32 as i32
        ; js >s
        ; inc r11
        ; s:
        ; xor r9, r8
        ; jle >le
        ; inc r11
        ; le:
        ; inc r10d
        ; jg >g
        ; inc r11
        ; g:
        ; test r8d, 5
        ; jne >t
        ; inc r11
        ; t:
        ; sbb r12, r9
        ; jbe >be
        ; inc r11
        ; be:
        ; add r9, rax
        ; jl >l
        ; inc r11
        ; l:
        ; dec ecx
        ; jnz ->narrow
        ; pushfq
        ; pop rbp
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn deferred_flag_records_match_tier0_at_every_limit() {
    let code = deferred_flags_loop();
    let (ea, a, _, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    limits_agree(&code, cpu64_with);
    // A soft limit (the machine polling its devices) ends a counting-down loop at the first
    // back edge past it, as tier 0 ends its block there.
    for n in (1..a.retired).step_by(3) {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let limit = Limit { poll_after: n, ..Limit::NONE };
        let ea = Engine::run(&mut Interp::new(), &mut a, &limit).unwrap();
        let eb = jit(1).run(&mut b, &limit).unwrap();
        assert_eq!(ea, eb, "poll after {n}");
        assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr), "poll after {n}");
        assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags, poll after {n}");
    }
}
// Part X (sixth round): x87 register-stack forms called directly (jit/x87.rs).

/// A 64-bit x87 loop over the direct forms (FMUL, FLD ST(i), FSQRT, FADDP, FLD1, FDIVR, FXCH,
/// FSUB, FCHS, FABS, FCOMI (whose CF the DEC keeps), FSTP ST(0), FLDPI), 50 rounds; then ZE is
/// unmasked, FDIV by zero leaves ES pending, and the FLD1 after raises #MF in translated code.
fn x87_loop() -> Vec<u8> {
    let mut c = vec![0xb9, 50, 0, 0, 0, 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb];
    let top = c.len();
    c.extend_from_slice(&[
        0xdc, 0xc9, 0xd9, 0xc1, 0xd9, 0xfa, 0xde, 0xc2, 0xd9, 0xe8, 0xd8, 0xfa, 0xd9, 0xc9, 0xd8, 0xe1, 0xd9, 0xe0,
        0xd9, 0xe1, 0xdb, 0xf1, 0xdd, 0xd8, 0xdd, 0xd8, 0xd9, 0xeb, 0xff, 0xc9,
    ]);
    let back = top as i64 - (c.len() as i64 + 2);
    c.extend_from_slice(&[0x75, back as i8 as u8]);
    // mov word [0x401000], 0x037b ; fldcw [0x401000] ; fldz ; fdiv st(1), st(0) ; fld1 ; hlt
    c.extend_from_slice(&[0x66, 0xc7, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0x7b, 0x03]);
    c.extend_from_slice(&[0xd9, 0x2c, 0x25, 0x00, 0x10, 0x40, 0x00, 0xd9, 0xee, 0xdc, 0xf9, 0xd9, 0xe8, 0xf4]);
    c
}

/// The x87 loop ends in #MF at the FLD1 as on tier 0, with the same FPU state (registers, tags,
/// status and control words, FIP) at the end and at every instruction limit; run translated.
#[test]
fn direct_x87_forms_match_tier0_at_every_limit_and_fault() {
    let code = x87_loop();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 16), "#MF expected: {ea:?}");
    assert_eq!(a.state.rip, CODE64 + code.len() as u64 - 3, "at the FLD1");
    assert_eq!(a.state.fpu, b.state.fpu);
    assert!(s.translated_instructions >= 50 * 16, "{s}");
    for n in (1..a.retired).step_by(5) {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr));
            assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags at limit {limit}");
            assert_eq!(a.state.fpu, b.state.fpu, "FPU at limit {limit}");
        }
    }
}

/// At the default threshold a hot block of x87 register forms is compiled (their direct calls
/// count with the inline forms), not left on tier 0.
#[test]
fn a_hot_x87_loop_is_compiled() {
    let code = x87_loop();
    let mut cpu = cpu64_with(&code);
    let mut j = jit(16);
    run(&mut j, &mut cpu, u64::MAX);
    let s = j.stats.borrow().clone();
    assert_eq!(s.left_on_tier0, 0, "{s}");
    assert!(s.translated_instructions >= 30 * 16, "{s}");
}

/// A second data page whose TLB index is the first's (`emu::mmu::tlb`: linear pages
/// `TLB_ENTRIES` pages apart), beside `cpu64_with`'s.
const COLLIDING: u64 = CODE64 + 0x1000 + (emu::mmu::tlb::TLB_ENTRIES as u64) * 4096;

/// `cpu64_with`, plus a writable page at `COLLIDING`.
fn cpu64_with_colliding_page(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let (rx, rw) = (PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, rx);
    let frame = aspace.populate(&mut cpu.ram, CODE64, rx).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    for page in [CODE64 + 0x1000, COLLIDING] {
        aspace.add_region(&mut cpu.ram, page, page + 0x1000, rw);
        aspace.populate(&mut cpu.ram, page, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// Loads, stores and read-modify-writes alternating between two pages that share a TLB index.
fn colliding_pages_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 1000
        ; mov rsi, QWORD (CODE64 + 0x1000) as i64
        ; mov rdi, QWORD COLLIDING as i64
        ; top:
        ; add [rsi + 8], rcx
        ; add QWORD [rdi + 16], 1
        ; mov rax, [rsi + 8]
        ; add rbx, [rdi + 16]
        ; mov [rdi + 24], rax
        ; dec ecx
        ; jnz <top
        ; hlt
    );
    a.finalize().unwrap()
}

/// Two hot pages sharing a TLB index both stay resident (the TLB's two ways): generated code
/// finds the older one in way 1 inline (way 0's addend used for it lands 128 MiB off, outside
/// guest RAM: the test crashed so when that was broken on purpose), and neither tier walks the
/// page tables again each iteration.
#[test]
fn pages_sharing_a_tlb_index_are_both_found_in_translated_code() {
    let (ea, a, mut b, s) = run_to_end_on_both(&colliding_pages_loop(), cpu64_with_colliding_page);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    // [rsi + 8] = 1000 + 999 + ... + 1; [rdi + 16] counts the iterations, rbx sums its values.
    assert_eq!(b.read::<emu::flags::W64>(CODE64 + 0x1008).unwrap(), 500_500);
    assert_eq!(b.read::<emu::flags::W64>(COLLIDING + 16).unwrap(), 1000);
    assert_eq!(b.read::<emu::flags::W64>(COLLIDING + 24).unwrap(), 500_500);
    assert_eq!(b.state.gpr[3], 500_500);
    assert!(s.translated_instructions >= 1000 * 7 / 2, "{s}");
    // Direct-mapped, each iteration would walk at least twice.
    for (who, cpu) in [("tier 0", &a), ("jit", &b)] {
        let walks = cpu.softmmu.tlb().walks();
        assert!(walks < 50, "{who}: {walks} walks");
    }
}
// Part M (seventh round): memory-operand flag setters ending a block before its Jcc.

/// A third page sharing the TLB index of `cpu64_with`'s data page and `COLLIDING`: cycling
/// through the three evicts one from the two ways at every access, so probes miss.
const COLLIDING2: u64 = COLLIDING + (emu::mmu::tlb::TLB_ENTRIES as u64) * 4096;

/// `cpu64_with`, plus writable pages at `COLLIDING` and `COLLIDING2`.
fn cpu64_with_three_colliding_pages(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let (rx, rw) = (PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, rx);
    let frame = aspace.populate(&mut cpu.ram, CODE64, rx).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    for page in [CODE64 + 0x1000, COLLIDING, COLLIDING2] {
        aspace.add_region(&mut cpu.ram, page, page + 0x1000, rw);
        aspace.populate(&mut cpu.ram, page, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// Blocks ending in a memory-operand CMP/TEST/ALU and a Jcc (part M: the Jcc branches on the
/// host flags, the probe's miss path restores them from the record its handler wrote): the
/// forms `cmp [m], reg`, `cmp reg, [m]`, `test [m], reg`, `op reg, [m]` on a cached register
/// (logic and arithmetic, 8/16/32/64-bit), a read-modify-write `sub [m], reg`, `cmp [m], imm`
/// and an SBB reading the CF a memory compare left, taken both ways, over three pages sharing
/// a TLB index (misses and hits); a logic setter whose record only the miss paths of a load
/// and a memory compare after it read (part M); two self-loops ending in such a pair (flags
/// dead at the head, and live: an ADC reads CF); then a compare crossing into an unmapped page
/// (#PF on the miss path, the record an OR's waiting for it).
fn memory_setter_jcc_program() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 40
        ; mov rsi, QWORD (CODE64 + 0x1000) as i64
        ; mov rdi, QWORD COLLIDING as i64
        ; mov r8, QWORD COLLIDING2 as i64
        ; mov rdx, QWORD 0x7fff_ffff_ffff_fff9
        ; top:
        ; mov eax, ecx
        ; and eax, 7
        ; mov [rsi + rax * 8], rcx
        ; cmp [rsi + rax * 8 + 8], rdx
        ; jb >a
        ; inc r9
        ; a:
        ; cmp dl, [rdi + rax]
        ; jle >b
        ; add r9, 3
        ; b:
        ; test [r8 + 4], ecx
        ; jnz >c
        ; inc r10
        ; c:
        ; mov [r8 + 4], r9d
        ; and edx, [rsi + 16]
        ; js >d
        ; inc r11
        ; d:
        ; add dx, [rdi + rax * 2]
        ; jo >e
        ; add r11, 5
        ; e:
        ; sub [r8 + rax * 4], ecx
        ; jg >f
        ; inc r12
        ; f:
        ; cmp QWORD [rsi + 8], 5
        ; jne >g
        ; inc r12
        ; g:
        ; cmp r9d, [rdi + 8]
        ; sbb edx, [r8 + 8]
        ; jc >h
        ; add r12, rdx
        ; h:
        ; mov [rdi + rax], dl
        ; xor r11b, [rsi + rax]
        ; jp >i
        ; inc r13
        ; i:
        // A logic record read only by the miss paths of the load and the compare after it.
        ; and r9d, 0x7fff
        ; movzx r10d, WORD [rdi + rax * 2]
        ; cmp r10d, [r8 + 12]
        ; jae >j
        ; inc r13
        ; j:
        ; add rdx, rcx
        ; add rdx, r9
        ; dec ecx
        ; jnz <top
        // A self-loop, flags dead at its head.
        ; mov QWORD [rsi + 24], 20
        ; xor r12d, r12d
        ; dead:
        ; inc r12
        ; cmp [rsi + 24], r12
        ; jne <dead
        // A self-loop whose ADC reads the CF of the last round's compare.
        ; mov QWORD [rdi + 24], 12
        ; xor r12d, r12d
        ; live:
        ; adc r13, 1
        ; inc r12
        ; cmp r12, [rdi + 24]
        ; jb <live
        // The miss path faults: a dword crossing into the unmapped page after the data page,
        // with the record of the OR before the load waiting for it (#PF sees that record).
        ; mov rsi, QWORD (CODE64 + 0x1ffe) as i64
        ; or ecx, 0x8000_0080_u32 as i32
        ; mov eax, [rsi - 8]
        ; cmp [rsi], ecx
        ; je >z
        ; inc r13
        ; z:
        ; hlt
    );
    a.finalize().unwrap()
}

/// Tier 0 and the JIT stopped at every instruction count (twice each run, so the second enters
/// translations made in the first) leave the same exit, registers, flag record (bit for bit)
/// and data; the whole run ends in the same #PF.
#[test]
fn memory_setter_jcc_blocks_match_tier0_at_every_limit() {
    let code = memory_setter_jcc_program();
    let make = cpu64_with_three_colliding_pages;
    let (ea, a, _, s) = run_to_end_on_both(&code, make);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "#PF expected: {ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let data = |cpu: &mut Cpu| {
        let mut v = Vec::new();
        for page in [CODE64 + 0x1000, COLLIDING, COLLIDING2] {
            let mut p = vec![0u8; 0x100];
            cpu.read_bytes(page, &mut p).unwrap();
            v.extend(p);
        }
        v
    };
    for n in 1..=a.retired {
        let (mut a, mut b) = (make(&code), make(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr), "limit {limit}");
            assert_eq!(a.state.lazy.result, b.state.lazy.result, "record's result at limit {limit}");
            assert_eq!(a.state.lazy.aux, b.state.lazy.aux, "record's aux at limit {limit}");
        }
        assert_eq!(data(&mut a), data(&mut b), "data at limit {n}");
    }
}

// --- issue 10, seventh round (part Y): x87 stack moves inline, none direct in step 1 ---

/// With `--jit-fallback-only` (step 1) no x87 form is called directly or moved inline: every
/// one goes through the trampoline; with inline forms on, the x87 loop's 14 distinct forms
/// are (`JitStats::x87_direct_sites` counts the sites the backend compiled so).
#[test]
fn fallback_only_compiles_no_direct_x87_form() {
    let code = x87_loop();
    for inline in [false, true] {
        let mut cpu = cpu64_with(&code);
        let mut j = if inline { jit(1) } else { jit_fallback_only(1) };
        let mut reference = cpu64_with(&code);
        assert_eq!(run(&mut j, &mut cpu, u64::MAX), run(&mut Interp::new(), &mut reference, u64::MAX));
        assert_eq!(cpu.state.fpu, reference.state.fpu, "inline {inline}");
        let s = j.stats.borrow().clone();
        assert!(s.translated_instructions >= 50 * 16, "{s}");
        if inline {
            assert!(s.x87_direct_sites >= 16, "inline: {} direct x87 sites", s.x87_direct_sites);
        } else {
            assert_eq!(s.x87_direct_sites, 0, "fallback only");
        }
    }
}

/// A 64-bit loop of x87 stack moves (FLD1, FLDZ, FLD ST(i) of 1.0, of zero, of infinity and
/// of the indefinite, FSTP ST(0), also right after a masked overflow left C1 = 1) between
/// direct forms, pushing three more than it pops per
/// round for six rounds, so the stack overflows (masked) from the third round; then ten FSTP
/// ST(0) (the last two underflow, masked), FLD ST(3) of an empty register (masked underflow),
/// FNCLEX, IE unmasked, an FLD1, three FSTP ST(0) (the last an unmasked underflow: ES set,
/// nothing written) and an FLD1 that raises #MF, then HLT. Each step's environment is kept in
/// the data page.
fn x87_stack_moves() -> Vec<u8> {
    // After each x87 instruction its environment (control, status and full tag words, FIP)
    // is stored at [rdi] by FNSTENV and loaded back by FLDENV (FNSTENV masks every
    // exception; FLDENV restores the masks and leaves the rest as it was), and rdi moves on by
    // 28: the data page keeps every step's state, compared at the end. (A comparison at an
    // instruction limit sees only tier 0's state: `run_to_limit` runs a limit's last
    // `MAX_BLOCK` instructions one at a time on tier 0.)
    let step = |c: &mut Vec<u8>, op: &[u8]| {
        c.extend_from_slice(op);
        c.extend_from_slice(&[0xd9, 0x37, 0xd9, 0x27, 0x48, 0x83, 0xc7, 0x1c]);
    };
    // mov edi, 0x401000
    let mut c = vec![0xbf, 0x00, 0x10, 0x40, 0x00, 0xb9, 6, 0, 0, 0, 0xdb, 0xe3];
    let top = c.len();
    for op in [
        [0xd9, 0xe8], // fld1
        [0xd9, 0xee], // fldz
        [0xd9, 0xc1], // fld st(1): 1.0, inline
        [0xd9, 0xc1], // fld st(1): zero, the handler (tag "zero")
        [0xde, 0xf9], // fdivp st(1), st(0): 1 / 0 = inf (ZE masked)
        [0xd9, 0xc0], // fld st(0): inf, the handler (tag "special")
        [0xd9, 0xe8], // fld1: a masked overflow (C1 = 1) once the stack is full
        [0xdd, 0xd8], // fstp st(0): inline, clears C1
        [0xd9, 0xfa], // fsqrt
        [0xdd, 0xd8], // fstp st(0)
        [0xd9, 0xc2], // fld st(2)
        [0xd9, 0xfa], // fsqrt
        [0xd9, 0xeb], // fldpi
        [0xd9, 0xe8], // fld1: likewise
        [0xdd, 0xd8], // fstp st(0)
        [0xd9, 0xfa], // fsqrt: PE (masked)
        [0xdd, 0xd8], // fstp st(0)
        [0xdd, 0xd8], // fstp st(0)
    ] {
        step(&mut c, &op);
    }
    c.extend_from_slice(&[0xff, 0xc9]); // dec ecx
                                        // jnz top (rel32: the body is longer than a rel8 reaches)
    let back = top as i64 - (c.len() as i64 + 6);
    c.extend_from_slice(&[0x0f, 0x85]);
    c.extend_from_slice(&(back as i32).to_le_bytes());
    for _ in 0..10 {
        step(&mut c, &[0xdd, 0xd8]);
    }
    step(&mut c, &[0xd9, 0xc3]); // fld st(3)
    c.extend_from_slice(&[0xdb, 0xe2]); // fnclex
                                        // mov word [0x401000], 0x037e ; fldcw [0x401000]
    c.extend_from_slice(&[0x66, 0xc7, 0x04, 0x25, 0x00, 0x10, 0x40, 0x00, 0x7e, 0x03]);
    c.extend_from_slice(&[0xd9, 0x2c, 0x25, 0x00, 0x10, 0x40, 0x00]);
    // Unmasked, without FNSTENV/FLDENV between (the end state is compared).
    c.extend_from_slice(&[0xd9, 0xe8, 0xdd, 0xd8, 0xdd, 0xd8, 0xdd, 0xd8]);
    c.extend_from_slice(&[0xd9, 0xe8, 0xf4]);
    c
}

/// The inline stack moves leave exactly tier 0's state (tags, status word, FIP after every
/// step, kept in the data page; registers, GPRs, flags at the end, #MF at the last FLD1, and
/// at every instruction limit), through masked overflow and underflow, special sources and an
/// unmasked stack fault; and the loop's registers, cached in host registers, survive the
/// handler calls of their slow paths.
#[test]
fn inline_x87_stack_moves_match_tier0_at_every_limit_and_fault() {
    let code = x87_stack_moves();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(
        matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 16),
        "#MF expected: {ea:?} at {:#x}, fsw {:#x} fcw {:#x}",
        a.state.rip,
        a.state.fpu.fsw,
        a.state.fpu.fcw
    );
    assert_eq!(a.state.rip, CODE64 + code.len() as u64 - 3, "at the last FLD1");
    assert_eq!(a.state.fpu, b.state.fpu);
    // The masked overflow and underflow happened (SF set before FNCLEX is checked through
    // the limits below); the unmasked underflow left ES and IE.
    assert_eq!(b.state.fpu.fsw & 0x81, 0x81, "ES and IE: {:#x}", b.state.fpu.fsw);
    assert!(s.x87_direct_sites > 0 && s.translated_instructions >= 300, "{s}");
    let page = |cpu: &mut Cpu| -> Vec<u64> {
        (0..512).map(|q| cpu.read::<emu::flags::W64>(CODE64 + 0x1000 + 8 * q).unwrap()).collect()
    };
    let (mut a, mut b) = (a, b);
    let (pa, pb) = (page(&mut a), page(&mut b));
    assert!(pa[90 * 28 / 8] != 0, "environments stored up to the tail");
    for (q, (x, y)) in pa.iter().zip(&pb).enumerate() {
        assert_eq!(x, y, "environment bytes {} (step {})", 8 * q, 8 * q / 28);
    }
    let mut saw_overflow = false;
    for n in (1..a.retired).step_by(3) {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr));
            assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags at limit {limit}");
            assert_eq!(a.state.fpu, b.state.fpu, "FPU at limit {limit}");
        }
        // SF with C1 = 1: a stack overflow.
        saw_overflow |= a.state.fpu.fsw & 0x241 == 0x241;
    }
    assert!(saw_overflow, "the loop overflows the stack");
}
// --- end part Y ---

// Part R (seventh round): regions of several blocks (`JitEngine::region_of`,
// `x64::compile_region`).

/// `code` on tier 0 and on the JIT at `threshold` (so regions form once their blocks have run:
/// at threshold 1 a head is compiled before its successors are decoded), stopped after n / 2
/// then n instructions for every n: the same exit, retired count, RIP, registers and lazy
/// record (bit for bit). Returns the JIT's counts of a run to the end.
fn region_limits_agree(code: &[u8], make: fn(&[u8]) -> Cpu, threshold: u64, step: usize) -> JitStats {
    let mut reference = make(code);
    run(&mut Interp::new(), &mut reference, u64::MAX);
    let total = reference.retired;
    for n in (1..=total).step_by(step) {
        let (mut a, mut b) = (make(code), make(code));
        let (mut t0, mut j) = (Interp::new(), jit(threshold));
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!((a.retired, a.state.rip), (b.retired, b.state.rip), "limit {limit}");
            assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}");
            assert_eq!(a.state.lazy, b.state.lazy, "lazy record at limit {limit}");
        }
    }
    let (mut a, mut b) = (make(code), make(code));
    let mut j = jit(threshold);
    assert_eq!(run(&mut Interp::new(), &mut a, u64::MAX), run(&mut j, &mut b, u64::MAX));
    assert_eq!(
        (a.retired, a.state.rip, a.state.gpr, a.state.lazy),
        (b.retired, b.state.rip, b.state.gpr, b.state.lazy)
    );
    let s = j.stats.borrow().clone();
    s
}

/// The branch workload's loop shape (an LCG's top bits choose among 5 blocks per iteration,
/// register forms only: the region counts its budget down), then a loop of 4 blocks one of
/// which loads and stores (the memory budget check at each internal edge, a handler on the
/// first miss) and one of which calls its handler (PUSHF, which reads every flag the region's
/// previous block left), then HLT (#GP at CPL3).
fn region_loops() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 60
        ; mov eax, 12345
        ; mov r9, QWORD 6364136223846793005
        ; mov r10, QWORD 1442695040888963407
        ; xor edx, edx
        ; ->top:
        ; imul rax, r9
        ; add rax, r10
        ; mov r8, rax
        ; shr r8, 60
        ; cmp r8, 8
        ; jb ->low
        ; add rdx, 3
        ; cmp r8, 12
        ; jae ->join
        ; sub rdx, 1
        ; jmp ->join
        ; ->low:
        ; xor rdx, 5
        ; ->join:
        ; test r8, 1
        ; jz ->even
        ; inc rdx
        ; ->even:
        ; dec rcx
        ; jnz ->top
        ; mov ecx, 40
        ; mov rsi, QWORD (CODE64 + 0x1000) as i64
        ; ->mem:
        ; add rax, [rsi]
        ; mov [rsi + 8], rax
        ; test cl, 3
        ; jnz ->skip
        ; add r11, rcx
        ; pushfq
        ; pop rbx
        ; ->skip:
        ; sub r11, 2
        ; cmp r11, rdx
        ; jl ->less
        ; adc rdx, 1
        ; ->less:
        ; dec ecx
        ; jnz ->mem
        ; hlt
    );
    a.finalize().unwrap()
}

/// Both loops become regions (their blocks hot, in one page) and agree with tier 0 at every
/// instruction limit, with every register and the lazy record.
#[test]
fn multi_block_regions_match_tier0_at_every_limit() {
    let code = region_loops();
    let s = region_limits_agree(&code, cpu64_with, 4, 1);
    assert!(s.regions >= 2 && s.region_members >= 2 * s.regions, "{s}");
    assert!(s.translated_instructions > 500, "{s}");
    // The branch loop's value, computed independently: the same LCG in Rust.
    let mut cpu = cpu64_with(&code);
    run(&mut jit(4), &mut cpu, 60 * 12);
    let (mut x, mut d) = (12345u64, 0u64);
    let mut retired = 5;
    for _ in 0..60 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let top = x >> 60;
        retired += 6;
        if top < 8 {
            d ^= 5;
            retired += 1;
        } else {
            d += 3;
            retired += 3;
            if top < 12 {
                d -= 1;
                retired += 2;
            }
        }
        retired += 2;
        if top & 1 != 0 {
            d += 1;
            retired += 1;
        }
        retired += 2;
    }
    let mut cpu = cpu64_with(&code);
    let mut j = jit(4);
    run(&mut j, &mut cpu, retired);
    assert_eq!((cpu.state.gpr[0], cpu.state.gpr[2], cpu.state.gpr[1]), (x, d, 0));
}

/// The loop: block A (head) branches to C on odd counts, whose store goes to data until the
/// count is 101, then (D) into the immediate of block B's `mov ebx, 1`, which becomes
/// `mov ebx, 5` while A, B and C run as one region.
fn region_smc_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 200
        ; mov rsi, QWORD (CODE64 + 0x1000) as i64
        ; mov r9d, 1
        ; xor edx, edx
        ; ->top:
        ; add rax, rcx
        ; test ecx, 1
        ; jz ->skip
        ; mov [rsi], r9d
        ; cmp ecx, 101
        ; jne ->skip
        ; lea rsi, [->skip]
        ; inc rsi
        ; mov r9d, 5
        ; ->skip:
        ; mov ebx, 1
        ; add rdx, rbx
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

/// A store into the code of a member block that is not the region's head, made by another
/// member while the region runs: the region is dropped at once (the next iteration runs the
/// new code) and compiled again; the result is what tier 0 computes and what arithmetic
/// predicts (ebx = 1 for counts 200..=100, 5 for 99..=1).
#[test]
fn a_store_into_a_region_member_drops_the_region() {
    let code = region_smc_loop();
    let s = region_limits_agree(&code, cpu64_rwx_with, 16, 13);
    assert!(s.regions >= 2, "compiled, dropped, compiled again: {s}");
    assert!(s.dropped >= 1, "{s}");
    let mut cpu = cpu64_rwx_with(&code);
    run(&mut jit(16), &mut cpu, u64::MAX);
    assert_eq!(cpu.state.gpr[2], 101 + 99 * 5);
    assert_eq!(cpu.state.gpr[0], (1..=200).sum::<u64>());
}

/// Seventh round, part B: the indirect-branch table across TLB flushes. A loop at `IND_CODE`
/// calls the function at `IND_FUNC` through `call rax` (an indirect branch, looked up in the
/// table); before the loop, a load from the function's page refills its TLB entry (exec tag
/// included) through the page tables of the moment, so the table's own check decides.
mod indirect_across_flushes {
    use super::*;

    const IND_CODE: u64 = 0x50_0000;
    const IND_STACK: u64 = 0x50_1000;
    const IND_FUNC: u64 = 0x50_3000;
    /// Where the function's second version (`add rbx, 2`) is mapped first.
    const IND_SPARE: u64 = 0x50_5000;

    fn asm(at: u64, f: impl FnOnce(&mut dynasmrt::VecAssembler<dynasmrt::x64::X64Relocation>)) -> Vec<u8> {
        let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(at as usize);
        f(&mut a);
        a.finalize().unwrap()
    }

    fn setup() -> (Cpu, AddressSpace) {
        let main = asm(IND_CODE, |a| {
            dynasm!(a
                ; .arch x64
                ; mov rsp, QWORD (IND_STACK + 0x1000) as i64
                ; mov rax, QWORD IND_FUNC as i64
                ; mov r8, [rax]
                ; mov ecx, 50
                ; l:
                ; mov rax, QWORD IND_FUNC as i64
                ; call rax
                ; add rdx, 3
                ; dec ecx
                ; jnz <l
                ; hlt
            )
        });
        let f1 = asm(IND_FUNC, |a| dynasm!(a ; .arch x64 ; add rbx, 1 ; ret));
        let f2 = asm(IND_SPARE, |a| dynasm!(a ; .arch x64 ; add rbx, 2 ; ret));
        let mut ram = GuestRam::new(4 << 20).unwrap();
        let mut aspace = AddressSpace::new(&mut ram);
        let mut cpu = Cpu::new(ram);
        cpu.config.user_mode_syscalls = true;
        emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
        let rx = PROT_READ | PROT_EXEC;
        for (va, code, prot) in [
            (IND_CODE, &main[..], rx),
            (IND_STACK, &[][..], PROT_READ | PROT_WRITE),
            (IND_FUNC, &f1, rx),
            (IND_SPARE, &f2, rx),
        ] {
            aspace.add_region(&mut cpu.ram, va, va + 0x1000, prot);
            let frame = aspace.populate(&mut cpu.ram, va, prot).unwrap();
            cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
        }
        (cpu, aspace)
    }

    /// Runs to the HLT (#GP at CPL 3) from `IND_CODE` with rbx = rdx = 0.
    fn run_once(engine: &mut dyn Engine, cpu: &mut Cpu) {
        cpu.state.rip = IND_CODE;
        cpu.state.gpr[2] = 0;
        cpu.state.gpr[3] = 0;
        let exit = run(engine, cpu, cpu.retired + 1_000_000);
        assert!(matches!(exit, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {exit:?}");
    }

    /// Runs the loop, then flushes the TLB (as a CR3 write does), remapping the function's
    /// page to the second version's frame first if `remap`, and runs it again. Returns the CPU,
    /// rbx after each run and the JIT's counts after the first run (zero for tier 0).
    fn run_twice(engine: &mut dyn Engine, stats: &Rc<RefCell<JitStats>>, remap: bool) -> (Cpu, [u64; 2], JitStats) {
        let (mut cpu, mut aspace) = setup();
        run_once(engine, &mut cpu);
        let first = cpu.state.gpr[3];
        let after_first = stats.borrow().clone();
        if remap {
            aspace.discard(&mut cpu.ram, IND_FUNC, IND_FUNC + 0x1000);
            aspace.move_page(&mut cpu.ram, IND_SPARE, IND_FUNC).unwrap();
        }
        cpu.softmmu.flush_tlb();
        run_once(engine, &mut cpu);
        let sums = [first, cpu.state.gpr[3]];
        (cpu, sums, after_first)
    }

    fn jit_with_stats() -> (JitEngine, Rc<RefCell<JitStats>>) {
        let stats = Rc::new(RefCell::new(JitStats::default()));
        let j = JitEngine::new(JitOptions { threshold: 1, code_bytes: 1 << 20, inline: true }, stats.clone()).unwrap();
        (j, stats)
    }

    /// A flush that left the function's mapping alone keeps its slot: the second run's 50
    /// indirect calls all hit (the table emptied at each flush, as before, missed once).
    #[test]
    fn a_flush_that_keeps_the_mapping_keeps_the_slot() {
        let (t0, expected, _) = run_twice(&mut Interp::new(), &Rc::default(), false);
        // 50 calls adding 1, twice.
        assert_eq!(expected, [50, 50]);
        let (mut j, stats) = jit_with_stats();
        let (cpu, sums, first) = run_twice(&mut j, &stats, false);
        assert_eq!(sums, expected);
        assert_eq!((cpu.retired, cpu.state.rip, cpu.state.gpr), (t0.retired, t0.state.rip, t0.state.gpr));
        let s = stats.borrow().clone();
        assert!(s.mapping_changes > first.mapping_changes, "the flush was seen: {s}");
        assert_eq!(s.indirect_misses, first.indirect_misses, "the slot was lost at the flush: {s}");
        assert_eq!(s.indirect_hits - first.indirect_hits, 50, "{s}");
    }

    /// A flush after the function's page was remapped to another frame must reach the new
    /// code, although the slot's RIP, mode and (refilled) TLB tag all still match: only the
    /// addend (the frame) differs. Checked against tier 0 and the arithmetic.
    #[test]
    fn a_flush_that_remaps_the_target_reaches_the_new_code() {
        let (t0, expected, _) = run_twice(&mut Interp::new(), &Rc::default(), true);
        // 50 calls adding 1, then 50 adding 2.
        assert_eq!(expected, [50, 100]);
        let (mut j, stats) = jit_with_stats();
        let (cpu, sums, first) = run_twice(&mut j, &stats, true);
        assert_eq!(sums, expected);
        assert_eq!((cpu.retired, cpu.state.rip, cpu.state.gpr), (t0.retired, t0.state.rip, t0.state.gpr));
        let s = stats.borrow().clone();
        assert!(s.indirect_misses > first.indirect_misses, "the remapped target missed: {s}");
    }
}

/// Part P (seventh round): the code page (writable, so stores beside and into code are
/// allowed), two consecutive data pages at `CODE64 + 0x1000` (nothing mapped after them) and
/// `COLLIDING`, which shares the first data page's TLB index.
fn cpu64_for_probe_groups(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let (rwx, rw) = (PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ | PROT_WRITE);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, rwx);
    let frame = aspace.populate(&mut cpu.ram, CODE64, rwx).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    aspace.add_region(&mut cpu.ram, CODE64 + 0x1000, CODE64 + 0x3000, rw);
    for page in [CODE64 + 0x1000, CODE64 + 0x2000, COLLIDING] {
        if page == COLLIDING {
            aspace.add_region(&mut cpu.ram, page, page + 0x1000, rw);
        }
        aspace.populate(&mut cpu.ram, page, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// The loop runs this many times; the last round faults.
const GROUP_ROUNDS: i32 = 32;

/// Groups of accesses off one base register sharing a TLB probe (part P): off rsi, loads,
/// stores, read-modify-writes (an ADC chain with its record pending across loads) and a shift
/// of memory, walking across the boundary of the two data pages (the group's range crosses it
/// for a few rounds: its probe misses and each access probes for itself); off rdi on the page
/// sharing rsi's TLB index (way 1); off r8 beside the code in the code page (no write tag: the
/// slow path) and off r9 there too, or in the last rounds into the immediate of an
/// instruction of the next block (self-modifying); off rbp towards the unmapped page after the data, where the group's last
/// store crosses into it and faults in the last round, after the group's earlier accesses.
fn probe_groups_loop() -> Vec<u8> {
    let data = CODE64 as i32 + 0x1000;
    let end = data + 0x2000;
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, GROUP_ROUNDS
        ; mov rsi, data + 0x1000 - 0xa0
        ; mov rdi, QWORD COLLIDING as i64 + 0x40
        ; mov r8, CODE64 as i32 + 0xf00
        ; lea r12, [->smc_end]
        // Round k's group off rbp spans [rbp, rbp + 32): the last round's store at rbp + 24
        // crosses into the unmapped page.
        ; mov rbp, end - 32 - 8 * (GROUP_ROUNDS - 1) + 4
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, QWORD -0x0fed_cba9_8765_4321
        ; ->top:
        ; add rax, rdx
        ; mov rbx, [rsi]
        ; adc [rsi + 0x40], rbx
        ; mov rdx, [rsi + 8]
        ; adc [rsi + 0x48], rdx
        ; mov r10, [rsi + 16]
        ; adc [rsi + 0x50], r10
        ; mov [rsi], rax
        ; mov [rsi + 0x18], ecx
        ; mov al, [rsi + 0x21]
        ; movzx r11d, WORD [rsi + 0x22]
        ; add BYTE [rsi + 0x20], 3
        ; shl QWORD [rsi + 0x28], 1
        ; cmp rax, rdx
        ; sbb [rsi + 0x30], r11d
        ; mov QWORD [rsi + 0x38], -7
        ; add [rdi + 8], rcx
        ; mov rbx, [rdi + 8]
        ; add r10, [rdi + 16]
        ; mov [rdi + 24], rbx
        ; xor [rsi + 8], rbx
        ; mov r11, [r8]
        ; add [r8 + 8], r11
        ; mov [r8 + 16], rcx
        ; mov [rbp], rcx
        ; mov rbx, [rbp + 8]
        ; add [rbp + 16], rbx
        ; adc [rbp + 8], rcx
        ; mov [rbp + 24], rdx
        // Beside the code, except in the last rounds: into the immediate of `mid`.
        ; mov r9, CODE64 as i32 + 0xf80
        ; cmp ecx, 3
        ; cmovbe r9, r12
        ; mov r11d, [r9 - 4]
        ; add r11d, ecx
        ; mov [r9 - 4], r11d
        ; jmp ->mid
        // Each block in its own 64-byte lines: the store into `mid` drops only `mid`.
        ; .align 64
        ; ->mid:
        ; add r10d, 0x1234_5678
        ; ->smc_end:
        ; jmp ->tail
        ; .align 64
        ; ->tail:
        ; mov [rsi + 0x58], r10
        ; add rsi, 8
        ; add rdi, 8
        ; add rbp, 8
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

/// Accesses sharing a probe (part P) behave as tier 0's at every instruction limit: registers,
/// flags, RIP, the fault at the end (#PF at the crossing store, the group's earlier stores
/// done) and every byte of the data pages and the code page.
#[test]
fn probe_groups_match_tier0_at_every_limit_and_fault() {
    let code = probe_groups_loop();
    let pages = [CODE64, CODE64 + 0x1000, CODE64 + 0x2000, COLLIDING];
    let memory = |c: &mut Cpu| {
        let mut bytes = vec![0u8; 0x1000 * pages.len()];
        for (chunk, &p) in bytes.chunks_mut(0x1000).zip(&pages) {
            c.read_bytes(p, chunk).unwrap();
        }
        bytes
    };
    let (ea, mut a, mut b, s) = run_to_end_on_both(&code, cpu64_for_probe_groups);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "{ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    assert_eq!(memory(&mut a), memory(&mut b), "memory at the end");
    let total = a.retired;
    for n in 1..=total {
        let (mut a, mut b) = (cpu64_for_probe_groups(&code), cpu64_for_probe_groups(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        // Two runs each, so translations made in the first are entered in the second.
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!(a.retired, b.retired, "retired at limit {limit}");
            assert_eq!(a.state.rip, b.state.rip, "RIP at limit {limit}");
            assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}");
            assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags at limit {limit}");
        }
        assert_eq!(memory(&mut a), memory(&mut b), "memory at limit {n}");
    }
}

// --- part Z (seventh round): x87 register-stack arithmetic inline around the x87float call ---

/// Code pages, then the data pages the x87 arithmetic test stores every step's FPU state in.
const X87_ARITH_CODE_PAGES: u64 = 6;
const X87_ARITH_DATA: u64 = CODE64 + X87_ARITH_CODE_PAGES * 0x1000;
const X87_ARITH_DATA_PAGES: u64 = 40;

/// A 64-bit CPU with `code` over [`X87_ARITH_CODE_PAGES`] read-only pages at `CODE64` and
/// [`X87_ARITH_DATA_PAGES`] writable pages after them.
fn cpu64_x87_arith(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let rx = PROT_READ | PROT_EXEC;
    aspace.add_region(&mut cpu.ram, CODE64, X87_ARITH_DATA, rx);
    assert!(code.len() as u64 <= X87_ARITH_CODE_PAGES * 0x1000, "code of {} bytes", code.len());
    for (p, chunk) in code.chunks(0x1000).enumerate() {
        let frame = aspace.populate(&mut cpu.ram, CODE64 + 0x1000 * p as u64, rx).unwrap();
        cpu.ram.slice_mut(frame, chunk.len()).unwrap().copy_from_slice(chunk);
    }
    let rw = PROT_READ | PROT_WRITE;
    let end = X87_ARITH_DATA + 0x1000 * X87_ARITH_DATA_PAGES;
    aspace.add_region(&mut cpu.ram, X87_ARITH_DATA, end, rw);
    for p in 0..X87_ARITH_DATA_PAGES {
        aspace.populate(&mut cpu.ram, X87_ARITH_DATA + 0x1000 * p, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// Extended-precision operands (significand, sign and exponent): finite values that round,
/// overflow and underflow, and the specials (denormal, zero, infinity, QNaN, SNaN).
const X87_ARITH_VALUES: [(u64, u16); 12] = [
    (0xc90f_daa2_2168_c235, 0x4000), // pi
    (0xaaaa_aaaa_aaaa_aaab, 0x3ffd), // 1/3
    (0xa000_0000_0000_0000, 0xc000), // -2.5
    (0xffff_ffff_ffff_ffff, 0x7ffe), // the largest finite
    (0x8000_0000_0000_0001, 0x0001), // the smallest normal, + 1 ulp
    (0x0000_0000_0012_3456, 0x0000), // a denormal
    (0, 0x8000),                     // -0
    (0x8000_0000_0000_0000, 0x7fff), // +infinity
    (0xc000_0000_0000_1234, 0x7fff), // a QNaN
    (0x8000_0000_0000_5678, 0xffff), // an SNaN
    (0x8000_0000_0000_0000, 0xbfff), // -1
    (0xb504_f333_f9de_6484, 0x3fff), // sqrt 2
];

/// Straight-line x87 arithmetic over every register form (FADD/FMUL/FSUB/FSUBR/FDIV/FDIVR
/// ST(0),ST(i) and ST(i),ST(0), their pops, FSQRT), in blocks: FNINIT, FLDCW (every rounding
/// mode, 24/53/64-bit precision, all masked; then each exception alone unmasked, and all), 7
/// operands loaded (ST(7) stays empty: the forms on it are stack underflows), then the forms.
/// After every form FNSAVE stores the whole FPU state (registers, control, status and tag
/// words, FIP, FOP) in the data pages and FRSTOR loads it back (FNCLEX after it where
/// exceptions are unmasked, so no #MF follows); the pages are compared at the end. Ends in HLT.
fn x87_arith_program() -> Vec<u8> {
    let mut c = Vec::new();
    // The operands and control words follow the code: their address is patched in below.
    c.push(0xbe); // mov esi, imm32
    let consts_at = c.len();
    c.extend_from_slice(&[0; 4]);
    c.push(0xbf); // mov edi, imm32
    c.extend_from_slice(&(X87_ARITH_DATA as u32).to_le_bytes());
    let masked = [0x037f_u16, 0x077f, 0x0b7f, 0x0f7f, 0x027f, 0x007f, 0x0e7f];
    let unmasked = [0x037e_u16, 0x037d, 0x037b, 0x0377, 0x036f, 0x035f, 0x0340, 0x0f40];
    let cws: Vec<u16> = masked.iter().chain(&unmasked).copied().collect();
    // Operand sets (indices into X87_ARITH_VALUES), ST(6) first.
    let sets: [[u8; 7]; 3] = [[0, 1, 2, 3, 4, 11, 10], [0, 5, 6, 7, 8, 9, 1], [4, 3, 5, 0, 11, 6, 2]];
    let forms: &[[u8; 2]] = &[
        [0xd8, 0xc9], // fmul st0, st1
        [0xd8, 0xc2], // fadd st0, st2
        [0xd8, 0xe3], // fsub st0, st3
        [0xd8, 0xe9], // fsubr st0, st1
        [0xd8, 0xf4], // fdiv st0, st4
        [0xd8, 0xfd], // fdivr st0, st5
        [0xdc, 0xc9], // fmul st1, st0
        [0xdc, 0xc2], // fadd st2, st0
        [0xdc, 0xe3], // fsubr st3, st0
        [0xdc, 0xec], // fsub st4, st0
        [0xdc, 0xf1], // fdivr st1, st0
        [0xdc, 0xf9], // fdiv st1, st0
        [0xd9, 0xfa], // fsqrt
        [0xd8, 0xc7], // fadd st0, st7: stack underflow
        [0xdc, 0xcf], // fmul st7, st0: stack underflow
        [0xd8, 0xf6], // fdiv st0, st6
        [0xd9, 0xe0], // fchs (a direct call between)
        [0xd9, 0xfa], // fsqrt of the negated value
        [0xd8, 0xc8], // fmul st0, st0
        [0xde, 0xc1], // faddp st1, st0
        [0xde, 0xc9], // fmulp st1, st0
        [0xde, 0xe1], // fsubrp st1, st0
        [0xde, 0xe9], // fsubp st1, st0
        [0xde, 0xf1], // fdivrp st1, st0
        [0xde, 0xf9], // fdivp st1, st0
        [0xd9, 0xfa], // fsqrt
        [0xde, 0xc0], // faddp st0, st0: writes ST(0), then pops it
    ];
    let mut blocks = 0;
    for k in 0..cws.len() {
        for (s, set) in sets.iter().enumerate() {
            // Every other masked block keeps the flags of the previous one (they accumulate).
            if k >= masked.len() || (k + s) % 2 == 0 {
                c.extend_from_slice(&[0xdb, 0xe3]); // fninit
            } else {
                // Empty the stack, keeping the status word's flags: 7 FFREEP-like pops
                // (FSTP ST(0) of whatever is left would fault on empties): FFREE + FINCSTP.
                for _ in 0..8 {
                    c.extend_from_slice(&[0xdd, 0xc0, 0xd9, 0xf7]); // ffree st0; fincstp
                }
            }
            // rsi points 128 bytes into the constants (signed 8-bit displacements).
            c.extend_from_slice(&[0xd9, 0x6e, (12 * 16 + 2 * k) as u8 ^ 0x80]); // fldcw [rsi + d8]
            for &v in set {
                c.extend_from_slice(&[0xdb, 0x6e, (16 * v) ^ 0x80]); // fld tword [rsi + d8]
            }
            for f in forms {
                c.extend_from_slice(f);
                c.extend_from_slice(&[0xdd, 0x37, 0xdd, 0x27]); // fnsave [rdi]; frstor [rdi]
                if k >= masked.len() {
                    c.extend_from_slice(&[0xdb, 0xe2]); // fnclex
                }
                c.extend_from_slice(&[0x48, 0x83, 0xc7, 108]); // add rdi, 108
            }
            blocks += 1;
        }
    }
    assert!(blocks * forms.len() as u64 * 108 <= X87_ARITH_DATA_PAGES * 0x1000);
    c.push(0xf4); // hlt
    while c.len() % 16 != 0 {
        c.push(0x90);
    }
    let consts = CODE64 + c.len() as u64;
    c[consts_at..consts_at + 4].copy_from_slice(&(consts as u32 + 128).to_le_bytes());
    for (signif, sign_exp) in X87_ARITH_VALUES {
        c.extend_from_slice(&signif.to_le_bytes());
        c.extend_from_slice(&u64::from(sign_exp).to_le_bytes());
    }
    for cw in cws {
        c.extend_from_slice(&cw.to_le_bytes());
    }
    c
}

/// The inline arithmetic (its fast path and the handler call it falls back to) leaves exactly
/// tier 0's state after every form: the whole FNSAVE image (registers, tags, status word with
/// flags and C1, FIP, FOP) under every rounding mode and precision, masked and unmasked
/// exceptions (IE, DE, ZE, OE, UE, PE), special operands and stack underflows; and at
/// instruction limits all through the run.
#[test]
fn inline_x87_arithmetic_matches_tier0_after_every_step_and_limit() {
    let code = x87_arith_program();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_x87_arith);
    assert!(
        matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13),
        "HLT's #GP expected: {ea:?} at {:#x}, rdi {:#x}",
        a.state.rip,
        a.state.gpr[7]
    );
    assert_eq!(a.state.fpu, b.state.fpu);
    assert!(s.x87_direct_sites > 500 && s.translated_instructions > a.retired / 2, "{s}");
    let data = |cpu: &mut Cpu| -> Vec<u64> {
        (0..X87_ARITH_DATA_PAGES * 512).map(|q| cpu.read::<emu::flags::W64>(X87_ARITH_DATA + 8 * q).unwrap()).collect()
    };
    let (mut a, mut b) = (a, b);
    let (da, db) = (data(&mut a), data(&mut b));
    for (q, (x, y)) in da.iter().zip(&db).enumerate() {
        assert_eq!(x, y, "FNSAVE image bytes {} (step {})", 8 * q, 8 * q / 108);
    }
    // Every exception happened (masked or not) and some results were rounded up (C1).
    let mut seen = 0u16;
    for step in 0..da.len() * 8 / 108 {
        let byte = |o: usize| (da[(108 * step + o) / 8] >> (8 * ((108 * step + o) % 8))) as u8;
        seen |= u16::from(byte(4)) | u16::from(byte(5)) << 8;
    }
    assert_eq!(seen & 0x27f, 0x27f, "flags, SF and C1 seen: {seen:#x}");
    for n in (1..a.retired).step_by(23) {
        let (mut a, mut b) = (cpu64_x87_arith(&code), cpu64_x87_arith(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr));
            assert_eq!(a.state.fpu, b.state.fpu, "FPU at limit {limit}");
        }
        assert_eq!(data(&mut a), data(&mut b), "FNSAVE images at limit {n}");
    }
}
// --- end part Z ---

// --- part G (eighth round): the inline TLB probe with the rorx index and at constant addresses ---

/// Part G: the code page (writable: stores beside and into code are allowed), two consecutive
/// data pages at `CODE64 + 0x1000` (nothing mapped after them), and `COLLIDING` and
/// `COLLIDING2`, which share the first data page's TLB index (two ways, three pages: misses).
fn cpu64_for_known_probes(code: &[u8]) -> Cpu {
    let mut ram = GuestRam::new(4 << 20).unwrap();
    let mut aspace = AddressSpace::new(&mut ram);
    let mut cpu = Cpu::new(ram);
    cpu.config.user_mode_syscalls = true;
    emu::user::setup_long_mode_user(&mut cpu, aspace.pml4);
    let (rwx, rw) = (PROT_READ | PROT_WRITE | PROT_EXEC, PROT_READ | PROT_WRITE);
    aspace.add_region(&mut cpu.ram, CODE64, CODE64 + 0x1000, rwx);
    let frame = aspace.populate(&mut cpu.ram, CODE64, rwx).unwrap();
    cpu.ram.slice_mut(frame, code.len()).unwrap().copy_from_slice(code);
    aspace.add_region(&mut cpu.ram, CODE64 + 0x1000, CODE64 + 0x3000, rw);
    aspace.populate(&mut cpu.ram, CODE64 + 0x1000, rw).unwrap();
    aspace.populate(&mut cpu.ram, CODE64 + 0x2000, rw).unwrap();
    for page in [COLLIDING, COLLIDING2] {
        aspace.add_region(&mut cpu.ram, page, page + 0x1000, rw);
        aspace.populate(&mut cpu.ram, page, rw).unwrap();
    }
    cpu.state.rip = CODE64;
    cpu
}

/// The pages `cpu64_for_known_probes` maps, compared byte for byte.
const KNOWN_PROBE_PAGES: [u64; 5] = [CODE64, CODE64 + 0x1000, CODE64 + 0x2000, COLLIDING, COLLIDING2];

/// The loop runs this many times, then a load crossing into the unmapped page faults.
const KNOWN_ROUNDS: i32 = 12;

/// Accesses at constant addresses (absolute `[disp32]` and RIP-relative operands: part G's
/// probe with the entry's offset folded into its displacements) of every size: loads (zero-
/// and sign-extending, merging), stores, read-modify-writes and memory compares; accesses
/// crossing from the first data page into the second (the probe misses, the slow path splits
/// them); `COLLIDING2`, then alternating between the data page and `COLLIDING` (all three share
/// a TLB index: after at most two misses, the data page and `COLLIDING` are both found inline,
/// in way 0 and way 1); a load from the code page, a store beside the code (no write tag: the
/// slow path) and, in the last rounds, into the immediate of an instruction of the next block
/// (self-modifying); register-based accesses of 1, 2, 4 and 8 bytes around the page boundary
/// (the `rorx` index); at the end a load at a constant address crossing into the unmapped page
/// (#PF). The loads whose opcode appears nowhere else (MOVSX r64 m8/m16, MOVSXD, MOVZX r32
/// m8/m16) always find their page in the TLB: `known_probes_hit`.
fn known_probes_loop() -> Vec<u8> {
    let d = CODE64 as i32 + 0x1000;
    let (c1, c2) = (COLLIDING as i32, COLLIDING2 as i32);
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, KNOWN_ROUNDS
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, QWORD -0x0fed_cba9_8765_4321
        ; mov rsi, d + 0xff8
        ; ->top:
        // The third page at the index first, then the two others alternating.
        ; add r11, [c2 + 16]
        ; mov [c2 + 24], r11
        ; add rax, rdx
        ; mov [d + 0x10], rax
        ; add [c1 + 8], rcx
        ; mov bl, [d + 0x11]
        // Both are in the TLB now, whichever of them the third page displaced.
        ; movsx r12, BYTE [d + 0x17]
        ; movsxd r13, DWORD [c1 + 0x13]
        ; movzx r11d, WORD [d + 0x12]
        ; movzx r14d, BYTE [c1 + 0x21]
        ; mov r10d, [d + 0x14]
        ; mov r14w, [d + 0x15]
        ; add [d + 0x20], ecx
        ; add BYTE [d + 0x28], 3
        ; add [d + 0x2a], cx
        ; adc [d + 0x30], rdx
        ; cmp QWORD [d + 0x30], 5
        ; sbb r10d, [d + 0x38]
        ; cmp BYTE [d + 0x11], bl
        ; mov rbx, [c1 + 8]
        ; add r10, [d + 0x40]
        ; mov [c1 + 24], rbx
        ; sub [d + 0x48], r11d
        // Across the boundary of the two data pages (both mapped): the slow path.
        ; mov [d + 0xfff], ecx
        ; mov r9, [d + 0xffc]
        ; add [d + 0xffe], cx
        ; mov r15b, [d + 0xfff]
        // The code page: a load, a store beside the code, a store into `mid`'s immediate in
        // the last rounds (RIP-relative, both).
        ; mov r8, [->top]
        ; mov [CODE64 as i32 + 0xf00], r8d
        ; cmp ecx, 3
        ; ja >skip
        ; mov [->mid_imm - 4], ecx
        ; skip:
        // Register-based accesses of every size around the page boundary (the rorx index),
        // and one that never crosses it.
        ; mov [rsi + 8], dl
        ; mov r9w, [rsi + 6]
        ; add [rsi + 4], eax
        ; mov rbx, [rsi]
        ; xor [rsi - 0x800], rbx
        ; movsx r12, WORD [rsi - 0x100]
        ; jmp ->mid
        // Each block in its own 64-byte lines: the store into `mid` drops only `mid`.
        ; .align 64
        ; ->mid:
        ; add r10d, 0x1234_5678
        ; ->mid_imm:
        ; jmp ->tail
        ; .align 64
        ; ->tail:
        ; add rsi, 1
        ; dec ecx
        ; jnz ->top
        ; mov eax, [d + 0x1ffe]
        ; hlt
    );
    a.finalize().unwrap()
}

/// Runs `known_probes_loop` to its fault on `j`, counting the instructions its handlers ran,
/// and returns how many of those were the loop's loads that always find their page in the TLB
/// (their inline probes hit every time, or these count a call each round).
fn known_probes_hit(mut j: JitEngine) -> u64 {
    let code = known_probes_loop();
    let mut cpu = cpu64_for_known_probes(&code);
    j.stats.borrow_mut().histogram = vec![0; 1 << 13];
    run(&mut j, &mut cpu, u64::MAX);
    let h = j.stats.borrow().histogram.clone();
    use iced_x86::Code;
    [Code::Movsx_r64_rm8, Code::Movsx_r64_rm16, Code::Movsxd_r64_rm32, Code::Movzx_r32_rm8, Code::Movzx_r32_rm16]
        .iter()
        .map(|&c| h[c as usize])
        .sum()
}

/// Part G (eighth round): accesses at constant addresses and register-based ones, probed with
/// the `rorx` index (on a BMI2 host) and with the `mov`/`shr` index, behave as tier 0's at
/// every instruction limit: registers, flags, RIP, the fault at the end and every byte of the
/// mapped pages; and the probes find the TLB's entries (in both ways) without a handler call.
#[test]
fn known_address_and_rorx_probes_match_tier0_at_every_limit_and_fault() {
    let code = known_probes_loop();
    let memory = |c: &mut Cpu| {
        let mut bytes = vec![0u8; 0x1000 * KNOWN_PROBE_PAGES.len()];
        for (chunk, &p) in bytes.chunks_mut(0x1000).zip(&KNOWN_PROBE_PAGES) {
            c.read_bytes(p, chunk).unwrap();
        }
        bytes
    };
    let (ea, mut a, mut b, s) = run_to_end_on_both(&code, cpu64_for_known_probes);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "{ea:?} at {:#x}", a.state.rip);
    assert_eq!(a.state.rip, CODE64 + code.len() as u64 - 8, "the crossing load faulted");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    assert_eq!(memory(&mut a), memory(&mut b), "memory at the end");
    assert_eq!(jit(1).uses_bmi2(), std::arch::is_x86_feature_detected!("bmi2"));
    assert_eq!(known_probes_hit(jit(1)), 0, "handler calls of loads that hit the TLB");
    assert_eq!(known_probes_hit(jit(1).without_bmi2()), 0, "the same without BMI2");
    let total = a.retired;
    for n in 1..=total {
        for bmi2 in [true, false] {
            let (mut a, mut b) = (cpu64_for_known_probes(&code), cpu64_for_known_probes(&code));
            let mut t0 = Interp::new();
            let mut j = if bmi2 { jit(1) } else { jit(1).without_bmi2() };
            // Two runs each, so translations made in the first are entered in the second.
            for limit in [n / 2, n] {
                assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}, bmi2 {bmi2}");
                assert_eq!(a.retired, b.retired, "retired at limit {limit}, bmi2 {bmi2}");
                assert_eq!(a.state.rip, b.state.rip, "RIP at limit {limit}, bmi2 {bmi2}");
                assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}, bmi2 {bmi2}");
                assert_eq!(
                    a.state.lazy.materialize(),
                    b.state.lazy.materialize(),
                    "flags at limit {limit}, bmi2 {bmi2}"
                );
            }
            assert_eq!(memory(&mut a), memory(&mut b), "memory at limit {n}, bmi2 {bmi2}");
        }
    }
}
// --- end part G ---

// --- part E (eighth round): records left unwritten at region edges ---

/// One loop of the shape part E's regions skip records in, register forms only or (`memory`)
/// with a load, so that the region checks its budget by counting down or in memory. An LCG's
/// top bits choose the ways; the region's internal edges go from a CMP, a TEST (logic, byte),
/// a SUB (word), a DEC or SUB, each deferred to its Jcc, and from ADDs deferred to a JMP, into members whose flags are dead at
/// their start (IMUL first; ROR, ROL, then AND; INC, then XOR), into members that only move
/// registers and jump on to such a one (reached from an arithmetic setter only, and one also
/// from a logic setter, which cannot pass its record through), and into members that read
/// the flags first (ADC, SETC, CMOVcc).
fn edge_records_loop(a: &mut dynasmrt::VecAssembler<dynasmrt::x64::X64Relocation>, memory: bool) {
    let top = a.new_dynamic_label();
    let carry = a.new_dynamic_label();
    let mixed = a.new_dynamic_label();
    let dead_rot = a.new_dynamic_label();
    let dead_inc = a.new_dynamic_label();
    let live = a.new_dynamic_label();
    let tail = a.new_dynamic_label();
    dynasm!(a
        ; .arch x64
        ; mov ecx, 70
        ; mov eax, 12345
        ; mov r9, QWORD 6364136223846793005
        ; mov r10, QWORD 1442695040888963407
        ; xor edx, edx
        ; xor ebx, ebx
        ; xor r11d, r11d
        ; mov rsi, QWORD (CODE64 + 0x1000) as i64
        ; =>top
        ; imul rax, r9
        ; add rax, r10
        ; mov r8, rax
        ; shr r8, 59
        ; cmp r8d, 12
        ; jb =>carry
        ; test r8b, 4
        ; jnz =>mixed
        ; sub dx, 0x1234
        ; js =>dead_inc
        ; cmp r8d, 24
        ; jae =>mixed
        ; jmp =>live
        ; =>carry
        ; mov r11, rax
        ; lea rbx, [rbx + r8 * 2 + 1]
        ; jmp =>dead_rot
        ; =>mixed
        ; mov rdi, rdx
        ; jmp =>dead_inc
        ; =>dead_rot
        ; ror ebx, 3
        ; rol r11, 5
        ; and ebx, 0x7fff
        ; add rdx, rbx
        ; jmp =>tail
        ; =>dead_inc
        ; inc r11
        ; xor r11, rax
        ; add rdx, r11
        ; jmp =>tail
        ; =>live
        ; adc rdx, 1
        ; setc bl
        ; cmovs rdi, rax
    );
    if memory {
        dynasm!(a ; .arch x64 ; add rdx, [rsi] ; mov [rsi + 8], rdx);
    }
    // Counted by DEC (flags live at the tail: its edges make the record exact) or by SUB
    // (dead: the JMPs into it, after an ADD, leave the ADD's record unwritten).
    dynasm!(a ; .arch x64 ; =>tail);
    if memory {
        dynasm!(a ; .arch x64 ; dec ecx ; jnz =>top);
    } else {
        dynasm!(a ; .arch x64 ; sub ecx, 1 ; jnz =>top);
    }
}

/// Part E's regions: both loops (the budget counted down, then in memory) agree with tier 0
/// at every instruction limit, so at every internal edge, with every register and the lazy
/// record bit for bit (a record an edge leaves unwritten is written where the budget stops
/// there), and run to HLT with the same state.
#[test]
fn records_left_at_region_edges_match_tier0_at_every_limit() {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    edge_records_loop(&mut a, false);
    edge_records_loop(&mut a, true);
    dynasm!(a ; .arch x64 ; hlt);
    let code = a.finalize().unwrap();
    let s = region_limits_agree(&code, cpu64_with, 4, 1);
    assert!(s.regions >= 2 && s.region_members >= 10, "{s}");
    assert!(s.translated_instructions > 1000, "{s}");
    // A soft limit (the machine polling its devices, an interrupt waiting) stops the region at
    // the first internal edge past it, as tier 0 stops at that block boundary: there the
    // record an edge into a member with dead flags carries must be written. Each limit once.
    let mut reference = cpu64_with(&code);
    run(&mut Interp::new(), &mut reference, u64::MAX);
    for n in 1..reference.retired {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let limit = Limit { poll_after: n, ..Limit::NONE };
        let ea = Engine::run(&mut Interp::new(), &mut a, &limit).unwrap();
        let eb = jit(4).run(&mut b, &limit).unwrap();
        assert_eq!(ea, eb, "poll after {n}");
        assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr), "poll after {n}");
        assert_eq!(a.state.lazy, b.state.lazy, "lazy record, poll after {n}");
    }
}

/// The liveness rule the regions use: the flags are dead at a block's start where ROR/ROL and
/// INC/DEC (which write flags without reading any) come before an instruction overwriting all
/// six; not where something reads them (ADC, a Jcc, a load, which may fault) comes first.
#[test]
fn flags_dead_at_entry_passes_rotates_and_inc_dec() {
    use crate::jit::forms::{flags_dead_at_entry, form_of};
    let forms = |f: &dyn Fn(&mut dynasmrt::VecAssembler<dynasmrt::x64::X64Relocation>)| {
        let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
        f(&mut a);
        let code = a.finalize().unwrap();
        let mut d = iced_x86::Decoder::with_ip(64, &code, CODE64, iced_x86::DecoderOptions::NONE);
        d.iter().map(|insn| form_of(&emu::decode::build_instr(&insn, 64), true)).collect::<Vec<_>>()
    };
    let dead = [
        forms(&|a| dynasm!(a ; .arch x64 ; mov eax, ebx ; ror ecx, 3 ; rol edx, 5 ; and ecx, edx)),
        forms(&|a| dynasm!(a ; .arch x64 ; inc r11 ; xor r11, rax)),
        forms(&|a| dynasm!(a ; .arch x64 ; dec ecx ; lea rax, [rax + 1] ; sub eax, ebx)),
    ];
    for f in &dead {
        assert!(flags_dead_at_entry(f), "{f:?}");
    }
    let live = [
        forms(&|a| dynasm!(a ; .arch x64 ; ror ecx, 3 ; adc ecx, edx)),
        forms(&|a| dynasm!(a ; .arch x64 ; inc r11 ; setnz al)),
        forms(&|a| dynasm!(a ; .arch x64 ; mov rax, [rsi] ; xor eax, eax)),
        forms(&|a| dynasm!(a ; .arch x64 ; inc r11 ; mov rax, r11)),
    ];
    for f in &live {
        assert!(!flags_dead_at_entry(f), "{f:?}");
    }
}
// --- end part E ---
// --- part C ---

/// Eighth round, part C: flag setters at every size (ADD, SUB, ADC, SBB, INC, DEC, NEG, logic;
/// register and memory forms) on operands from an LCG, with their records left pending across
/// loads, stores, PUSH and POP (the capture in `r13`) and read there by ADC, SBB (register and
/// read-modify-write), INC and DEC, or written at once and read by SETcc and Jcc (from the
/// record), a block-ending Jcc, CMC and PUSHF (handlers). Every flag read is folded into r11 or
/// memory, read back into registers. Ends in a #PF with a record pending.
fn capture_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 12
        ; mov rdi, 0x40_1000
        ; mov rsp, 0x40_2000
        ; mov r8, QWORD 0x0123_4567_89ab_cdef
        ; ->top:
        // The next operands (an LCG's state in r8; its IMUL's and ADD's flags overwritten).
        ; mov rax, QWORD 0x5851_f42d_4c95_7f2d
        ; imul r8, rax
        ; mov rax, QWORD 0x1405_7b7e_f767_814f
        ; add r8, rax
        ; mov r9, r8
        ; rol r9, 23
        ; mov r10, r8
        ; ror r10, 41
        ; mov [rdi + 16], r8
        ; mov [rdi + 64], r9
    );
    macro_rules! setters {
        ($R:ident, $S:ident) => {
            dynasm!(a
                ; .arch x64
                // ADD pending across a load, read by ADC.
                ; add $R(9), $R(10)
                ; mov rdx, [rdi + 16]
                ; adc $R(12), $R(9)
                // SUB pending across a store, PUSH and POP, read by SBB of memory.
                ; sub $R(10), $R(8)
                ; mov [rdi + 24], r9
                ; push r10
                ; pop rdx
                ; sbb $S [rdi + 32], $R(9)
                // ADC of memory (on a miss, the capture from the handler's record) pending
                // across a load, read by INC (which keeps CF), then by ADC.
                ; adc $R(9), $S [rdi + 64]
                ; mov rdx, [rdi + 40]
                ; inc $R(14)
                ; adc $R(12), $R(14)
                // DEC pending across a load, read by SBB.
                ; dec $R(10)
                ; mov rdx, [rdi + 24]
                ; sbb $R(14), $R(10)
                // NEG written, read by PUSHF (a handler).
                ; neg $R(9)
                ; pushfq
                ; pop rax
                ; xor r11, rax
                // SBB written (a load follows), read by SETcc from the record.
                ; sbb $R(9), $R(12)
                ; mov rdx, [rdi]
                ; seto al
                ; setc dl
                ; lea r11, [r11 + rax * 4]
                ; lea r11, [r11 + rdx * 8]
                // INC pending across a store, read by DEC.
                ; inc $R(10)
                ; mov [rdi + 48], r10
                ; dec $R(12)
                ; adc $R(12), $R(9)
                // Logic, then ADC (CF 0) after a store.
                ; xor $R(10), $R(9)
                ; mov [rdi + 56], r10
                ; adc $R(12), $R(10)
                // ADD of memory read by CMC (a handler) and then ADC.
                ; add $R(14), $S [rdi + 16]
                ; cmc
                ; adc $R(12), $R(14)
                // ADD read by a Jcc after a load (from the record); SUB by a block-ending Jcc.
                ; add $R(9), $R(8)
                ; mov rdx, [rdi + 8]
                ; jo >skip1
                ; xor r11, 0x55
                ; skip1:
                ; sub $R(10), $R(9)
                ; jl >skip2
                ; add r11, 7
                ; skip2:
                ; mov rdx, [rdi + 32]
                ; xor r11, rdx
            )
        };
    }
    setters!(Rb, BYTE);
    setters!(Rw, WORD);
    setters!(Rd, DWORD);
    setters!(Rq, QWORD);
    dynasm!(a
        ; .arch x64
        ; dec ecx
        ; jnz ->top
        ; pushfq
        ; pop rbp
        // SUB of a word across a page (its miss path gives r13 the capture of the record its
        // handler wrote: CF, OF, SF, AF set) pending across a load that faults.
        ; mov eax, 0x80
        ; mov [rdi], al
        ; mov r9d, 0x7fff
        ; sub r9w, WORD [rdi - 1]
        ; mov rdx, [rdi + 0x2000]
        ; adc r9, 0
        ; hlt
    );
    a.finalize().unwrap()
}

/// The program above under tier 0 and the JIT (lahf capture where the host has it, and the
/// `pushfq` fallback), stopped after n / 2 then n instructions for every n (every third with
/// the fallback): the same exit, retired count, RIP, registers and lazy record bit for bit, and
/// the same data page at the end. Tier 0, stepped alone, shows that the records read cover every
/// combination of CF, OF and AF.
#[test]
fn flag_captures_match_tier0_at_every_limit() {
    use emu::state::rflags::{AF, CF, OF};
    let code = capture_loop();
    let mut reference = cpu64_with(&code);
    let mut t0 = Interp::new();
    let mut seen = 0u8;
    let mut n = 0;
    while !matches!(run(&mut t0, &mut reference, n + 1), Exit::Stop(_)) {
        n += 1;
        let f = reference.state.lazy.materialize();
        seen |= 1 << (u8::from(f & CF != 0) | u8::from(f & AF != 0) << 1 | u8::from(f & OF != 0) << 2);
    }
    assert_eq!(seen, 0xff, "CF/AF/OF combinations seen");
    let total = reference.retired;
    assert!(total > 2000, "{total}");
    let data = |cpu: &mut Cpu| -> Vec<u64> {
        (0..16).map(|q| cpu.read::<emu::flags::W64>(CODE64 + 0x1000 + 8 * q).unwrap()).collect()
    };
    for pushf in [false, true] {
        let make = || if pushf { jit(1).with_pushf_capture() } else { jit(1) };
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let mut j = make();
        let ea = run(&mut Interp::new(), &mut a, u64::MAX);
        assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "#PF: {ea:?}");
        assert_eq!((a.fault_addr, a.state.lazy.materialize() & (CF | OF)), (0x40_3000, CF | OF));
        assert_eq!(ea, run(&mut j, &mut b, u64::MAX));
        assert_eq!(
            (a.retired, a.state.rip, a.state.gpr, a.state.lazy),
            (b.retired, b.state.rip, b.state.gpr, b.state.lazy)
        );
        assert_eq!(data(&mut a), data(&mut b), "data page, pushf {pushf}");
        let s = j.stats.borrow().clone();
        assert!(s.translated_instructions > a.retired / 2, "{s}");
        for n in (1..total).step_by(if pushf { 3 } else { 1 }) {
            let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
            let (mut t0, mut j) = (Interp::new(), make());
            for limit in [n / 2, n] {
                assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}, pushf {pushf}");
                assert_eq!((a.retired, a.state.rip), (b.retired, b.state.rip), "limit {limit}, pushf {pushf}");
                assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}, pushf {pushf}");
                assert_eq!(a.state.lazy, b.state.lazy, "lazy record at limit {limit}, pushf {pushf}");
            }
        }
    }
}
// --- end part C ---

// --- part K (eighth round): flags kept in the host flags across shared probes ---

/// The loop runs this many times; the last round faults.
const CARRY_ROUNDS: i32 = 24;

/// ADC/SBB chains over memory off one base register, whose carries stay in the host flags
/// across the later accesses of their probe groups (part K): loads, stores (of a register and
/// of an immediate) and read-modify-writes between a setter and its reader, register ALU and
/// INC/DEC readers, byte, word and dword forms. Off rsi the group walks across the boundary of
/// the two data pages (its range crosses it for a few rounds, then lies on a page not yet
/// dirty): the slot is empty and each access probes for itself, out of line, the carry kept.
/// Off r8 across the end of the code page (the range crosses; writes into the code page,
/// which has no write tag, go to their handlers, the carry of a setter that hit read from the
/// record), off rdi on the page sharing rsi's TLB index (way
/// 1, not dirty in the first round), and off rbp towards the unmapped page after the data,
/// where the chain's last ADC crosses into it in the last round and faults with the previous
/// ADC's flags only in the host flags.
fn carry_chain_loop() -> Vec<u8> {
    let data = CODE64 as i32 + 0x1000;
    let end = data + 0x2000;
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov ecx, CARRY_ROUNDS
        ; mov rsi, data + 0x1000 - 0x60
        ; mov rdi, QWORD COLLIDING as i64 + 0x40
        ; mov r8, CODE64 as i32 + 0xfc0
        ; mov rbp, end - 32 - 8 * (CARRY_ROUNDS - 1) + 4
        ; mov rax, QWORD 0x7edc_ba98_7654_3210
        ; mov rdx, QWORD -0x0123_4567_89ab_cdef
        ; ->top:
        ; add rax, rdx
        ; mov rbx, [rsi]
        ; adc [rsi + 0x40], rbx
        ; mov rdx, [rsi + 8]
        ; adc [rsi + 0x48], rdx
        ; mov r10, [rsi + 16]
        ; sbb [rsi + 0x50], r10
        ; mov [rsi + 0x18], rdx
        ; mov QWORD [rsi + 0x20], -3
        ; adc rax, [rsi + 0x58]
        ; mov r11, [rsi + 0x28]
        ; sbb r11, rdx
        ; mov [rsi], r11
        ; mov r9d, [rsi + 0x2c]
        ; adc r9d, [rsi + 0x30]
        ; adc WORD [rsi + 0x34], 0x7fff
        ; mov bl, [rsi + 0x36]
        ; sbb BYTE [rsi + 0x37], bl
        ; mov r12, [rsi + 0x38]
        ; dec r12
        ; adc r12, rbx
        ; mov [rsi + 0x38], r12
        ; sbb DWORD [rsi + 0x3c], r9d
        // Off r8 across the end of the code page: the range always crosses, so every access
        // probes for itself; the writes into the code page go to their handlers.
        ; add rdx, rax
        ; mov rbx, [r8 + 0x40]
        ; cmp ecx, CARRY_ROUNDS / 2
        ; mov [r8 + 0x20], rdx
        ; mov r11, [r8 + 0x20]
        ; adc r11, r10
        ; mov r10, [r8 + 0x48]
        ; sbb [r8 + 8], r10
        ; mov rbx, [r8 + 0x10]
        ; adc [r8 + 0x48], rax
        ; mov [r8 + 0x50], r11
        // Off rdi on the colliding page.
        ; add rbx, rdx
        ; mov r10, [rdi]
        ; adc [rdi + 8], r10
        ; mov [rdi + 16], rbx
        ; adc [rdi + 24], rax
        // Off rbp: the last round's ADC at rbp + 24 crosses into the unmapped page.
        ; sub r11, rax
        ; mov r10, [rbp]
        ; adc [rbp + 8], r10
        ; mov [rbp + 16], rdx
        ; adc [rbp + 24], rbx
        ; lea rsi, [rsi + 8]
        ; lea rdi, [rdi + 8]
        ; lea rbp, [rbp + 8]
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

/// Carries kept in the host flags across shared probes (part K) leave tier 0's state at every
/// instruction limit: registers, the lazy record bit for bit, RIP, the fault at the end (#PF
/// at the crossing ADC), and every byte of the data pages and the code page.
#[test]
fn carries_across_shared_probes_match_tier0_at_every_limit_and_fault() {
    let code = carry_chain_loop();
    let pages = [CODE64, CODE64 + 0x1000, CODE64 + 0x2000, COLLIDING];
    let memory = |c: &mut Cpu| {
        let mut bytes = vec![0u8; 0x1000 * pages.len()];
        for (chunk, &p) in bytes.chunks_mut(0x1000).zip(&pages) {
            c.read_bytes(p, chunk).unwrap();
        }
        bytes
    };
    let (ea, mut a, mut b, s) = run_to_end_on_both(&code, cpu64_for_probe_groups);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 14), "{ea:?}");
    assert_eq!(a.state.lazy, b.state.lazy, "the record at the fault");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    assert_eq!(memory(&mut a), memory(&mut b), "memory at the end");
    let total = a.retired;
    for n in 1..=total {
        let (mut a, mut b) = (cpu64_for_probe_groups(&code), cpu64_for_probe_groups(&code));
        let (mut t0, mut j) = (Interp::new(), jit(1));
        // Two runs each, so translations made in the first are entered in the second.
        for limit in [n / 2, n] {
            assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
            assert_eq!(a.retired, b.retired, "retired at limit {limit}");
            assert_eq!(a.state.rip, b.state.rip, "RIP at limit {limit}");
            assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}");
            assert_eq!(a.state.lazy, b.state.lazy, "the record at limit {limit}");
        }
        assert_eq!(memory(&mut a), memory(&mut b), "memory at limit {n}");
    }
}
// --- end part K ---

// Part A (eighth round): the region's register allocation weighted by loop depth, and the
// forms on guest registers left without a host register.

/// An outer loop whose body falls into an inner loop (a region of three members: the outer
/// body with one copy of the inner body, the inner loop looping to itself, the outer tail),
/// using all 15 guest registers but rsp. The inner loop uses rax, rdx, rsi, rdi and r8-r11
/// most (they get the host registers); rbx, rbp, r12, r13, r14 and rcx, used more than those
/// in the outer body but less in the inner loop, stay in `cpu.state.gpr`, and every form that
/// works on such a register runs on them: ALU with registers, immediates and memory at every
/// size (ADC/SBB, CMP/TEST too), rotates, shifts by an immediate and by CL, NOT, NEG, INC/DEC,
/// BSWAP, MOV to and from them, LEA, MOVZX/MOVSX/MOVSXD, IMUL, CMOVcc, SETcc, loads, stores and
/// memory ALU forms off a base (rbp) and index (rcx) without host registers, several in a row
/// on one register (the read of the one written just before). Without `conds` (no CMOVcc or
/// SETcc, every Jcc right after its setter), the region sets no condition in r12b and gets
/// r12 as a ninth host register.
fn spilled_forms_loop(conds: bool) -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(CODE64 as usize);
    dynasm!(a
        ; .arch x64
        ; mov rax, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, QWORD -0x1234_5678_9abc_def1
        ; mov rsi, 0x7fff_fff0
        ; mov rdi, -7
        ; mov r8, QWORD 0x8000_0000_0000_0001_u64 as i64
        ; mov r9, 0x55aa
        ; mov r10, -0x10000
        ; mov r11, 0x3c3c_3c3c
        ; mov rbx, QWORD 0x7edc_ba98_7654_3210
        ; mov rbp, QWORD (CODE64 + 0x1000) as i64
        ; mov r12, -0x8000_0000
        ; mov r13, 0x1357_9bdf
        ; mov r14, QWORD 0x0fed_cba9_8765_4321
        ; mov r15d, 5
        ; ->outer:
        // The outer body: rbx, r12, r13, r14 used many times each, once per outer round.
        ; add rbx, r12
        ; xor r13, r14
        ; lea r12, [r12 + rbx * 2 + 3]
        ; sub r14, r13
        ; ror rbx, 11
        ; or r12d, r13d
        ; and r14, rbx
        ; rol r13, 5
        ; adc rbx, r14
        ; xor r12, r14
        ; mov ecx, 6
        ; ->inner:
    );
    // The hot registers, each used about 24 times per inner round.
    for _ in 0..6 {
        dynasm!(a
            ; .arch x64
            ; add eax, edx
            ; xor esi, eax
            ; ror edx, 7
            ; lea edi, [rsi + rdi * 2 + 1]
            ; add r8, rdi
            ; xor r9d, r8d
            ; rol r10, 13
            ; sub r11d, r9d
            ; and eax, r10d
            ; or rdx, r11
            ; add esi, r8d
            ; xor edi, r9d
            ; add r10d, eax
            ; xor r11, rdx
            ; rol esi, 3
            ; sub r8d, edi
            ; add r9, rsi
        );
    }
    dynasm!(a
        ; .arch x64
        // Several forms in a row on one register without a host register.
        ; ror ebx, 2
        ; xor ebx, esi
        ; add ebx, 0x1234_5678
        ; rol ebx, 9
        ; and ebx, r13d
        ; not ebx
        ; mov eax, ebx
        ; ror r12, 3
        ; add r12, rdx
        ; neg r12
        ; inc r12d
        ; xor r12b, 0x5a
        ; add r12w, bx
        ; shr r13d, 3
        ; shl r13, 1
        ; sar r13w, 2
        ; shl r14d, cl
        ; sar r14, cl
        ; bswap r14d
        ; bswap rbx
        ; dec r14
        ; mov r13d, esi
        ; mov r14, rdi
        ; lea r13d, [r13 + r12 * 4 + 0x77]
        ; lea r14, [rbx + r13]
        ; movzx r12d, bl
        ; movsx r13, r14w
        ; movsxd r14, r12d
        ; imul r12d, ebx
        ; imul r13, r14, 0x1f
        ; cmp r12d, r13d
    );
    if conds {
        dynasm!(a
            ; .arch x64
            ; cmovb r14d, ebx
            ; setg r13b
            ; test r14, r12
            ; cmovne rbx, r13
        );
    }
    dynasm!(a
        ; .arch x64
        ; adc r12d, r14d
        ; sbb r13, 3
        ; sub bl, r12b
        ; adc bh, 1
        // Memory off a base (rbp) and index (rcx) without host registers.
        ; add ebx, [rbp + rcx * 4]
        ; mov [rbp + rcx * 8 + 0x100], r12
        ; xor [rbp + 0x40], r14d
        ; movzx r13d, BYTE [rbp + rcx + 0x101]
        ; mov r14d, [rbp + rcx * 4 + 0x100]
        ; sub [rbp + rcx * 8 + 0x200], rbx
        ; adc r12, [rbp + 0x108]
        ; cmp [rbp + rcx * 2 + 0x40], r13w
        ; sbb r14d, [rbp + 0x44]
        ; and r9d, ebx
        ; add rsi, r12
        ; xor edx, r13d
        ; sub rdi, r14
        ; dec ecx
        ; jnz ->inner
        ; add rax, rbx
        ; adc r14, r12
        ; dec r15d
        ; jnz ->outer
        ; hlt
    );
    a.finalize().unwrap()
}

/// The loop of `spilled_forms_loop`, with and without conditions in r12b (so with r12 a guest
/// register in the second), agrees with tier 0 at every third instruction limit (registers,
/// lazy record, RIP, retired count), runs as a region, and leaves the same data page.
#[test]
fn spilled_register_forms_match_tier0_at_every_limit() {
    for conds in [true, false] {
        spilled_forms_agree(&spilled_forms_loop(conds));
    }
}

fn spilled_forms_agree(code: &[u8]) {
    let code = code.to_vec();
    let s = region_limits_agree(&code, cpu64_with, 3, 3);
    assert!(s.regions >= 1 && s.region_members >= 3, "{s}");
    let (_, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    let (mut pa, mut pb) = (vec![0u8; 0x1000], vec![0u8; 0x1000]);
    let (mut a, mut b) = (a, b);
    a.read_bytes(CODE64 + 0x1000, &mut pa).unwrap();
    b.read_bytes(CODE64 + 0x1000, &mut pb).unwrap();
    assert_eq!(pa, pb, "the data page");
}
// --- end part A ---

// --- a shift's record left to the INC/DEC right after it (eighth round, the lead) ---

/// Shifts by an immediate of every kind and size, on registers with and without a host
/// register (the loop uses 14 guest registers), each followed by an INC or DEC that keeps the
/// shift's CF; ADC, SETC, CMOVC and PUSHF read that CF after the INC/DEC, and a soft or hard
/// limit may stop between the shift and the INC/DEC.
fn shift_then_incdec_loop() -> Vec<u8> {
    let mut a = dynasmrt::VecAssembler::<dynasmrt::x64::X64Relocation>::new(0);
    dynasm!(a
        ; .arch x64
        ; mov ecx, 60
        ; mov rax, QWORD 0x1e37_79b9_7f4a_7c15
        ; mov rbx, QWORD 0x0123_4567_89ab_cdef
        ; mov rdx, 0x8001
        ; mov rsi, 0x55
        ; mov rdi, 0x7fff_0001
        ; mov rbp, 3
        ; mov r8, 0x80
        ; mov r9, 1
        ; mov r10, 0
        ; mov r11, QWORD -2
        ; mov r12, 0x4000_0001
        ; mov r13, 7
        ; mov r14, 0x0f0f
        ; mov rsp, 0x40_2000
        ; ->top:
        // An LCG step in rax keeps the shifted values changing.
        ; imul rax, rax, 0x2c1b_3c6d
        ; add rax, rcx
        ; xor rbx, rax
        ; shr bl, 1
        ; inc rbp
        ; adc r10, 0
        ; shl r14w, 3
        ; dec r13
        ; setc r9b
        ; sar edi, 5
        ; inc r11d
        ; adc r10, r9
        ; shl rbx, 20
        ; dec r12
        ; cmovc r8, rax
        ; shr dx, 15
        ; inc esi
        ; adc r10d, edx
        ; sar rax, 63
        ; dec r14b
        ; pushfq
        ; pop r9
        ; xor rbx, r9
        ; shl sil, 7
        ; inc r8w
        ; adc r10, rsi
        ; add rdx, rbx
        ; add rdi, rax
        ; dec ecx
        ; jnz ->top
        ; hlt
    );
    a.finalize().unwrap()
}

#[test]
fn a_shift_before_inc_or_dec_leaves_tier0s_carry() {
    let code = shift_then_incdec_loop();
    let (ea, a, b, s) = run_to_end_on_both(&code, cpu64_with);
    assert!(matches!(ea, Exit::Stop(Stop::Fault(f)) if f.vector == 13), "HLT at CPL3 is #GP: {ea:?}");
    assert!(s.translated_instructions > a.retired / 2, "{s}");
    assert_eq!(a.state.gpr, b.state.gpr);
    limits_agree(&code, cpu64_with);
    // Soft limits stop at block boundaries: the loop's back edge, with the last INC/DEC's
    // record (and so the shift's CF) written.
    for n in (1..a.retired).step_by(5) {
        let (mut a, mut b) = (cpu64_with(&code), cpu64_with(&code));
        let limit = Limit { poll_after: n, ..Limit::NONE };
        let ea = Engine::run(&mut Interp::new(), &mut a, &limit).unwrap();
        let eb = jit(1).run(&mut b, &limit).unwrap();
        assert_eq!(ea, eb, "poll after {n}");
        assert_eq!((a.retired, a.state.rip, a.state.gpr), (b.retired, b.state.rip, b.state.gpr), "poll after {n}");
        assert_eq!(a.state.lazy.materialize(), b.state.lazy.materialize(), "flags, poll after {n}");
    }
}
