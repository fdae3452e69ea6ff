//! A quick, low-noise throughput check (min over repeated runs) of x87float against SoftFloat:
//! `cargo run --release -p testfloat --example speed`. The criterion bench is the full table.
use softfloat_sys as sf;
use std::hint::black_box;
use std::time::Instant;
use x87float::{self as x, Control, F80};

fn main() {
    let mut s: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let data: Vec<(F80, F80)> = (0..1024)
        .map(|_| {
            let a = F80::new(next() & 1 != 0, 0x3FF0 + (next() % 32) as u16, next() | 1 << 63);
            let b = F80::new(next() & 1 != 0, 0x3FF0 + (next() % 32) as u16, next() | 1 << 63);
            (a, b)
        })
        .collect();
    let sfd: Vec<(sf::extFloat80_t, sf::extFloat80_t)> = data
        .iter()
        .map(|(a, b)| {
            (
                sf::extFloat80M { signif: a.signif, signExp: a.sign_exp },
                sf::extFloat80M { signif: b.signif, signExp: b.sign_exp },
            )
        })
        .collect();
    let time = |f: &dyn Fn() -> u64| {
        let mut best = f64::MAX;
        for _ in 0..30 {
            let t = Instant::now();
            black_box(f());
            best = best.min(t.elapsed().as_secs_f64() * 1e9 / data.len() as f64);
        }
        best
    };
    let cw = Control::DEFAULT;
    macro_rules! row {
        ($name:literal, $x:expr, $s:expr) => {{
            let tx = time(&|| data.iter().fold(0u64, |acc, &(a, b)| acc ^ $x(black_box(a), black_box(b))));
            // SAFETY: pure FFI arithmetic on values.
            let ts = time(&|| sfd.iter().fold(0u64, |acc, &(a, b)| acc ^ unsafe { $s(black_box(a), black_box(b)) }));
            println!("{:<6} x87float {:6.1} ns  softfloat {:6.1} ns  ratio {:.2}", $name, tx, ts, tx / ts);
        }};
    }
    // SAFETY: plain FFI calls that set SoftFloat's rounding globals once, before any use.
    unsafe {
        sf::softfloat_roundingMode_write_helper(sf::softfloat_round_near_even);
        sf::extF80_roundingPrecision_write_helper(80);
    }
    row!("add", |a, b| x::add(a, b, cw).value.signif, |a, b| sf::extF80_add(a, b).signif);
    row!("mul", |a, b| x::mul(a, b, cw).value.signif, |a, b| sf::extF80_mul(a, b).signif);
    row!("div", |a, b| x::div(a, b, cw).value.signif, |a, b| sf::extF80_div(a, b).signif);
    row!("sqrt", |a: F80, _b| x::sqrt(x::fabs(a), cw).value.signif, |a: sf::extFloat80_t, _b| {
        sf::extF80_sqrt(sf::extFloat80M { signExp: a.signExp & 0x7FFF, ..a }).signif
    });
    row!("rem", |a, b| x::prem1(a, b, cw).result.value.signif, |a, b| sf::extF80_rem(a, b).signif);
}
