//! The instruction trace (`--trace FILE`) against external references.
//!
//! - Count: a traced `strata run --deterministic` of a test kernel lists exactly as many
//!   instructions as the same run without the trace retires (the trace observes tier 0's own
//!   loop and must not change what it runs).
//! - Addresses, bytes and mnemonics: every traced instruction of the 32-bit kernels is an
//!   instruction of `objdump -d` (binutils) at that address, with the same bytes and mnemonic
//!   (modulo the two disassemblers' names for the same instruction, listed below).
//! - Events: the port writes to COM1's data register are the serial output; the interrupts are
//!   the PIT's vector the kernel programmed; exceptions carry the vectors and error codes the
//!   kernels check against the SDM.
//! - The window (`--trace-from`/`--trace-count`) and the address range, and user mode.
//! - User-mode events: the system calls and signals of a static C program are those
//!   `strace -f` (the reference) shows for it natively.

mod kernel_support;
mod user_support;

use std::path::Path;
use std::process::Command;
use user_support::{strata_bin, Scratch};

/// Runs `strata run --deterministic` on `kernel` with `extra` options; (exit status, stderr,
/// serial output).
fn run(kernel: &Path, dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let serial = dir.join("serial");
    let _ = std::fs::remove_file(&serial);
    let out = Command::new(strata_bin())
        .args(["run", "--deterministic", "--kernel"])
        .arg(kernel)
        .arg("--serial")
        .arg(format!("file:{}", serial.display()))
        .args(extra)
        .output()
        .expect("spawn strata");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err, std::fs::read_to_string(serial).unwrap_or_default())
}

/// "strata: N instructions retired" from stderr.
fn retired(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("strata: ")?.strip_suffix(" instructions retired")?.parse().ok())
        .unwrap_or_else(|| panic!("no retired count in {stderr}"))
}

/// One instruction line: (index, address, bytes, mnemonic).
fn instructions(trace: &str) -> Vec<(u64, u64, Vec<u8>, String)> {
    trace
        .lines()
        .filter(|l| !l.starts_with("--"))
        .map(|l| {
            let (index, rest) = l.split_once(' ').unwrap();
            let (addr, rest) = rest.split_once(": ").unwrap();
            let mut words = rest.split_whitespace().peekable();
            let mut bytes = Vec::new();
            while let Some(w) = words.peek() {
                if w.len() != 2 || !w.bytes().all(|c| c.is_ascii_hexdigit()) {
                    break;
                }
                bytes.push(u8::from_str_radix(words.next().unwrap(), 16).unwrap());
            }
            let mnemonic = words.next().unwrap_or("").to_string();
            (index.parse().unwrap(), u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap(), bytes, mnemonic)
        })
        .collect()
}

/// Where objdump (AT&T's sibling, Intel syntax) and iced-x86 name the same instruction
/// differently: objdump gives the operand-size suffix to LGDT/LIDT and not to PUSHA/POPA/IRET,
/// and spells LODSB as LODS with operands.
const SAME_INSTRUCTION: &[(&str, &str)] = &[
    ("lgdtd", "lgdt"),
    ("lidtd", "lidt"),
    ("pusha", "pushad"),
    ("popa", "popad"),
    ("iret", "iretd"),
    ("pushf", "pushfd"),
    ("popf", "popfd"),
    ("lods", "lodsb"),
];

/// objdump's disassembly: address -> (bytes, mnemonic).
fn objdump(exe: &Path) -> std::collections::HashMap<u64, (Vec<u8>, String)> {
    let out =
        Command::new("objdump").args(["-d", "-M", "intel", "--insn-width=16"]).arg(exe).output().expect("objdump");
    let mut map = std::collections::HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = l.split('\t');
        let (Some(addr), Some(bytes), Some(text)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let Some(addr) = addr.trim().strip_suffix(':') else { continue };
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        let bytes: Vec<u8> = bytes.split_whitespace().filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
        let mnemonic = text.split_whitespace().next().unwrap_or("").to_string();
        map.insert(addr, (bytes, mnemonic));
    }
    map
}

#[test]
fn traced_kernels_list_what_tier0_retires_and_agree_with_objdump() {
    let scratch = Scratch::new("trace");
    let dir = scratch.path();
    if let Err(e) = kernel_support::build("hello", dir) {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
        return;
    }
    let have_objdump = user_support::have("objdump");
    for name in ["hello", "interrupts", "exceptions", "paging64"] {
        let exe = kernel_support::build(name, dir).unwrap();
        let (status, err, serial) = run(&exe, dir, &[]);
        assert_eq!(status, Some(1), "{name}: {err}");
        let n = retired(&err);
        let trace_file = dir.join(format!("{name}.trace"));
        let (tstatus, terr, tserial) = run(&exe, dir, &["--trace", trace_file.to_str().unwrap(), "--trace-events"]);
        assert_eq!(tstatus, Some(1), "{name} traced: {terr}");
        assert_eq!(serial, tserial, "{name}: the trace changed the serial output");
        assert_eq!(retired(&terr), n, "{name}: the trace changed the instruction count");
        let trace = std::fs::read_to_string(&trace_file).unwrap();
        let instrs = instructions(&trace);
        assert_eq!(instrs.len() as u64, n, "{name}: trace lines vs instructions retired");
        // Indices count up by one: every retired instruction is there, once.
        assert!(instrs.iter().enumerate().all(|(i, x)| x.0 == i as u64), "{name}: indices");

        // The bytes written to COM1's THR (port 0x3f8) are the serial output.
        let written: Vec<u8> = trace
            .lines()
            .filter_map(|l| l.strip_prefix("-- port write 0x3f8 size 1 value 0x"))
            .map(|v| u8::from_str_radix(v, 16).unwrap())
            .collect();
        assert_eq!(String::from_utf8_lossy(&written), serial, "{name}: port writes vs serial output");

        // paging64 switches to 64-bit code, which objdump would decode as 32-bit.
        if have_objdump && name != "paging64" {
            let dis = objdump(&exe);
            for (index, addr, bytes, mnemonic) in &instrs {
                let (want_bytes, want_mn) =
                    dis.get(addr).unwrap_or_else(|| panic!("{name}: #{index} at {addr:#x} is no instruction start"));
                assert_eq!(bytes, want_bytes, "{name}: #{index} at {addr:#x}");
                let same = want_mn == mnemonic || SAME_INSTRUCTION.contains(&(want_mn.as_str(), mnemonic.as_str()));
                assert!(same, "{name}: #{index} at {addr:#x}: objdump {want_mn}, trace {mnemonic}");
            }
        }
        match name {
            // IRQ 0 remapped to vector 0x20 (INIT_PIC); the kernel waits for ten ticks.
            "interrupts" => assert!(trace.matches("-- interrupt vector 0x20\n").count() >= 10, "{name}"),
            // SDM Vol. 3, 6.13: #GP for a bad selector carries the selector (TI set, RPL
            // cleared: 0x1234 as loaded); INT 0x40 is a software interrupt.
            "exceptions" => {
                for want in [
                    "-- exception vector 0x00 (#DE)\n",
                    "-- exception vector 0x06 (#UD)\n",
                    "-- software interrupt vector 0x03\n",
                    "-- exception vector 0x0d (#GP) error code 0x1234\n",
                    "-- software interrupt vector 0x40\n",
                ] {
                    assert!(trace.contains(want), "{name}: {want}");
                }
            }
            // The #PF error codes the kernel checks (SDM Vol. 3, 4.7): a not-present read, a
            // store to a read-only page, a fetch from an NX page; CR2 the faulting address.
            "paging64" => {
                for want in [
                    "-- exception vector 0x0e (#PF) error code 0x0 cr2 0x40001000\n",
                    "-- exception vector 0x0e (#PF) error code 0x3 cr2 0x40002000\n",
                    "-- exception vector 0x0e (#PF) error code 0x11 cr2 0x40003000\n",
                ] {
                    assert!(trace.contains(want), "{name}: {want}");
                }
            }
            _ => {}
        }
    }
}

#[test]
fn the_window_and_the_range_select_lines_of_the_full_trace() {
    let scratch = Scratch::new("trace-window");
    let dir = scratch.path();
    let Ok(exe) = kernel_support::build("interrupts", dir) else {
        eprintln!("SKIP: gcc cannot build 32-bit test kernels here");
        return;
    };
    let full = dir.join("full");
    run(&exe, dir, &["--trace", full.to_str().unwrap()]);
    let full = instructions(&std::fs::read_to_string(full).unwrap());
    let part = dir.join("part");
    let (status, err, _) =
        run(&exe, dir, &["--trace", part.to_str().unwrap(), "--trace-from", "100", "--trace-count", "50"]);
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(instructions(&std::fs::read_to_string(part).unwrap()), full[100..150]);
    let (lo, hi) = (full[0].1, full[0].1 + 0x40);
    let ranged = dir.join("ranged");
    run(&exe, dir, &["--trace", ranged.to_str().unwrap(), "--trace-range", &format!("{lo:#x}-{hi:#x}")]);
    let want: Vec<_> = full.iter().filter(|x| x.1 >= lo && x.1 < hi).cloned().collect();
    assert!(!want.is_empty());
    assert_eq!(instructions(&std::fs::read_to_string(ranged).unwrap()), want);
}

#[test]
fn a_traced_user_program_lists_every_instruction() {
    let scratch = Scratch::new("trace-user");
    let dir = scratch.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/asm/hello.S");
    let exe = dir.join("hello");
    let built = Command::new("gcc").args(["-nostdlib", "-static", "-o"]).arg(&exe).arg(&src).status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: gcc cannot build {}", src.display());
        return;
    }
    let stats = Command::new(strata_bin()).args(["user", "--stats"]).arg(&exe).output().unwrap();
    let err = String::from_utf8_lossy(&stats.stderr);
    let n: usize = err.split_whitespace().nth(1).and_then(|w| w.parse().ok()).unwrap_or_else(|| panic!("{err}"));
    let trace = dir.join("trace");
    let traced = Command::new(strata_bin()).args(["user", "--trace"]).arg(&trace).arg(&exe).output().unwrap();
    assert_eq!(traced.stdout, stats.stdout);
    assert_eq!(traced.status.code(), stats.status.code());
    assert_eq!(instructions(&std::fs::read_to_string(trace).unwrap()).len(), n);
    // Counted from the program's source: 7 instructions up to the loop, 3 per iteration for
    // 100000 iterations, then cmp, jne, call, ret, xor, mov, syscall.
    assert_eq!(n, 7 + 3 * 100_000 + 7);
}

/// The system calls and signals of a trace (`-- syscall NAME(` and `-- signal NAME (`), or of
/// `strace -f` output (`NAME(` and `--- SIGNAME {`), as one list of names in order; strace's
/// execve (made before the program's first instruction) is left out.
fn calls_and_signals(text: &str, strace: bool) -> Vec<String> {
    let mut out = Vec::new();
    for l in text.lines() {
        let l = if strace { l.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start() } else { l };
        let item = if strace {
            if let Some(s) = l.strip_prefix("--- ") {
                s.split_whitespace().next().map(str::to_string)
            } else if l.starts_with("+++") || l.starts_with("execve(") {
                None
            } else {
                l.split_once('(').map(|(name, _)| name.to_string())
            }
        } else if let Some(s) = l.strip_prefix("-- syscall ") {
            s.split_once('(').map(|(name, _)| name.to_string())
        } else if let Some(s) = l.strip_prefix("-- signal ") {
            s.split_whitespace().next().map(str::to_string)
        } else {
            None
        };
        out.extend(item);
    }
    out
}

/// `--trace-events` under `strata user`: the system calls and signal deliveries of a static C
/// program (glibc's start-up, signals to itself, a caught SIGSEGV, abort()) are those
/// `strace -f` shows for it natively, in the same order.
#[test]
fn user_trace_events_list_the_system_calls_and_signals_strace_sees() {
    if !user_support::have("strace") {
        eprintln!("SKIP: strace is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let scratch = Scratch::new("trace-user-events");
    let dir = scratch.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb/signals.c");
    let exe = dir.join("signals");
    let built = Command::new("gcc").args(["-O0", "-static", "-o"]).arg(&exe).arg(&src).status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: gcc -static cannot build {}", src.display());
        return;
    }
    // Both write their output to a file: glibc's stdio asks fstat what stdout is.
    let native_trace = dir.join("strace.txt");
    let native = Command::new("strace")
        .args(["-f", "-o"])
        .arg(&native_trace)
        .arg(&exe)
        .stdout(std::fs::File::create(dir.join("native.out")).unwrap())
        .status()
        .unwrap();
    let trace = dir.join("trace");
    // The range 0-1 holds no instruction: the events alone.
    let strata = Command::new(strata_bin())
        .args(["user", "--trace-events", "--trace-range", "0-1", "--trace"])
        .arg(&trace)
        .arg(&exe)
        .stdout(std::fs::File::create(dir.join("strata.out")).unwrap())
        .status()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(native.signal(), Some(6), "abort() kills the program natively");
    assert_eq!(strata.code(), Some(128 + 6));
    let (want, got) = (std::fs::read_to_string(&native_trace).unwrap(), std::fs::read_to_string(&trace).unwrap());
    let (want_names, got_names) = (calls_and_signals(&want, true), calls_and_signals(&got, false));
    assert_eq!(got_names, want_names, "--- strace:\n{want}\n--- strata trace:\n{got}");
    for name in ["rt_sigaction", "kill", "SIGUSR1", "rt_sigreturn", "SIGSEGV", "tgkill", "SIGABRT", "write"] {
        assert!(got_names.iter().any(|n| n == name), "{name} missing from\n{got}");
    }
    // Arguments and results where both are deterministic: the output write, SIGSEGV's address.
    let out = std::fs::read_to_string(dir.join("strata.out")).unwrap();
    assert_eq!(out, std::fs::read_to_string(dir.join("native.out")).unwrap());
    assert!(got.contains("-- syscall write(0x1, "), "{got}");
    assert!(got.contains(&format!(") = {}\n", out.len())), "the write's result: {got}");
    assert!(
        want.contains("si_addr=0x10}") && got.contains("-- signal SIGSEGV (11) code 1 addr 0x10 -> handler"),
        "{got}"
    );
    assert!(got.contains("-- signal SIGABRT (6) code -6") && got.trim_end().ends_with("-> killed"), "{got}");
}

/// Option combinations (issue 11): the trace with the monitor driving the run (`step`, then
/// `cont`) and with `--save-at` lists exactly the instructions tier 0 retired, counted by an
/// untraced `--deterministic` run; a pair that cannot work is one line naming both options.
#[test]
fn the_trace_combines_with_the_monitor_and_save_at() {
    use std::io::{Read, Write};
    let scratch = Scratch::new("trace-combined");
    let dir = scratch.path();
    let kernel = match kernel_support::build("paging64", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let (plain_status, err, _) = run(&kernel, dir, &[]);
    let n = retired(&err);

    // The monitor steps 10 instructions, then lets the kernel run to its end.
    let sock = dir.join("mon.sock");
    let trace = dir.join("monitor.trace");
    let child = Command::new(strata_bin())
        .args(["run", "--deterministic", "--stopped", "--monitor"])
        .arg(format!("unix:{}", sock.display()))
        .arg("--trace")
        .arg(&trace)
        .arg("--kernel")
        .arg(&kernel)
        .arg("--serial")
        .arg(format!("file:{}", dir.join("serial2").display()))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut s = loop {
        match std::os::unix::net::UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed().as_secs() < 30 => std::thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => panic!("monitor socket: {e}"),
        }
    };
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    s.write_all(b"step 10\ncont\n").unwrap();
    let mut replies = String::new();
    let _ = s.read_to_string(&mut replies); // the monitor closes when the run ends
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), plain_status, "{err}");
    assert!(replies.contains("retired=10"), "{replies}");
    assert_eq!(instructions(&std::fs::read_to_string(&trace).unwrap()).len() as u64, n, "{err}");
    assert_eq!(retired(&err), n);

    // --save-at half way: the trace lists the instructions the untraced run retires before
    // its save point.
    let half = (n / 2).to_string();
    let snap = dir.join("snap");
    let (status, err, _) = run(&kernel, dir, &["--save-at", &half, "--save", snap.to_str().unwrap()]);
    assert_eq!(status, Some(0), "{err}");
    let before_save = retired(&err);
    let trace = dir.join("save.trace");
    let (status, err, _) =
        run(&kernel, dir, &["--trace", trace.to_str().unwrap(), "--save-at", &half, "--save", snap.to_str().unwrap()]);
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(instructions(&std::fs::read_to_string(&trace).unwrap()).len() as u64, before_save, "{err}");

    // Refused: one line naming both options.
    let (status, err, _) = run(&kernel, dir, &["--trace", "t", "--switch-at", "instr:10"]);
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--trace") && err.contains("--switch-at"), "{err}");
}
