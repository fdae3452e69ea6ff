//! testfloat: runs TestFloat vector files through x87float.
//!
//! Usage: `cargo run --release -p testfloat -- [DIR|FILE...]`. Without arguments it reads
//! every file in `$TESTFLOAT_VECTORS`, or else the project's own copy, `testfloat/data/vectors`
//! (see `testfloat/data/README.md`). Before running, each file is checked against the
//! `SHA256SUMS` one folder above it (`testfloat/data/SHA256SUMS` for the project's copy); a
//! damaged file is a one-line error, not a list of mismatches.
//! `--transcendental-report` compares the transcendentals with the host x87 instead.
//! Exit status: 0 when every case matched, 1 on any mismatch or malformed file.
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use testfloat::runner::{configs, run, Form};
use testfloat::vectors::{parse_file_name, read_cases, Field};

fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TESTFLOAT_VECTORS") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/vectors")
}

/// The `SHA256SUMS` that covers a vector file: the one in the folder above the file's folder,
/// where `sha256sum -c` would be run (its lines read `vectors/<name>.txt.xz`).
fn sums_for(file: &Path) -> Option<PathBuf> {
    let sums = file.parent()?.parent()?.join("SHA256SUMS");
    sums.is_file().then_some(sums)
}

/// Checks every file that has a `SHA256SUMS` above it; says which files have none.
fn verify_checksums(files: &[PathBuf]) -> Result<(), String> {
    let mut by_sums: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut unchecked = 0;
    for f in files {
        let Some(sums) = sums_for(f) else {
            unchecked += 1;
            continue;
        };
        match by_sums.iter_mut().find(|(s, _)| *s == sums) {
            Some((_, list)) => list.push(f.clone()),
            None => by_sums.push((sums, vec![f.clone()])),
        }
    }
    for (sums, list) in &by_sums {
        testfloat::checksums::verify(sums, list).map_err(|e| e.to_string())?;
    }
    if unchecked > 0 {
        println!("testfloat: {unchecked} files have no SHA256SUMS in the folder above theirs: not checksummed");
    }
    Ok(())
}

fn collect(args: &[String]) -> Result<Vec<PathBuf>, String> {
    let roots: Vec<PathBuf> =
        if args.is_empty() { vec![default_dir()] } else { args.iter().map(PathBuf::from).collect() };
    let mut files = Vec::new();
    for r in roots {
        if r.is_dir() {
            let rd = std::fs::read_dir(&r).map_err(|e| format!("{}: {e}", r.display()))?;
            for e in rd {
                let p = e.map_err(|e| format!("{}: {e}", r.display()))?.path();
                if p.to_string_lossy().ends_with(".txt.xz") {
                    files.push(p);
                }
            }
        } else {
            files.push(r);
        }
    }
    files.sort();
    Ok(files)
}

fn fmt_val(f: Field, v: u128) -> String {
    match f {
        Field::F80 => format!("{v:020X}"),
        Field::F64 | Field::I64 => format!("{v:016X}"),
        Field::F32 | Field::I32 => format!("{v:08X}"),
        Field::Bool => format!("{v}"),
    }
}

/// Checks one file under all its configurations; returns its report and whether it passed.
fn check_file(path: &Path) -> (String, bool, u64) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let spec = match parse_file_name(&name) {
        Ok(s) => s,
        Err(e) => return (format!("{name}: FAIL {e}\n"), false, 0),
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return (format!("{name}: FAIL cannot open: {e}\n"), false, 0),
    };
    let reader = BufReader::with_capacity(1 << 16, xz2::read::XzDecoder::new(file));
    let cases = match read_cases(spec.op, reader) {
        Ok(c) => c,
        Err(e) => return (format!("{name}: FAIL malformed input, {e}\n"), false, 0),
    };
    if cases.is_empty() {
        return (format!("{name}: FAIL no cases\n"), false, 0);
    }
    let (inputs, output) = spec.op.signature();
    let mut out = String::new();
    let mut ok = true;
    let mut total = 0;
    for cfg in configs(&spec) {
        let t = run(spec.op, &cases, &cfg, 5);
        total += t.cases;
        let form = match cfg.form {
            Form::Main => "",
            Form::Alt => " alt(FCOMI/FISTTP)",
        };
        let bad = t.value_mismatches + t.flag_mismatches > 0;
        out += &format!(
            "{name} rc={:?} pc={}{form}: cases={} value_mismatch={} flag_mismatch={} {}\n",
            cfg.rounding,
            cfg.precision,
            t.cases,
            t.value_mismatches,
            t.flag_mismatches,
            if bad { "FAIL" } else { "ok" }
        );
        ok &= !bad;
        for (c, v, f) in &t.examples {
            let ops: Vec<String> = [c.a, c.b].iter().zip(inputs).map(|(x, t)| fmt_val(*t, *x)).collect();
            out += &format!(
                "    {} => expected {} {:02X}, got {} {:02X}\n",
                ops.join(" "),
                fmt_val(output, c.expected),
                c.flags,
                fmt_val(output, *v),
                f
            );
        }
    }
    (out, ok, total)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--transcendental-report") {
        std::process::exit(testfloat::transcendental_report::main());
    }
    let files = match collect(&args) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("testfloat: no .txt.xz files found (looked in {})", default_dir().display());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("testfloat: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = verify_checksums(&files) {
        eprintln!("testfloat: {e}");
        std::process::exit(1);
    }
    let start = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, String, bool, u64)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(files.len());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = files.get(i) else { break };
                let (rep, ok, n) = check_file(p);
                if let Ok(mut r) = results.lock() {
                    r.push((i, rep, ok, n));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|r| r.0);
    let mut failed = 0;
    let mut cases = 0;
    for (_, rep, ok, n) in &results {
        print!("{rep}");
        failed += !ok as usize;
        cases += n;
    }
    println!(
        "testfloat: {} files, {cases} case runs, {failed} files failing, {:.1}s",
        files.len(),
        start.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 && results.len() == files.len() { 0 } else { 1 });
}
