//! The completion kick (issue 12): an I/O thread's completion hook ([`Machine::io_waker`]), called
//! from another thread, ends tier 0's run at the next block boundary with `Exit::Poll`, however
//! large the run's budget, so the machine loop looks at the devices at once instead of at the end
//! of its slice. The guest is a real-mode `jmp $` (EB FE, SDM Vol. 2 "JMP": a jump to itself), a
//! block that never stops on its own: without the kick the run ends only at its budget
//! (`Exit::Limit`, what the test would then see).

use emu::engine::{Engine, Exit, Limit};
use emu::machine::{Machine, MachineConfig};
use std::time::{Duration, Instant};

#[test]
fn an_io_completion_ends_a_running_slice() {
    let cfg = MachineConfig { mem: 16 << 20, deterministic: false, marker: None };
    let mut m = Machine::new(&cfg, Box::new(std::io::sink()), Instant::now()).unwrap();
    m.cpu.ram.slice_mut(0x7c00, 2).unwrap().copy_from_slice(&[0xeb, 0xfe]);
    m.cpu.state.segs[1].base = 0; // CS
    m.cpu.state.segs[1].selector = 0;
    m.cpu.state.rip = 0x7c00;
    let wake = m.io_waker();
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        wake();
    });
    // About 2^31 instructions: many seconds of tier 0, so an exit before that is the kick's.
    let budget = 1u64 << 31;
    let limit = Limit { instructions: budget, poll_after: budget, deadline: None, want_interrupt: false };
    let exit = Engine::run(&mut m.interp, &mut m.cpu, &limit).unwrap();
    kicker.join().unwrap();
    assert_eq!(exit, Exit::Poll, "the run ended at its budget, not at the kick ({} retired)", m.cpu.retired);
    assert!(m.cpu.retired < budget);
    assert_eq!(m.cpu.state.rip, 0x7c00, "stopped at a block boundary, on the jmp");
}
