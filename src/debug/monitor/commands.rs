//! The monitor's commands, QEMU's habit, on a stopped or running PC (the machine loop is not
//! inside `Machine::run` while a command runs). Each returns text; errors are one line.

use super::super::debug_translate;
use emu::engine::EngineKind;
use emu::machine::step::StepStart;
use emu::machine::{Machine, RunEnd};
use emu::state::ctrl;
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use std::fmt::Write as _;

/// What a command asks of the loop around it.
#[derive(Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep the machine as it is (running or stopped).
    None,
    Stop,
    Continue,
    Quit,
    /// The guest ended while `step` ran it.
    Ended(RunEnd),
    /// Switch the replies to JSON.
    Json,
}

/// Runs one command line; the text to show and what the loop should do.
///
/// # Errors
/// A one-line message for an unknown command or a bad argument.
pub fn execute(m: &mut Machine, line: &str) -> Result<(String, Control), String> {
    let line = line.trim();
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let none = |s: String| Ok((s, Control::None));
    match cmd {
        "" => none(String::new()),
        "help" => none(HELP.to_string()),
        "info" => info(m, rest).and_then(none),
        "stop" => Ok((String::new(), Control::Stop)),
        "cont" | "c" => Ok((String::new(), Control::Continue)),
        "step" => step(m, rest),
        "savevm" => savevm(m, rest).and_then(none),
        "switch" => switch(m, rest).and_then(none),
        "quit" | "q" => Ok((String::new(), Control::Quit)),
        "json" => Ok((String::new(), Control::Json)),
        _ if cmd.starts_with("x/") || cmd == "x" => examine(m, cmd, rest, false).and_then(none),
        _ if cmd.starts_with("xp/") || cmd == "xp" => examine(m, cmd, rest, true).and_then(none),
        _ => Err(format!("unknown command {cmd:?} (try help)")),
    }
}

const HELP: &str =
    "info registers | info cpu | info tlb ADDR | info blocks [ADDR] | info pic | info lapic | info ioapic | info pci | info uart
x/NFU ADDR (virtual) | xp/NFU ADDR (physical): N count, F x d u i, U b h w g
stop | cont | step [N] | savevm FILE | switch interp|kvm | json | quit";

fn number(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    v.map_err(|_| format!("{t:?} is not a number"))
}

fn info(m: &mut Machine, what: &str) -> Result<String, String> {
    let (what, arg) = what.split_once(char::is_whitespace).unwrap_or((what, ""));
    m.sync_state().map_err(|e| e.to_string())?;
    let board = m.board.clone();
    let b = board.borrow();
    Ok(match what {
        "registers" | "reg" => m.cpu_dump(),
        "cpu" => cpu_info(m),
        "tlb" => tlb(m, number(arg)?),
        "blocks" => {
            drop(b);
            let la = if arg.is_empty() {
                m.cpu.state.segs[emu::state::SegReg::Cs as usize].base.wrapping_add(m.cpu.state.rip)
            } else {
                number(arg)?
            };
            return Ok(blocks(m, la));
        }
        "pic" => format!("{:#x?}\n", b.pic.borrow().state()),
        "lapic" => format!("{:#x?}\n", b.lapic.borrow().state()),
        "ioapic" => format!("{:#x?}\n", b.ioapic.borrow().state()),
        "pci" => format!("{:#x?}\n", b.pci.borrow().save_state()),
        "uart" => format!("{:#x?}\n", b.uart.borrow().state()),
        _ => return Err(format!("info {what}: use registers, cpu, tlb ADDR, pic, lapic, ioapic, pci or uart")),
    })
}

/// Mode, privilege, paging, engine.
fn cpu_info(m: &Machine) -> String {
    let s = &m.cpu.state;
    let mode = match s.code_bits() {
        16 if s.cr0 & ctrl::CR0_PE == 0 => "real mode",
        16 => "protected mode, 16-bit code",
        32 if s.efer & ctrl::EFER_LMA != 0 => "compatibility mode",
        32 => "protected mode, 32-bit code",
        _ => "long mode, 64-bit code",
    };
    let paging = if s.cr0 & ctrl::CR0_PG == 0 {
        "off"
    } else if s.efer & ctrl::EFER_LMA != 0 {
        "4-level"
    } else {
        "32-bit"
    };
    format!(
        "mode: {mode}\ncpl: {}\npaging: {paging}\nhalted: {}\nengine: {}\nretired: {}\n",
        s.cpl,
        m.is_halted(),
        m.active_engine(),
        m.cpu.retired
    )
}

/// The guest page walk of `la` (SDM Vol. 3, 4.5), level by level.
fn tlb(m: &Machine, la: u64) -> String {
    let s = &m.cpu.state;
    let mut out = format!("{la:#x}:");
    if s.cr0 & ctrl::CR0_PG == 0 {
        let _ = writeln!(out, " paging off, physical {la:#x}");
        return out;
    }
    if s.efer & ctrl::EFER_LMA == 0 {
        let _ = writeln!(out, " 32-bit paging is not modelled");
        return out;
    }
    out.push('\n');
    const ADDR: u64 = 0x000f_ffff_ffff_f000;
    const NAMES: [&str; 4] = ["pte", "pde", "pdpte", "pml4e"];
    let mut table = s.cr3 & ADDR;
    for level in (1..=4u32).rev() {
        let shift = 12 + 9 * (level - 1);
        let index = (la >> shift) & 0x1ff;
        let pa = table + index * 8;
        let entry = m.cpu.ram.slice(pa, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let Some(e) = entry else {
            let _ = writeln!(out, "  {} [{index}] at {pa:#x}: outside RAM", NAMES[level as usize - 1]);
            return out;
        };
        let _ = writeln!(out, "  {} [{index}] at {pa:#x} = {e:#018x} {}", NAMES[level as usize - 1], flags(e));
        if e & 1 == 0 {
            let _ = writeln!(out, "  not present");
            return out;
        }
        if level == 1 || (level <= 3 && e & (1 << 7) != 0) {
            let mask = (1u64 << shift) - 1;
            let _ = writeln!(out, "  physical {:#x}", (e & ADDR & !mask) | (la & mask));
            return out;
        }
        table = e & ADDR;
    }
    out
}

fn flags(e: u64) -> String {
    let mut f = Vec::new();
    for (bit, name) in [(0, "P"), (1, "RW"), (2, "US"), (5, "A"), (6, "D"), (7, "PS"), (8, "G"), (63, "NX")] {
        if e >> bit & 1 != 0 {
            f.push(name);
        }
    }
    f.join(" ")
}

/// `info blocks [ADDR]`: the decoded blocks (of the active engine: tier 0 or the JIT) whose code covers linear address `la` (default: the
/// current RIP), each with its executions, whether the JIT translated it, and its instructions
/// as iced-x86 decodes the bytes in guest memory now (a store into them would have dropped the
/// block).
fn blocks(m: &Machine, la: u64) -> String {
    let mut out = String::new();
    for b in m.block_cache().blocks() {
        // A cheap bound first (15 bytes per instruction at most), then the real length.
        if la < b.la || la - b.la >= 15 * b.instrs.len() as u64 {
            continue;
        }
        let Some(code) = disassemble(m, b.la, b.mode & 0xff, b.instrs.len()) else { continue };
        if la >= code.last().map_or(b.la, |(ip, len, _)| ip + len) {
            continue;
        }
        let _ = writeln!(
            out,
            "block {:#x}: {} instructions, {} executions, {}",
            b.la,
            b.instrs.len(),
            b.executions(),
            if b.translation().is_some() { "translated" } else { "not translated" }
        );
        for (ip, _, text) in code {
            let _ = writeln!(out, "  {ip:#x}: {text}");
        }
    }
    if out.is_empty() {
        let _ = writeln!(out, "no decoded block covers {la:#x}");
    }
    out
}

/// `count` instructions at linear address `la` in `bits`-bit code: (address, length, text);
/// `None` if the bytes are not mapped.
fn disassemble(m: &Machine, la: u64, bits: u32, count: usize) -> Option<Vec<(u64, u64, String)>> {
    let mut bytes = Vec::new();
    for i in 0..15 * count as u64 {
        match debug_translate(&m.cpu, la.wrapping_add(i)).and_then(|pa| m.cpu.ram.slice(pa, 1)) {
            Some(b) => bytes.push(b[0]),
            None if i == 0 => return None,
            None => break,
        }
    }
    let mut decoder = Decoder::with_ip(bits, &bytes, la, DecoderOptions::NONE);
    let mut formatter = formatter();
    let mut out = Vec::new();
    while out.len() < count && decoder.can_decode() {
        let ins = decoder.decode();
        let mut text = String::new();
        formatter.format(&ins, &mut text);
        out.push((ins.ip(), ins.len() as u64, text));
    }
    Some(out)
}

fn formatter() -> IntelFormatter {
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_hex_prefix("0x");
    formatter.options_mut().set_hex_suffix("");
    formatter.options_mut().set_uppercase_hex(false);
    formatter
}

/// `x/NFU ADDR` and `xp/NFU ADDR`.
fn examine(m: &mut Machine, cmd: &str, addr: &str, physical: bool) -> Result<String, String> {
    let spec = cmd.split_once('/').map_or("", |(_, s)| s);
    let digits: String = spec.chars().take_while(char::is_ascii_digit).collect();
    let count: usize = if digits.is_empty() { 1 } else { digits.parse().map_err(|_| format!("{cmd}: bad count"))? };
    let mut format = 'x';
    let mut unit = 4usize;
    for c in spec[digits.len()..].chars() {
        match c {
            'x' | 'd' | 'u' | 'i' => format = c,
            'b' => unit = 1,
            'h' => unit = 2,
            'w' => unit = 4,
            'g' => unit = 8,
            _ => return Err(format!("{cmd}: unknown format or unit {c:?}")),
        }
    }
    if count > 4096 {
        return Err(format!("{cmd}: at most 4096 items"));
    }
    let start = number(addr)?;
    m.sync_state().map_err(|e| e.to_string())?;
    let bytes_needed = if format == 'i' { count * 15 } else { count * unit };
    let mut bytes = Vec::with_capacity(bytes_needed);
    for i in 0..bytes_needed as u64 {
        let a = start.wrapping_add(i);
        let pa = if physical { Some(a) } else { debug_translate(&m.cpu, a) };
        match pa.and_then(|pa| m.cpu.ram.slice(pa, 1)) {
            Some(b) => bytes.push(b[0]),
            None if i == 0 => return Err(format!("{start:#x}: not mapped")),
            None => break,
        }
    }
    let mut out = String::new();
    if format == 'i' {
        let bits = m.cpu.state.code_bits();
        let mut decoder = Decoder::with_ip(bits, &bytes, start, DecoderOptions::NONE);
        let mut formatter = formatter();
        for _ in 0..count {
            if !decoder.can_decode() {
                break;
            }
            let ins = decoder.decode();
            let mut text = String::new();
            formatter.format(&ins, &mut text);
            let _ = writeln!(out, "{:#x}: {text}", ins.ip());
        }
        return Ok(out);
    }
    for (i, chunk) in bytes.chunks_exact(unit).enumerate() {
        if i % (16 / unit) == 0 {
            if i > 0 {
                out.push('\n');
            }
            let _ = write!(out, "{:#x}:", start.wrapping_add((i * unit) as u64));
        }
        let mut v = 0u64;
        for (k, b) in chunk.iter().enumerate() {
            v |= u64::from(*b) << (8 * k);
        }
        let _ = match format {
            'd' => write!(out, " {}", sign_extend(v, unit)),
            'u' => write!(out, " {v}"),
            _ => write!(out, " {v:#0w$x}", w = 2 * unit + 2),
        };
    }
    out.push('\n');
    Ok(out)
}

fn sign_extend(v: u64, unit: usize) -> i64 {
    let shift = 64 - 8 * unit as u32;
    ((v << shift) as i64) >> shift
}

/// `step [N]`: N instructions (default 1) on tier 0, one at a time through the machine loop.
fn step(m: &mut Machine, arg: &str) -> Result<(String, Control), String> {
    let n = if arg.is_empty() { 1 } else { number(arg)? };
    m.switch_engine(EngineKind::Interp).map_err(|e| e.to_string())?;
    let mut done = 0;
    while done < n {
        match m.begin_step().map_err(|e| e.to_string())? {
            StepStart::Ended(end) => return Ok((format!("the guest ended: {end:?}\n"), Control::Ended(end))),
            StepStart::Waited => continue,
            StepStart::Ready { .. } => {}
        }
        if m.step_instruction() == Some(emu::engine::Exit::TripleFault) {
            return Ok(("triple fault\n".into(), Control::Ended(RunEnd::TripleFault)));
        }
        done += 1;
    }
    let s = &m.cpu.state;
    Ok((format!("rip={:#x} retired={}\n", s.rip, m.cpu.retired), Control::Stop))
}

fn savevm(m: &mut Machine, path: &str) -> Result<String, String> {
    if path.is_empty() {
        return Err("savevm FILE".into());
    }
    let info = m.save_snapshot(path.as_ref()).map_err(|e| e.to_string())?;
    Ok(format!("saved to {path} ({} MiB RAM)\n", info.ram_bytes >> 20))
}

fn switch(m: &mut Machine, name: &str) -> Result<String, String> {
    let kind = match name {
        "interp" => EngineKind::Interp,
        "kvm" => EngineKind::Kvm,
        _ => return Err(format!("switch {name}: use interp or kvm")),
    };
    m.switch_engine(kind).map_err(|e| e.to_string())?;
    Ok(format!("engine: {kind}\n"))
}
