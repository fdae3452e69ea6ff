//! `lockstep`: tier 0 against KVM, one instruction at a time, from a kernel's first instruction
//! or after N tier-0 instructions; prints the first divergence and a summary line.
//!
//! ```text
//! lockstep (--kernel K [--initrd I] [--append A] [--mem 256M] | --restore SNAPSHOT)
//!          [--skip N] [--steps M] [--every E] [--full-check-every S] [--serial PATH]
//! ```
//! `--every E` samples a whole run: after each lockstep window of M steps, tier 0 runs E
//! instructions alone, then the next window starts, until the guest stops or diverges.
//! `--restore` starts from a snapshot file (`strata run --save ... --save-at ...`), restored
//! onto a deterministic machine; `--skip` then runs tier 0 alone for N more instructions.
//! Exit status: 0 no divergence, 1 a divergence, 2 usage or host error (no KVM, say).

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(diverged) => std::process::ExitCode::from(diverged as u8),
        Err(e) => {
            eprintln!("lockstep: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn main() {
    eprintln!("lockstep: needs KVM, which exists only on Linux x86-64 hosts");
    std::process::exit(2);
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn parse_count(s: &str) -> Result<u64, String> {
    let (num, mul) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 1_000),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 1_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().map(|n| n * mul).map_err(|e| format!("{s}: {e}"))
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn real_main() -> Result<bool, String> {
    use conformance::lockstep::{boot, Config, End, Lockstep};
    use std::path::PathBuf;
    let mut kernel = None;
    let mut initrd = None;
    let mut append = "console=ttyS0".to_string();
    let mut restore: Option<PathBuf> = None;
    let mut mem = 256u64 << 20;
    let mut skip = 0u64;
    let mut every: Option<u64> = None;
    let mut cfg = Config { steps: 1_000_000, ..Config::default() };
    let mut serial: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--kernel" => kernel = Some(PathBuf::from(val()?)),
            "--initrd" => initrd = Some(PathBuf::from(val()?)),
            "--restore" => restore = Some(PathBuf::from(val()?)),
            "--append" => append = val()?,
            "--mem" => {
                let v = val()?;
                let mb = v.trim_end_matches(['M', 'm']).parse::<u64>().map_err(|e| format!("--mem {v}: {e}"))?;
                mem = mb << 20;
            }
            "--skip" => skip = parse_count(&val()?)?,
            "--every" => every = Some(parse_count(&val()?)?),
            "--steps" => cfg.steps = parse_count(&val()?)?,
            "--full-check-every" => cfg.full_check_every = parse_count(&val()?)?.max(1),
            "--serial" => serial = Some(PathBuf::from(val()?)),
            "-h" | "--help" => {
                println!("lockstep (--kernel K [--initrd I] [--append A] [--mem 256M] | --restore SNAPSHOT) [--skip N] [--steps M] [--full-check-every S] [--serial PATH]");
                return Ok(false);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    conformance::lockstep::kvm_available()?;
    let out: Box<dyn std::io::Write> = match &serial {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(std::io::sink()),
    };
    let mut m = match (&kernel, &restore) {
        (Some(kernel), None) => {
            let spec = boot::BootSpec { kernel, initrd: initrd.as_deref(), append: &append, mem };
            boot::machine(&spec, out)?
        }
        (None, Some(snap)) => emu::machine::Machine::restore_snapshot(snap, out, std::time::Instant::now(), true, None)
            .map_err(|e| format!("{}: {e}", snap.display()))?,
        _ => return Err("give --kernel or --restore (one of them)".into()),
    };
    if skip > 0 {
        let t = std::time::Instant::now();
        let end = m.run(skip);
        eprintln!(
            "lockstep: tier 0 ran {} instructions alone ({end:?}, {:.1} s)",
            m.cpu.retired,
            t.elapsed().as_secs_f64()
        );
    }
    let (mut windows, mut compared, mut seconds) = (0u64, 0u64, 0f64);
    loop {
        let at = m.cpu.retired;
        let summary = Lockstep::new(&mut m).map_err(|e| e.to_string())?.run(&cfg).map_err(|e| e.to_string())?;
        if let Some(d) = &summary.divergence {
            println!("{d}");
        }
        println!("from instruction {at}: {}", summary.line());
        windows += 1;
        compared += summary.compared;
        seconds += summary.seconds;
        let Some(e) = every else { return Ok(summary.divergence.is_some()) };
        if summary.divergence.is_some() || summary.end != End::Steps {
            println!(
                "sampled: {windows} windows, {compared} steps compared, {seconds:.0} s in lockstep; stopped: {:?}",
                summary.end
            );
            return Ok(summary.divergence.is_some());
        }
        let target = m.cpu.retired.saturating_add(e);
        let end = m.run(target);
        if end != emu::machine::RunEnd::Limit {
            println!("sampled: {windows} windows, {compared} steps compared, {seconds:.0} s in lockstep; guest ended {end:?} at instruction {}", m.cpu.retired);
            return Ok(false);
        }
    }
}
