//! The monitor (`strata run --monitor unix:PATH|tcp:HOST:PORT`), QEMU's habit: a line-based
//! command interface to the running PC for people and scripts ([`commands`]: registers, memory,
//! page walks, devices, stop/cont/step, savevm, switch, quit).
//!
//! It lives in the machine loop's thread: the machine runs in slices of host time
//! (`Watch::HostMs`), and between them the monitor accepts a client and reads what it sent
//! (non-blocking), so a run without `--monitor` is untouched. One client at a time; one that
//! disconnects leaves the guest as it was (running or stopped) and another may connect.
//!
//! Replies: text, each followed by the `(strata) ` prompt; after the `json` command, one JSON
//! object per line (`{"ok":true,"output":"..."}` or `{"ok":false,"error":"..."}`), and a
//! request may be a plain command line or `{"command":"..."}`. A malformed command or request
//! gets an error reply, never a panic.

pub mod commands;
pub mod console;
pub mod terminal;

use commands::Control;
use emu::machine::{Machine, RunEnd, Watch};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};

/// Host time the machine runs between looks at the monitor's socket.
const SLICE_MS: u64 = 20;
/// A request line longer than this is refused (the client is dropped).
const MAX_LINE: usize = 64 * 1024;
const PROMPT: &str = "(strata) ";

enum Listener {
    Unix(UnixListener, String),
    Tcp(TcpListener),
}

enum Client {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Unix(s) => s.read(buf),
            Client::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Client::Unix(s) => s.write(buf),
            Client::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Client::Unix(s) => s.flush(),
            Client::Tcp(s) => s.flush(),
        }
    }
}

/// The monitor: its socket and the connected client.
pub struct Monitor {
    listener: Listener,
    client: Option<(Client, Vec<u8>)>,
    json: bool,
}

/// How a monitored run ended.
pub enum Outcome {
    Ended(RunEnd),
    Quit,
}

impl Monitor {
    /// Binds `unix:PATH` or `tcp:HOST:PORT`.
    ///
    /// # Errors
    /// A bad endpoint or a socket that cannot be bound (one line).
    pub fn bind(endpoint: &str) -> Result<Monitor, String> {
        let listener = if let Some(path) = endpoint.strip_prefix("unix:") {
            let l = UnixListener::bind(path).map_err(|e| format!("--monitor {endpoint}: cannot listen: {e}"))?;
            Listener::Unix(l, path.to_string())
        } else if let Some(addr) = endpoint.strip_prefix("tcp:") {
            Listener::Tcp(TcpListener::bind(addr).map_err(|e| format!("--monitor {endpoint}: cannot listen: {e}"))?)
        } else {
            return Err(format!("--monitor {endpoint}: use unix:PATH or tcp:HOST:PORT"));
        };
        match &listener {
            Listener::Unix(l, _) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        }
        .map_err(|e| format!("--monitor {endpoint}: {e}"))?;
        eprintln!("strata: monitor on {endpoint}");
        Ok(Monitor { listener, client: None, json: false })
    }

    /// Runs the machine under the monitor until the guest ends or `quit`; `stopped`: start
    /// stopped (QEMU's -S), until `cont`; `limit`: the run ends once that many instructions
    /// have retired in all (`--max-instructions`; `u64::MAX`: no limit).
    ///
    /// # Errors
    /// The engine failed.
    pub fn run(&mut self, m: &mut Machine, stopped: bool, limit: u64) -> Result<Outcome, String> {
        let mut running = !stopped;
        loop {
            for control in self.poll(m) {
                match control {
                    Control::Stop => running = false,
                    Control::Continue => running = true,
                    Control::Quit => return Ok(Outcome::Quit),
                    Control::Ended(end) => return Ok(Outcome::Ended(end)),
                    Control::None | Control::Json => {}
                }
            }
            if running {
                m.set_watch(Some(Watch::HostMs(SLICE_MS)));
                let end = m.run(limit);
                m.set_watch(None);
                if end == RunEnd::EngineError {
                    return Err(m.engine_error.clone().unwrap_or_default());
                }
                if end != RunEnd::Watch {
                    return Ok(Outcome::Ended(end));
                }
            } else {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    /// Accepts a client if none is connected, then runs every complete line it sent.
    fn poll(&mut self, m: &mut Machine) -> Vec<Control> {
        if self.client.is_none() {
            let accepted = match &self.listener {
                Listener::Unix(l, _) => l.accept().map(|(s, _)| s.set_nonblocking(true).map(|()| Client::Unix(s))),
                Listener::Tcp(l) => l.accept().map(|(s, _)| s.set_nonblocking(true).map(|()| Client::Tcp(s))),
            };
            if let Ok(Ok(mut c)) = accepted {
                self.json = false;
                if c.write_all(format!("Strata monitor; type help\n{PROMPT}").as_bytes()).is_ok() {
                    self.client = Some((c, Vec::new()));
                }
            }
        }
        let mut controls = Vec::new();
        let Some((client, buf)) = &mut self.client else { return controls };
        let mut gone = false;
        let mut chunk = [0u8; 4096];
        loop {
            match client.read(&mut chunk) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        let mut lines = Vec::new();
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        if buf.len() > MAX_LINE {
            gone = true;
        }
        for line in lines {
            let (reply, control) = self.answer(m, &line);
            if let Some((client, _)) = &mut self.client {
                if client.write_all(reply.as_bytes()).is_err() {
                    gone = true;
                }
            }
            controls.push(control);
        }
        if gone {
            // The guest goes on as it was; another client may connect.
            self.client = None;
        }
        controls
    }

    /// The reply to one request line (text or JSON) and what the loop should do.
    fn answer(&mut self, m: &mut Machine, line: &str) -> (String, Control) {
        let command = if self.json && line.trim_start().starts_with('{') {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => match v.get("command").and_then(|c| c.as_str()) {
                    Some(c) => c.to_string(),
                    None => return (json_reply(Err("a request is {\"command\": \"...\"}".into())), Control::None),
                },
                Err(e) => return (json_reply(Err(format!("bad JSON: {e}"))), Control::None),
            }
        } else {
            line.to_string()
        };
        let result = commands::execute(m, &command);
        let control = result.as_ref().map_or(Control::None, |(_, c)| match c {
            Control::Stop => Control::Stop,
            Control::Continue => Control::Continue,
            Control::Quit => Control::Quit,
            Control::Ended(e) => Control::Ended(*e),
            Control::Json => Control::Json,
            Control::None => Control::None,
        });
        if control == Control::Json {
            self.json = true;
        }
        let reply = if self.json {
            json_reply(result.map(|(text, _)| text))
        } else {
            match result {
                Ok((text, _)) => format!("{text}{PROMPT}"),
                Err(e) => format!("error: {e}\n{PROMPT}"),
            }
        };
        (reply, control)
    }
}

fn json_reply(r: Result<String, String>) -> String {
    let v = match r {
        Ok(output) => serde_json::json!({ "ok": true, "output": output }),
        Err(error) => serde_json::json!({ "ok": false, "error": error }),
    };
    format!("{v}\n")
}

impl Drop for Monitor {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
    }
}
