//! snapshot-bench: how long saving and restoring a machine takes, and that restore time does not
//! grow with the RAM size.
//!
//! The guest: Strata's built-in demo kernel (`conformance/kernels/demo.S`) booted and run to its
//! end on tier 0 with the deterministic clock, then 256 MiB of guest pages filled with
//! pseudo-random data (a realistic resident set: nothing compresses, nothing is zero). Measured:
//! the save (non-zero pages written, zero pages left as holes), the restore "until the first
//! instruction can run" (`Machine::restore_snapshot` returns a machine ready to run), and for
//! comparison what restore defers: reading every page of the 256 MiB afterwards (the page faults
//! that fetch them from the file). Each figure is the median of five runs, files in the page
//! cache (the system's temp dir). Restore of a 1 GiB and a 4 GiB guest with the same contents
//! must take about the same time: the ratio is printed.
//!
//! Usage: `cargo run --release -p benches --bin snapshot-bench [-- --quick]` (`--quick`: one run
//! each, 64 MiB filled).

use emu::machine::{Machine, MachineConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DEMO: &[u8] = include_bytes!("../../../src/generated/demo_kernel.elf");
const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn sink() -> Box<dyn std::io::Write> {
    Box::new(std::io::sink())
}

/// A booted guest of `mem` bytes with `fill` bytes of touched pages from 64 MiB up.
fn guest(mem: u64, fill: u64) -> Machine {
    let cfg = MachineConfig { mem, deterministic: true, marker: None };
    let mut m = Machine::new(&cfg, sink(), Instant::now()).expect("guest RAM");
    emu::loaders::multiboot::load(&mut m.cpu, "demo", DEMO, "").expect("demo kernel");
    let end = m.run(50_000_000);
    eprintln!("  demo kernel ran {} instructions ({end:?})", m.cpu.retired);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let region = m.cpu.ram.slice_mut(64 * MIB, fill as usize).expect("fill inside RAM");
    for chunk in region.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    m
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

struct Figures {
    save: Duration,
    restore: Duration,
    touch: Duration,
    written: u64,
    file: u64,
    allocated: u64,
}

fn measure(mem: u64, fill: u64, runs: usize, path: &Path) -> Figures {
    use std::os::unix::fs::MetadataExt;
    eprintln!("{} GiB guest, {} MiB filled:", mem / GIB, fill / MIB);
    let mut m = guest(mem, fill);
    let mut saves = Vec::new();
    let mut info = None;
    for _ in 0..runs {
        let t = Instant::now();
        info = Some(m.save_snapshot(path).expect("save"));
        saves.push(t.elapsed());
    }
    drop(m);
    let info = info.expect("at least one run");
    let meta = std::fs::metadata(path).expect("snapshot file");
    let (mut restores, mut touches) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        let r = Machine::restore_snapshot(path, sink(), Instant::now(), true, None).expect("restore");
        restores.push(t.elapsed());
        // What the mapping deferred: read one byte of every filled page (faults from the file).
        let t = Instant::now();
        let ram = r.cpu.ram.slice(64 * MIB, fill as usize).expect("filled region");
        let sum = ram.iter().step_by(4096).fold(0u8, |a, &b| a.wrapping_add(b));
        touches.push(t.elapsed());
        std::hint::black_box(sum);
    }
    Figures {
        save: median(saves),
        restore: median(restores),
        touch: median(touches),
        written: info.ram_data_bytes,
        file: meta.len(),
        allocated: meta.blocks() * 512,
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (fill, runs) = if quick { (64 * MIB, 1) } else { (256 * MIB, 5) };
    let dir: PathBuf = std::env::temp_dir().join(format!("strata-snapshot-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let one = measure(GIB, fill, runs, &dir.join("1g.snap"));
    let four = measure(4 * GIB, fill, runs, &dir.join("4g.snap"));
    let _ = std::fs::remove_dir_all(&dir);

    println!("snapshot-bench: demo kernel booted + {} MiB of touched pages; median of {runs}", fill / MIB);
    println!();
    println!("| guest RAM | save (ms) | RAM written (MiB) | file length (MiB) | file allocated (MiB) | restore to first instruction (ms) | then reading the {} MiB, a byte a page (ms) |", fill / MIB);
    println!("|---|---|---|---|---|---|---|");
    for (name, f) in [("1 GiB", &one), ("4 GiB", &four)] {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            ms(f.save),
            f.written / MIB,
            f.file / MIB,
            f.allocated / MIB,
            ms(f.restore),
            ms(f.touch)
        );
    }
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64().max(1e-9);
    println!();
    println!(
        "| ratio 4 GiB / 1 GiB | save {:.2}x | restore {:.2}x |",
        ratio(one.save, four.save),
        ratio(one.restore, four.restore)
    );
    println!(
        "| restore / (restore + reading the filled pages), 1 GiB | {:.3} |",
        one.restore.as_secs_f64() / (one.restore + one.touch).as_secs_f64()
    );
}
