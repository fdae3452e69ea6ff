//! The instruction and event trace (`--trace FILE`): one line per retired instruction — its
//! index (instructions retired before it), linear address, bytes, disassembly (iced-x86's Intel
//! formatter) and the registers it changed — and with `--trace-events`, lines for interrupts,
//! exceptions (vector and error code; CR2 for a #PF), software interrupts, and port and MMIO
//! accesses with their values; under `strata user`, system calls (name, arguments, result)
//! and signals (what became of them), as the user-mode kernel records them.
//!
//! The trace is an observer of tier 0's own block loop ([`emu::tier0::Observer`]), so a traced
//! run retires exactly the instructions an untraced tier-0 run does (the same blocks, the same
//! device polls); the run uses tier 0 until the window (`--trace-from N --trace-count M`) is
//! over, then goes on as asked. An address range (`--trace-range START-END`, linear, END
//! exclusive) limits the instruction lines. Port and MMIO accesses are seen by wrapping the
//! CPU's bus.

use super::debug_translate;
use emu::cpu::{Cpu, IoBus};
use emu::state::CpuState;
use emu::system::Event;
use emu::user::events::{EventLog, SignalAction, UserEvent};
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::Write;
use std::rc::Rc;

/// The trace options, shared by `strata run` and `strata user`.
#[derive(clap::Args, Debug, Clone)]
pub struct TraceArgs {
    /// Write an instruction trace to this file (tier 0 steps every traced instruction).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<String>,
    /// Start the trace once this many instructions have retired.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "trace")]
    pub trace_from: u64,
    /// Trace at most this many instructions.
    #[arg(long, value_name = "M", requires = "trace")]
    pub trace_count: Option<u64>,
    /// Only instructions at linear addresses START <= address < END (hex or decimal).
    #[arg(long, value_name = "START-END", requires = "trace")]
    pub trace_range: Option<String>,
    /// Also trace interrupts, exceptions (with error codes) and port/MMIO accesses (with values);
    /// under `strata user`, system calls (name, arguments, result) and signals.
    #[arg(long, requires = "trace")]
    pub trace_events: bool,
}

fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `START-END`.
///
/// # Errors
/// A one-line reason.
pub fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--trace-range {s}: use START-END, e.g. 0x100000-0x101000");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (parse_number(a).ok_or_else(bad)?, parse_number(b).ok_or_else(bad)?);
    if a >= b {
        return Err(bad());
    }
    Ok((a, b))
}

/// One port or MMIO access the guest made.
#[derive(Clone, Copy, Debug)]
struct IoAccess {
    mmio: bool,
    write: bool,
    addr: u64,
    size: u8,
    value: u64,
}

/// The CPU's bus, with every access recorded while the trace window is open.
struct TracingBus {
    inner: Box<dyn IoBus>,
    log: Rc<RefCell<Vec<IoAccess>>>,
    on: Rc<Cell<bool>>,
}

impl TracingBus {
    fn note(&self, mmio: bool, write: bool, addr: u64, size: u8, value: u64) {
        if self.on.get() {
            self.log.borrow_mut().push(IoAccess { mmio, write, addr, size, value });
        }
    }
}

impl IoBus for TracingBus {
    fn pio_read(&mut self, port: u16, size: u8) -> u32 {
        let v = self.inner.pio_read(port, size);
        self.note(false, false, port.into(), size, v.into());
        v
    }
    fn pio_write(&mut self, port: u16, size: u8, value: u32) {
        self.note(false, true, port.into(), size, value.into());
        self.inner.pio_write(port, size, value);
    }
    fn mmio_read(&mut self, paddr: u64, size: u8) -> u64 {
        let v = self.inner.mmio_read(paddr, size);
        self.note(true, false, paddr, size, v);
        v
    }
    fn mmio_write(&mut self, paddr: u64, size: u8, value: u64) {
        self.note(true, true, paddr, size, value);
        self.inner.mmio_write(paddr, size, value);
    }
}

/// What the CLI reads back after the run.
#[derive(Default)]
pub struct TraceSummary {
    /// Instruction lines written.
    pub lines: u64,
    /// The first write error, if any.
    pub error: Option<String>,
}

/// The summary the CLI keeps while the tracer is owned by tier 0.
pub type SharedSummary = Rc<RefCell<TraceSummary>>;

/// The trace observer: attached to tier 0 (`Interp::observer`) for the run.
pub struct Tracer {
    out: std::io::BufWriter<std::fs::File>,
    path: String,
    from: u64,
    until: u64,
    range: Option<(u64, u64)>,
    events: bool,
    io: Rc<RefCell<Vec<IoAccess>>>,
    io_on: Rc<Cell<bool>>,
    formatter: IntelFormatter,
    summary: SharedSummary,
    /// The instruction announced by `before` and its starting state, when it is traced.
    pending: Option<(u64, u64, Box<CpuState>)>,
    /// A user-mode process's system calls and signals (`--trace-events` under `strata user`).
    user_events: Option<EventLog>,
}

impl Tracer {
    /// Opens the trace file; `None` without `--trace`.
    ///
    /// # Errors
    /// A bad range, or the file cannot be created (one line each).
    pub fn new(a: &TraceArgs) -> Result<Option<(Tracer, SharedSummary)>, String> {
        let Some(path) = &a.trace else { return Ok(None) };
        let range = a.trace_range.as_deref().map(parse_range).transpose()?;
        let file = std::fs::File::create(path).map_err(|e| format!("--trace {path}: {e}"))?;
        let mut formatter = IntelFormatter::new();
        formatter.options_mut().set_uppercase_hex(false);
        formatter.options_mut().set_hex_prefix("0x");
        formatter.options_mut().set_hex_suffix("");
        let summary = Rc::new(RefCell::new(TraceSummary::default()));
        let t = Tracer {
            out: std::io::BufWriter::new(file),
            path: path.clone(),
            from: a.trace_from,
            until: a.trace_count.map_or(u64::MAX, |c| a.trace_from.saturating_add(c)),
            range,
            events: a.trace_events,
            io: Rc::new(RefCell::new(Vec::new())),
            io_on: Rc::new(Cell::new(false)),
            formatter,
            summary: summary.clone(),
            pending: None,
            user_events: None,
        };
        Ok(Some((t, summary)))
    }

    /// The instruction count at which the trace window closes (`u64::MAX`: never).
    pub fn until(&self) -> u64 {
        self.until
    }

    /// With `--trace-events`, wraps `cpu`'s bus so port and MMIO accesses are seen. The wrapper
    /// stays for the rest of the run and records nothing outside the window.
    pub fn attach_bus(&mut self, cpu: &mut Cpu) {
        if self.events {
            let inner = std::mem::replace(&mut cpu.bus, Box::new(emu::cpu::NullBus));
            cpu.bus = Box::new(TracingBus { inner, log: self.io.clone(), on: self.io_on.clone() });
        }
    }

    /// With `--trace-events`, has `p`'s kernel record its system calls and signals for the
    /// trace.
    pub fn attach_process(&mut self, p: &mut emu::user::Process) {
        if self.events {
            let log = EventLog::default();
            p.sys.events = Some(log.clone());
            self.user_events = Some(log);
        }
    }

    /// A line per system call or signal the process's kernel recorded since the last call.
    fn user_event_lines(&mut self) {
        let Some(log) = &self.user_events else { return };
        let events: Vec<UserEvent> = log.lock().map(|mut v| v.drain(..).collect()).unwrap_or_default();
        for e in events {
            self.line(format_args!("{}", user_event_line(&e)));
        }
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if let Err(e) = writeln!(self.out, "{args}") {
            let mut s = self.summary.borrow_mut();
            s.error.get_or_insert_with(|| format!("--trace {}: {e}", self.path));
        }
    }

    /// `INDEX ADDRESS: BYTES  DISASSEMBLY  ; CHANGED REGISTERS`.
    fn instruction_line(&mut self, index: u64, la: u64, rip: u64, before: &CpuState, cpu: &Cpu) -> String {
        let mut bytes = [0u8; 15];
        let mut n = 0;
        while n < bytes.len() {
            let Some(pa) = debug_translate(cpu, la.wrapping_add(n as u64)) else { break };
            let Some(b) = cpu.ram.slice(pa, 1) else { break };
            bytes[n] = b[0];
            n += 1;
        }
        let mut decoder = Decoder::with_ip(before.code_bits(), &bytes[..n], rip, DecoderOptions::NONE);
        let instr = decoder.decode();
        let len = if instr.is_invalid() { n.min(1) } else { instr.len() };
        let mut text = String::new();
        self.formatter.format(&instr, &mut text);
        let hex: Vec<String> = bytes[..len].iter().map(|b| format!("{b:02x}")).collect();
        let mut line = format!("{index} {la:#x}: {:<32} {text:<40}", hex.join(" "));
        let mut after = cpu.state.clone();
        after.rip = before.rip; // tier 0 moves RIP at block ends only; the next line shows it
        let changes = changed_registers(before, &after);
        if !changes.is_empty() {
            line += " ; ";
            line += &changes;
        }
        line.trim_end().to_string()
    }

    /// A line per port or MMIO access recorded since the last call.
    fn io_lines(&mut self) {
        let accesses: Vec<IoAccess> = self.io.borrow_mut().drain(..).collect();
        for a in accesses {
            let (kind, dir) = (if a.mmio { "mmio" } else { "port" }, if a.write { "write" } else { "read" });
            let width = 2 * usize::from(a.size) + 2;
            self.line(format_args!("-- {kind} {dir} {:#x} size {} value {:#0width$x}", a.addr, a.size, a.value));
        }
    }

    /// The events since the last instruction: port and MMIO accesses, then an exception or
    /// interrupt delivered.
    fn event_lines(&mut self, cpu: &mut Cpu) {
        self.io_lines();
        self.user_event_lines();
        match cpu.last_event.take() {
            Some(Event::Exception(f)) => {
                let mut s = format!("-- exception vector {:#04x} ({})", f.vector, vector_name(f.vector));
                if f.has_error_code {
                    let _ = write!(s, " error code {:#x}", f.error_code);
                }
                if f.vector == 14 {
                    let _ = write!(s, " cr2 {:#x}", cpu.state.cr2);
                }
                self.line(format_args!("{s}"));
            }
            Some(Event::Software(v)) => self.line(format_args!("-- software interrupt vector {v:#04x}")),
            Some(Event::External(v)) => self.line(format_args!("-- interrupt vector {v:#04x}")),
            None => {}
        }
    }
}

impl emu::tier0::Observer for Tracer {
    fn before(&mut self, cpu: &mut Cpu, rip: u64, index: u64) {
        let in_window = index >= self.from && index < self.until;
        if self.events {
            if in_window || self.io_on.get() {
                self.event_lines(cpu);
            } else {
                cpu.last_event = None;
                if let Some(log) = &self.user_events {
                    log.lock().map(|mut v| v.clear()).unwrap_or_default();
                }
            }
            self.io_on.set(in_window);
        }
        self.pending = None;
        if !in_window {
            return;
        }
        let s = &cpu.state;
        let cs_base = if s.code_bits() == 64 { 0 } else { s.segs[1].base };
        let la = rip.wrapping_add(cs_base);
        if self.range.is_none_or(|(lo, hi)| la >= lo && la < hi) {
            let mut before = Box::new(cpu.state.clone());
            before.rip = rip;
            self.pending = Some((la, rip, before));
        }
    }

    fn retired(&mut self, cpu: &mut Cpu, index: u64) {
        if let Some((la, rip, before)) = self.pending.take() {
            let text = self.instruction_line(index, la, rip, &before, cpu);
            self.summary.borrow_mut().lines += 1;
            self.line(format_args!("{text}"));
        }
        if self.events && self.io_on.get() {
            // Its port and MMIO accesses follow the instruction's line; an exception or
            // interrupt is only delivered later, and shows at the next `before`.
            self.io_lines();
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if self.io_on.get() {
            self.user_event_lines(); // the exit_group after the last instruction
        }
        if let Err(e) = self.out.flush() {
            let mut s = self.summary.borrow_mut();
            s.error.get_or_insert_with(|| format!("--trace {}: {e}", self.path));
        }
    }
}

/// Attaches the trace to `m` for a run driven by gdb or the monitor: the machine moves to tier
/// 0, which the trace observes for the rest of the run.
///
/// # Errors
/// The engine could not hand over its state.
pub fn attach(m: &mut emu::machine::Machine, mut tracer: Tracer) -> Result<(), String> {
    m.switch_engine(emu::engine::EngineKind::Interp).map_err(|e| format!("engine switch: {e}"))?;
    tracer.attach_bus(&mut m.cpu);
    m.interp.observer = Some(Box::new(tracer));
    Ok(())
}

/// Closes the trace attached by [`attach`] (flushing it) and reports its line count.
///
/// # Errors
/// Writing the trace failed.
pub fn detach(m: &mut emu::machine::Machine, summary: &SharedSummary) -> Result<(), String> {
    m.interp.observer = None;
    let s = summary.borrow();
    if let Some(e) = &s.error {
        return Err(e.clone());
    }
    eprintln!("strata: {} instructions traced", s.lines);
    Ok(())
}

/// `-- syscall NAME(ARGS) = RESULT` (all six argument registers; the result as a signed
/// number, `?` for a call that did not return) or `-- signal NAME (N) code C addr A -> WHAT`.
fn user_event_line(e: &UserEvent) -> String {
    match *e {
        UserEvent::Syscall { nr, args, ret } => {
            let name = syscall_name(nr);
            let a: Vec<String> = args.iter().map(|v| format!("{v:#x}")).collect();
            let r = ret.map_or("?".to_string(), |r| (r as i64).to_string());
            format!("-- syscall {name}({}) = {r}", a.join(", "))
        }
        UserEvent::Signal { signo, code, addr, action } => {
            let what = match action {
                SignalAction::Handler(h) => format!("handler {h:#x}"),
                SignalAction::Ignored => "ignored".into(),
                SignalAction::Killed => "killed".into(),
            };
            format!("-- signal {} ({signo}) code {code} addr {addr:#x} -> {what}", signal_name(signo))
        }
    }
}

/// The x86-64 Linux name of system call `nr` (the `syscalls` crate's table), or `syscall_NR`.
fn syscall_name(nr: u64) -> String {
    usize::try_from(nr)
        .ok()
        .and_then(syscalls::x86_64::Sysno::new)
        .map_or_else(|| format!("syscall_{nr}"), |s| s.name().to_string())
}

/// Linux's name of signal `sig` (x86-64 numbering, signal(7)).
fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[(sig - 1) as usize].to_string(),
        _ => format!("SIGRT_{}", sig - 32),
    }
}

/// Mnemonics of the architectural exceptions (SDM Vol. 3, Table 6-1).
fn vector_name(v: u8) -> &'static str {
    const NAMES: [&str; 21] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "-",
        "#MF", "#AC", "#MC", "#XM", "#VE",
    ];
    NAMES.get(usize::from(v)).copied().unwrap_or("-")
}

const GPR_NAMES: [&str; 16] =
    ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const SEG_NAMES: [&str; 6] = ["es", "cs", "ss", "ds", "fs", "gs"];

/// `name=value` for every register that differs (RIP is left out: the next line shows it).
pub fn changed_registers(a: &CpuState, b: &CpuState) -> String {
    let mut out = Vec::new();
    for (i, n) in GPR_NAMES.iter().enumerate() {
        if a.gpr[i] != b.gpr[i] {
            out.push(format!("{n}={:#x}", b.gpr[i]));
        }
    }
    if a.rflags() != b.rflags() {
        out.push(format!("rflags={:#x}", b.rflags()));
    }
    for (i, n) in SEG_NAMES.iter().enumerate() {
        if a.segs[i].selector != b.segs[i].selector {
            out.push(format!("{n}={:#x}", b.segs[i].selector));
        }
        if a.segs[i].base != b.segs[i].base {
            out.push(format!("{n}.base={:#x}", b.segs[i].base));
        }
    }
    for (n, x, y) in [
        ("cr0", a.cr0, b.cr0),
        ("cr2", a.cr2, b.cr2),
        ("cr3", a.cr3, b.cr3),
        ("cr4", a.cr4, b.cr4),
        ("efer", a.efer, b.efer),
        ("gdtr.base", a.gdtr.base, b.gdtr.base),
        ("idtr.base", a.idtr.base, b.idtr.base),
    ] {
        if x != y {
            out.push(format!("{n}={y:#x}"));
        }
    }
    for i in 0..16 {
        if a.xmm[i] != b.xmm[i] {
            out.push(format!("xmm{i}={:#x}", u128::from(b.xmm[i][0]) | u128::from(b.xmm[i][1]) << 64));
        }
    }
    if a.mxcsr != b.mxcsr {
        out.push(format!("mxcsr={:#x}", b.mxcsr));
    }
    if a.fpu != b.fpu {
        out.push(format!("fsw={:#x} fcw={:#x} ftw={:#x}", b.fpu.fsw, b.fpu.fcw, b.fpu.ftw));
        let top = usize::from(b.fpu.fsw >> 11) & 7;
        for i in 0..8 {
            let (x, y) = (a.fpu.regs[(top + i) & 7], b.fpu.regs[(top + i) & 7]);
            if x != y {
                out.push(format!("st{i}={:#06x}:{:#018x}", y.sign_exp, y.signif));
            }
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0x100000-0x100200").unwrap(), (0x100000, 0x100200));
        assert_eq!(parse_range("16-32").unwrap(), (16, 32));
        assert!(parse_range("0x200-0x100").is_err());
        assert!(parse_range("x").is_err());
    }

    #[test]
    fn only_changed_registers_are_listed() {
        let a = CpuState::default();
        let mut b = a.clone();
        b.gpr[3] = 7; // rbx
        b.cr3 = 0x1000;
        assert_eq!(changed_registers(&a, &b), "rbx=0x7 cr3=0x1000");
        assert_eq!(changed_registers(&a, &a), "");
    }
}
