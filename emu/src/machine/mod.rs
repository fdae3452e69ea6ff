//! The virtual PC's machine loop (ARCHITECTURE.md, decision 10): the engine runs the CPU until an exit;
//! the machine, not the engine, delivers interrupts from the devices and decides when to stop.
//!
//! Time: devices read a `Clock` — host time, or with `deterministic` a virtual clock advanced
//! by retired instructions (1 ns each), so two runs are identical to the instruction. A halted
//! CPU sleeps (host time) or skips (virtual time) to the next device event: no busy wait.
//!
//! Stopping: the exit port (status as QEMU's isa-debug-exit gives it), the i8042 reset line
//! (reboot), ACPI S5 (power-off through the PM1a control register), HLT with interrupts disabled (a halted machine: what Linux does at power-off
//! without ACPI), a triple fault.

mod bios;
pub mod board;
mod dma;
pub mod engine;
pub mod step;
// Single-stepping (RFLAGS.TF), for kvm-unit-tests (issue 14).
// Hardware breakpoints DR0-DR3 (issue 14).
mod breakpoints;
mod single_step;
// ACPI S3 (issue 14: kvm-unit-tests s3).
mod sleep;
pub mod timeline;
// --- issue 10, fifth round (part D): boot phases for the timeline. ---
mod phases;

use crate::cpu::Cpu;
use crate::engine::{Engine, EngineError, EngineKind, Exit, Limit};
use crate::exception::Stop;
use crate::mem::GuestRam;
use crate::tier0::Interp;
use board::{Board, BoardBus, SerialOut, SharedClock};
use devices::clock::{HostClock, VirtualClock};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::sync::mpsc::Receiver;
use std::time::Instant;
use timeline::Timeline;

/// Instructions per CPU slice between device polls.
const SLICE: u64 = 20_000;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// The guest wrote the exit port: QEMU isa-debug-exit status ((value << 1) | 1).
    ExitPort(u32),
    /// HLT with interrupts disabled: the guest stopped itself (power-off without ACPI).
    Halted,
    /// The guest asked for a reset (i8042 pulse).
    Reset,
    /// The guest entered ACPI S5 (soft off) through the PM1a control register.
    PowerOff,
    /// A triple fault: the CPU shut down.
    TripleFault,
    /// The instruction limit given to `run` was reached.
    Limit,
    /// The condition set with [`Machine::set_watch`] came true (the machine can go on running).
    Watch,
    /// The engine failed (a host error, not a guest one), or cannot honour the instruction
    /// limit or watch; `engine_error` says why.
    EngineError,
}

/// A condition that ends `Machine::run` with [`RunEnd::Watch`], so the caller can switch engines
/// or save a snapshot at that point. Engine-neutral except `Instructions`, which needs an engine
/// that counts instructions (`EngineKind::counts_instructions`; `run` refuses it otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A serial line containing this text was printed.
    Serial(String),
    /// This many more instructions have retired.
    Instructions(u64),
    /// This many milliseconds of host time have passed.
    HostMs(u64),
    /// Another thread raised this flag (the serial console's Ctrl-A c).
    Flag(Attention),
}

/// A flag another thread raises to end `Machine::run` (see [`Watch::Flag`]); equal when it is
/// the same flag.
#[derive(Clone, Debug, Default)]
pub struct Attention(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl PartialEq for Attention {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Attention {}

/// A parsed watch, with its starting point.
enum ArmedWatch {
    Serial,
    RetiredAt(u64),
    Deadline(Instant),
    Flag(Attention),
}

/// Serial output that also feeds the timeline and looks for a marker line.
pub struct SerialTap {
    out: Box<dyn Write>,
    shared: Rc<RefCell<TapState>>,
}

/// What the serial tap saw.
pub struct TapState {
    pub timeline: Timeline,
    pub line: Vec<u8>,
    pub marker: Option<String>,
    pub marker_seen: bool,
    /// Text of an armed serial watch, and whether a line containing it has been printed.
    pub watch_text: Option<String>,
    pub watch_hit: bool,
    pub retired: u64,
    pub bytes: u64,
}

impl Write for SerialTap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(buf)?;
        self.out.flush()?;
        let mut s = self.shared.borrow_mut();
        let retired = s.retired;
        for &b in buf {
            if s.bytes == 0 {
                s.timeline.record("first serial byte", retired);
            }
            s.bytes += 1;
            if b == b'\n' {
                let line = String::from_utf8_lossy(&s.line).trim_end().to_string();
                s.line.clear();
                if s.watch_text.as_deref().is_some_and(|w| line.contains(w)) {
                    s.watch_hit = true;
                }
                if s.marker.as_deref().is_some_and(|m| line.contains(m)) && !s.marker_seen {
                    s.marker_seen = true;
                    s.timeline.record(format!("marker: {line}"), retired);
                } else if s.timeline.lines {
                    s.timeline.record(format!("serial: {line}"), retired);
                }
            } else {
                s.line.push(b);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Machine settings.
pub struct MachineConfig {
    pub mem: u64,
    pub deterministic: bool,
    /// A serial line containing this ends the boot phase in the timeline.
    pub marker: Option<String>,
}

/// The virtual PC.
pub struct Machine {
    /// The CPU (state, RAM, bus); whichever engine is active runs it.
    pub cpu: Cpu,
    /// Tier 0, always there: it runs what other engines hand back.
    pub interp: Interp,
    pub board: Rc<RefCell<Board>>,
    virt: Option<Rc<VirtualClock>>,
    pub tap: Rc<RefCell<TapState>>,
    input: Option<Receiver<Vec<u8>>>,
    /// Host input not yet taken by the UART (its receive FIFO holds 16 bytes).
    pending_input: std::collections::VecDeque<u8>,
    /// The CPU is halted, waiting for an interrupt (part of a snapshot).
    pub(crate) halted: bool,
    /// The last instruction `step_instruction` ran opened an interrupt shadow: the next round
    /// delivers no interrupt. (`run` executes the shadowed instruction in the same round.)
    shadow: bool,
    /// In ACPI S3 (issue 14): the CPU does not run until a wake event (`sleep.rs`).
    asleep: bool,
    started: bool,
    /// Boot-phase events not yet recorded (`phases.rs`; issue 10, part D).
    phases_pending: u8,
    /// The engines attached beside tier 0 (KVM, the JIT).
    engines: Vec<Box<dyn Engine>>,
    /// The engine running the CPU now.
    active: EngineKind,
    pub engine_stats: engine::EngineStats,
    /// Why the run ended with `RunEnd::EngineError`.
    pub engine_error: Option<String>,
    watch: Option<ArmedWatch>,
    /// I/O threads signal completions here; a halted CPU's idle wait ends on one.
    io_wake: (std::sync::mpsc::Sender<()>, Receiver<()>),
}

/// What [`deliver_due_interrupt`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Delivery {
    /// No interrupt is pending (or the controller withdrew it when acknowledged).
    None,
    /// Vector delivered into the engine.
    Delivered(u8),
    /// One is pending but the engine cannot take it now (IF clear, an interrupt shadow).
    NotReady,
    /// Delivering it shut the CPU down.
    TripleFault,
}

/// Delivers the interrupt the devices raise, if any, when `engine` can take it now.
fn deliver_due_interrupt(
    engine: &mut dyn Engine,
    cpu: &mut Cpu,
    board: &RefCell<Board>,
) -> Result<Delivery, EngineError> {
    // An NMI (from the LAPIC: an NMI IPI, LINT1) goes first and ignores IF; it is vector 2
    // delivered as an external event, and blocks further NMIs until IRET (SDM Vol. 3, 6.7.1).
    // The software engines only: KVM's own NMI injection is not wired up.
    if cpu.config.system && !cpu.nmi_blocked && board.borrow().lapic.borrow().nmi_pending() && engine.software_nmi() {
        board.borrow().lapic.borrow_mut().take_nmi();
        cpu.nmi_blocked = true;
        return Ok(match engine.inject_interrupt(cpu, crate::exception::vector::NMI)? {
            Some(Exit::TripleFault) => Delivery::TripleFault,
            _ => Delivery::Delivered(crate::exception::vector::NMI),
        });
    }
    if !board.borrow().interrupt_pending() {
        return Ok(Delivery::None);
    }
    if !engine.interrupt_ready(cpu) {
        return Ok(Delivery::NotReady);
    }
    let Some(v) = board.borrow_mut().acknowledge_interrupt() else { return Ok(Delivery::None) };
    Ok(match engine.inject_interrupt(cpu, v)? {
        Some(Exit::TripleFault) => Delivery::TripleFault,
        _ => Delivery::Delivered(v),
    })
}

/// A TSC that follows the machine clock (host or virtual) at 1 GHz: one tick per nanosecond.
struct ClockTsc<C: devices::clock::Clock>(Rc<C>);
impl<C: devices::clock::Clock> crate::cpu::TscSource for ClockTsc<C> {
    fn tsc(&self, _retired: u64) -> u64 {
        self.0.now_ns()
    }
}

/// TSC frequency announced to the guest (CPUID 0x15/0x16): 1 GHz, one tick per ns.
pub const TSC_KHZ: u64 = 1_000_000;

impl Machine {
    /// A powered-on PC with `cfg.mem` bytes of RAM and its serial port on `serial`.
    ///
    /// # Errors
    /// The host refused the RAM mapping.
    pub fn new(cfg: &MachineConfig, serial: Box<dyn Write>, process_start: Instant) -> std::io::Result<Machine> {
        Ok(Self::with_ram(GuestRam::new(cfg.mem)?, cfg, serial, process_start))
    }

    /// A powered-on PC around `ram` (fresh, or a snapshot's mapped image); `cfg.mem` is unused.
    pub(crate) fn with_ram(
        ram: GuestRam,
        cfg: &MachineConfig,
        serial: Box<dyn Write>,
        process_start: Instant,
    ) -> Machine {
        let mem = ram.len();
        let mut cpu = Cpu::new(ram);
        cpu.config.system = true;
        let (clock, virt): (SharedClock, _) = if cfg.deterministic {
            let v = Rc::new(VirtualClock::new(1));
            cpu.tsc = Box::new(ClockTsc(v.clone()));
            (v.clone(), Some(v))
        } else {
            let h = Rc::new(HostClock::new());
            cpu.tsc = Box::new(ClockTsc(h.clone()));
            (h, None)
        };
        let mut timeline = Timeline::new(process_start);
        timeline.record("machine ready", 0);
        let tap = Rc::new(RefCell::new(TapState {
            timeline,
            line: Vec::new(),
            marker: cfg.marker.clone(),
            marker_seen: false,
            watch_text: None,
            watch_hit: false,
            retired: 0,
            bytes: 0,
        }));
        let out: SerialOut = Box::new(SerialTap { out: serial, shared: tap.clone() });
        // Deterministic runs start the RTC at a fixed date so they are reproducible.
        let start_secs = if cfg.deterministic {
            1_767_225_600 // 2026-01-01T00:00:00Z
        } else {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
        };
        let board = Rc::new(RefCell::new(Board::new(clock, mem, out, start_secs)));
        cpu.bus = Box::new(BoardBus(board.clone()));
        cpu.state.msr.apic_base = crate::loaders::layout::LAPIC_BASE | (1 << 11) | (1 << 8);
        Machine {
            cpu,
            interp: Interp::new(),
            board,
            virt,
            tap,
            input: None,
            pending_input: std::collections::VecDeque::new(),
            halted: false,
            shadow: false,
            asleep: false,
            started: false,
            phases_pending: phases::ALL,
            engines: Vec::new(),
            active: EngineKind::Interp,
            engine_stats: engine::EngineStats::default(),
            engine_error: None,
            watch: None,
            io_wake: std::sync::mpsc::channel(),
        }
    }

    /// A hook for I/O threads to call after each completion: it ends a halted CPU's idle wait, so
    /// the completion's interrupt is not held back until the next timer event, and (issue 12:
    /// the completion kick) ends a running slice of tier 0 or the JIT at the next block boundary.
    pub fn io_waker(&self) -> std::sync::Arc<dyn Fn() + Send + Sync> {
        let tx = std::sync::Mutex::new(self.io_wake.0.clone());
        let kick = self.cpu.softmmu.kicker();
        std::sync::Arc::new(move || {
            kick.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Ok(tx) = tx.lock() {
                let _ = tx.send(());
            }
        })
    }

    /// The virtual clock of a `deterministic` machine.
    pub fn virtual_clock(&self) -> Option<&Rc<VirtualClock>> {
        self.virt.as_ref()
    }

    /// The decoded blocks of the active engine (tier 0's when that engine has none).
    pub fn block_cache(&self) -> &crate::cache::BlockCache {
        self.engines
            .iter()
            .find(|e| e.kind() == self.active)
            .and_then(|e| e.block_cache())
            .unwrap_or(&self.interp.cache)
    }

    /// Feeds host input (e.g. from a stdin reader thread) to the serial port.
    pub fn set_input(&mut self, rx: Receiver<Vec<u8>>) {
        self.input = Some(rx);
    }

    /// Moves host input into the UART as its FIFO has room, never more (no byte is lost to an
    /// overrun: a 16550's FIFO holds 16 bytes, a pasted line is longer).
    fn pump_input(&mut self) {
        let Some(rx) = &self.input else { return };
        while let Ok(bytes) = rx.try_recv() {
            self.pending_input.extend(bytes);
        }
        if self.pending_input.is_empty() {
            return;
        }
        let board = self.board.borrow();
        let mut uart = board.uart.borrow_mut();
        let n = uart.rx_space().min(self.pending_input.len());
        if n > 0 {
            let chunk: Vec<u8> = self.pending_input.drain(..n).collect();
            uart.enqueue_input(&chunk);
        }
    }

    /// Arms (or with `None` disarms) the condition that ends `run` with `RunEnd::Watch`.
    pub fn set_watch(&mut self, watch: Option<Watch>) {
        let mut tap = self.tap.borrow_mut();
        tap.watch_hit = false;
        tap.watch_text = None;
        self.watch = watch.map(|w| match w {
            Watch::Serial(text) => {
                tap.watch_text = Some(text);
                ArmedWatch::Serial
            }
            Watch::Instructions(n) => ArmedWatch::RetiredAt(self.cpu.retired.saturating_add(n)),
            Watch::HostMs(ms) => ArmedWatch::Deadline(Instant::now() + std::time::Duration::from_millis(ms)),
            Watch::Flag(flag) => ArmedWatch::Flag(flag),
        });
    }

    fn watch_fired(&self) -> bool {
        match &self.watch {
            None => false,
            Some(ArmedWatch::Serial) => self.tap.borrow().watch_hit,
            Some(ArmedWatch::RetiredAt(n)) => self.cpu.retired >= *n,
            Some(ArmedWatch::Deadline(t)) => Instant::now() >= *t,
            Some(ArmedWatch::Flag(f)) => f.0.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Runs until the guest stops, the watch fires, or `limit` instructions in all have retired
    /// (`u64::MAX`: no limit; any other value needs an engine that counts instructions).
    pub fn run(&mut self, limit: u64) -> RunEnd {
        self.note_start();
        if let Err(e) = self.check_counting(limit) {
            self.engine_error = Some(e.to_string());
            return RunEnd::EngineError;
        }
        loop {
            let retired = self.cpu.retired;
            self.tap.borrow_mut().retired = retired;
            if retired >= limit {
                return RunEnd::Limit;
            }
            if self.watch_fired() {
                self.watch = None;
                return RunEnd::Watch;
            }
            self.note_phases(); // issue 10, part D
            if let Some(end) = self.devices_round() {
                return end;
            }
            match self.engine_round(limit) {
                Ok(None) => {}
                Ok(Some(end)) => return end,
                Err(e) => {
                    self.engine_error = Some(e.to_string());
                    return RunEnd::EngineError;
                }
            }
        }
    }

    /// Records the first instruction in the timeline, once.
    fn note_start(&mut self) {
        if !self.started {
            self.started = true;
            // Through a BIOS, the first instruction is the firmware's, at its reset vector.
            let label = if self.cpu.rom.is_some() { "first instruction: BIOS start" } else { "first instruction" };
            self.tap.borrow_mut().timeline.record(label, self.cpu.retired);
        }
    }

    /// The devices' part of a round: host input, device polling, then the exit port and the
    /// reset line. `Some` ends the run.
    fn devices_round(&mut self) -> Option<RunEnd> {
        self.pump_input();
        self.serve_virtio();
        // A fw_cfg DMA transfer the guest started (it polls the descriptor until done).
        let fw_cfg = self.board.borrow().fw_cfg.clone();
        if fw_cfg.borrow().dma_pending() {
            fw_cfg.borrow_mut().run_dma(&mut self.cpu);
        }
        if self.cpu.rom.is_some() {
            self.firmware_progress();
        }
        self.board.borrow_mut().poll();
        let board = self.board.borrow();
        if let Some(status) = board.exit.borrow().exit_status() {
            return Some(RunEnd::ExitPort(status));
        }
        if board.i8042.borrow_mut().take_reset_request() {
            return Some(RunEnd::Reset);
        }
        if board.acpi_pm.borrow_mut().take_power_off() {
            return Some(RunEnd::PowerOff);
        }
        // --- ACPI S3 (issue 14) ---
        let sleep = board.acpi_pm.borrow_mut().take_sleep_request();
        drop(board);
        if sleep {
            self.enter_s3();
        }
        None
    }

    /// Lets the virtio devices the driver notified serve their queues (in guest RAM). Done here,
    /// between CPU slices, so device code never runs inside an engine's memory access.
    fn serve_virtio(&mut self) {
        let functions = self.board.borrow().virtio.clone();
        for f in functions.borrow().iter() {
            let mut f = f.borrow_mut();
            if f.has_work() {
                f.process(&mut self.cpu);
            }
        }
    }

    /// Why the active engine cannot honour `limit` or the armed watch (they count instructions).
    fn check_counting(&self, limit: u64) -> Result<(), EngineError> {
        let why = if limit != u64::MAX {
            self.active.why_no_count("an instruction limit")
        } else if matches!(self.watch, Some(ArmedWatch::RetiredAt(_))) {
            self.active.why_no_count("an instruction watch")
        } else {
            None
        };
        why.map_or(Ok(()), |message| Err(EngineError { engine: "machine", message }))
    }

    /// One round of the machine loop on the active engine: interrupt delivery, then guest code
    /// until the engine's next exit (for engines that count instructions, at most a slice, and
    /// never past `limit`). `None` means "keep going".
    fn engine_round(&mut self, limit: u64) -> Result<Option<RunEnd>, EngineError> {
        if self.asleep {
            return Ok(self.sleep_round()); // ACPI S3 (issue 14): sleep.rs
        }
        if let Some(end) = self.trap_after_rflags_load() {
            return Ok(end);
        }
        let kind = self.active;
        let retired = self.cpu.retired;
        let cpu = &mut self.cpu;
        let engine = engine::engine_of(&mut self.interp, &mut self.engines, kind)?;
        let mut want_interrupt = false;
        // A shadow from the last round's fallback step (STI run by `fall_back_one`) counts too.
        let shadowed = std::mem::take(&mut self.shadow) | std::mem::take(&mut cpu.interrupt_shadow);
        if !shadowed {
            match deliver_due_interrupt(engine, cpu, &self.board)? {
                d @ (Delivery::Delivered(_) | Delivery::TripleFault) => {
                    self.halted = false;
                    if kind != EngineKind::Interp {
                        self.engine_stats.injected += 1;
                    }
                    if d == Delivery::TripleFault {
                        return Ok(Some(RunEnd::TripleFault));
                    }
                }
                Delivery::NotReady => want_interrupt = true,
                Delivery::None => {}
            }
        }
        if self.halted {
            let enabled = engine.interrupts_enabled(cpu);
            return Ok(self.halt_round(enabled));
        }
        if kind != EngineKind::Kvm && single_step::steps(cpu) {
            return self.single_step_round(); // RFLAGS.TF, DR7 breakpoints: see single_step.rs
        }
        let instructions = if kind.counts_instructions() { limit - retired } else { u64::MAX };
        let exit = engine.run(cpu, &Limit { instructions, poll_after: SLICE, deadline: None, want_interrupt })?;
        if kind != EngineKind::Interp {
            self.engine_stats.exits += 1;
        }
        self.retire_virtual(retired);
        match exit {
            Exit::Limit | Exit::Poll => {}
            Exit::TripleFault => return Ok(Some(RunEnd::TripleFault)),
            Exit::Stop(Stop::Halt) => self.halted = true,
            // A yield that opened no interrupt shadow (IRET, POPF, MOV CR, an EOI...): the
            // next round delivers what is due before the next instruction, as hardware does.
            Exit::Stop(Stop::Yield) if !std::mem::take(&mut self.cpu.interrupt_shadow) => {}
            // STI (the next instruction runs before any interrupt: run it now, then look at
            // the devices), or an instruction the engine cannot run.
            Exit::Stop(_) | Exit::Unemulated => return self.fall_back_one(),
        }
        Ok(None)
    }

    /// A round that found the CPU halted: with interrupts disabled the machine has stopped
    /// (`Some(RunEnd::Halted)`); otherwise time passes to the next device event.
    fn halt_round(&mut self, interrupts_enabled: bool) -> Option<RunEnd> {
        if !interrupts_enabled {
            return Some(RunEnd::Halted);
        }
        self.wait_for_event();
        None
    }

    /// Advances the virtual clock by what retired since `before`.
    pub(super) fn retire_virtual(&self, before: u64) {
        if let Some(v) = &self.virt {
            v.retire_instructions(self.cpu.retired - before);
        }
    }

    /// Halted with interrupts enabled: let time pass until the next device event.
    fn wait_for_event(&mut self) {
        let next = self.board.borrow().next_event_ns();
        use devices::clock::Clock;
        let now = self.board.borrow().clock.now_ns();
        match (&self.virt, next) {
            (Some(v), Some(t)) => v.advance_to(t.max(now + 1)),
            (Some(v), None) => v.advance_ns(1_000_000),
            (None, t) => {
                let wait = t.map_or(1_000_000, |t| t.saturating_sub(now)).clamp(1_000, 1_000_000);
                // Serial input also wakes the guest: wait at most 1 ms at a time; an I/O
                // completion ends the wait at once.
                let _ = self.io_wake.1.recv_timeout(std::time::Duration::from_nanos(wait));
                while self.io_wake.1.try_recv().is_ok() {}
            }
        }
    }

    /// Records a timeline event now.
    pub fn record(&self, label: &str) {
        let r = self.cpu.retired;
        self.tap.borrow_mut().timeline.record(label, r);
    }

    /// A dump of the CPU state, for triple faults and `--verbose`.
    pub fn cpu_dump(&mut self) -> String {
        let _ = self.sync_state();
        let s = &self.cpu.state;
        let names = [
            "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
            "r15",
        ];
        let mut out = String::new();
        for (i, n) in names.iter().enumerate() {
            out += &format!("{n:>4}={:016x}{}", s.gpr[i], if i % 4 == 3 { "\n" } else { " " });
        }
        out += &format!(
            " rip={:016x} rflags={:016x} cpl={} cs={:04x} ss={:04x}\n cr0={:x} cr2={:x} cr3={:x} cr4={:x} efer={:x}\n retired={}\n",
            s.rip,
            s.rflags(),
            s.cpl,
            s.segs[1].selector,
            s.segs[2].selector,
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.efer,
            self.cpu.retired
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line longer than the 16-byte receive FIFO arrives whole, in order, as the guest reads
    /// RBR (PC16550D: a full FIFO overruns; the machine must hold the rest back).
    #[test]
    fn host_input_longer_than_the_fifo_is_not_lost() {
        let cfg = MachineConfig { mem: 16 << 20, deterministic: true, marker: None };
        let mut m = Machine::new(&cfg, Box::new(std::io::sink()), Instant::now()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        m.set_input(rx);
        let line = b"echo a line much longer than sixteen bytes\n".to_vec();
        tx.send(line.clone()).unwrap();
        let mut got = Vec::new();
        for _ in 0..100 {
            m.pump_input();
            // LSR bit 0: data ready; read RBR while it is set.
            while m.cpu.bus.pio_read(0x3fd, 1) & 1 != 0 {
                got.push(m.cpu.bus.pio_read(0x3f8, 1) as u8);
            }
        }
        assert_eq!(got, line);
    }
}
