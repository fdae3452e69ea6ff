//! Runs parsed TestFloat cases through x87float with x87 semantics (README "How to run a
//! case") and counts mismatches.
use crate::vectors::{Case, FileSpec, Op};
use x87float as x;
use x87float::{Control, Rounding, F80};

/// Which instruction form a file is checked as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    /// The README's main instruction (FADD, FCOM/FUCOM, FISTP, ...).
    Main,
    /// Compares: FCOMI/FUCOMI (EFLAGS view). Conversions to integer: FISTTP.
    Alt,
}

/// One run of a file: a control word and an instruction form.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Config {
    pub rounding: Rounding,
    pub precision: u32,
    pub form: Form,
}

impl Config {
    /// The FCW for this run (all exceptions masked).
    pub fn control(&self) -> Control {
        Control::masked(self.rounding, self.precision)
    }
}

/// Every run a file gets: `rany` under all four RCs; PC-independent operations also under
/// PC=24 and PC=53; compares also through FCOMI; `rminMag` integer conversions also as FISTTP
/// (which ignores RC, so it runs under every RC).
pub fn configs(spec: &FileSpec) -> Vec<Config> {
    let all_rc = [Rounding::Nearest, Rounding::Down, Rounding::Up, Rounding::Zero];
    let rcs: Vec<Rounding> = match spec.rounding {
        Some(r) => vec![r],
        None => all_rc.to_vec(),
    };
    let pcs: Vec<u32> = if spec.op.uses_pc() { vec![spec.precision] } else { vec![64, 24, 53] };
    let mut out = Vec::new();
    for &precision in &pcs {
        for &rounding in &rcs {
            out.push(Config { rounding, precision, form: Form::Main });
        }
    }
    let is_cmp = matches!(spec.op, Op::Eq | Op::Le | Op::Lt | Op::EqSignaling | Op::LeQuiet | Op::LtQuiet);
    if is_cmp {
        for &precision in &pcs {
            for &rounding in &rcs {
                out.push(Config { rounding, precision, form: Form::Alt });
            }
        }
    }
    let is_int = matches!(spec.op, Op::F80ToI32 | Op::F80ToI64);
    if is_int && spec.rounding == Some(Rounding::Zero) {
        for &precision in &pcs {
            for &rounding in &all_rc {
                out.push(Config { rounding, precision, form: Form::Alt });
            }
        }
    }
    out
}

/// x87 FSW exception bits → TestFloat flag byte (DE dropped).
pub fn testfloat_flags(fsw: u8) -> u8 {
    let mut f = 0;
    if fsw & x::PE != 0 {
        f |= 0x01;
    }
    if fsw & x::UE != 0 {
        f |= 0x02;
    }
    if fsw & x::OE != 0 {
        f |= 0x04;
    }
    if fsw & x::ZE != 0 {
        f |= 0x08;
    }
    if fsw & x::IE != 0 {
        f |= 0x10;
    }
    f
}

/// Runs one case; returns (result bits, TestFloat flags).
pub fn run_case(op: Op, c: &Case, cfg: &Config) -> (u128, u8) {
    let cw = cfg.control();
    let a = F80::from_bits(c.a);
    let b = F80::from_bits(c.b);
    let f80 = |o: x::Outcome| (o.value.to_bits(), testfloat_flags(o.flags));
    match op {
        Op::Add => f80(x::add(a, b, cw)),
        Op::Sub => f80(x::sub(a, b, cw)),
        Op::Mul => f80(x::mul(a, b, cw)),
        Op::Div => f80(x::div(a, b, cw)),
        Op::Sqrt => f80(x::sqrt(a, cw)),
        Op::RoundToInt => f80(x::round_to_int(a, cw)),
        Op::Rem => {
            // FPREM1 repeated until C2 = 0; the flags are sticky across the iterations.
            let mut v = a;
            let mut flags = 0;
            for _ in 0..2000 {
                let r = x::prem1(v, b, cw);
                v = r.result.value;
                flags |= r.result.flags;
                if !r.c2 {
                    break;
                }
            }
            (v.to_bits(), testfloat_flags(flags))
        }
        Op::Eq | Op::Le | Op::Lt | Op::EqSignaling | Op::LeQuiet | Op::LtQuiet => {
            let quiet = matches!(op, Op::Eq | Op::LeQuiet | Op::LtQuiet);
            let o = x::compare(a, b, quiet);
            let (eqb, unb, ltb) = match cfg.form {
                Form::Main => o.relation.c3_c2_c0(),
                Form::Alt => o.relation.zf_pf_cf(),
            };
            let lt = ltb && !unb;
            let eq = eqb && !unb;
            let r = match op {
                Op::Eq | Op::EqSignaling => eq,
                Op::Le | Op::LeQuiet => lt || eq,
                _ => lt,
            };
            (r as u128, testfloat_flags(o.flags))
        }
        Op::I32ToF80 => (x::from_i32(c.a as u32 as i32).to_bits(), 0),
        Op::I64ToF80 => (x::from_i64(c.a as u64 as i64).to_bits(), 0),
        Op::F32ToF80 => f80(x::from_f32(c.a as u32, cw)),
        Op::F64ToF80 => f80(x::from_f64(c.a as u64, cw)),
        Op::F80ToF32 => {
            let o = x::to_f32(a, cw);
            (o.value as u128, testfloat_flags(o.flags))
        }
        Op::F80ToF64 => {
            let o = x::to_f64(a, cw);
            (o.value as u128, testfloat_flags(o.flags))
        }
        Op::F80ToI32 => {
            let o = x::to_i32(a, cw, cfg.form == Form::Alt);
            (o.value as u32 as u128, testfloat_flags(o.flags))
        }
        Op::F80ToI64 => {
            let o = x::to_i64(a, cw, cfg.form == Form::Alt);
            (o.value as u64 as u128, testfloat_flags(o.flags))
        }
    }
}

/// Mismatch counts of one run.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub cases: u64,
    pub value_mismatches: u64,
    pub flag_mismatches: u64,
    /// The first few mismatching cases: (case, got value, got flags).
    pub examples: Vec<(Case, u128, u8)>,
}

/// Runs all cases under one configuration.
pub fn run(op: Op, cases: &[Case], cfg: &Config, keep: usize) -> Tally {
    let mut t = Tally { cases: cases.len() as u64, ..Tally::default() };
    for c in cases {
        let (v, f) = run_case(op, c, cfg);
        let vbad = v != c.expected;
        let fbad = f != c.flags;
        t.value_mismatches += vbad as u64;
        t.flag_mismatches += fbad as u64;
        if (vbad || fbad) && t.examples.len() < keep {
            t.examples.push((*c, v, f));
        }
    }
    t
}
