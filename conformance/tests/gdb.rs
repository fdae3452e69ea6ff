//! The gdb stub against the real gdb (Debian's, in batch mode).
//!
//! - User mode: the same gdb script (`conformance/gdb/user.gdb`: breakpoints, backtraces,
//!   `next`/`step`/`finish`/`stepi`, locals, a watchpoint, the exit) runs against a static C
//!   program natively and against `strata user --gdb`; gdb's output must be the same, and so
//!   must the program's output and exit status. The native run is the reference. The same for
//!   signals (`signals.gdb` on `signals.c`): SIGUSR1 passed on, suppressed with `signal 0` and
//!   let through by `handle`, a caught SIGSEGV, abort()'s SIGABRT.
//! - System level: `strata run --gdb --wait-gdb` on two Multiboot test kernels: on
//!   `paging64.S`, a breakpoint at a label, CR3 (the `pml4` symbol's address, from nm), CR0 and
//!   EFER as the kernel sets them, the #PF handler with CR2 and the error code the SDM gives,
//!   a write watchpoint, the exit port; on `interrupts.S`, a watchpoint on the counter the
//!   timer interrupt handler increments.
//! - With the trace (`--gdb --trace`): the instructions and events a run without gdb traces.
//! - Bad input: malformed packets get error replies and the guest runs on when the client
//!   goes away.
//!
//! Skipped, with a message, when gdb or a static C toolchain is missing.

mod kernel_support;
mod user_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use user_support::{have, strata_bin, Scratch};

fn gdb_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("gdb")
}

/// A port nobody listens on now (the kernel picks it; strata binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `strata ARGS`, through `STRATA_RUNNER` when set (CI's aarch64 build under qemu-aarch64).
fn strata(args: &[&str]) -> Command {
    let runner = std::env::var("STRATA_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut c = match words.next() {
        Some(prog) => {
            let mut c = Command::new(prog);
            c.args(words).arg(strata_bin());
            c
        }
        None => Command::new(strata_bin()),
    };
    c.args(args);
    c
}

/// A strata process serving gdb, with its stderr collected.
struct Served {
    child: Child,
    stderr: Receiver<String>,
}

/// Starts `cmd` and waits until it says it listens for gdb.
fn serve(mut cmd: Command) -> Served {
    let mut child = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn strata");
    let err = child.stderr.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    loop {
        match rx.recv_timeout(Duration::from_secs(60).saturating_sub(start.elapsed())) {
            Ok(l) if l.contains("waiting for gdb") => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("strata never listened for gdb: {:?}", child.wait());
            }
        }
    }
    Served { child, stderr: rx }
}

impl Served {
    /// Waits for strata to end (killing it after a minute); its exit status and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        (status, self.stderr.try_iter().collect::<Vec<_>>().join("\n"))
    }
}

/// Runs gdb in batch mode on `exe` with `script` (killed after two minutes); its stdout and
/// stderr.
fn gdb(exe: &Path, script: &Path, cwd: &Path) -> (String, String) {
    let mut child = Command::new("gdb")
        .args(["-batch", "-nx", "-x"])
        .arg(script)
        .arg(exe)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gdb");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let killer_pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while !d.load(std::sync::atomic::Ordering::Relaxed) {
            if start.elapsed() > Duration::from_secs(120) {
                let _ = Command::new("kill").arg(killer_pid.to_string()).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut stdout = String::new();
    let _ = out.read_to_string(&mut stdout);
    let _ = child.wait();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (stdout, reader.join().unwrap_or_default())
}

/// gdb's output with what legitimately differs between a native and a remote session made
/// equal: process ids, and the stop at the entry point a remote session starts with.
fn normalize(out: &str) -> String {
    let mut lines = Vec::new();
    for l in out.lines() {
        let t = l.trim_end();
        if t.ends_with(" in _start ()") && t.starts_with("0x") {
            continue;
        }
        let mut s = t.to_string();
        if let Some(i) = s.find("(process ") {
            if let Some(j) = s[i..].find(')') {
                s.replace_range(i..i + j + 1, "(process N)");
            }
        }
        lines.push(s);
    }
    lines.join("\n")
}

fn write_script(dir: &Path, name: &str, prelude: &str, body_file: &str, subst: &[(String, u64)]) -> PathBuf {
    let mut body = std::fs::read_to_string(gdb_dir().join(body_file)).unwrap();
    for (name, value) in subst {
        body = body.replace(&format!("@{name}@"), &format!("{value:#x}"));
    }
    let path = dir.join(name);
    std::fs::write(&path, format!("set pagination off\nset confirm off\n{prelude}\n{body}")).unwrap();
    path
}

fn gdb_ready() -> bool {
    if !have("gdb") {
        eprintln!("SKIP: gdb is not installed (scripts/install-deps.sh installs it)");
        return false;
    }
    true
}

/// Builds `source` (in conformance/gdb) with `-g -O0 -static` (gcc's default, glibc), or says why not.
fn build_debuggee(dir: &Path, source: &str) -> Option<PathBuf> {
    let exe = dir.join(source.trim_end_matches(".c"));
    let o =
        Command::new("gcc").args(["-g", "-O0", "-static", "-o"]).arg(&exe).arg(gdb_dir().join(source)).output().ok()?;
    if !o.status.success() {
        eprintln!("SKIP: gcc -static failed: {}", String::from_utf8_lossy(&o.stderr));
        return None;
    }
    Some(exe)
}

/// What one script did natively and under `strata user --gdb`.
struct UserSessions {
    native: String,
    native_err: String,
    remote: String,
    remote_err: String,
    status: Option<i32>,
    strata_err: String,
}

impl UserSessions {
    /// Both outputs, for a failure message.
    fn both(&self) -> String {
        format!(
            "--- native:\n{}\n{}\n--- strata:\n{}\n{}\n--- strata stderr:\n{}",
            self.native, self.native_err, self.remote, self.remote_err, self.strata_err
        )
    }
}

/// Runs the gdb script `body` (in conformance/gdb) on `exe` natively (gdb starts the program
/// after `prelude`, its output to native.out) and against `strata user --gdb` (after `prelude`,
/// `target remote` and `continue`; the program's output to strata.out). `tier`: strata's
/// `--tier` (tier 0 when empty).
fn user_sessions(dir: &Path, exe: &Path, prelude: &str, body: &str, tier: &[&str]) -> UserSessions {
    let native_script = write_script(dir, "native.gdb", &format!("{prelude}run > native.out"), body, &[]);
    let (native, native_err) = gdb(exe, &native_script, dir);
    // strata: the program waits for gdb before its first instruction.
    let port = free_port();
    let remote_script =
        write_script(dir, "remote.gdb", &format!("{prelude}target remote 127.0.0.1:{port}\ncontinue"), body, &[]);
    let mut cmd = strata(&["user", "--gdb", &format!("tcp:127.0.0.1:{port}")]);
    cmd.args(tier).arg(exe).current_dir(dir).stdout(std::fs::File::create(dir.join("strata.out")).unwrap());
    if tier.contains(&"kvm") {
        // Every exception exit on stderr, so the test sees which stops were KVM's.
        cmd.env("STRATA_TRACE_KVM", "1");
    }
    let served = serve(cmd);
    let (remote, remote_err) = gdb(exe, &remote_script, dir);
    let (status, strata_err) = served.finish();
    UserSessions { native, native_err, remote, remote_err, status, strata_err }
}

/// The gdb script `body` on debuggee.c (stopped first at `square`), natively and against
/// `strata user --gdb` with `tier`: the same gdb output, holding each of `wants` (values from
/// the C source, so the session really happened), the same program output and exit status 2.
fn debuggee_session_matches_native(scratch: &str, body: &str, tier: &[&str], wants: &[&str]) -> Option<UserSessions> {
    if !gdb_ready() {
        return None;
    }
    let scratch = Scratch::new(scratch);
    let dir = scratch.path();
    let exe = build_debuggee(dir, "debuggee.c")?;
    let run = user_sessions(dir, &exe, "break square\n", body, tier);
    let (n, r) = (normalize(&run.native), normalize(&run.remote));
    assert_eq!(n, r, "gdb output differs\n{}", run.both());
    for want in wants {
        assert!(n.contains(want), "gdb output lacks {want:?}:\n{}", run.native);
    }
    assert!(!run.remote_err.contains("Error"), "gdb reported an error against strata:\n{}", run.remote_err);
    assert_eq!(run.status, Some(2), "strata's exit status (30 % 7), stderr:\n{}", run.strata_err);
    assert_eq!(
        std::fs::read_to_string(dir.join("native.out")).unwrap(),
        std::fs::read_to_string(dir.join("strata.out")).unwrap()
    );
    Some(run)
}

#[test]
fn gdb_session_on_a_c_program_matches_the_native_one() {
    let wants = [
        "Breakpoint 1, square (n=1) at",
        "#1  0x",
        "in sum_squares (limit=4) at",
        "r = 1",
        "Hardware watchpoint 2: counter",
        "i = 2",
        "Old value = 1",
        "New value = 2",
        "result = 30",
        "exited with code 02]",
    ];
    debuggee_session_matches_native("gdb-user", "user.gdb", &[], &wants);
}

/// `strata user --tier jit --gdb`: gdb's steps run on the JIT's own tier 0 and, once no
/// breakpoint is left, `continue` runs the program free on the JIT; the session's output, the
/// program's and its exit status are the native ones.
#[cfg(target_arch = "x86_64")]
#[test]
fn gdb_session_on_the_jit_matches_the_native_one() {
    let wants = ["Breakpoint 1, square (n=1) at", "in sum_squares (limit=4) at", "exited with code 02]"];
    debuggee_session_matches_native("gdb-user-jit", "user-jit.gdb", &["--tier", "jit"], &wants);
}

/// Stack addresses (0x7fff...) replaced by `0xSTACK`: the initial stack holds the environment
/// and the auxiliary vector, which differ between the two runs (gdb adds LINES and COLUMNS to
/// a program it starts; Linux's auxv has entries strata's has not, such as the vDSO's), so
/// every stack address is shifted by the same few dozen bytes.
fn mask_stack(out: &str) -> String {
    let mut s = String::new();
    let mut rest = out;
    while let Some(i) = rest.find("0x7fff") {
        s.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let len = tail.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(tail.len());
        s.push_str("0xSTACK");
        rest = &tail[len..];
    }
    s.push_str(rest);
    s
}

/// Signals under gdb, as ptrace shows them: each stops the program before it is acted on;
/// `continue` passes it on, `signal 0` suppresses it, `handle ... nostop noprint pass` lets it
/// through unseen; a caught SIGSEGV and abort()'s SIGABRT, which ends the program.
#[test]
fn gdb_sees_signals_as_natively() {
    if !gdb_ready() {
        return;
    }
    signals_session_matches_native("gdb-signals", &[]);
}

/// `signals.gdb` on signals.c natively and under `strata user --gdb` with `tier`.
fn signals_session_matches_native(scratch: &str, tier: &[&str]) {
    let scratch = Scratch::new(scratch);
    let dir = scratch.path();
    let Some(exe) = build_debuggee(dir, "signals.c") else { return };
    let run = user_sessions(dir, &exe, "", "signals.gdb", tier);
    let (n, r) = (mask_stack(&normalize(&run.native)), mask_stack(&normalize(&run.remote)));
    assert_eq!(n, r, "gdb output differs\n{}", run.both());
    for want in [
        "Program received signal SIGUSR1, User defined signal 1.",
        "$2 = 1",
        "Program received signal SIGSEGV, Segmentation fault.",
        "$3 = 2",
        "Program received signal SIGABRT, Aborted.",
        "Program terminated with signal SIGABRT, Aborted.",
    ] {
        assert!(n.contains(want), "gdb output lacks {want:?}:\n{}", run.native);
    }
    assert!(!run.remote_err.contains("Error"), "gdb reported an error against strata:\n{}", run.remote_err);
    assert_eq!(run.status, Some(128 + 6), "strata's exit status (SIGABRT), stderr:\n{}", run.strata_err);
    let out = std::fs::read_to_string(dir.join("strata.out")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("native.out")).unwrap(), out);
    assert_eq!(out, "usr1 handled 2 times\nsegv caught (1)\n");
}

/// Symbol addresses from the kernel's symbol table, read by nm (binutils).
fn symbols(exe: &Path, names: &[&str]) -> Vec<(String, u64)> {
    let out = Command::new("nm").arg(exe).output().expect("nm");
    let text = String::from_utf8_lossy(&out.stdout);
    names
        .iter()
        .map(|n| {
            let addr = text
                .lines()
                .find_map(|l| {
                    let mut w = l.split_whitespace();
                    let (a, _, name) = (w.next()?, w.next()?, w.next()?);
                    (name == *n).then(|| u64::from_str_radix(a, 16).ok()).flatten()
                })
                .unwrap_or_else(|| panic!("{n} not in the symbol table of {}", exe.display()));
            (n.to_string(), addr)
        })
        .collect()
}

/// Runs `body` (a script in conformance/gdb) against `strata run --gdb --wait-gdb` on the test
/// kernel `name`; gdb's stdout, strata's exit status, serial output and stderr.
fn kernel_session(name: &str, body: &str, subst_names: &[&str]) -> Option<(String, Option<i32>, String, String)> {
    if !gdb_ready() {
        return None;
    }
    let scratch = Scratch::new("gdb-kernel");
    let dir = scratch.path();
    let exe = match kernel_support::build(name, dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return None;
        }
    };
    let port = free_port();
    // The kernels are 32-bit ELF files; the stub always presents x86-64 registers (as QEMU's).
    let prelude = format!("set architecture i386:x86-64\ntarget remote 127.0.0.1:{port}");
    let script = write_script(dir, "kernel.gdb", &prelude, body, &symbols(&exe, subst_names));
    let serial = dir.join("serial");
    let mut cmd = strata(&["run", "--deterministic", "--wait-gdb", "--gdb", &format!("tcp:127.0.0.1:{port}")]);
    cmd.arg("--kernel").arg(&exe).arg("--serial").arg(format!("file:{}", serial.display())).stdout(Stdio::null());
    let served = serve(cmd);
    let (out, err) = gdb(&exe, &script, dir);
    let (status, strata_err) = served.finish();
    assert!(!err.contains("Error"), "gdb reported an error:\n{out}\n{err}");
    // gdb prints `monitor` output on stderr.
    let out = format!("{out}\n{err}");
    Some((out, status, std::fs::read_to_string(serial).unwrap_or_default(), strata_err))
}

/// The value gdb printed for `$N = VALUE` lines, in order.
fn printed(out: &str) -> Vec<String> {
    out.lines().filter_map(|l| l.strip_prefix('$')?.split_once(" = ").map(|(_, v)| v.to_string())).collect()
}

#[test]
fn gdb_on_the_paging_kernel_sees_registers_the_fault_and_a_watchpoint() {
    let Some((out, status, serial, err)) =
        kernel_session("paging64", "paging64.gdb", &["pml4", "pf_error", "long_mode", "pf_handler"])
    else {
        return;
    };
    let scratch = Scratch::new("gdb-kernel-ref");
    let exe = kernel_support::build("paging64", scratch.path()).unwrap();
    let syms = symbols(&exe, &["pml4"]);
    let show = || format!("gdb:\n{out}\nstrata stderr:\n{err}\nserial:\n{serial}");
    assert!(out.contains("Breakpoint 1, 0x") && out.contains(" in long_mode ()"), "{}", show());
    assert!(out.contains(" in pf_handler ()"), "{}", show());
    let values = printed(&out);
    // CR3 = the PML4 the kernel loaded; CR0 = PE|ET|WP|PG as the kernel sets them (ET is fixed
    // to 1, SDM Vol. 3, 2.5); EFER = LME|LMA|NXE (SDM Vol. 3, 2.2.1); CR2 = the address of the
    // not-present read (TEST_VA + 0x1000); the error code of a not-present read is 0 (SDM Vol. 3,
    // 4.7), popped into RAX by the handler's first instruction.
    let want = [format!("{:#x}", syms[0].1), "0x80010011".into(), "0xd00".into(), "0x40001000".into(), "0x0".into()];
    assert_eq!(values.get(..5), Some(&want[..]), "{}", show());
    assert!(out.contains(":\t0x0000000000000000"), "error code on the stack: {}", show());
    // gdb's `monitor`: physical memory (the Multiboot header magic and flags, common.inc) and
    // the page walk of the not-present test page.
    assert!(out.contains("0x100000: 0x1badb002 0x00000002"), "{}", show());
    assert!(out.contains("pte [1]") && out.contains("not present"), "{}", show());
    // The store to a read-only page: error code P|W = 3 written by the handler (SDM Vol. 3, 4.7).
    assert!(out.contains("Old value = 0\nNew value = 3"), "{}", show());
    assert!(out.contains("exited with code 01]"), "{}", show());
    assert_eq!(status, Some(1), "{}", show());
    assert!(serial.contains("PASS invlpg_uses_the_new_pte") && !serial.contains("FAIL"), "{}", show());
}

#[test]
fn gdb_watchpoint_sees_the_timer_interrupt_handler() {
    let Some((out, status, serial, err)) = kernel_session("interrupts", "interrupts.gdb", &["timer_ticks"]) else {
        return;
    };
    let show = || format!("gdb:\n{out}\nstrata stderr:\n{err}\nserial:\n{serial}");
    // The first two timer interrupts each increment the counter in on_timer.
    assert!(out.contains("Old value = 0\nNew value = 1"), "{}", show());
    assert!(out.contains("Old value = 1\nNew value = 2"), "{}", show());
    assert!(out.contains(" in on_timer ()"), "{}", show());
    // Then the main loop's `cmpl $10, timer_ticks` reads it.
    assert!(out.contains("Hardware read watchpoint 2: "), "{}", show());
    assert!(out.contains("\n\nValue = 2\n"), "{}", show());
    assert!(out.contains("exited with code 01]"), "{}", show());
    assert_eq!(status, Some(1), "{}", show());
}

/// A packet with its checksum: `$data#cs`.
fn packet(data: &str) -> Vec<u8> {
    let sum = data.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${data}#{sum:02x}").into_bytes()
}

/// Reads until a full reply packet (`$...#xx`) arrives; returns its data.
fn reply(s: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    loop {
        s.read_exact(&mut b).expect("a reply");
        buf.push(b[0]);
        if buf.len() >= 3 && buf[buf.len() - 3] == b'#' {
            if let Some(start) = buf.iter().position(|&c| c == b'$') {
                return String::from_utf8_lossy(&buf[start + 1..buf.len() - 3]).into_owned();
            }
        }
    }
}

#[test]
fn malformed_packets_get_error_replies_and_the_program_runs_on() {
    let scratch = Scratch::new("gdb-bad");
    let dir = scratch.path();
    let Some(exe) = build_debuggee(dir, "debuggee.c") else { return };
    let port = free_port();
    let mut cmd = strata(&["user", "--gdb", &format!("tcp:127.0.0.1:{port}")]);
    cmd.arg(&exe).current_dir(dir).stdout(Stdio::null());
    let served = serve(cmd);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // Memory reads with a malformed or unmapped address, a register write that is too short,
    // a breakpoint with a malformed address, a command that does not exist: error replies
    // (Exx) or "unsupported" (empty), and the stub still answers afterwards.
    for bad in ["mzz,4", "m0,4", "G00", "Z0,zz,1", "vCont;q", "\x01\x02"] {
        s.write_all(&packet(bad)).unwrap();
        let r = reply(&mut s);
        assert!(r.starts_with('E') || r.is_empty(), "{bad}: reply {r:?}");
    }
    s.write_all(&packet("?")).unwrap();
    let r = reply(&mut s);
    assert!(r.starts_with('S') || r.starts_with('T'), "stop reason: {r:?}");
    // A bad checksum is refused with a NAK ('-'), and the session goes on.
    s.write_all(b"$g#00").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(b[0], b'-');
    s.write_all(&packet("?")).unwrap();
    let r = reply(&mut s);
    assert!(r.starts_with('S') || r.starts_with('T'), "stop reason after the NAK: {r:?}");
    drop(s);
    // gdb went away: the program runs to its end, with its own exit status.
    let (status, err) = served.finish();
    assert_eq!(status, Some(2), "{err}");
}

#[test]
fn a_busy_port_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let endpoint = format!("tcp:127.0.0.1:{port}");
    for args in
        [vec!["user", "--gdb", &endpoint, "/bin/true"], vec!["run", "--kernel", "builtin:demo", "--gdb", &endpoint]]
    {
        let out = strata(&args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("cannot listen"), "{args:?}: {err}");
    }
}

/// A trace line without what differs between two runs of one program: register values
/// (`; ...`: AT_RANDOM's bytes, the process id) and system call results.
fn trace_shape(line: &str) -> &str {
    let line = line.split(" ; ").next().unwrap_or(line).trim_end();
    match line.strip_prefix("-- syscall ") {
        Some(_) => line.rsplit_once(" = ").map_or(line, |(call, _)| call),
        None => line,
    }
}

/// `strata user --gdb --trace` (issue 11): under gdb's breakpoints, steps, a watchpoint and
/// free runs, the trace lists the same instructions and events as a run traced without gdb.
#[test]
fn a_trace_under_gdb_lists_what_a_run_without_gdb_does() {
    if !gdb_ready() {
        return;
    }
    let scratch = Scratch::new("gdb-trace");
    let dir = scratch.path();
    let Some(exe) = build_debuggee(dir, "debuggee.c") else { return };
    let plain = dir.join("plain.trace");
    // Both with stdout on /dev/null: glibc's stdio asks fstat what it is.
    let plain_status = strata(&["user", "--trace-events", "--trace", plain.to_str().unwrap()])
        .arg(&exe)
        .stdout(Stdio::null())
        .status();
    assert_eq!(plain_status.unwrap().code(), Some(2));
    let port = free_port();
    let script = dir.join("trace.gdb");
    std::fs::write(
        &script,
        format!(
            "set pagination off\nset confirm off\nbreak square\ntarget remote 127.0.0.1:{port}\ncontinue\ncontinue\n\
             next\nstepi\nwatch counter\ncontinue\ndelete\ncontinue\n"
        ),
    )
    .unwrap();
    let traced = dir.join("gdb.trace");
    let mut cmd = strata(&[
        "user",
        "--gdb",
        &format!("tcp:127.0.0.1:{port}"),
        "--trace-events",
        "--trace",
        traced.to_str().unwrap(),
    ]);
    cmd.arg(&exe).current_dir(dir).stdout(Stdio::null());
    let served = serve(cmd);
    let (gdb_out, gdb_err) = gdb(&exe, &script, dir);
    let (status, strata_err) = served.finish();
    assert_eq!(status, Some(2), "{strata_err}\n{gdb_out}\n{gdb_err}");
    assert!(gdb_out.contains("Hardware watchpoint 2: counter") && gdb_out.contains("exited with code 02"), "{gdb_out}");
    let (want, got) = (std::fs::read_to_string(plain).unwrap(), std::fs::read_to_string(traced).unwrap());
    let (want, got): (Vec<&str>, Vec<&str>) =
        (want.lines().map(trace_shape).collect(), got.lines().map(trace_shape).collect());
    assert!(want.len() > 10_000 && want.iter().any(|l| l.starts_with("-- syscall write(")));
    if let Some(i) = want.iter().zip(&got).position(|(a, b)| a != b) {
        panic!("the traces differ at line {}:\n{}\n{}", i + 1, want[i], got[i]);
    }
    assert_eq!(want.len(), got.len());
}

// --- Issue 11: gdb under --tier kvm (KVM_SET_GUEST_DEBUG for steps and hardware breakpoints) ---

/// `kvm-steps.gdb` on `hello.S` under `strata run --tier TIER --gdb --wait-gdb`: gdb's stdout,
/// strata's exit status and its stderr after it listened.
fn hello_session(tier: &str, exe: &Path, dir: &Path) -> (String, Option<i32>, String) {
    hello_script_session("kvm-steps.gdb", tier, exe, dir)
}

/// The gdb script `body` on `hello.S` under `strata run --tier TIER --gdb --wait-gdb`.
fn hello_script_session(body: &str, tier: &str, exe: &Path, dir: &Path) -> (String, Option<i32>, String) {
    let port = free_port();
    let prelude = format!("set architecture i386:x86-64\ntarget remote 127.0.0.1:{port}");
    let subst = symbols(exe, &["puts", "putc", "msg"]);
    let script = write_script(dir, &format!("{tier}.gdb"), &prelude, body, &subst);
    let mut cmd = strata(&["run", "--tier", tier, "--wait-gdb", "--gdb", &format!("tcp:127.0.0.1:{port}")]);
    // Under KVM: every exit on stderr, so the test sees which stops were KVM's debug exits.
    cmd.env("STRATA_TRACE_KVM", "1");
    cmd.arg("--kernel").arg(exe).arg("--serial").arg(format!("file:{}", dir.join(format!("{tier}.serial")).display()));
    cmd.stdout(Stdio::null());
    let served = serve(cmd);
    let (out, err) = gdb(exe, &script, dir);
    let (status, strata_err) = served.finish();
    assert!(!err.contains("Error"), "gdb reported an error under --tier {tier}:\n{out}\n{err}\n{strata_err}");
    (out.replace(&format!(":{port}"), ":PORT"), status, strata_err)
}

/// Hardware breakpoints and `stepi` under `--tier kvm` (KVM_SET_GUEST_DEBUG where this host's
/// KVM does them, tier 0 where not): the same stops and registers as under `--tier interp`,
/// and the first stop at `puts` as nm gives it, EAX the Multiboot magic with `lodsb`'s byte
/// ('h', the message's first) in AL, ESI one past the message's start.
#[test]
fn gdb_under_kvm_stops_where_tier0_does() {
    if !gdb_ready() {
        return;
    }
    if std::env::var_os("STRATA_RUNNER").is_some() {
        eprintln!("SKIP: strata runs through STRATA_RUNNER (not on this host's KVM)");
        return;
    }
    if let Err(e) = tiers::kvm_available() {
        eprintln!("SKIP: {e}; gdb under --tier kvm needs it");
        return;
    }
    let scratch = Scratch::new("gdb-kvm");
    let dir = scratch.path();
    let exe = match kernel_support::build("hello", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let syms = symbols(&exe, &["puts", "putc", "msg"]);
    let (reference, ref_status, _) = hello_session("interp", &exe, dir);
    let (out, status, err) = hello_session("kvm", &exe, dir);
    let show = || format!("--tier kvm:\n{out}\nstrata stderr:\n{err}\n--tier interp:\n{reference}");
    let (puts, putc, msg) = (syms[0].1, syms[1].1, syms[2].1);
    // push %eax (1 byte), lodsb (1), test %al,%al (2), jz (2): the steps through puts.
    let want = [
        format!("{puts:#x}"),
        "0x2badb002".into(),
        format!("{:#x}", puts + 1),
        format!("{:#x}", puts + 2),
        "0x2badb068".into(),
        format!("{:#x}", msg + 1),
        format!("{:#x}", puts + 4),
        format!("{:#x}", puts + 6),
        format!("{putc:#x}"),
    ];
    assert_eq!(printed(&out).get(..want.len()), Some(&want[..]), "{}", show());
    assert_eq!(out, reference, "{}", show());
    assert!(out.contains("exited with code 01]"), "{}", show());
    assert_eq!((status, ref_status), (Some(1), Some(1)), "{}", show());
    // Where the probe found hardware breakpoints, KVM itself stopped there (its debug exits,
    // STRATA_TRACE_KVM); elsewhere the same stops came from tier 0.
    let found = tiers::kvm_guest_debug_support().unwrap_or_default();
    if found.split(" (not").next().unwrap_or("").contains("hardware breakpoints") {
        assert!(err.contains(&format!("strata-kvm: Debug rip {puts:#x}")), "{}", show());
        assert!(err.contains(&format!("strata-kvm: Debug rip {putc:#x}")), "{}", show());
    }
    if found.split(" (not").next().unwrap_or("").contains("single-step") {
        assert!(err.contains(&format!("strata-kvm: Debug rip {:#x}", puts + 6)), "{}", show());
    }
}

/// Skips (with a message) where gdb under `--tier kvm` cannot be tried here.
fn kvm_gdb_ready() -> bool {
    if !gdb_ready() {
        return false;
    }
    if std::env::var_os("STRATA_RUNNER").is_some() {
        eprintln!("SKIP: strata runs through STRATA_RUNNER (not on this host's KVM)");
        return false;
    }
    if let Err(e) = tiers::kvm_available() {
        eprintln!("SKIP: {e}; gdb under --tier kvm needs it");
        return false;
    }
    true
}

/// `break` under `--tier kvm` (`kvm-break.gdb` on `hello.S`): the stops at `puts` and `putc`
/// and the registers there are those of `--tier interp` and nm's addresses, and each was a
/// KVM debug exit (STRATA_TRACE_KVM) with no tier-0 message: an INT3 where the host's KVM
/// stops at one, a free debug register where not. Then a read watchpoint: where the host's
/// KVM does data breakpoints it runs there, elsewhere on tier 0 with the one-line message; gdb
/// sees the same stop either way.
#[test]
fn gdb_break_under_kvm_is_a_kvm_debug_exit() {
    if !kvm_gdb_ready() {
        return;
    }
    let scratch = Scratch::new("gdb-kvm-break");
    let dir = scratch.path();
    let exe = match kernel_support::build("hello", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let syms = symbols(&exe, &["puts", "putc", "msg"]);
    let (reference, ref_status, _) = hello_script_session("kvm-break.gdb", "interp", &exe, dir);
    let (out, status, err) = hello_script_session("kvm-break.gdb", "kvm", &exe, dir);
    let show = || format!("--tier kvm:\n{out}\nstrata stderr:\n{err}\n--tier interp:\n{reference}");
    let (puts, putc, msg) = (syms[0].1, syms[1].1, syms[2].1);
    // At puts: EAX the Multiboot magic (hello.S compares it), ESI the message; at putc the
    // first character's call; the read watch stops after the second `lodsb` (ESI past it).
    let want = [format!("{puts:#x}"), "0x2badb002".into(), format!("{msg:#x}"), format!("{putc:#x}")];
    assert_eq!(printed(&out).get(..want.len()), Some(&want[..]), "{}", show());
    assert_eq!(printed(&out).get(6), Some(&format!("{:#x}", msg + 2)), "{}", show());
    assert!(out.contains("Hardware read watchpoint 3: "), "{}", show());
    assert_eq!(out, reference, "{}", show());
    assert!(out.contains("exited with code 01]"), "{}", show());
    assert_eq!((status, ref_status), (Some(1), Some(1)), "{}", show());
    assert!(err.contains(&format!("strata-kvm: Debug rip {puts:#x}")), "{}", show());
    assert!(err.contains(&format!("strata-kvm: Debug rip {putc:#x}")), "{}", show());
    // The only tier-0 message may be the watchpoint's.
    let tier0 = err.lines().filter(|l| l.contains("steps on tier 0")).collect::<Vec<_>>();
    assert!(tier0.iter().all(|l| l.contains("(watchpoints)")), "a tier-0 message for breakpoints: {}", show());
    let found = tiers::kvm_guest_debug_support().unwrap_or_default();
    if found.split(" (not").nth(1).is_some_and(|not| not.contains("watchpoints")) {
        let line = "strata: gdb: this host's KVM does not stop at data breakpoints (watchpoints): this continue \
                    steps on tier 0 while they are set";
        assert!(err.contains(line), "{}", show());
    }
}

/// `strata user --tier kvm --gdb` (issue 11): `user.gdb` (breakpoints, `next`/`step`/`finish`/
/// `stepi`, locals, backtraces, a watchpoint, the exit) gives the native session's output, the
/// program's output and exit status, with the program on KVM: gdb's breakpoints are INT3s
/// whose #BP the engine's exception stub catches (STRATA_TRACE_KVM shows the exit with RIP
/// past the INT3 at `square`'s breakpoint, which gdb's own output names), and steps are
/// KVM's (their #DB exits). Where the host's KVM has no data breakpoints, the watchpoint's
/// `continue` runs on tier 0 and says so in one line.
/// Signals under gdb with the program on KVM (`strata user --tier kvm --gdb`): each stops it
/// before it is acted on, as natively (the exits of faults and system calls reach the same
/// kernel as on tier 0).
#[cfg(target_arch = "x86_64")]
#[test]
fn gdb_sees_signals_on_kvm_as_natively() {
    if !kvm_gdb_ready() {
        return;
    }
    signals_session_matches_native("gdb-signals-kvm", &["--tier", "kvm"]);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn gdb_session_on_kvm_matches_the_native_one() {
    if !kvm_gdb_ready() {
        return;
    }
    let wants = [
        "Breakpoint 1, square (n=1) at",
        "in sum_squares (limit=4) at",
        "r = 1",
        "Hardware watchpoint 2: counter",
        "Old value = 1",
        "New value = 2",
        "result = 30",
        "exited with code 02]",
    ];
    let Some(run) = debuggee_session_matches_native("gdb-user-kvm", "user.gdb", &["--tier", "kvm"], &wants) else {
        return;
    };
    let bp = run
        .remote
        .lines()
        .find_map(|l| l.strip_prefix("Breakpoint 1 at 0x")?.split(':').next().map(|a| u64::from_str_radix(a, 16)))
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("gdb did not say where breakpoint 1 is:\n{}", run.both()));
    let int3_exit = format!("kvm-user: vector 3 code 0x0 frame [{:x},", bp + 1);
    assert!(run.strata_err.contains(&int3_exit), "{int3_exit}\n{}", run.both());
    assert!(run.strata_err.matches("kvm-user: vector 1 code 0x0 frame").count() > 10, "{}", run.both());
    if run.strata_err.contains("steps on tier 0") {
        let tier0 = run.strata_err.lines().filter(|l| l.contains("steps on tier 0")).collect::<Vec<_>>();
        assert_eq!(tier0.len(), 1, "{}", run.both());
        assert!(tier0[0].contains("does not stop at data breakpoints (watchpoints)"), "{}", run.both());
    }
}
// --- end issue 11 ---
