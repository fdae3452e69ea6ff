//! Unit tests of the system call layer: calls are made by setting the guest's registers and
//! dispatching, as SYSCALL does, on a process loaded from a minimal executable. Expected values
//! come from outside the code under test: the host file system (std), the x86-64 structure
//! layouts in the Linux UAPI headers (`asm/stat.h`, `asm/sigcontext.h`, `asm-generic/siginfo.h`),
//! and Linux's documented error numbers.

use super::*;
use crate::user::signal::{self, FaultInfo, SIGPIPE};
use crate::user::stack::tests::load_tiny;
use crate::user::STACK_TOP;

fn call(p: &mut Process, nr: u64, args: &[u64]) -> i64 {
    let g = &mut p.cpu.state.gpr;
    g[gpr::RAX] = nr;
    for (&reg, &v) in [gpr::RDI, gpr::RSI, gpr::RDX, 10, 8, 9].iter().zip(args) {
        g[reg] = v;
    }
    assert!(dispatch(p).is_none());
    p.cpu.state.gpr[gpr::RAX] as i64
}

/// A fresh read-write anonymous mapping of 64 KiB for buffers.
fn buffer(p: &mut Process) -> u64 {
    let a = call(p, 9, &[0, 65536, 3, 0x22, u64::MAX, 0]);
    assert!(a > 0, "mmap: {a}");
    a as u64
}

fn cstr(p: &mut Process, at: u64, s: &str) -> u64 {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    p.write_mem(at, &b).unwrap();
    at
}

fn host_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("strata-sys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn file_round_trip_matches_the_host_file() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    let dir = host_dir("file");
    let path = dir.join("f.txt");
    let name = cstr(&mut p, buf, &path.to_string_lossy());
    let fd = call(&mut p, 257, &[fs::AT_FDCWD, name, 0o102 | 0o1000, 0o600]); // O_RDWR|O_CREAT|O_TRUNC
    assert!(fd >= 3, "openat: {fd}");
    p.write_mem(buf + 1024, b"hello, world").unwrap();
    assert_eq!(call(&mut p, 1, &[fd as u64, buf + 1024, 12]), 12);
    assert_eq!(std::fs::read(&path).unwrap(), b"hello, world", "the host sees the write");
    assert_eq!(call(&mut p, 8, &[fd as u64, 7, 0]), 7, "lseek SEEK_SET");
    assert_eq!(call(&mut p, 0, &[fd as u64, buf + 2048, 100]), 5);
    let mut got = [0u8; 5];
    p.read_mem(buf + 2048, &mut got).unwrap();
    assert_eq!(&got, b"world");
    // struct stat (asm/stat.h): st_mode at 24, st_size at 48.
    assert_eq!(call(&mut p, 5, &[fd as u64, buf + 4096]), 0);
    let st = get(&mut p, buf + 4096, 144).unwrap();
    assert_eq!(le64(&st, 48), 12);
    assert_eq!(le32(&st, 24) & 0o170000, 0o100000, "S_IFREG");
    assert_eq!(le32(&st, 24) & 0o777, 0o600);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(le64(&st, 8), std::fs::metadata(&path).unwrap().ino(), "st_ino is the host's");
    assert_eq!(call(&mut p, 3, &[fd as u64]), 0);
    assert_eq!(call(&mut p, 3, &[fd as u64]), -9, "EBADF");
    assert_eq!(call(&mut p, 1, &[1, 0x10, 4]), -14, "EFAULT for an unmapped buffer");
    assert_eq!(call(&mut p, 999, &[]), -38, "ENOSYS");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn getdents64_lists_the_host_directory() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    let dir = host_dir("dents");
    for n in ["one", "two", "three"] {
        std::fs::write(dir.join(n), n).unwrap();
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    let name = cstr(&mut p, buf, &dir.to_string_lossy());
    let fd = call(&mut p, 257, &[fs::AT_FDCWD, name, 0o200000, 0]) as u64; // O_DIRECTORY
    let mut names = Vec::new();
    loop {
        // A small buffer forces several calls.
        let n = call(&mut p, 217, &[fd, buf + 4096, 64]);
        assert!(n >= 0, "getdents64: {n}");
        if n == 0 {
            break;
        }
        let recs = get(&mut p, buf + 4096, n as usize).unwrap();
        let mut off = 0;
        while off < recs.len() {
            // linux_dirent64: d_ino, d_off, d_reclen (u16), d_type (u8), d_name.
            let reclen = u16::from_le_bytes([recs[off + 16], recs[off + 17]]) as usize;
            assert_eq!(reclen % 8, 0);
            let name: Vec<u8> = recs[off + 19..].iter().take_while(|&&b| b != 0).copied().collect();
            names.push((String::from_utf8(name).unwrap(), recs[off + 18]));
            off += reclen;
        }
    }
    names.sort();
    let expect: Vec<(String, u8)> = [(".", 4), ("..", 4), ("one", 8), ("sub", 4), ("three", 8), ("two", 8)]
        .iter()
        .map(|(n, t)| (n.to_string(), *t))
        .collect();
    assert_eq!(names, expect, "DT_DIR = 4, DT_REG = 8");
    assert_eq!(call(&mut p, 0, &[fd, buf, 10]), -21, "EISDIR");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pipes_carry_bytes_and_report_eof_and_epipe() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    assert_eq!(call(&mut p, 293, &[buf, 0o2000000]), 0); // pipe2(O_CLOEXEC)
    let fds = get(&mut p, buf, 8).unwrap();
    let (r, w) = (le32(&fds, 0) as u64, le32(&fds, 4) as u64);
    assert_eq!(call(&mut p, 72, &[r, 1, 0]), 1, "FD_CLOEXEC set");
    p.write_mem(buf + 100, b"abcdef").unwrap();
    assert_eq!(call(&mut p, 1, &[w, buf + 100, 6]), 6);
    assert_eq!(call(&mut p, 0, &[r, buf + 200, 4]), 4);
    assert_eq!(call(&mut p, 0, &[r, buf + 200, 4]), 2);
    assert_eq!(call(&mut p, 8, &[r, 0, 0]), -29, "ESPIPE");
    let w2 = call(&mut p, 32, &[w]) as u64;
    assert_eq!(call(&mut p, 3, &[w]), 0);
    assert_eq!(call(&mut p, 1, &[w2, buf + 100, 1]), 1, "a dup keeps the write end open");
    assert_eq!(call(&mut p, 3, &[w2]), 0);
    assert_eq!(call(&mut p, 0, &[r, buf + 200, 4]), 1);
    assert_eq!(call(&mut p, 0, &[r, buf + 200, 4]), 0, "EOF once every writer is closed");
    // The other direction: writing with no reader is EPIPE and raises SIGPIPE.
    assert_eq!(call(&mut p, 22, &[buf]), 0);
    let fds = get(&mut p, buf, 8).unwrap();
    call(&mut p, 3, &[le32(&fds, 0) as u64]);
    assert_eq!(call(&mut p, 1, &[le32(&fds, 4) as u64, buf + 100, 1]), -32);
    assert_ne!(p.sys.signals.pending & signal::bit(SIGPIPE), 0);
}

#[test]
fn sigaction_round_trips_and_refuses_sigkill() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    let act = Layout::new(32).u64(0, 0x401234).u64(8, 0x0400_0004).u64(16, 0x401300).u64(24, 1 << 9).0.clone();
    p.write_mem(buf, &act).unwrap();
    assert_eq!(call(&mut p, 13, &[10, buf, 0, 8]), 0);
    assert_eq!(call(&mut p, 13, &[10, 0, buf + 64, 8]), 0);
    let old = get(&mut p, buf + 64, 32).unwrap();
    assert_eq!(old, act);
    assert_eq!(call(&mut p, 13, &[9, buf, 0, 8]), -22, "SIGKILL cannot be caught");
    assert_eq!(call(&mut p, 13, &[10, buf, 0, 4]), -22, "sigsetsize must be 8");
    assert_eq!(call(&mut p, 13, &[65, buf, 0, 8]), -22);
}

#[test]
fn fault_frame_has_the_linux_layout_and_sigreturn_restores() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    let act = Layout::new(32).u64(0, 0x401000).u64(8, 0x0400_0004).u64(16, 0x401100).u64(24, 0).0.clone();
    p.write_mem(buf, &act).unwrap();
    assert_eq!(call(&mut p, 13, &[11, buf, 0, 8]), 0);
    let user_sp = STACK_TOP - 0x1000 - 8;
    {
        let st = &mut p.cpu.state;
        for (i, r) in st.gpr.iter_mut().enumerate() {
            *r = 0x1000 + i as u64;
        }
        st.gpr[gpr::RSP] = user_sp;
        st.rip = 0x400abc;
        st.xmm[5] = [0x55, 0x66];
    }
    assert!(signal::deliver_fault(&mut p, FaultInfo::page_fault(0xdead_0010, 6, false)).is_none());
    let st = p.cpu.state.clone();
    let frame = st.gpr[gpr::RSP];
    assert_eq!(st.rip, 0x401000, "at the handler");
    assert_eq!(frame % 16, 8, "as if called: the return address was just pushed");
    assert!(frame < user_sp - 128, "below the red zone");
    assert_eq!(st.gpr[gpr::RDI], 11);
    assert_eq!(p.read_u64(frame), Some(0x401100), "returns to sa_restorer");
    let uc = frame + 8;
    assert_eq!(st.gpr[gpr::RDX], uc);
    assert_eq!(st.gpr[gpr::RSI], uc + 304, "siginfo follows the ucontext");
    assert_eq!(st.xmm[5], [0, 0], "the handler starts with a clean FPU");
    // uc_mcontext at +40; gregs REG_R8 = 0, REG_RDI = 8, REG_RSP = 15, REG_RIP = 16, REG_ERR = 19,
    // REG_TRAPNO = 20, REG_CR2 = 22, then the fpstate pointer (glibc sys/ucontext.h).
    let g = |p: &mut Process, i: u64| p.read_u64(uc + 40 + 8 * i).unwrap();
    assert_eq!(g(&mut p, 0), 0x1008);
    assert_eq!(g(&mut p, 8), 0x1007);
    assert_eq!(g(&mut p, 15), user_sp);
    assert_eq!(g(&mut p, 16), 0x400abc);
    assert_eq!(g(&mut p, 19), 6, "REG_ERR: the page-fault error code (write, user)");
    assert_eq!(g(&mut p, 20), 14, "REG_TRAPNO: #PF");
    assert_eq!(g(&mut p, 22), 0xdead_0010, "CR2");
    let fpstate = g(&mut p, 23);
    assert_eq!(fpstate % 64, 0);
    assert_eq!(p.read_u64(fpstate + 160 + 16 * 5), Some(0x55), "XMM5 saved in the FXSAVE image");
    // siginfo: si_signo, si_errno, si_code, then si_addr at 16.
    let si = get(&mut p, uc + 304, 24).unwrap();
    assert_eq!((le32(&si, 0), le32(&si, 8), le64(&si, 16)), (11, 1, 0xdead_0010), "SIGSEGV SEGV_MAPERR");
    assert_ne!(p.sys.signals.blocked & signal::bit(11), 0, "blocked while handled");
    // The handler changes the saved RAX and returns: ret pops the restorer, which calls
    // rt_sigreturn with RSP at the ucontext.
    p.write_u64(uc + 40 + 8 * 13, 0x77).unwrap();
    p.cpu.state.gpr = [0xbad; 16];
    p.cpu.state.gpr[gpr::RSP] = uc;
    p.cpu.state.gpr[gpr::RAX] = 15;
    assert!(dispatch(&mut p).is_none());
    let st = &p.cpu.state;
    assert_eq!(st.rip, 0x400abc);
    assert_eq!(st.gpr[gpr::RAX], 0x77, "RAX comes from the frame, not the syscall result");
    assert_eq!(st.gpr[gpr::RSP], user_sp);
    assert_eq!(st.gpr[9], 0x1009);
    assert_eq!(st.xmm[5], [0x55, 0x66], "FPU state restored");
    assert_eq!(p.sys.signals.blocked, 0);
}

#[test]
fn unhandled_and_blocked_faults_kill_with_the_signal() {
    let mut p = load_tiny(&[], &[]);
    let end = signal::deliver_fault(&mut p, FaultInfo::from_exception(crate::exception::Fault::de(), 0x401000));
    assert_eq!(end, Some(ProcessEnd::Signaled(8)));
    // SIGCHLD is ignored by default; SIGTERM kills.
    signal::raise(&mut p, 17);
    assert_eq!(signal::deliver_pending(&mut p), None);
    signal::raise(&mut p, 15);
    assert_eq!(signal::deliver_pending(&mut p), Some(ProcessEnd::Signaled(15)));
}

#[test]
fn random_system_calls_never_panic_the_host() {
    let mut p = load_tiny(&[], &[]);
    let buf = buffer(&mut p);
    // Names in the buffer are runs of 'x' (no '/'), resolved in a scratch directory.
    p.write_mem(buf, &[b'x'; 200]).unwrap();
    p.write_mem(buf + 200, &[0]).unwrap();
    let dir = host_dir("fuzz");
    p.sys.cwd = dir.clone();
    for fd in 0..3 {
        call(&mut p, 3, &[fd]); // closes the runner's duplicates, not the host's descriptors
    }
    let interesting = [0, 1, 2, 3, 8, 64, 4096, 1 << 20, 1 << 40, u64::MAX, u64::MAX - 4095, 1 << 63, buf, buf + 100];
    let mut s = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..20_000 {
        let nr = next() % 450;
        // Calls that end the process or sleep for a guest-chosen time.
        if matches!(nr, 15 | 34 | 35 | 60 | 230 | 231) {
            continue;
        }
        let args: Vec<u64> = (0..6)
            .map(|_| {
                let r = next();
                if r & 3 == 0 {
                    r >> 2
                } else {
                    interesting[(r >> 2) as usize % interesting.len()]
                }
            })
            .collect();
        call(&mut p, nr, &args);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kernel_writes_to_decoded_code_reach_the_engine() {
    // The same tier 0 runs the code twice through the one loop; between the runs the kernel
    // rewrites the immediate of `mov edi, imm32` (BF id) in the block tier 0 has decoded. The
    // exit status must follow the bytes in memory (SDM: BF id, B8 id, 0F 05), not the block.
    let mut p = load_tiny(&[], &[]);
    let code = call(&mut p, 9, &[0, 4096, 7, 0x22, u64::MAX, 0]);
    assert!(code > 0, "mmap: {code}");
    let code = code as u64;
    p.write_mem(code, &[0xbf, 1, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05]).unwrap();
    let mut tier0 = crate::tier0::Interp::new();
    p.cpu.state.rip = code;
    assert_eq!(p.run_on(&mut tier0).unwrap(), ProcessEnd::Exited(1));
    p.write_mem(code + 1, &[7]).unwrap();
    p.cpu.state.rip = code;
    assert_eq!(p.run_on(&mut tier0).unwrap(), ProcessEnd::Exited(7), "the rewritten immediate");
}
