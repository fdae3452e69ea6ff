//! Nanoseconds per operation: x87float, Berkeley SoftFloat 3 (`softfloat-sys`, extF80_*) and
//! the host x87, on the same random normal operands (RC = nearest, PC = 64, all masked).
//!
//! Each iteration runs a batch of `BATCH` operations; criterion reports time per element.
//! The host numbers include the helpers' FNINIT/FLDCW/load/store around each instruction, so
//! they bound the instruction's cost from above. `cargo bench -p testfloat` takes about a
//! minute (short warm-up and measurement times). On a shared, loaded machine the criterion
//! means swing by 2–4×; `cargo run --release -p testfloat --example speed` (minimum of 30
//! runs) gives steadier x87float/SoftFloat ratios.
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use softfloat_sys as sf;
use std::time::Duration;
use x87float::{self as x, Control, F80};

const BATCH: usize = 256;

fn inputs() -> Vec<(F80, F80)> {
    let mut s: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..BATCH)
        .map(|_| {
            let a = F80::new(next() & 1 != 0, 0x3FF0 + (next() % 32) as u16, next() | 1 << 63);
            let b = F80::new(next() & 1 != 0, 0x3FF0 + (next() % 32) as u16, next() | 1 << 63);
            (a, b)
        })
        .collect()
}

fn sfv(v: F80) -> sf::extFloat80_t {
    sf::extFloat80M { signif: v.signif, signExp: v.sign_exp }
}

type XOp = fn(F80, F80) -> u64;
type SOp = fn(sf::extFloat80_t, sf::extFloat80_t) -> u64;
type HOp = fn(F80, F80) -> u64;

fn bench(c: &mut Criterion) {
    let cw = Control::DEFAULT;
    let _ = cw;
    // SAFETY: plain FFI calls into SoftFloat's C code; the helpers only write thread-local
    // globals (rounding mode, precision, flags).
    unsafe {
        sf::softfloat_roundingMode_write_helper(sf::softfloat_round_near_even);
        sf::extF80_roundingPrecision_write_helper(80);
        sf::softfloat_detectTininess_write_helper(sf::softfloat_tininess_afterRounding);
    }
    let data = inputs();
    #[rustfmt::skip]
    let ops: Vec<(&str, XOp, SOp, HOp)> = vec![
        ("add", |a, b| x::add(a, b, Control::DEFAULT).value.signif,
            // SAFETY: pure FFI arithmetic on values.
            |a, b| unsafe { sf::extF80_add(a, b) }.signif,
            |a, b| testfloat::host::add(a, b, 0x037F).0.signif),
        ("sub", |a, b| x::sub(a, b, Control::DEFAULT).value.signif,
            // SAFETY: as above.
            |a, b| unsafe { sf::extF80_sub(a, b) }.signif,
            |a, b| testfloat::host::sub(a, b, 0x037F).0.signif),
        ("mul", |a, b| x::mul(a, b, Control::DEFAULT).value.signif,
            // SAFETY: as above.
            |a, b| unsafe { sf::extF80_mul(a, b) }.signif,
            |a, b| testfloat::host::mul(a, b, 0x037F).0.signif),
        ("div", |a, b| x::div(a, b, Control::DEFAULT).value.signif,
            // SAFETY: as above.
            |a, b| unsafe { sf::extF80_div(a, b) }.signif,
            |a, b| testfloat::host::div(a, b, 0x037F).0.signif),
        ("sqrt", |a, _| x::sqrt(x::fabs(a), Control::DEFAULT).value.signif,
            // SAFETY: as above.
            |a, _| unsafe { sf::extF80_sqrt(sf::extFloat80M { signExp: a.signExp & 0x7FFF, ..a }) }.signif,
            |a, _| testfloat::host::sqrt(x::fabs(a), 0x037F).0.signif),
        ("rem (FPREM1)", |a, b| x::prem1(a, b, Control::DEFAULT).result.value.signif,
            // SAFETY: as above.
            |a, b| unsafe { sf::extF80_rem(a, b) }.signif,
            |a, b| testfloat::host::fprem1(a, b, 0x037F).0.signif),
        ("to_i64 (FISTP)", |a, _| x::to_i64(a, Control::DEFAULT, false).value as u64,
            // SAFETY: as above.
            |a, _| unsafe { sf::extF80_to_i64(a, sf::softfloat_round_near_even, true) } as u64,
            |a, _| testfloat::host::fistp64(a, 0x037F).0 as u64),
        ("to_f64 (FST m64)", |a, _| x::to_f64(a, Control::DEFAULT).value,
            // SAFETY: as above.
            |a, _| unsafe { sf::extF80_to_f64(a) }.v,
            |a, _| testfloat::host::fstp64(a, 0x037F).0),
        ("from_f64 (FLD m64)", |a, _| x::from_f64(a.signif >> 2, Control::DEFAULT).value.signif,
            // SAFETY: as above.
            |a, _| unsafe { sf::f64_to_extF80(sf::float64_t { v: a.signif >> 2 }) }.signif,
            |a, _| testfloat::host::fld64(a.signif >> 2, 0x037F).0.signif),
    ];
    for (name, xo, so, ho) in ops {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.sample_size(10).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_millis(800));
        g.bench_function(BenchmarkId::new("x87float", ""), |bch| {
            bch.iter(|| data.iter().fold(0u64, |acc, &(a, b)| acc ^ xo(black_box(a), black_box(b))))
        });
        g.bench_function(BenchmarkId::new("softfloat", ""), |bch| {
            bch.iter(|| data.iter().fold(0u64, |acc, &(a, b)| acc ^ so(black_box(sfv(a)), black_box(sfv(b)))))
        });
        g.bench_function(BenchmarkId::new("host_x87", ""), |bch| {
            bch.iter(|| data.iter().fold(0u64, |acc, &(a, b)| acc ^ ho(black_box(a), black_box(b))))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
