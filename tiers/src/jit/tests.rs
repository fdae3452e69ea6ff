//! Unit tests of the JIT: real-mode programs run at threshold 1 (every block translated) give
//! the results arithmetic predicts and the state and retired count tier 0 leaves, also when
//! stopped at every instruction limit, and with code that rewrites itself.

use super::*;
use emu::mem::GuestRam;

/// A real-mode CPU (CS = DS = 0) with `code` at 0x1000, RIP there.
fn cpu_with(code: &[u8]) -> Cpu {
    let mut cpu = Cpu::new(GuestRam::new(1 << 20).unwrap());
    cpu.ram.slice_mut(0x1000, code.len()).unwrap().copy_from_slice(code);
    cpu.state.rip = 0x1000;
    cpu
}

fn jit(threshold: u64) -> JitEngine {
    JitEngine::new(JitOptions { threshold, code_bytes: 1 << 20 }, Rc::default()).unwrap()
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
    let mut j = jit(1);
    assert_eq!(run(&mut j, &mut cpu, u64::MAX), Exit::Stop(Stop::Halt));
    // 1 + 2 + ... + 1000, modulo 2^16.
    assert_eq!(cpu.state.gpr[0] & 0xffff, 500_500 % 65_536);
    // mov, 1000 x (add, dec, jnz), hlt.
    assert_eq!(cpu.retired, 1 + 3 * 1000 + 1);
    let s = *j.stats.borrow();
    assert!(s.compiled >= 2 && s.links >= 1, "{s}");
    assert!(s.translated_instructions >= 3 * 999, "{s}");
}

#[test]
fn self_modifying_code_is_seen_at_once() {
    let mut cpu = cpu_with(SMC_LOOP);
    let mut j = jit(1);
    assert_eq!(run(&mut j, &mut cpu, u64::MAX), Exit::Stop(Stop::Halt));
    // bx takes 0, 1, ..., 99: the sum is 4950.
    assert_eq!(cpu.state.gpr[0] & 0xffff, 4950);
    assert_eq!(cpu.ram.slice_mut(0x1004, 2).unwrap(), &100u16.to_le_bytes());
    let s = *j.stats.borrow();
    assert!(s.dropped >= MAX_RETRANSLATIONS as u64, "{s}");
}

/// Every instruction limit stops the JIT where it stops tier 0, with the same state.
#[test]
fn limits_stop_where_tier0_stops() {
    for code in [SUM_LOOP, SMC_LOOP] {
        let mut reference = cpu_with(code);
        let total = {
            let mut t0 = Interp::new();
            run(&mut t0, &mut reference, u64::MAX);
            reference.retired
        };
        for n in (1..total).step_by(7) {
            let (mut a, mut b) = (cpu_with(code), cpu_with(code));
            let mut t0 = Interp::new();
            let mut j = jit(1);
            // Two runs each, so translations made in the first are entered in the second.
            for limit in [n / 2, n] {
                assert_eq!(run(&mut t0, &mut a, limit), run(&mut j, &mut b, limit), "limit {limit}");
                assert_eq!(a.retired, limit);
                assert_eq!(b.retired, limit);
                assert_eq!(a.state.rip, b.state.rip, "RIP at limit {limit}");
                assert_eq!(a.state.gpr, b.state.gpr, "registers at limit {limit}");
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
    let mut j = jit(1);
    let exit = run(&mut j, &mut cpu, u64::MAX);
    assert!(matches!(exit, Exit::Stop(Stop::Fault(f)) if f.vector == 6), "{exit:?}");
    assert_eq!(cpu.state.rip, 0x1006);
    assert_eq!(cpu.retired, 1 + 2 * 3);
}

/// A full code cache is emptied and compilation goes on.
#[test]
fn a_full_code_cache_is_flushed_whole() {
    let mut cpu = cpu_with(SUM_LOOP);
    let mut j = JitEngine::new(JitOptions { threshold: 1, code_bytes: 1 << 16 }, Rc::default()).unwrap();
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
