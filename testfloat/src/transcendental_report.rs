//! `testfloat --transcendental-report`: how often x87float's transcendentals match the host
//! x87 bit for bit, and the largest difference in units in the last place (ulps).
//!
//! Inputs come from a fixed-seed xorshift generator, in each instruction's documented domain
//! (plus arguments near multiples of π/2 for the trig functions), under all four RCs. The run
//! fails (exit 1) only if some result differs by more than [`MAX_ULPS`] or the flags (IE, DE,
//! ZE, OE, UE) or C2 differ; PE differences are counted but not failed on. C1 is not compared.
use x87float::{self as x, Control, Rounding, F80};

const SPECIALS: &[u128] = &[
    0x0000_0000_0000_0000_0000,
    0x8000_0000_0000_0000_0000,
    0x0000_0000_0000_0000_0001,
    0x8000_4000_0000_0000_0000,
    0x0000_8000_0000_0000_0001, // pseudo-denormal
    0x0001_8000_0000_0000_0000,
    0x3FFF_8000_0000_0000_0000,
    0xBFFF_8000_0000_0000_0000,
    0x3FFE_C000_0000_0000_0000,
    0xBFFD_9000_0000_0000_0000,
    0x4000_C90F_DAA2_2168_C235,
    0x403E_8000_0000_0000_0000, // 2^63: trig out of range
    0xC03D_FFFF_FFFF_FFFF_FFFF, // just below 2^63
    0x7FFE_FFFF_FFFF_FFFF_FFFF,
    0x7FFF_8000_0000_0000_0000,
    0xFFFF_8000_0000_0000_0000,
    0x7FFF_C000_0000_0000_0001,
    0xFFFF_A000_0000_0000_0000, // SNaN
    0x7FFF_0000_0000_0000_0000, // pseudo-infinity
    0x3FFF_4000_0000_0000_0000, // unnormal
];

/// The documented error bound: results must be within 1 ulp of the host's.
pub const MAX_ULPS: u128 = 1;
const CASES: usize = 20_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A random finite value with unbiased exponent in `lo..=hi`.
    fn value(&mut self, lo: i32, hi: i32, sign: Option<bool>) -> F80 {
        let r = self.next();
        let e = lo + (r % (hi - lo + 1) as u64) as i32;
        let s = sign.unwrap_or(r >> 63 != 0);
        F80::new(s, (16383 + e) as u16, self.next() | 1 << 63)
    }
}

/// Position on the number line (monotone for finite values of one sign).
fn ordinal(v: F80) -> i128 {
    let mag = (v.exp() as i128) << 63 | (v.signif & !(1 << 63)) as i128;
    let mag = if v.exp() == 0 { v.signif as i128 } else { mag + (1 << 63) };
    if v.sign() {
        -mag
    } else {
        mag
    }
}

#[derive(Default)]
struct Stats {
    cases: u64,
    exact: u64,
    max_ulps: u128,
    worst: Option<(F80, F80, F80, F80)>,
    flag_mismatch: u64,
    hard_flag_mismatch: u64,
}

impl Stats {
    fn add(&mut self, a: F80, b: F80, got: (F80, u8, bool), host: (F80, u16)) {
        self.cases += 1;
        let (gv, gf, gc2) = got;
        let (hv, sw) = host;
        if gv == hv {
            self.exact += 1;
        } else {
            let d = if gv.is_nan() || hv.is_nan() || gv.sign() != hv.sign() {
                u128::MAX
            } else {
                (ordinal(gv) - ordinal(hv)).unsigned_abs()
            };
            if d > self.max_ulps {
                self.max_ulps = d;
                self.worst = Some((a, b, gv, hv));
            }
        }
        let hf = (sw & 0x3F) as u8;
        let hc2 = sw & 0x400 != 0;
        if gf != hf {
            self.flag_mismatch += 1;
        }
        if (gf ^ hf) & 0x1F != 0 || gc2 != hc2 {
            self.hard_flag_mismatch += 1;
        }
    }
}

/// Runs the report; returns the process exit code.
#[cfg(target_arch = "x86_64")]
pub fn main() -> i32 {
    use crate::host;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failed = false;
    println!("op        cases   exact   exact%  max_ulps  flag_diff(PE incl.)  hard_flag_diff");
    type Case = Box<dyn Fn(&mut Rng) -> (F80, F80)>;
    type Run = Box<dyn Fn(F80, F80, Control) -> ((F80, u8, bool), (F80, u16))>;
    let trig_arg: fn(&mut Rng) -> (F80, F80) = |r| {
        if r.next() % 4 == 0 {
            // near k·π/2
            let k = (r.next() % 200) as i64 - 100;
            let v = x::mul(x::from_i64(k), F80::from_bits(0x3FFF_C90F_DAA2_2168_C235), Control::DEFAULT).value;
            let v = F80 { signif: v.signif ^ (r.next() & 0xFFFF), ..v };
            (if v.exp() == 0 { F80::ONE } else { v }, F80::ZERO)
        } else {
            (r.value(-40, 70, None), F80::ZERO)
        }
    };
    let ops: Vec<(&str, Case, Run)> = vec![
        (
            "fsin",
            Box::new(trig_arg),
            Box::new(|a, _, cw| {
                let o = x::fsin(a, cw);
                ((o.result.value, o.result.flags, o.c2), host::fsin(a, cw.0))
            }),
        ),
        (
            "fcos",
            Box::new(trig_arg),
            Box::new(|a, _, cw| {
                let o = x::fcos(a, cw);
                ((o.result.value, o.result.flags, o.c2), host::fcos(a, cw.0))
            }),
        ),
        (
            "fsincos",
            Box::new(trig_arg),
            Box::new(|a, _, cw| {
                let (o, s) = x::fsincos(a, cw);
                let (hc, hs, sw) = host::fsincos(a, cw.0);
                // Compare the sine (ST(1)) when the cosine matches, else the cosine.
                // Out of range (C2 = 1) nothing is pushed: only ST(0) is meaningful.
                if o.result.value == hc && sw & 0x400 == 0 {
                    ((s, o.result.flags, o.c2), (hs, sw))
                } else {
                    ((o.result.value, o.result.flags, o.c2), (hc, sw))
                }
            }),
        ),
        (
            "fptan",
            Box::new(trig_arg),
            Box::new(|a, _, cw| {
                let o = x::fptan(a, cw);
                let (one, t, sw) = host::fptan(a, cw.0);
                let hv = if sw & 0x400 != 0 { one } else { t };
                ((o.result.value, o.result.flags, o.c2), (hv, sw))
            }),
        ),
        (
            "f2xm1",
            Box::new(|r| (r.value(-70, -1, None), F80::ZERO)),
            Box::new(|a, _, cw| {
                let o = x::f2xm1(a, cw);
                ((o.value, o.flags, false), host::f2xm1(a, cw.0))
            }),
        ),
        (
            "fyl2x",
            Box::new(|r| (r.value(-200, 200, Some(false)), r.value(-10, 10, None))),
            Box::new(|a, b, cw| {
                let o = x::fyl2x(a, b, cw);
                ((o.value, o.flags, false), host::fyl2x(a, b, cw.0))
            }),
        ),
        (
            "fyl2xp1",
            Box::new(|r| (r.value(-70, -3, None), r.value(-10, 10, None))),
            Box::new(|a, b, cw| {
                let o = x::fyl2xp1(a, b, cw);
                ((o.value, o.flags, false), host::fyl2xp1(a, b, cw.0))
            }),
        ),
        (
            "fpatan",
            Box::new(|r| (r.value(-30, 30, None), r.value(-30, 30, None))),
            Box::new(|a, b, cw| {
                let o = x::fpatan(a, b, cw);
                ((o.value, o.flags, false), host::fpatan(a, b, cw.0))
            }),
        ),
    ];
    for (name, gen, run) in &ops {
        let mut st = Stats::default();
        for i in 0..CASES {
            let rc = [Rounding::Nearest, Rounding::Down, Rounding::Up, Rounding::Zero][i % 4];
            let cw = Control::masked(rc, 64);
            let (a, b) = gen(&mut rng);
            let (got, host) = run(a, b, cw);
            st.add(a, b, got, host);
        }
        let bad = st.max_ulps > MAX_ULPS || st.hard_flag_mismatch > 0;
        failed |= bad;
        println!(
            "{name:<8} {:>6} {:>7} {:>7.2}% {:>9} {:>12} {:>16}  {}",
            st.cases,
            st.exact,
            100.0 * st.exact as f64 / st.cases as f64,
            st.max_ulps,
            st.flag_mismatch,
            st.hard_flag_mismatch,
            if bad { "FAIL" } else { "ok" }
        );
        if let Some((a, b, g, h)) = st.worst {
            if st.max_ulps > 0 {
                println!(
                    "    worst: a={:020X} b={:020X} got {:020X} host {:020X}",
                    a.to_bits(),
                    b.to_bits(),
                    g.to_bits(),
                    h.to_bits()
                );
            }
        }
    }
    // Special operands: every pair from SPECIALS, RC = nearest. Here the results must match
    // exactly except for last-bit differences of finite results.
    println!("special operands (NaN, ±∞, ±0, denormals, unsupported, |x| ≥ 2^63):");
    for (name, _, run) in &ops {
        let mut st = Stats::default();
        for &a in SPECIALS {
            for &b in SPECIALS {
                let (a, b) = (F80::from_bits(a), F80::from_bits(b));
                let (got, host) = run(a, b, Control::DEFAULT);
                st.add(a, b, got, host);
                if st.hard_flag_mismatch > 0 && st.worst.is_none() {
                    st.worst = Some((a, b, got.0, host.0));
                }
            }
        }
        let bad = st.max_ulps > MAX_ULPS || st.hard_flag_mismatch > 0;
        failed |= bad;
        println!(
            "{name:<8} {:>6} {:>7} {:>7.2}% {:>9} {:>12} {:>16}  {}",
            st.cases,
            st.exact,
            100.0 * st.exact as f64 / st.cases as f64,
            st.max_ulps,
            st.flag_mismatch,
            st.hard_flag_mismatch,
            if bad { "FAIL" } else { "ok" }
        );
        if bad {
            for &a in SPECIALS {
                for &b in SPECIALS {
                    let (a, b) = (F80::from_bits(a), F80::from_bits(b));
                    let (got, (hv, sw)) = run(a, b, Control::DEFAULT);
                    let d = if got.0 == hv {
                        0
                    } else if got.0.is_nan() || hv.is_nan() || got.0.sign() != hv.sign() {
                        u128::MAX
                    } else {
                        (ordinal(got.0) - ordinal(hv)).unsigned_abs()
                    };
                    if d > MAX_ULPS || (got.1 ^ (sw & 0x3F) as u8) & 0x1F != 0 || got.2 != (sw & 0x400 != 0) {
                        println!(
                            "    a={:020X} b={:020X}: got {:020X} flags {:02X} c2 {}, host {:020X} flags {:02X} c2 {}",
                            a.to_bits(),
                            b.to_bits(),
                            got.0.to_bits(),
                            got.1,
                            got.2,
                            hv.to_bits(),
                            sw & 0x3F,
                            sw & 0x400 != 0
                        );
                    }
                }
            }
        }
    }
    println!("bound: max {MAX_ULPS} ulp, no IE/DE/ZE/OE/UE/C2 difference");
    i32::from(failed)
}

/// Without a host x87 there is nothing to compare with.
#[cfg(not(target_arch = "x86_64"))]
pub fn main() -> i32 {
    println!("transcendental report: needs an x86-64 host x87");
    0
}
