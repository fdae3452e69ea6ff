//! The gdb remote stub (`--gdb tcp:HOST:PORT`), built on the `gdbstub` crate, for both
//! `strata user` and `strata run`.
//!
//! While gdb holds the machine, guest code runs on tier 0 one instruction at a time whenever a
//! breakpoint or watchpoint is set (checked before and after each instruction: [`points`]); with
//! none set, `continue` runs the program's own loop in short slices (any engine, full speed) and
//! looks at the socket between them for Ctrl-C. So a run without `--gdb` is untouched, and an
//! engine other than tier 0 is only switched away from while gdb needs to see every instruction.
//! The two programs differ only in an [`Inferior`] (`super::user`, `super::system`).
//!
//! Bad input: gdbstub answers a malformed packet with an error reply; a memory access gdb asks
//! for that the guest's page tables do not map is an error reply (EFAULT), never a panic.

pub mod arch;
pub mod engine_points;
pub mod points;
pub mod signals;

use super::{End, GuestRun, Inferior, Prepared};
use arch::StrataX86_64;
use engine_points::Int3Patches;
use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{self, BlockingEventLoop, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, SingleThreadStopReason};
use gdbstub::target::ext::base::singlethread::{SingleThreadBase, SingleThreadResume, SingleThreadSingleStep};
use gdbstub::target::ext::breakpoints::{Breakpoints, HwBreakpoint, HwWatchpoint, SwBreakpoint, WatchKind};
use gdbstub::target::{Target, TargetError, TargetResult};
use points::{Points, Watchpoint};
use std::io::Write;
use std::net::{TcpListener, TcpStream};

/// Parses `tcp:HOST:PORT` (or `HOST:PORT`, or just `:PORT` / `PORT` for the loopback address).
///
/// # Errors
/// A one-line reason.
pub fn parse_endpoint(s: &str) -> Result<String, String> {
    let bad = || format!("--gdb {s}: use tcp:HOST:PORT (e.g. tcp:127.0.0.1:1234)");
    let rest = s.strip_prefix("tcp:").unwrap_or(s);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (if h.is_empty() { "127.0.0.1" } else { h }, p),
        None => ("127.0.0.1", rest),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    Ok(format!("{host}:{port}"))
}

/// Binds the listening socket (before the guest is loaded, so a busy port is reported at once).
///
/// # Errors
/// The one-line error: the address and the host's reason.
pub fn listen(endpoint: &str) -> Result<TcpListener, String> {
    TcpListener::bind(endpoint).map_err(|e| format!("--gdb {endpoint}: cannot listen: {e}"))
}

/// Waits for gdb on `listener`.
///
/// # Errors
/// The accept failed.
pub fn accept(listener: &TcpListener) -> Result<TcpStream, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("strata: waiting for gdb on {addr} (target remote {addr})");
    let (stream, _) = listener.accept().map_err(|e| format!("gdb: accept: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// How the gdb session ended.
pub enum Session {
    /// The guest ended while gdb was attached.
    Ended(End),
    /// gdb detached or went away: the guest goes on running without it.
    Detached,
    /// gdb killed the guest.
    Killed,
}

/// Serves gdb on `stream` until the guest ends or gdb goes away; gives the inferior back.
///
/// gdbstub ends a session on a packet it cannot parse (a bad checksum, an unknown or malformed
/// command). Such a packet is answered here as the remote protocol says — a NAK (`-`, gdb sends
/// it again) for a bad checksum, an error reply for a command that cannot be parsed — and a
/// fresh gdbstub goes on serving the same connection, with the breakpoints and the stopped
/// guest unchanged. (gdbstub's errors say which case it was only in their text.)
///
/// # Errors
/// The guest's engine failed (a host error).
pub fn serve<I: Inferior>(inferior: I, mut stream: TcpStream) -> (Result<Session, String>, I) {
    let mut dbg = Debugger {
        inferior,
        points: Points::default(),
        mode: Mode::Continue,
        ended: None,
        entered_handler: false,
        said: Vec::new(),
    };
    loop {
        let conn = match stream.try_clone() {
            Ok(c) => c,
            Err(e) => return (Err(format!("gdb: {e}")), dbg.inferior),
        };
        let r = GdbStub::new(conn).run_blocking::<EventLoop<I>>(&mut dbg);
        if let Err(e) = &r {
            if !e.is_target_error() && !e.is_connection_error() {
                let text = e.to_string();
                if let Some(answer) = recovery_reply(&text) {
                    if Write::write_all(&mut stream, answer).is_ok() {
                        if !answer.is_empty() {
                            eprintln!("strata: gdb: {text}; answered with an error, the session goes on");
                        }
                        continue;
                    }
                }
            }
        }
        return (session_end(r), dbg.inferior);
    }
}

/// What to send for a packet gdbstub could not handle (its error text), or `None` when the
/// session cannot go on.
fn recovery_reply(error: &str) -> Option<&'static [u8]> {
    // EINVAL; gdbstub acknowledges a packet ('+') only once it has parsed it.
    const EINVAL: &[u8] = b"$E16#ac";
    const ACK_EINVAL: &[u8] = b"+$E16#ac";
    if error.contains("Failed to parse packet") {
        return Some(if error.contains("Checksum") {
            b"-"
        } else if error.contains("UnexpectedHeader") {
            b"" // a stray byte between packets: nothing to answer
        } else {
            ACK_EINVAL
        });
    }
    if error.contains("too much data for the given target") {
        return Some(EINVAL); // parsed and acknowledged, then found too long (a `G` packet)
    }
    if error.contains("oversized packet") {
        return Some(ACK_EINVAL); // its tail arrives as stray bytes, which are skipped
    }
    None
}

fn session_end(
    r: Result<DisconnectReason, gdbstub::stub::GdbStubError<String, std::io::Error>>,
) -> Result<Session, String> {
    match r {
        Ok(DisconnectReason::TargetExited(code)) => Ok(Session::Ended(End::Exited(code))),
        Ok(DisconnectReason::TargetTerminated(sig)) => {
            Ok(Session::Ended(End::Signaled(signals::from_gdb(sig).unwrap_or(0) as u8)))
        }
        Ok(DisconnectReason::Disconnect) => Ok(Session::Detached),
        Ok(DisconnectReason::Kill) => Ok(Session::Killed),
        Err(e) if e.is_target_error() => Err(e.into_target_error().unwrap_or_default()),
        // gdb vanished, or sent what the protocol cannot recover from (a bad checksum: gdbstub
        // does not ask for retransmission): the session is over, the guest is not.
        Err(e) => {
            eprintln!("strata: gdb: {e}; the guest runs on without the debugger");
            Ok(Session::Detached)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Continue,
    Step,
}

/// The gdbstub target: an inferior plus the breakpoints gdb set.
struct Debugger<I: Inferior> {
    inferior: I,
    points: Points,
    mode: Mode,
    /// The guest ended (reported once, then gdb disconnects).
    ended: Option<End>,
    /// Resuming passed a signal to its handler (a step then stops at the handler's start).
    entered_handler: bool,
    /// Why gdb's points ran on tier 0 instead of the engine, as said (once each).
    said: Vec<String>,
}

/// The inferior's memory for [`Int3Patches`].
struct InferiorMemory<'a, I: Inferior>(&'a mut I);

impl<I: Inferior> engine_points::Memory for InferiorMemory<'_, I> {
    fn read(&mut self, la: u64, buf: &mut [u8]) -> bool {
        self.0.read_memory(la, buf)
    }
    fn write(&mut self, la: u64, data: &[u8]) -> bool {
        self.0.write_memory(la, data)
    }
}

/// The event loop's error: the target's or the connection's.
type LoopError = WaitForStopReasonError<String, std::io::Error>;

/// Instructions stepped between looks at the socket for Ctrl-C.
const POLL_EVERY: u32 = 4096;

/// What one debugged instruction did.
enum Stepped {
    /// It ran; no watchpoint fired.
    Ran,
    /// The CPU waited (halted) instead.
    Waited,
    Stop(SingleThreadStopReason<u64>),
}

impl<I: Inferior> Debugger<I> {
    /// Linear address of the next instruction.
    fn next_la(&mut self) -> u64 {
        let s = &self.inferior.cpu().state;
        let cs_base = if s.code_bits() == 64 { 0 } else { s.segs[1].base };
        s.rip.wrapping_add(cs_base)
    }

    /// One instruction, with the breakpoint at it checked first unless `at_resume` (the
    /// instruction gdb resumes from runs even if a breakpoint is set on it).
    fn step_one(&mut self, at_resume: bool) -> Result<Stepped, String> {
        match self.inferior.prepare_step()? {
            Prepared::Ended(end) => return Ok(Stepped::Stop(self.end(end))),
            Prepared::Waited => return Ok(Stepped::Waited),
            Prepared::Ready => {}
        }
        let la = self.next_la();
        if !at_resume {
            match self.points.break_at(la) {
                Some(true) => return Ok(Stepped::Stop(SingleThreadStopReason::HwBreak(()))),
                Some(false) => return Ok(Stepped::Stop(SingleThreadStopReason::SwBreak(()))),
                None => {}
            }
        }
        let accesses = if self.points.watches.is_empty() {
            Vec::new()
        } else {
            let mut bytes = [0u8; 15];
            // An instruction near the end of a mapping: fetch what can be fetched.
            let mut n = bytes.len();
            while n > 0 && !self.inferior.read_memory(la, &mut bytes[..n]) {
                n -= 1;
            }
            let s = &self.inferior.cpu().state;
            self.points.predict(s, &bytes[..n])
        };
        let before = self.inferior.cpu().retired;
        if let Some(end) = self.inferior.execute_step()? {
            return Ok(Stepped::Stop(self.end(end)));
        }
        if let Some(sig) = self.inferior.stopped_signal() {
            return Ok(Stepped::Stop(SingleThreadStopReason::Signal(signals::to_gdb(sig))));
        }
        if self.inferior.cpu().retired != before {
            if let Some((kind, addr)) = self.points.watch_hit(&accesses) {
                return Ok(Stepped::Stop(SingleThreadStopReason::Watch { tid: (), kind, addr }));
            }
        }
        Ok(Stepped::Ran)
    }

    /// Continuing with breakpoints or watchpoints on an engine that stops at them itself
    /// (KVM), placed as [`engine_points::plan`] says: the instruction gdb resumes from runs on
    /// tier 0 (a breakpoint on it must not fire again), then the engine runs, with the INT3s
    /// in memory only meanwhile, until a stop, the guest's end, or a byte from gdb. `None`
    /// when the engine cannot (the caller steps on tier 0; the reason is said once).
    fn continue_on_guest_debug(
        &mut self,
        incoming: &mut impl FnMut() -> Result<Option<u8>, LoopError>,
    ) -> Result<Option<run_blocking::Event<SingleThreadStopReason<u64>>>, LoopError> {
        use run_blocking::Event;
        if self.points.is_empty() {
            return Ok(None);
        }
        let Some(kinds) = self.inferior.guest_debug_kinds() else { return Ok(None) };
        let plan = match engine_points::plan(&self.points, &kinds) {
            Ok(plan) => plan,
            Err(why) => {
                self.say_on_tier0(&why);
                return Ok(None);
            }
        };
        if let Stepped::Stop(r) = self.step_one(true).map_err(WaitForStopReasonError::Target)? {
            return Ok(Some(Event::TargetStopped(r)));
        }
        loop {
            let patches = Int3Patches::insert(&mut InferiorMemory(&mut self.inferior), &plan.int3);
            let run = self.inferior.run_guest_debug(plan.request());
            patches.remove(&mut InferiorMemory(&mut self.inferior));
            match run.map_err(WaitForStopReasonError::Target)? {
                None => {
                    self.say_on_tier0("the engine refused this set of breakpoints and watchpoints");
                    return Ok(None);
                }
                Some(GuestRun::Stopped(hit)) => return Ok(Some(Event::TargetStopped(self.stop_for(&plan, &hit)))),
                Some(GuestRun::Ended(end)) => return Ok(Some(Event::TargetStopped(self.end(end)))),
                Some(GuestRun::Slice) => {
                    if let Some(sig) = self.inferior.stopped_signal() {
                        return Ok(Some(Event::TargetStopped(SingleThreadStopReason::Signal(signals::to_gdb(sig)))));
                    }
                    if let Some(b) = incoming()? {
                        return Ok(Some(Event::IncomingData(b)));
                    }
                }
            }
        }
    }

    /// What gdb is told for the engine's debug stop `hit` under `plan`: the watchpoint DR6
    /// names, else the breakpoint at the next instruction (an INT3's stop leaves RIP at it);
    /// a stop that is none of gdb's (the guest's own INT3 or debug registers) is a SIGTRAP.
    fn stop_for(&mut self, plan: &engine_points::Plan, hit: &emu::engine::DebugHit) -> SingleThreadStopReason<u64> {
        if hit.vector == 1 {
            if let Some(w) = plan.watch_hit(hit) {
                return SingleThreadStopReason::Watch { tid: (), kind: w.kind, addr: w.addr };
            }
        }
        let la = self.next_la();
        match self.points.break_at(la) {
            Some(true) => SingleThreadStopReason::HwBreak(()),
            Some(false) => SingleThreadStopReason::SwBreak(()),
            None => SingleThreadStopReason::Signal(Signal::SIGTRAP),
        }
    }

    /// Says once per reason why gdb's points run on tier 0 rather than on the engine.
    fn say_on_tier0(&mut self, why: &str) {
        if !self.said.iter().any(|s| s == why) {
            eprintln!("strata: gdb: {why}: this continue steps on tier 0 while they are set");
            self.said.push(why.to_string());
        }
    }

    /// Resuming: acts on the signal the guest stopped for as gdb says (`signal`, gdb's number:
    /// pass it on, another, or none), before anything runs.
    fn pass_signal(&mut self, signal: Option<Signal>) {
        if self.inferior.stopped_signal().is_none() {
            return;
        }
        let rip = self.inferior.cpu().state.rip;
        if let Some(end) = self.inferior.resume_signal(signal.and_then(signals::from_gdb)) {
            self.ended = Some(end);
        }
        self.entered_handler = self.inferior.cpu().state.rip != rip;
    }

    fn end(&mut self, end: End) -> SingleThreadStopReason<u64> {
        self.ended = Some(end);
        match end {
            End::Exited(code) => SingleThreadStopReason::Exited(code),
            End::Signaled(sig) => SingleThreadStopReason::Terminated(signals::to_gdb(sig.into())),
        }
    }
}

/// The blocking event loop: runs the guest as gdb asked until a stop or a byte from gdb.
struct EventLoop<I>(std::marker::PhantomData<I>);

type WaitResult<I> = Result<
    run_blocking::Event<SingleThreadStopReason<u64>>,
    WaitForStopReasonError<<Debugger<I> as Target>::Error, <TcpStream as Connection>::Error>,
>;

impl<I: Inferior> BlockingEventLoop for EventLoop<I> {
    type Target = Debugger<I>;
    type Connection = TcpStream;
    type StopReason = SingleThreadStopReason<u64>;

    fn wait_for_stop_reason(target: &mut Debugger<I>, conn: &mut TcpStream) -> WaitResult<I> {
        use run_blocking::Event;
        let stopped = |r| Ok(Event::TargetStopped(r));
        if let Some(end) = target.ended {
            return stopped(target.end(end));
        }
        let mut incoming = || -> Result<Option<u8>, LoopError> {
            match conn.peek() {
                Ok(Some(_)) => conn.read().map(Some).map_err(WaitForStopReasonError::Connection),
                Ok(None) => Ok(None),
                Err(e) => Err(WaitForStopReasonError::Connection(e)),
            }
        };
        let target_err = WaitForStopReasonError::Target;
        if target.mode == Mode::Step {
            if std::mem::take(&mut target.entered_handler) {
                // A signal handler was entered on the way: ptrace's step stops at its start.
                return stopped(SingleThreadStopReason::DoneStep);
            }
            // On an engine with its own single-step (KVM), unless a watchpoint must be checked
            // (tier 0 does that): a slice that ends without a step (the CPU halted) looks at
            // gdb's socket and goes on.
            if target.points.watches.is_empty() {
                let step = || emu::engine::GuestDebug { single_step: true, ..Default::default() };
                while let Some(run) = target.inferior.run_guest_debug(step()).map_err(target_err)? {
                    match run {
                        GuestRun::Stopped(_) => return stopped(SingleThreadStopReason::DoneStep),
                        GuestRun::Ended(end) => return stopped(target.end(end)),
                        GuestRun::Slice => {
                            if let Some(sig) = target.inferior.stopped_signal() {
                                return stopped(SingleThreadStopReason::Signal(signals::to_gdb(sig)));
                            }
                            if let Some(b) = incoming()? {
                                return Ok(Event::IncomingData(b));
                            }
                        }
                    }
                }
            }
            let mut first = true;
            loop {
                match target.step_one(first).map_err(target_err)? {
                    Stepped::Ran => return stopped(SingleThreadStopReason::DoneStep),
                    Stepped::Stop(r) => return stopped(r),
                    Stepped::Waited => {
                        first = false;
                        if let Some(b) = incoming()? {
                            return Ok(Event::IncomingData(b));
                        }
                    }
                }
            }
        }
        let mut first = true;
        let mut n = 0u32;
        if let Some(r) = target.continue_on_guest_debug(&mut incoming)? {
            return Ok(r);
        }
        loop {
            if target.points.is_empty() {
                if let Some(end) = target.inferior.run_free().map_err(target_err)? {
                    return stopped(target.end(end));
                }
                if let Some(sig) = target.inferior.stopped_signal() {
                    return stopped(SingleThreadStopReason::Signal(signals::to_gdb(sig)));
                }
                n = POLL_EVERY;
            } else {
                match target.step_one(first).map_err(target_err)? {
                    Stepped::Stop(r) => return stopped(r),
                    Stepped::Ran | Stepped::Waited => {}
                }
                first = false;
                n += 1;
            }
            if n >= POLL_EVERY {
                n = 0;
                if let Some(b) = incoming()? {
                    return Ok(Event::IncomingData(b));
                }
            }
        }
    }

    fn on_interrupt(_target: &mut Debugger<I>) -> Result<Option<SingleThreadStopReason<u64>>, String> {
        // The guest is already stopped (it runs only inside `wait_for_stop_reason`).
        Ok(Some(SingleThreadStopReason::Signal(Signal::SIGINT)))
    }
}

impl<I: Inferior> Target for Debugger<I> {
    type Arch = StrataX86_64;
    type Error = String;

    fn base_ops(&mut self) -> gdbstub::target::ext::base::BaseOps<'_, StrataX86_64, String> {
        gdbstub::target::ext::base::BaseOps::SingleThread(self)
    }

    fn support_breakpoints(&mut self) -> Option<gdbstub::target::ext::breakpoints::BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<gdbstub::target::ext::monitor_cmd::MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    // Software breakpoints are addresses we compare, not INT3 bytes written into the guest.
    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    // Acknowledged mode throughout, so a gdbstub restarted after an unparseable packet (see
    // `serve`) and gdb agree on acknowledgements.
    fn use_no_ack_mode(&self) -> bool {
        false
    }
}

impl<I: Inferior> gdbstub::target::ext::monitor_cmd::MonitorCmd for Debugger<I> {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: gdbstub::target::ext::monitor_cmd::ConsoleOutput<'_>,
    ) -> Result<(), String> {
        let text = match self.inferior.monitor(&String::from_utf8_lossy(cmd)) {
            Ok(t) => t,
            Err(e) => format!("error: {e}\n"),
        };
        gdbstub::output!(out, "{text}");
        Ok(())
    }
}

/// EFAULT, the errno gdb shows as "Cannot access memory".
const EFAULT: u8 = 14;

impl<I: Inferior> SingleThreadBase for Debugger<I> {
    fn read_registers(&mut self, regs: &mut arch::StrataRegs) -> TargetResult<(), Self> {
        *regs = arch::from_state(&self.inferior.cpu().state);
        Ok(())
    }

    fn write_registers(&mut self, regs: &arch::StrataRegs) -> TargetResult<(), Self> {
        arch::to_state(regs, &mut self.inferior.cpu().state);
        Ok(())
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8]) -> TargetResult<usize, Self> {
        if self.inferior.read_memory(start, data) {
            return Ok(data.len());
        }
        // Part of the range may be mapped: give gdb the readable prefix, page by page.
        let mut done = 0usize;
        while done < data.len() {
            let la = start.wrapping_add(done as u64);
            let n = ((0x1000 - (la & 0xfff)) as usize).min(data.len() - done);
            if !self.inferior.read_memory(la, &mut data[done..done + n]) {
                break;
            }
            done += n;
        }
        if done == 0 {
            return Err(TargetError::Errno(EFAULT));
        }
        Ok(done)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8]) -> TargetResult<(), Self> {
        if self.inferior.write_memory(start, data) {
            Ok(())
        } else {
            Err(TargetError::Errno(EFAULT))
        }
    }

    fn support_resume(&mut self) -> Option<gdbstub::target::ext::base::singlethread::SingleThreadResumeOps<'_, Self>> {
        Some(self)
    }
}

impl<I: Inferior> SingleThreadResume for Debugger<I> {
    fn resume(&mut self, signal: Option<Signal>) -> Result<(), String> {
        self.mode = Mode::Continue;
        self.pass_signal(signal);
        self.entered_handler = false;
        Ok(())
    }

    fn support_single_step(
        &mut self,
    ) -> Option<gdbstub::target::ext::base::singlethread::SingleThreadSingleStepOps<'_, Self>> {
        Some(self)
    }
}

impl<I: Inferior> SingleThreadSingleStep for Debugger<I> {
    fn step(&mut self, signal: Option<Signal>) -> Result<(), String> {
        self.mode = Mode::Step;
        self.pass_signal(signal);
        Ok(())
    }
}

impl<I: Inferior> Breakpoints for Debugger<I> {
    fn support_sw_breakpoint(&mut self) -> Option<gdbstub::target::ext::breakpoints::SwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_breakpoint(&mut self) -> Option<gdbstub::target::ext::breakpoints::HwBreakpointOps<'_, Self>> {
        Some(self)
    }
    fn support_hw_watchpoint(&mut self) -> Option<gdbstub::target::ext::breakpoints::HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

/// Adds `addr` to `list` once; true.
fn add(list: &mut Vec<u64>, addr: u64) -> bool {
    if !list.contains(&addr) {
        list.push(addr);
    }
    true
}

/// Removes `addr` from `list`; false when it was not there.
fn remove(list: &mut Vec<u64>, addr: u64) -> bool {
    let before = list.len();
    list.retain(|&a| a != addr);
    list.len() != before
}

impl<I: Inferior> SwBreakpoint for Debugger<I> {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(add(&mut self.points.soft, addr))
    }
    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.points.soft, addr))
    }
}

impl<I: Inferior> HwBreakpoint for Debugger<I> {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(add(&mut self.points.hard, addr))
    }
    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        Ok(remove(&mut self.points.hard, addr))
    }
}

impl<I: Inferior> HwWatchpoint for Debugger<I> {
    fn add_hw_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> TargetResult<bool, Self> {
        if len == 0 {
            return Ok(false);
        }
        self.points.watches.push(Watchpoint { addr, len, kind });
        Ok(true)
    }
    fn remove_hw_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> TargetResult<bool, Self> {
        let w = Watchpoint { addr, len, kind };
        match self.points.watches.iter().position(|x| *x == w) {
            Some(i) => {
                self.points.watches.remove(i);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_endpoint;

    #[test]
    fn endpoints() {
        assert_eq!(parse_endpoint("tcp:127.0.0.1:1234").unwrap(), "127.0.0.1:1234");
        assert_eq!(parse_endpoint("tcp::1234").unwrap(), "127.0.0.1:1234");
        assert_eq!(parse_endpoint("1234").unwrap(), "127.0.0.1:1234");
        assert!(parse_endpoint("tcp:host:port").is_err());
    }
}
