//! `strata run`: boot a kernel on the virtual PC.
//!
//! A bzImage boots through the Linux 64-bit boot protocol, a Multiboot kernel through Multiboot
//! v1, a boot-sector image (0x55AA at offset 510) in real mode at 0000:7C00. The serial port is
//! the terminal (or a file); `--timeline` prints where the time went.
//! Exit status: the guest's isa-debug-exit status if it wrote port 0xf4, 0 for a power-off
//! (ACPI S5, or HLT with interrupts disabled) or reset, 2 after a triple fault (the CPU state is printed),
//! 3 when `--max-instructions` ran out, 1 for a bad command line or image.
//!
//! Snapshots: `--save PATH --save-at N` (once N instructions in all have retired, at the next
//! point where the machine loop polls the devices; tier 0 only, since KVM counts no instructions)
//! or `--save-at serial:TEXT` (once a serial line containing TEXT has been printed; any engine)
//! saves the machine, prints one line on stderr and exits 0. `--restore PATH` resumes a saved
//! machine instead of booting a kernel: `--kernel`, `--initrd`, `--append` and `--mem` are then
//! errors (the RAM size and everything else come from the file); `--deterministic` and `--tier`
//! are per run (give `--deterministic` again to resume on the virtual clock, which then starts at
//! the saved time, so the run continues exactly as the saved one would have).

use clap::Args;
use emu::engine::EngineKind;
use emu::machine::{Machine, MachineConfig, RunEnd, Watch};
use std::io::Read;
use std::process::ExitCode;
use std::time::Instant;

/// The JIT's options, shared by `strata run` and `strata user`.
#[derive(Args, Debug)]
pub struct JitArgs {
    /// JIT: compile a block once tier 0 has entered it this many times.
    #[arg(long, default_value_t = tiers::JitOptions::DEFAULT_THRESHOLD, value_parser = clap::value_parser!(u64).range(1..))]
    pub jit_threshold: u64,
    /// JIT: call the tier-0 handler for every instruction (no inline templates; step 1).
    #[arg(long)]
    pub jit_fallback_only: bool,
    /// JIT: code cache size in MiB (emptied whole when full).
    #[arg(long, default_value_t = (tiers::JitOptions::DEFAULT_CODE_BYTES >> 20) as u64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub jit_code_mib: u64,
}

impl JitArgs {
    /// The options as the JIT takes them.
    pub fn options(&self) -> tiers::JitOptions {
        tiers::JitOptions {
            threshold: self.jit_threshold,
            code_bytes: (self.jit_code_mib as usize) << 20,
            inline: !self.jit_fallback_only,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Kernel: a bzImage, or a Multiboot (v1) kernel (required unless --restore is given).
    #[arg(long)]
    kernel: Option<String>,
    /// Initial ramdisk (cpio archive, optionally compressed) for a bzImage; for a Multiboot
    /// kernel, modules: "FILE[ ARGS][,FILE[ ARGS]...]" (QEMU's -initrd syntax).
    #[arg(long)]
    initrd: Option<String>,
    /// Kernel command line [default: console=ttyS0; none for Multiboot, whose command line
    /// starts with the kernel's path, as QEMU gives it].
    #[arg(long, allow_hyphen_values = true)]
    append: Option<String>,
    /// Guest RAM, e.g. 256M or 1G (at most 3G) [default: 256M].
    #[arg(long)]
    mem: Option<String>,
    /// Engine: interp (tier 0), kvm (Linux KVM; an error where it is missing), jit (tier 1,
    /// x86-64 hosts), or auto (KVM where it has hardware virtualization, else the JIT on
    /// x86-64 hosts, else interp).
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    tier: EngineKind,
    #[command(flatten)]
    jit: JitArgs,
    /// Switch engine when this happens (a run started on interp alternates with KVM, one
    /// started on kvm or jit alternates with interp); repeat for more switches, each one armed
    /// after the previous: serial:TEXT (a serial line contains TEXT), instr:N (N more
    /// instructions on an engine that counts them), ms:N (N ms of host time).
    #[arg(long = "switch-at", value_name = "WHEN")]
    switch_at: Vec<String>,
    /// Serial port: "stdio" or "file:PATH".
    #[arg(long, default_value = "stdio")]
    serial: String,
    /// The clock advances with retired instructions: two runs are identical to the instruction.
    #[arg(long)]
    deterministic: bool,
    /// A serial line containing this text is the "marker" event of the timeline.
    #[arg(long)]
    marker: Option<String>,
    /// Print the boot timeline (phases, durations, instructions) to stderr at the end.
    #[arg(long)]
    timeline: bool,
    /// Also write the timeline as JSON to this file.
    #[arg(long)]
    timeline_json: Option<String>,
    /// Also write the timeline as an SVG chart to this file.
    #[arg(long)]
    timeline_svg: Option<String>,
    /// Stop after this many instructions.
    #[arg(long)]
    max_instructions: Option<u64>,
    /// Save a snapshot of the machine to this file at the --save-at point, then exit 0.
    #[arg(long, value_name = "PATH")]
    save: Option<String>,
    /// When to save: N (once N instructions have retired; tier 0) or serial:TEXT (once a serial
    /// line containing TEXT has been printed).
    #[arg(long, value_name = "N|serial:TEXT")]
    save_at: Option<String>,
    /// Resume the machine saved in this snapshot file instead of booting a kernel.
    #[arg(long, value_name = "PATH")]
    restore: Option<String>,
    /// Serve gdb's remote protocol on tcp:HOST:PORT (gdb may attach at any time; the machine
    /// stops while it is attached).
    #[arg(long, value_name = "tcp:HOST:PORT")]
    gdb: Option<String>,
    /// With --gdb: wait for gdb before the first instruction (QEMU's -S).
    #[arg(long, requires = "gdb")]
    wait_gdb: bool,
    #[command(flatten)]
    trace: crate::debug::trace::TraceArgs,
    /// Serve the monitor (info registers, x/FMT, info tlb, stop/cont/step, savevm, ...) on
    /// unix:PATH or tcp:HOST:PORT.
    #[arg(long, value_name = "unix:PATH|tcp:HOST:PORT")]
    monitor: Option<String>,
    /// With --monitor: start stopped, until the monitor's cont (QEMU's -S).
    #[arg(long, requires = "monitor")]
    stopped: bool,

    // --- Disks (issue 12): see src/disk.rs. ---
    /// A virtio-blk disk, as QEMU's -drive: file=PATH[,format=raw|qcow2][,readonly=on]
    /// [,cache=writethrough|writeback|none|directsync|unsafe][,discard=ignore|unmap]
    /// [,detect-zeroes=off|on|unmap][,aio=threads|native|io_uring]. Repeat for vdb, vdc, ...
    #[arg(long = "drive", value_name = "file=PATH,...")]
    drives: Vec<String>,
    /// A script the test guest's /init runs after mounting its disks (appended to the initrd as
    /// /strata-run).
    #[arg(long = "run", value_name = "FILE")]
    run_script: Option<String>,

    // --- Shared folders (issue 13): see src/share.rs. ---
    /// A host folder in the guest over virtio-9p (9P2000.L): PATH,tag=NAME[,readonly=on].
    /// Repeatable. The test guest mounts tag `share` at /mnt/share.
    #[arg(long = "share", value_name = "PATH,tag=NAME")]
    shares: Vec<String>,

    // --- Platform and firmware (issue 14) ---
    /// CPU model CPUID reports: k8 (AuthenticAMD family 0Fh, the default) or broadwell
    /// (GenuineIntel family 6 model 3Dh); the features are the same, what tier 0 implements.
    #[arg(long, value_name = "MODEL", default_value = "k8")]
    cpu: String,
    /// Debug console: what the guest writes to ports 0xE9 (Bochs/QEMU debugcon) and 0x402
    /// (SeaBIOS's log) goes to this file ("file:PATH").
    #[arg(long, value_name = "file:PATH")]
    debugcon: Option<String>,
    /// Boot through this BIOS image (64, 128 or 256 KiB, e.g. /usr/share/seabios/bios-256k.bin)
    /// from the reset vector; a bzImage --kernel is then handed over by QEMU's linuxboot_dma.bin
    /// option ROM through fw_cfg (see src/bios.rs); without --kernel the firmware runs alone.
    #[arg(long, value_name = "PATH")]
    bios: Option<String>,
    /// A QEMU test device: pc-testdev, or isa-debug-exit[,iobase=0xf4,iosize=0x4] (always
    /// present; accepted for QEMU's command lines). Repeatable.
    #[arg(long = "device", value_name = "NAME[,PROP=VALUE...]")]
    devices: Vec<String>,
}

/// When `--save-at` saves.
enum SaveAt {
    Retired(u64),
    Serial(String),
}

fn parse_save_at(a: &RunArgs) -> Result<Option<(String, SaveAt)>, String> {
    match (&a.save, &a.save_at) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("--save needs --save-at N or --save-at serial:TEXT".into()),
        (None, Some(_)) => Err("--save-at needs --save PATH".into()),
        (Some(path), Some(at)) => {
            let when = match at.strip_prefix("serial:") {
                Some("") => return Err("--save-at serial:TEXT needs a TEXT".into()),
                Some(text) => SaveAt::Serial(text.to_string()),
                None => SaveAt::Retired(
                    at.parse().map_err(|_| format!("--save-at {at}: use a number of instructions or serial:TEXT"))?,
                ),
            };
            Ok(Some((path.clone(), when)))
        }
    }
}

/// Checks the options that `--restore` replaces, or that a boot needs.
fn check_restore_options(a: &RunArgs) -> Result<(), String> {
    if a.restore.is_none() {
        return match a.kernel {
            // --bios alone runs the firmware (issue 14).
            _ if a.bios.is_some() => Ok(()),
            Some(_) => Ok(()),
            None => Err("--kernel PATH is required (or --restore PATH to resume a snapshot, or --bios PATH)".into()),
        };
    }
    for (given, name) in
        [(a.kernel.is_some(), "--kernel"), (a.initrd.is_some(), "--initrd"), (a.append.is_some(), "--append")]
    {
        if given {
            return Err(format!("{name} cannot be used with --restore (the snapshot holds the booted machine)"));
        }
    }
    if a.mem.is_some() {
        return Err("--mem cannot be used with --restore (the RAM size comes from the snapshot)".into());
    }
    Ok(())
}

/// Parses "256M", "1G", "65536K" or a byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("--mem {s}: not a size (use e.g. 256M or 1G)"))?;
    let bytes = n.checked_mul(mul).ok_or_else(|| format!("--mem {s}: too large"))?;
    if bytes < 16 << 20 {
        return Err(format!("--mem {s}: at least 16M is needed"));
    }
    if bytes > emu::loaders::layout::MMIO_HOLE {
        return Err(format!("--mem {s}: at most 3G is supported (RAM above the 32-bit MMIO hole is not modelled yet)"));
    }
    Ok(bytes)
}

/// The built-in demo guest (`conformance/kernels/demo.S`, see `src/generated/README`).
const DEMO_KERNEL: &[u8] = include_bytes!("generated/demo_kernel.elf");
/// `--kernel builtin:demo` names it.
const DEMO_NAME: &str = "builtin:demo";

/// `strata` with no arguments: boot the demo guest; its exit-port status 1 means success.
pub fn demo(process_start: Instant) -> ExitCode {
    use clap::Parser;
    #[derive(Parser)]
    struct Demo {
        #[command(flatten)]
        run: RunArgs,
    }
    let args = Demo::parse_from(["strata", "--kernel", DEMO_NAME]).run;
    match run_inner(args, process_start) {
        Ok(RunOutcome::ExitPort(1)) => ExitCode::SUCCESS,
        Ok(o) => o.code(),
        Err(msg) => {
            eprintln!("strata: {msg}");
            ExitCode::from(1)
        }
    }
}

pub fn run(a: RunArgs, process_start: Instant) -> ExitCode {
    match run_inner(a, process_start) {
        Ok(o) => o.code(),
        Err(msg) => {
            eprintln!("strata: {msg}");
            ExitCode::from(1)
        }
    }
}

/// How `strata run` ended, before it becomes an exit status.
enum RunOutcome {
    ExitPort(u32),
    Code(ExitCode),
}

impl RunOutcome {
    fn code(self) -> ExitCode {
        match self {
            RunOutcome::ExitPort(s) => ExitCode::from(s as u8),
            RunOutcome::Code(c) => c,
        }
    }
}

/// Parses a `--switch-at` condition.
pub fn parse_watch(s: &str) -> Result<Watch, String> {
    let bad = || format!("--switch-at {s}: use serial:TEXT, instr:N or ms:N");
    match s.split_once(':') {
        Some(("serial", text)) if !text.is_empty() => Ok(Watch::Serial(text.to_string())),
        Some(("instr", n)) => n.parse().map(Watch::Instructions).map_err(|_| bad()),
        Some(("ms", n)) => n.parse().map(Watch::HostMs).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// The engine `--switch-at` moves a CPU running on `from` to, in a run that started on `start`:
/// a run started on tier 0 alternates with KVM, any other with tier 0.
fn other_engine(start: EngineKind, from: EngineKind) -> EngineKind {
    let partner = if start == EngineKind::Interp { EngineKind::Kvm } else { EngineKind::Interp };
    if from == start {
        partner
    } else {
        start
    }
}

/// Refuses the options that need instructions counted on an engine that runs while they are
/// in force but counts none: one line saying which option and why.
fn check_counting(a: &RunArgs, engine: EngineKind, switches: &[Watch], save: Option<&SaveAt>) -> Result<(), String> {
    let mut used = vec![engine];
    if !switches.is_empty() {
        used.push(other_engine(engine, engine));
    }
    for e in used {
        if a.deterministic {
            if let Some(why) = e.why_no_count("--deterministic") {
                return Err(format!("{why}; KVM runs on host time"));
            }
        }
        if a.max_instructions.is_some() {
            e.why_no_count("--max-instructions").map_or(Ok(()), Err)?;
        }
    }
    if let Some(SaveAt::Retired(_)) = save {
        engine.why_no_count("--save-at N").map_or(Ok(()), Err)?;
    }
    // Watch i is armed while the i-th engine of the alternation runs.
    let mut runs = engine;
    for w in switches {
        if let Watch::Instructions(n) = w {
            runs.why_no_count(&format!("--switch-at instr:{n}")).map_or(Ok(()), Err)?;
        }
        runs = other_engine(engine, runs);
    }
    Ok(())
}

fn run_inner(a: RunArgs, process_start: Instant) -> Result<RunOutcome, String> {
    let engine = tiers::resolve_engine(a.tier, false).map_err(|e| format!("--tier {}: {e}", a.tier))?;
    let switches = a.switch_at.iter().map(|s| parse_watch(s)).collect::<Result<Vec<_>, _>>()?;
    let need_kvm =
        engine == EngineKind::Kvm || (!switches.is_empty() && other_engine(engine, engine) == EngineKind::Kvm);
    if engine != EngineKind::Kvm && need_kvm {
        tiers::kvm_available().map_err(|e| format!("--switch-at needs KVM: {e}"))?;
    }
    check_restore_options(&a)?;
    let save = parse_save_at(&a)?;
    crate::bios::check_options(a.bios.is_some(), need_kvm, a.restore.is_some() || save.is_some())?;
    // --- 32-bit guests (issue 14): engines that cannot run an i386 kernel refuse it here. ---
    crate::guest32::check_kvm(a.kernel.as_deref(), need_kvm)?;
    // --- Option combinations (issue 11): the refused pairs and why, in debug::combine. ---
    crate::debug::combine::check(&crate::debug::combine::Chosen {
        gdb: a.gdb.is_some(),
        trace: a.trace.trace.is_some(),
        monitor: a.monitor.is_some(),
        save_at: save.is_some(),
        switch_at: !switches.is_empty(),
        max_instructions: a.max_instructions.is_some(),
    })?;
    check_counting(&a, engine, &switches, save.as_ref().map(|(_, w)| w))?;
    let mut monitor = a.monitor.as_deref().map(crate::debug::monitor::Monitor::bind).transpose()?;
    let tracer = crate::debug::trace::Tracer::new(&a.trace)?;
    let gdb_listener = match &a.gdb {
        Some(g) => Some(crate::debug::gdb::listen(&crate::debug::gdb::parse_endpoint(g)?)?),
        None => None,
    };
    if gdb_listener.is_some() && engine == EngineKind::Kvm {
        // Issue 11: what this host's KVM_SET_GUEST_DEBUG does, found by trying it.
        let found = tiers::kvm_guest_debug_support().unwrap_or_else(|e| format!("nothing ({e})"));
        let soft = if found.split(" (not").next().unwrap_or("").contains("software") {
            "as INT3s"
        } else {
            "in free debug registers"
        };
        eprintln!("strata: gdb: this host's KVM guest debugging does {found}; steps, breakpoints (software ones {soft}) and watchpoints run on KVM where it does, the rest on tier 0 (said when it happens)");
    }
    let drives = crate::disk::parse_drives(&a.drives)?;
    // Disks in snapshots (issue 12): --save freezes each drive; the snapshot reopens them.
    if !drives.is_empty() && a.restore.is_some() {
        return Err("--drive cannot be used with --restore (the snapshot holds the drives)".into());
    }
    // Shared folders (issue 13): parsed before the boot, attached after the drives.
    let shares = crate::share::parse_shares(&a.shares)?;
    if !shares.is_empty() && (save.is_some() || a.restore.is_some()) {
        return Err("--share cannot be combined with --save or --restore yet (9P state is not in snapshots)".into());
    }
    if a.run_script.is_some() && a.initrd.is_none() {
        return Err("--run FILE needs --initrd (the script is appended to it)".into());
    }
    let model = emu::system::cpu_model::by_name(&a.cpu).map_err(|e| format!("--cpu: {e}"))?;
    let serial: Box<dyn std::io::Write> = match a.serial.as_str() {
        "stdio" => Box::new(std::io::stdout()),
        s => match s.strip_prefix("file:") {
            Some(path) => Box::new(std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?),
            None => return Err(format!("--serial {s}: use stdio or file:PATH")),
        },
    };
    let mut m = match &a.restore {
        Some(path) => {
            Machine::restore_snapshot(path.as_ref(), serial, process_start, a.deterministic, a.marker.clone())
                .map_err(|e| e.to_string())?
        }
        None => boot(&a, serial, process_start)?,
    };
    crate::disk::attach_drives(&mut m, &drives, a.deterministic)?;
    crate::share::attach_shares(&mut m, &shares, a.deterministic)?; // shared folders (issue 13)
    m.cpu.config.model = model;
    if let Some(d) = &a.debugcon {
        let path = d.strip_prefix("file:").ok_or_else(|| format!("--debugcon {d}: use file:PATH"))?;
        let f = std::fs::File::create(path).map_err(|e| format!("--debugcon {path}: {e}"))?;
        m.board.borrow_mut().attach_debugcon(Box::new(f));
    }
    // Issue 14: the kvm-unit-tests devices (--device).
    crate::testdevs::attach(&mut m, &a.devices)?;
    // Ctrl-A c on the serial console: only in the plain run loop below (the other loops own
    // the machine's watch).
    let console_ok = monitor.is_none()
        && tracer.is_none()
        && gdb_listener.is_none()
        && save.is_none()
        && switches.is_empty()
        && a.max_instructions.is_none();
    let mut console = None;
    // The raw console (issue 11): a terminal is raw for the run, restored on every way out.
    let raw_terminal =
        if a.serial == "stdio" && console_ok { crate::debug::monitor::terminal::enter_raw()? } else { None };
    if a.serial == "stdio" {
        let (tx, rx) = std::sync::mpsc::channel();
        if console_ok {
            console = Some(crate::debug::monitor::console::spawn_reader(tx, raw_terminal.is_some()));
        } else {
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                let mut stdin = std::io::stdin();
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
        }
        m.set_input(rx);
    }
    if need_kvm {
        tiers::attach_kvm(&mut m, engine == EngineKind::Kvm).map_err(|e| format!("KVM: {e}"))?;
    }
    let jit = if engine == EngineKind::Jit {
        let opts = a.jit.options();
        Some(tiers::attach_jit(&mut m, true, opts).map_err(|e| format!("JIT: {e}"))?)
    } else {
        None
    };
    // With gdb or the monitor, a trace observes tier 0 for the whole session (issue 11).
    let (engine, traced_session) = match tracer {
        Some((tracer, summary)) if gdb_listener.is_some() || monitor.is_some() => {
            crate::debug::trace::attach(&mut m, tracer)?;
            (EngineKind::Interp, Some(summary))
        }
        Some((tracer, summary)) => return run_traced(&a, m, engine, tracer, &summary, need_kvm, jit, save),
        None => (engine, None),
    };
    if let Some(listener) = gdb_listener {
        return run_under_gdb(&a, m, engine, &listener, need_kvm, jit, traced_session);
    }
    if let Some(monitor) = &mut monitor {
        let outcome = monitor.run(&mut m, a.stopped, a.max_instructions.unwrap_or(u64::MAX));
        if let Some(summary) = &traced_session {
            crate::debug::trace::detach(&mut m, summary)?;
        }
        return match outcome? {
            crate::debug::monitor::Outcome::Ended(end) => finish(&a, m, end, need_kvm, jit),
            crate::debug::monitor::Outcome::Quit => Ok(RunOutcome::Code(ExitCode::SUCCESS)),
        };
    }
    if let Some((path, when)) = &save {
        m.set_watch(Some(save_watch(&m, when)));
        let end = m.run(a.max_instructions.unwrap_or(u64::MAX));
        return save_at_end(&a, &mut m, end, path);
    }
    if let Some(console) = &mut console {
        let end = loop {
            m.set_watch(Some(Watch::Flag(console.attention.clone())));
            match m.run(u64::MAX) {
                RunEnd::Watch => match console.serve(&mut m) {
                    crate::debug::monitor::console::Resume::Guest => {}
                    crate::debug::monitor::console::Resume::Quit => return Ok(RunOutcome::Code(ExitCode::SUCCESS)),
                    crate::debug::monitor::console::Resume::Ended(end) => break end,
                },
                end => break end,
            }
        };
        m.set_watch(None);
        return finish(&a, m, end, need_kvm, jit);
    }
    let mut switches = switches.into_iter();
    m.set_watch(switches.next());
    let end = loop {
        match m.run(a.max_instructions.unwrap_or(u64::MAX)) {
            RunEnd::Watch => {
                let to = other_engine(engine, m.active_engine());
                m.switch_engine(to).map_err(|e| format!("engine switch: {e}"))?;
                eprintln!("strata: switched to {to}");
                m.set_watch(switches.next());
            }
            end => break end,
        }
    };
    finish(&a, m, end, need_kvm, jit)
}

/// Runs the machine with gdb: from the first instruction (`--wait-gdb`) or from when gdb
/// attaches (the machine runs normally until then, looking at the socket every few
/// milliseconds). If gdb detaches, the run goes on without it.
fn run_under_gdb(
    a: &RunArgs,
    mut m: Machine,
    engine: EngineKind,
    listener: &std::net::TcpListener,
    need_kvm: bool,
    jit: Option<tiers::JitStatsHandle>,
    traced: Option<crate::debug::trace::SharedSummary>,
) -> Result<RunOutcome, String> {
    use crate::debug::{self, gdb};
    let stream = if a.wait_gdb {
        gdb::accept(listener)?
    } else {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("strata: gdb can attach on {addr} (target remote {addr})");
        listener.set_nonblocking(true).map_err(|e| format!("gdb: {e}"))?;
        loop {
            m.set_watch(Some(Watch::HostMs(50)));
            match m.run(u64::MAX) {
                RunEnd::Watch => match listener.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).map_err(|e| format!("gdb: {e}"))?;
                        let _ = s.set_nodelay(true);
                        break s;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("gdb: accept: {e}")),
                },
                end => {
                    m.set_watch(None);
                    return finish(a, m, end, need_kvm, jit);
                }
            }
        }
    };
    let mut inferior = debug::system::MachineInferior { machine: m, engine, end: None };
    inferior.stop_on_tier0()?;
    let (session, inferior) = gdb::serve(inferior, stream);
    let mut m = inferior.machine;
    if let Some(summary) = &traced {
        debug::trace::detach(&mut m, summary)?; // the trace covers the gdb session (issue 11)
    }
    let end = match session? {
        gdb::Session::Ended(_) => inferior.end.unwrap_or(RunEnd::Halted),
        gdb::Session::Killed => return Ok(RunOutcome::Code(ExitCode::from(128 + 9))),
        gdb::Session::Detached => {
            eprintln!("strata: gdb detached; the machine runs on");
            m.switch_engine(engine).map_err(|e| format!("engine switch: {e}"))?;
            m.run(u64::MAX)
        }
    };
    finish(a, m, end, need_kvm, jit)
}

/// The watch of a `--save-at` point.
fn save_watch(m: &Machine, when: &SaveAt) -> Watch {
    match when {
        SaveAt::Retired(n) => Watch::Instructions(n.saturating_sub(m.cpu.retired)),
        SaveAt::Serial(text) => Watch::Serial(text.clone()),
    }
}

/// After a run to the `--save-at` point: the snapshot, written when the point was reached.
fn save_at_end(a: &RunArgs, m: &mut Machine, end: RunEnd, path: &str) -> Result<RunOutcome, String> {
    if end != RunEnd::Watch {
        return Err(format!("the run ended ({end:?}) before the --save-at point; no snapshot was written"));
    }
    let info = m.save_snapshot(path.as_ref()).map_err(|e| e.to_string())?;
    eprintln!("strata: snapshot saved to {path} ({} MiB RAM, {} ms)", info.ram_bytes >> 20, info.elapsed.as_millis());
    if a.deterministic {
        eprintln!("strata: {} instructions retired", info.retired);
    }
    Ok(RunOutcome::Code(ExitCode::SUCCESS))
}

/// Runs the machine with the instruction trace attached to tier 0: on tier 0 until the trace
/// window closes, then on the engine the run asked for; with `--save-at`, on tier 0 up to the
/// save point (the window still selects the lines).
#[allow(clippy::too_many_arguments)]
fn run_traced(
    a: &RunArgs,
    mut m: Machine,
    engine: EngineKind,
    tracer: crate::debug::trace::Tracer,
    summary: &crate::debug::trace::SharedSummary,
    need_kvm: bool,
    jit: Option<tiers::JitStatsHandle>,
    save: Option<(String, SaveAt)>,
) -> Result<RunOutcome, String> {
    let until = tracer.until();
    crate::debug::trace::attach(&mut m, tracer)?;
    let limit = a.max_instructions.unwrap_or(u64::MAX);
    if let Some((path, when)) = &save {
        m.set_watch(Some(save_watch(&m, when)));
        let end = m.run(limit);
        crate::debug::trace::detach(&mut m, summary)?;
        return save_at_end(a, &mut m, end, path);
    }
    if until != u64::MAX {
        m.set_watch(Some(Watch::Instructions(until.saturating_sub(m.cpu.retired))));
    }
    let mut end = m.run(limit);
    crate::debug::trace::detach(&mut m, summary)?; // closing the trace flushes it
    if end == RunEnd::Watch {
        m.set_watch(None);
        m.switch_engine(engine).map_err(|e| format!("engine switch: {e}"))?;
        end = m.run(limit);
    }
    finish(a, m, end, need_kvm, jit)
}

/// A fresh machine with the kernel (and initrd) of the command line loaded.
fn boot(a: &RunArgs, serial: Box<dyn std::io::Write>, process_start: Instant) -> Result<Machine, String> {
    let kernel = a.kernel.clone().unwrap_or_default();
    let mem_arg = a.mem.as_deref().unwrap_or("256M");
    let mem = parse_size(mem_arg)?;
    // --- Firmware boot (issue 14): --bios without --kernel runs the firmware alone. ---
    if let (None, Some(path)) = (&a.kernel, a.bios.as_deref()) {
        let rom = crate::bios::read_image(path)?;
        let cfg = MachineConfig { mem, deterministic: a.deterministic, marker: a.marker.clone() };
        let mut m = Machine::new(&cfg, serial, process_start)
            .map_err(|e| format!("cannot allocate {mem_arg} of guest RAM: {e}"))?;
        crate::bios::install(&mut m, path, rom, &[])?;
        return Ok(m);
    }
    let image = if kernel == DEMO_NAME {
        DEMO_KERNEL.to_vec()
    } else {
        std::fs::read(&kernel).map_err(|e| format!("{kernel}: {e}"))?
    };
    let is_bzimage = image.len() > 0x206 && &image[0x202..0x206] == b"HdrS";
    let is_multiboot = !is_bzimage && emu::loaders::multiboot::detect(&image).is_some();
    let append = a.append.as_deref().unwrap_or(if is_multiboot { "" } else { "console=ttyS0" });
    let mut initrd = match &a.initrd {
        Some(p) if !is_multiboot => Some(std::fs::read(p).map_err(|e| format!("{p}: {e}"))?),
        _ => None,
    };
    if let Some(script) = &a.run_script {
        let text = std::fs::read(script).map_err(|e| format!("--run {script}: {e}"))?;
        initrd = initrd.map(|data| crate::disk::append_archive(data, &crate::disk::run_archive(&text)));
    }
    // --- Firmware boot (issue 14): the image is checked before any work. ---
    let bios = a.bios.as_deref().map(crate::bios::read_image).transpose()?;
    if bios.is_some() && !is_bzimage && !is_multiboot {
        return Err("--bios needs a bzImage or a Multiboot --kernel (handed over by QEMU's option ROMs)".into());
    }
    let cfg = MachineConfig { mem, deterministic: a.deterministic, marker: a.marker.clone() };
    let mut m = Machine::new(&cfg, serial, process_start)
        .map_err(|e| format!("cannot allocate {mem_arg} of guest RAM: {e}"))?;
    if is_bzimage {
        let ird = match (&a.initrd, &initrd) {
            (Some(p), Some(d)) => Some((p.as_str(), d.as_slice())),
            _ => None,
        };
        if bios.is_none() {
            emu::loaders::bzimage::load(&mut m.cpu, &kernel, &image, append, ird).map_err(|e| e.to_string())?;
        } else {
            crate::bios::add_linuxboot_rom(&m)?;
        }
        // The same kernel for a firmware boot through fw_cfg (QEMU's linuxboot_dma.bin reads it).
        let fw_cfg = m.board.borrow().fw_cfg.clone();
        emu::loaders::fw_cfg::add_kernel_items(
            &mut fw_cfg.borrow_mut(),
            &kernel,
            &image,
            append,
            initrd.as_deref(),
            mem,
        )
        .map_err(|e| e.to_string())?;
    } else if is_multiboot {
        // QEMU's habits, which Multiboot test suites rely on: the command line starts with the
        // kernel's path (their argv[0]), and --initrd lists modules, each "FILE ARGS" with the
        // whole entry as the module's string.
        let cmdline = if append.is_empty() { kernel.clone() } else { format!("{kernel} {append}") };
        let specs: Vec<&str> = a.initrd.as_deref().map(|s| s.split(',').collect()).unwrap_or_default();
        let mut data = Vec::new();
        for spec in &specs {
            let file = spec.split(' ').next().unwrap_or_default();
            data.push(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
        }
        let modules: Vec<emu::loaders::multiboot::Module> =
            specs.iter().zip(&data).map(|(s, d)| emu::loaders::multiboot::Module { data: d, string: s }).collect();
        if bios.is_some() {
            // --- Firmware boot (issue 14): QEMU's multiboot_dma.bin loads it from fw_cfg. ---
            let fw_cfg = m.board.borrow().fw_cfg.clone();
            emu::loaders::multiboot_rom::add_items(&mut fw_cfg.borrow_mut(), &kernel, &image, &cmdline, &modules)
                .map_err(|e| e.to_string())?;
            crate::bios::add_multiboot_rom(&m)?;
        } else {
            emu::loaders::multiboot::load_with_modules(&mut m.cpu, &kernel, &image, &cmdline, &modules)
                .map_err(|e| e.to_string())?;
        }
    } else if emu::loaders::bootsector::detect(&image) {
        if a.initrd.is_some() {
            return Err("--initrd is only supported with a bzImage or a Multiboot kernel".into());
        }
        emu::loaders::bootsector::load(&mut m.cpu, &kernel, &image).map_err(|e| e.to_string())?;
    } else {
        return Err(format!("{kernel}: neither a bzImage, a Multiboot kernel nor a boot sector (0x55AA at 510)"));
    }
    m.record("kernel loaded");
    if let (Some(path), Some(rom)) = (a.bios.as_deref(), bios) {
        crate::bios::install(&mut m, path, rom, if is_bzimage { &image } else { &[] })?;
    }
    Ok(m)
}

/// Turns how the run ended into an exit status, printing what was asked for.
fn finish(
    a: &RunArgs,
    mut m: Machine,
    end: RunEnd,
    need_kvm: bool,
    jit: Option<tiers::JitStatsHandle>,
) -> Result<RunOutcome, String> {
    m.record(match end {
        RunEnd::ExitPort(_) => "exit port",
        RunEnd::Halted => "power-off (halted)",
        RunEnd::Reset => "reset",
        RunEnd::PowerOff => "power-off (ACPI S5)",
        RunEnd::TripleFault => "triple fault",
        RunEnd::Limit => "instruction limit",
        RunEnd::Watch => "watch",
        RunEnd::EngineError => "engine error",
    });
    let code = match end {
        RunEnd::ExitPort(s) => RunOutcome::ExitPort(s),
        RunEnd::Halted | RunEnd::Reset | RunEnd::PowerOff => RunOutcome::Code(ExitCode::SUCCESS),
        RunEnd::TripleFault => {
            eprintln!("strata: triple fault; the CPU shut down. CPU state:\n{}", m.cpu_dump());
            RunOutcome::Code(ExitCode::from(2))
        }
        RunEnd::Limit => {
            eprintln!("strata: --max-instructions reached. CPU state:\n{}", m.cpu_dump());
            RunOutcome::Code(ExitCode::from(3))
        }
        RunEnd::Watch => RunOutcome::Code(ExitCode::SUCCESS),
        RunEnd::EngineError => {
            let why = m.engine_error.clone().unwrap_or_default();
            eprintln!("strata: {why}. CPU state:\n{}", m.cpu_dump());
            RunOutcome::Code(ExitCode::from(1))
        }
    };
    let retired = m.cpu.retired;
    let tap = m.tap.borrow();
    if a.deterministic {
        eprintln!("strata: {retired} instructions retired");
    }
    if a.timeline {
        eprint!("{}", tap.timeline.table());
        if need_kvm {
            let st = m.engine_stats;
            eprintln!(
                "strata: kvm: {} exits, {} interrupts injected, {} instructions handed to tier 0, {} engine switches",
                st.exits, st.injected, st.fallbacks, st.switches
            );
        }
        if let Some(j) = &jit {
            let st = j.borrow();
            eprintln!("strata: jit: {st}");
            eprint!("{}", st.histogram_table(40));
        }
    }
    if let Some(p) = &a.timeline_json {
        std::fs::write(p, tap.timeline.json()).map_err(|e| format!("{p}: {e}"))?;
    }
    if let Some(p) = &a.timeline_svg {
        std::fs::write(p, tap.timeline.svg()).map_err(|e| format!("{p}: {e}"))?;
    }
    Ok(code)
}
