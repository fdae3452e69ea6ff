//! `strata`: the command-line program.
//!
//! `strata user PROGRAM [ARGS...]` runs a static x86-64 Linux executable on the tier-0
//! interpreter (or, with `--tier kvm`, natively in a KVM guest); its exit status becomes
//! strata's. `strata run --kernel K` boots a kernel on
//! the virtual PC; `strata` alone boots a small built-in demo guest.

mod bios;
mod debug;
use debug::gdb;
mod disk;
mod guest32; // 32-bit guests (issue 14)
mod run;
mod share;
// kvm-unit-tests devices (issue 14)
mod testdevs;

use clap::{Parser, Subcommand};
use emu::engine::EngineKind;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "strata", version, about = "Strata: a portable x86 PC emulator")]
struct Cli {
    /// With no command, strata boots its built-in demo guest.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a static x86-64 Linux program in user mode.
    User(Box<UserArgs>),
    /// Boot a kernel (bzImage or Multiboot) on the virtual PC.
    Run(Box<run::RunArgs>),
}

/// `strata user`'s options (boxed in [`Command`]: they outweigh `run`'s pointer).
#[derive(clap::Args)]
struct UserArgs {
    /// Guest RAM for the process, in MiB.
    #[arg(long, default_value_t = 4096)]
    mem_mib: u64,
    /// Print retired instructions and run time to stderr at exit.
    #[arg(long)]
    stats: bool,
    /// Print every system call, its arguments and its result to stderr.
    #[arg(long)]
    strace: bool,
    /// Engine: interp (tier 0), kvm (natively at CPL3 in a KVM guest), jit (tier 1, x86-64
    /// hosts), auto (kvm when /dev/kvm is usable, else jit on x86-64 hosts, else interp).
    #[arg(long, value_enum, default_value_t = EngineKind::Interp)]
    tier: EngineKind,
    /// Start the program with an empty environment (as `env -i`); `--env` then adds to it.
    #[arg(long)]
    clear_env: bool,
    /// Set VAR=VALUE in the program's environment (repeatable; qemu-user's `-E`). An existing
    /// VAR keeps its place and takes the new value; a new one is added at the end, in order.
    #[arg(short = 'E', long = "env", value_name = "VAR=VALUE")]
    set_env: Vec<String>,
    /// Remove VAR from the program's environment (repeatable; qemu-user's `-U`).
    #[arg(short = 'U', long = "unset", value_name = "VAR")]
    unset_env: Vec<String>,
    /// Wait for gdb on tcp:HOST:PORT before the first instruction (--tier interp, jit or kvm).
    #[arg(long, value_name = "tcp:HOST:PORT")]
    gdb: Option<String>,
    #[command(flatten)]
    trace: debug::trace::TraceArgs,
    #[command(flatten)]
    jit: run::JitArgs,
    /// The program.
    program: String,
    /// Its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let process_start = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return command_line_error(&e),
    };
    match cli.command {
        None => run::demo(process_start),
        Some(Command::Run(args)) => run::run(*args, process_start),
        Some(Command::User(user)) => {
            let UserArgs {
                mem_mib,
                stats,
                strace,
                tier,
                clear_env,
                set_env,
                unset_env,
                gdb,
                trace,
                jit,
                program,
                args,
            } = *user;
            let kind = match tiers::resolve_engine(tier, true) {
                Ok(kind) => kind,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            let listener = match gdb.as_deref().map(|g| user_gdb_listener(g, kind)).transpose() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            let tracer = match user_tracer(&trace, kind) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            let mut argv = vec![program.clone()];
            argv.extend(args);
            let inherited: Vec<String> =
                if clear_env { Vec::new() } else { std::env::vars().map(|(k, v)| format!("{k}={v}")).collect() };
            let envp = match guest_environment(inherited, &set_env, &unset_env) {
                Ok(envp) => envp,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(2);
                }
            };
            let start = std::time::Instant::now();
            let mut p = match emu::user::Process::load(&program, &argv, &envp, mem_mib << 20) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(127);
                }
            };
            p.sys.trace = strace;
            if let Some(listener) = listener {
                // Under --tier jit gdb's free runs go through the JIT (steps through its tier 0);
                // under --tier kvm free runs and breakpoints run on KVM (issue 11).
                let engine = match kind {
                    EngineKind::Jit => match tiers::new_jit(jit.options()) {
                        Ok((engine, _)) => Some(engine),
                        Err(e) => {
                            eprintln!("strata: jit: {e}");
                            return ExitCode::from(1);
                        }
                    },
                    EngineKind::Kvm => match tiers::KvmUserEngine::new(&mut p) {
                        Ok(k) => Some(k.into_engine()),
                        Err(e) => {
                            eprintln!("strata: kvm: {e}");
                            return ExitCode::from(1);
                        }
                    },
                    _ => None,
                };
                return user_under_gdb(p, &listener, tracer, engine);
            }
            if let Some((tracer, summary)) = tracer {
                return user_traced(p, tracer, &summary);
            }
            // One loop (`Process::run_on`) for every engine; only the statistics differ.
            let end = if kind == EngineKind::Kvm {
                let mut kvm = match tiers::KvmUserEngine::new(&mut p) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("strata: kvm: {e}");
                        return ExitCode::from(1);
                    }
                };
                let end = p.run_on(kvm.engine());
                if stats {
                    let k = kvm.stats();
                    eprintln!(
                        "strata: kvm: {} exits ({} system calls, {} faults, {} translation flushes) in {:.3} s",
                        k.exits,
                        k.syscalls,
                        k.faults,
                        k.flushes,
                        start.elapsed().as_secs_f64()
                    );
                }
                end
            } else if kind == EngineKind::Jit {
                let opts = jit.options();
                let (mut jit, jit_stats) = match tiers::new_jit(opts) {
                    Ok(j) => j,
                    Err(e) => {
                        eprintln!("strata: jit: {e}");
                        return ExitCode::from(1);
                    }
                };
                let end = p.run_on(&mut *jit);
                if stats {
                    let n = p.cpu.retired;
                    let t = start.elapsed().as_secs_f64();
                    eprintln!("strata: {n} instructions in {t:.3} s ({:.1} MIPS)", n as f64 / t / 1e6);
                    let st = jit_stats.borrow();
                    eprintln!("strata: jit: {st}");
                    eprint!("{}", st.histogram_table(40));
                }
                end
            } else {
                let mut tier0 = emu::Interp::new();
                let end = p.run_on(&mut tier0);
                if stats {
                    let n = p.cpu.retired;
                    let t = start.elapsed().as_secs_f64();
                    eprintln!(
                        "strata: {n} instructions in {t:.3} s ({:.1} MIPS), {} blocks decoded, {} invalidated",
                        n as f64 / t / 1e6,
                        tier0.cache.decoded,
                        tier0.cache.invalidated
                    );
                }
                end
            };
            // issue 10, sixth round, part T: the software TLB's walks (misses in both ways).
            if stats && kind != EngineKind::Kvm {
                eprintln!("strata: tlb: {} page walks", p.cpu.softmmu.tlb().walks());
            }
            // end part T
            let end = match end {
                Ok(end) => end,
                Err(e) => {
                    eprintln!("strata: {e}");
                    return ExitCode::from(1);
                }
            };
            match end {
                emu::user::ProcessEnd::Exited(code) => ExitCode::from(code as u8),
                emu::user::ProcessEnd::Signaled(sig) => ExitCode::from(128 + sig as u8),
            }
        }
    }
}

/// The program's environment: `inherited` in its order, then each `--env VAR=VALUE` (replacing
/// VAR in place or appending it), then each `--unset VAR` removed. The order matters: programs
/// see `environ` as given, and runs are compared line by line with native ones.
fn guest_environment(mut env: Vec<String>, set: &[String], unset: &[String]) -> Result<Vec<String>, String> {
    fn name(entry: &str) -> &str {
        entry.split_once('=').map_or(entry, |(k, _)| k)
    }
    for entry in set {
        let var = match entry.split_once('=') {
            Some((k, _)) if !k.is_empty() => k,
            _ => return Err(format!("--env {entry:?}: expected VAR=VALUE")),
        };
        match env.iter_mut().find(|e| name(e) == var) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    for var in unset {
        if var.is_empty() || var.contains('=') {
            return Err(format!("--unset {var:?}: expected a variable name"));
        }
        env.retain(|e| name(e) != var);
    }
    Ok(env)
}

/// The socket `strata user --gdb` listens on: bound before the program loads, so a busy port
/// is a one-line error at once.
fn user_gdb_listener(endpoint: &str, kind: EngineKind) -> Result<std::net::TcpListener, String> {
    if !matches!(kind, EngineKind::Interp | EngineKind::Jit | EngineKind::Kvm) {
        return Err(format!("--gdb needs --tier interp, jit or kvm, not {kind}"));
    }
    gdb::listen(&gdb::parse_endpoint(endpoint)?)
}

/// The `--trace` of `strata user`: tier 0 only (with gdb too: it steps on tier 0).
fn user_tracer(
    trace: &debug::trace::TraceArgs,
    kind: EngineKind,
) -> Result<Option<(debug::trace::Tracer, debug::trace::SharedSummary)>, String> {
    if trace.trace.is_none() {
        return Ok(None);
    }
    if kind != EngineKind::Interp {
        return Err(format!("--trace needs --tier interp (tier 0 steps every traced instruction), not {kind}"));
    }
    debug::trace::Tracer::new(trace)
}

/// Runs a loaded process on tier 0 with the instruction trace attached.
fn user_traced(
    mut p: emu::user::Process,
    mut tracer: debug::trace::Tracer,
    summary: &std::cell::RefCell<debug::trace::TraceSummary>,
) -> ExitCode {
    let mut interp = emu::Interp::new();
    tracer.attach_bus(&mut p.cpu);
    tracer.attach_process(&mut p);
    interp.observer = Some(Box::new(tracer));
    let end = p.run_on(&mut interp);
    interp.observer = None; // closing the trace flushes it
    if let Some(e) = &summary.borrow().error {
        eprintln!("strata: {e}");
        return ExitCode::from(1);
    }
    match end {
        Ok(emu::user::ProcessEnd::Exited(code)) => ExitCode::from(code as u8),
        Ok(emu::user::ProcessEnd::Signaled(sig)) => ExitCode::from(128 + sig as u8),
        Err(e) => {
            eprintln!("strata: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs a loaded process under gdb: it waits for gdb before its first instruction; if gdb
/// detaches it runs on to its end. The exit status is the process's, as without gdb.
fn user_under_gdb(
    p: emu::user::Process,
    listener: &std::net::TcpListener,
    tracer: Option<(debug::trace::Tracer, debug::trace::SharedSummary)>,
    engine: Option<Box<dyn emu::engine::Engine>>,
) -> ExitCode {
    let status = |end: debug::End| match end {
        debug::End::Exited(code) => ExitCode::from(code),
        debug::End::Signaled(sig) => ExitCode::from(128 + sig),
    };
    let stream = match gdb::accept(listener) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strata: {e}");
            return ExitCode::from(1);
        }
    };
    let mut inferior = debug::user::UserInferior::new(p, engine);
    let summary = tracer.map(|(mut tracer, summary)| {
        // The trace sees what gdb has tier 0 run, stepped or free (issue 11).
        tracer.attach_bus(&mut inferior.process.cpu);
        tracer.attach_process(&mut inferior.process);
        inferior.interp.observer = Some(Box::new(tracer));
        summary
    });
    let (session, mut inferior) = gdb::serve(inferior, stream);
    if let Some(summary) = summary {
        inferior.interp.observer = None; // closing the trace flushes it
        if let Some(e) = &summary.borrow().error {
            eprintln!("strata: {e}");
            return ExitCode::from(1);
        }
    }
    match session {
        Ok(gdb::Session::Ended(end)) => status(end),
        Ok(gdb::Session::Killed) => ExitCode::from(128 + 9),
        Ok(gdb::Session::Detached) => {
            let ended = inferior.detach();
            let rest = |i: &mut debug::user::UserInferior| match i.engine.as_mut() {
                Some(e) => i.process.run_on(e.as_mut()),
                None => i.process.run_on(&mut i.interp),
            };
            match ended.map_or_else(|| rest(&mut inferior), Ok) {
                Ok(emu::user::ProcessEnd::Exited(code)) => ExitCode::from(code as u8),
                Ok(emu::user::ProcessEnd::Signaled(sig)) => ExitCode::from(128 + sig as u8),
                Err(e) => {
                    eprintln!("strata: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("strata: {e}");
            ExitCode::from(1)
        }
    }
}

/// A malformed command line: one line on stderr naming the problem (with the accepted values
/// where clap lists them), exit status 2 as clap's usage errors have; `--help` and `--version`
/// print as clap renders them.
fn command_line_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) || !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("bad command line").trim_start_matches("error: ");
    let values = lines.find(|l| l.starts_with("[possible values:"));
    match values {
        Some(v) => eprintln!("strata: {first} {v}"),
        None => eprintln!("strata: {first} (see strata --help)"),
    }
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::guest_environment;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_options_replace_in_place_append_in_order_and_unset() {
        let env =
            guest_environment(strings(&["A=1", "B=2", "C=3"]), &strings(&["B=two", "Z=26", "Y=25"]), &strings(&["A"]))
                .unwrap();
        assert_eq!(env, strings(&["B=two", "C=3", "Z=26", "Y=25"]));
    }

    #[test]
    fn malformed_env_options_are_one_line_errors() {
        for bad in ["NOEQUALS", "=value"] {
            let e = guest_environment(Vec::new(), &strings(&[bad]), &[]).unwrap_err();
            assert!(e.starts_with("--env") && !e.contains('\n'), "{e}");
        }
        let e = guest_environment(Vec::new(), &[], &strings(&["A=1"])).unwrap_err();
        assert!(e.starts_with("--unset"), "{e}");
    }
}
