//! The monitor (`strata run --monitor unix:PATH --stopped`) on the paging test kernel
//! (`conformance/kernels/paging64.S`), against what the kernel and its references say:
//! - before the first instruction the CPU is in 32-bit protected mode without paging (the
//!   Multiboot specification's machine state); stepped into long mode, `info registers` shows
//!   CR3 = the `pml4` symbol (nm), CR0 and EFER as the kernel sets them;
//! - `info tlb` walks the kernel's tables: its 2 MiB identity map, its 4 KiB test page at
//!   0x40000000 (frame 0x800000) and the not-present page after it;
//! - `x/5i` at the `long_mode` label gives objdump's (binutils) mnemonics; `xp` reads the
//!   Multiboot header magic;
//! - the JSON mode round-trips; malformed commands get error replies; `savevm` writes a
//!   snapshot that resumes to the kernel's end; after `cont` the client may leave and the guest
//!   runs to its end.
//!
//! The serial console's Ctrl-A keys (`strata run` with stdin a pipe) on the echo kernel
//! (`conformance/kernels/echo.S`), on tier 0 and on the JIT: bytes reach the guest (it echoes
//! them; Ctrl-A Ctrl-A as one 0x01), Ctrl-A c brings the prompt with the guest stopped, `info
//! blocks` shows the kernel's polling loop as objdump disassembles it from the `poll` label (nm),
//! Ctrl-A c and `cont` return to the guest, `q` ends it, Ctrl-A x quits.

mod kernel_support;
mod user_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};
use user_support::{strata_bin, Scratch};

struct Session(UnixStream);

impl Session {
    /// Reads until the prompt (text mode) or a newline (JSON mode).
    fn read_reply(&mut self, json: bool) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&out);
            if (json && text.ends_with('\n')) || (!json && text.ends_with("(strata) ")) {
                return text.trim_end_matches("(strata) ").to_string();
            }
            let n = self.0.read(&mut b).expect("monitor reply");
            assert!(n > 0, "monitor closed the connection after {text:?}");
            out.extend_from_slice(&b[..n]);
        }
    }
    fn cmd(&mut self, c: &str) -> String {
        self.0.write_all(format!("{c}\n").as_bytes()).unwrap();
        self.read_reply(false)
    }
    fn json(&mut self, request: &str) -> serde_json::Value {
        self.0.write_all(format!("{request}\n").as_bytes()).unwrap();
        serde_json::from_str(&self.read_reply(true)).expect("a JSON reply")
    }
}

fn symbol(exe: &std::path::Path, name: &str) -> u64 {
    let out = Command::new("nm").arg(exe).output().expect("nm");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 3 && w[2] == name).then(|| u64::from_str_radix(w[0], 16).unwrap())
        })
        .unwrap_or_else(|| panic!("{name} not in nm output"))
}

#[test]
fn monitor_on_the_paging_kernel() {
    let scratch = Scratch::new("monitor");
    let dir = scratch.path();
    let exe = match kernel_support::build("paging64", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let sock = dir.join("mon.sock");
    let serial = dir.join("serial");
    let mut child = Command::new(strata_bin())
        .args(["run", "--deterministic", "--stopped", "--monitor"])
        .arg(format!("unix:{}", sock.display()))
        .arg("--kernel")
        .arg(&exe)
        .arg("--serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("monitor socket: {e}"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut s = Session(stream);
    assert!(s.read_reply(false).contains("Strata monitor"));

    let cpu = s.cmd("info cpu");
    assert!(cpu.contains("mode: protected mode, 32-bit code") && cpu.contains("paging: off"), "{cpu}");
    assert!(cpu.contains("retired: 0\n"), "stopped before the first instruction: {cpu}");
    let mut steps = 0;
    while !s.cmd("info cpu").contains("mode: long mode") {
        s.cmd("step 100");
        steps += 1;
        assert!(steps < 200, "never reached long mode");
    }
    let regs = s.cmd("info registers");
    assert!(regs.contains(&format!("cr3={:x} ", symbol(&exe, "pml4"))), "{regs}");
    assert!(regs.contains("cr0=80010011 ") && regs.contains("efer=d00"), "{regs}");

    let tlb = s.cmd("info tlb 0x100000");
    assert!(tlb.contains(" PS") && tlb.contains("physical 0x100000"), "{tlb}");
    let tlb = s.cmd("info tlb 0x40000000");
    assert!(tlb.contains("pte [0]") && tlb.contains("physical 0x800000"), "{tlb}");
    let tlb = s.cmd("info tlb 0x40001000");
    assert!(tlb.contains("not present"), "{tlb}");

    let long_mode = symbol(&exe, "long_mode");
    let ours: Vec<String> = s
        .cmd(&format!("x/5i {long_mode:#x}"))
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        .collect();
    let objdump = Command::new("objdump")
        .args(["-d", "-m", "i386:x86-64", "-M", "intel", "--insn-width=16"])
        .arg(format!("--start-address={long_mode:#x}"))
        .arg(&exe)
        .output();
    if let Ok(o) = objdump {
        let theirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split('\t').nth(2).and_then(|t| t.split_whitespace().next()).map(str::to_string))
            .take(5)
            .collect();
        assert_eq!(ours, theirs);
    }
    // The Multiboot header (magic 0x1BADB002, flags 2) at the start of the image (common.inc).
    assert!(s.cmd("xp/2xw 0x100000").contains("0x1badb002 0x00000002"));

    assert!(s.cmd("bogus").starts_with("error: unknown command"));
    assert!(s.cmd("x/zz 0").starts_with("error:"));
    assert!(s.cmd("info tlb nowhere").starts_with("error:"));
    let snap = dir.join("snap");
    assert!(s.cmd(&format!("savevm {}", snap.display())).contains("saved"));

    // JSON: a command and its text round-trip; errors are {"ok": false}.
    s.0.write_all(b"json\n").unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&s.read_reply(true)).unwrap()["ok"], true);
    let v = s.json(r#"{"command": "info cpu"}"#);
    assert_eq!(v["ok"], true);
    assert!(v["output"].as_str().unwrap().contains("mode: long mode"), "{v}");
    assert_eq!(s.json("{not json")["ok"], false);
    assert_eq!(s.json(r#"{"command": "frobnicate"}"#)["ok"], false);

    // cont, then leave: the guest runs on to its end.
    s.0.write_all(br#"{"command": "cont"}"#).unwrap();
    s.0.write_all(b"\n").unwrap();
    drop(s);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let out = std::fs::read_to_string(&serial).unwrap();
    assert_eq!(status, Some(1), "{err}\n{out}");
    assert!(out.contains("PASS invlpg_uses_the_new_pte") && !out.contains("FAIL"), "{out}");

    // The snapshot taken in long mode resumes to the same end.
    let serial2 = dir.join("serial2");
    let resumed = Command::new(strata_bin())
        .args(["run", "--deterministic", "--restore"])
        .arg(&snap)
        .arg("--serial")
        .arg(format!("file:{}", serial2.display()))
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(1), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(std::fs::read_to_string(&serial2).unwrap().contains("PASS invlpg_uses_the_new_pte"));
}

/// What the child wrote to stdout so far, read by a thread.
struct Output {
    rx: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Output {
    fn new(mut r: impl Read + Send + 'static) -> Output {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = r.read(&mut b) {
                if n == 0 || tx.send(b[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Output { rx, seen: Vec::new() }
    }
    /// Waits until the output (after what earlier calls consumed) contains `text`; returns
    /// everything up to and including it.
    fn until(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = self.seen.windows(text.len()).position(|w| w == text.as_bytes()) {
                let got: Vec<u8> = self.seen.drain(..i + text.len()).collect();
                return String::from_utf8_lossy(&got).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.seen.extend(b),
                Err(_) => panic!("no {text:?} in {:?}", String::from_utf8_lossy(&self.seen)),
            }
        }
    }
}

fn objdump_mnemonics(exe: &std::path::Path, start: u64, bits: &str, n: usize) -> Option<Vec<String>> {
    let o = Command::new("objdump")
        .args(["-d", "-m", bits, "-M", "intel", "--insn-width=16"])
        .arg(format!("--start-address={start:#x}"))
        .arg(exe)
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split('\t').nth(2).and_then(|t| t.split_whitespace().next()).map(str::to_string))
            .take(n)
            .collect(),
    )
}

fn console_session(tier: &str) {
    let scratch = Scratch::new(&format!("console-{tier}"));
    let dir = scratch.path();
    let exe = match kernel_support::build("echo", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let spawn = || {
        Command::new(strata_bin())
            .args(["run", "--tier", tier, "--kernel"])
            .arg(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let mut input = child.stdin.take().unwrap();
    let mut out = Output::new(child.stdout.take().unwrap());
    let mut send = |b: &[u8]| {
        input.write_all(b).unwrap();
        input.flush().unwrap();
    };
    out.until("echo ready\n");
    send(b"ab\x01\x01");
    assert_eq!(out.until("ab\x01"), "ab\x01", "Ctrl-A Ctrl-A reaches the guest as one 0x01");

    send(b"\x01c");
    out.until("(strata) ");
    // The guest is stopped: what it is sent now waits (and is not echoed) until it runs again.
    send(b"info registers\n");
    let regs = out.until("(strata) ");
    assert!(regs.contains("rip=") && regs.contains("cr0=11 "), "{regs}");

    let poll = symbol(&exe, "poll");
    let blocks = out_of(&mut send, &mut out, &format!("info blocks {poll:#x}"));
    let header = format!("block {poll:#x}: ");
    let first = blocks.lines().find(|l| l.starts_with(&header)).unwrap_or_else(|| panic!("{blocks}"));
    let translated = !first.ends_with("not translated");
    assert_eq!(translated, tier == "jit", "{first}");
    let executions: u64 = first.split(", ").nth(1).and_then(|e| e.split(' ').next()).unwrap().parse().unwrap();
    assert!(executions > 0, "{first}");
    let count: usize = first[header.len()..].split(' ').next().unwrap().parse().unwrap();
    let ours: Vec<String> = blocks
        .lines()
        .skip_while(|l| !l.starts_with(&header))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ours.len(), count, "{blocks}");
    if let Some(theirs) = objdump_mnemonics(&exe, poll, "i386", count) {
        assert_eq!(ours, theirs, "{blocks}");
    }
    // The default address is RIP, which the stopped guest has inside its polling loop.
    assert!(out_of(&mut send, &mut out, "info blocks").starts_with("block 0x"));

    // Ctrl-A c: back to the guest, which echoes again.
    send(b"\x01cz");
    assert!(out.until("z").ends_with('z'));
    // `cont` also returns; then `q` ends the guest (exit status 1: code 0).
    send(b"\x01c");
    out.until("(strata) ");
    send(b"cont\nyq");
    out.until("yq");
    assert_eq!(child.wait().unwrap().code(), Some(1));

    // Ctrl-A x quits, with status 0.
    let mut child = spawn();
    let mut input = child.stdin.take().unwrap();
    let mut out = Output::new(child.stdout.take().unwrap());
    out.until("echo ready\n");
    input.write_all(b"\x01x").unwrap();
    input.flush().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Sends a command line at the console's prompt; its reply without the next prompt.
fn out_of(send: &mut impl FnMut(&[u8]), out: &mut Output, command: &str) -> String {
    send(format!("{command}\n").as_bytes());
    out.until("(strata) ").trim_end_matches("(strata) ").to_string()
}

#[test]
fn console_ctrl_a_on_tier0() {
    console_session("interp");
}

#[test]
fn console_ctrl_a_on_the_jit() {
    console_session("jit");
}

/// Whether `stty -a` output shows canonical mode and echo on (a terminal as a shell leaves it).
fn cooked(stty: &str) -> bool {
    let words: Vec<&str> = stty.split(|c: char| c.is_whitespace() || c == ';').collect();
    words.contains(&"icanon") && words.contains(&"echo") && words.contains(&"isig")
}

/// Runs `shell` (sh -c) on a pseudo-terminal made by `script` (util-linux), with our pipe
/// forwarded to it as keystrokes; its input end and output.
fn on_a_terminal(shell: &str) -> Option<(std::process::Child, std::process::ChildStdin, Output)> {
    if !user_support::have("script") || !user_support::have("stty") {
        eprintln!("SKIP: script or stty is missing (util-linux, coreutils)");
        return None;
    }
    let mut child = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let input = child.stdin.take()?;
    let out = Output::new(child.stdout.take()?);
    Some((child, input, out))
}

/// The raw console (issue 11): on a terminal, Ctrl-A x acts without Enter (a terminal in
/// canonical mode would hold the keys until Enter, and the run would not end), and the
/// terminal is as before afterwards, as `stty -a` (coreutils) reads it, both after Ctrl-A x
/// and after a SIGTERM from outside.
#[test]
fn console_on_a_terminal_is_raw_and_restored() {
    let scratch = Scratch::new("console-tty");
    let dir = scratch.path();
    let exe = match kernel_support::build("echo", dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP: gcc cannot build 32-bit test kernels here ({e})");
            return;
        }
    };
    let run = format!("{} run --kernel {}", strata_bin().display(), exe.display());

    let Some((mut child, mut input, mut out)) = on_a_terminal(&format!("stty -a; {run}; echo STATUS=$?; stty -a"))
    else {
        return;
    };
    let before = out.until("echo ready");
    assert!(cooked(&before), "the terminal starts cooked: {before}");
    input.write_all(b"\x01x").unwrap();
    input.flush().unwrap();
    let status = out.until("STATUS=0");
    assert!(status.contains("STATUS=0"), "{status}");
    let after = out.until("extproc"); // the last flag stty -a lists
    assert!(cooked(&after), "the terminal after Ctrl-A x: {after}");
    drop(input);
    let _ = child.wait();

    // SIGTERM: the inner shell prints its pid and becomes strata.
    let shell = format!("sh -c 'echo PID=$$; exec {run}'; stty -a");
    let Some((mut child, input, mut out)) = on_a_terminal(&shell) else { return };
    let head = out.until("echo ready");
    let pid: u32 = head
        .split("PID=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {head}"));
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let after = out.until("extproc");
    assert!(cooked(&after), "the terminal after SIGTERM: {after}");
    drop(input);
    let _ = child.wait();
}
