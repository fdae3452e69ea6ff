//! TestFloat vector files: file-name decoding and line parsing
//! (format: `testfloat/data/README.md`, "Line format").
//!
//! A malformed line is an error naming the line number and the problem, never a panic.
use std::fmt;
use std::io::BufRead;
use x87float::Rounding;

/// The operations the vector files cover, named as in TestFloat.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
    Rem,
    RoundToInt,
    Eq,
    Le,
    Lt,
    EqSignaling,
    LeQuiet,
    LtQuiet,
    I32ToF80,
    I64ToF80,
    F32ToF80,
    F64ToF80,
    F80ToF32,
    F80ToF64,
    F80ToI32,
    F80ToI64,
}

/// The type of one field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Field {
    F80,
    F64,
    F32,
    I64,
    I32,
    Bool,
}

impl Field {
    /// Hex digits in the field.
    pub fn digits(self) -> usize {
        match self {
            Field::F80 => 20,
            Field::F64 | Field::I64 => 16,
            Field::F32 | Field::I32 => 8,
            Field::Bool => 1,
        }
    }
}

impl Op {
    /// Looks up a TestFloat operation name.
    pub fn from_name(name: &str) -> Option<Op> {
        Some(match name {
            "extF80_add" => Op::Add,
            "extF80_sub" => Op::Sub,
            "extF80_mul" => Op::Mul,
            "extF80_div" => Op::Div,
            "extF80_sqrt" => Op::Sqrt,
            "extF80_rem" => Op::Rem,
            "extF80_roundToInt" => Op::RoundToInt,
            "extF80_eq" => Op::Eq,
            "extF80_le" => Op::Le,
            "extF80_lt" => Op::Lt,
            "extF80_eq_signaling" => Op::EqSignaling,
            "extF80_le_quiet" => Op::LeQuiet,
            "extF80_lt_quiet" => Op::LtQuiet,
            "i32_to_extF80" => Op::I32ToF80,
            "i64_to_extF80" => Op::I64ToF80,
            "f32_to_extF80" => Op::F32ToF80,
            "f64_to_extF80" => Op::F64ToF80,
            "extF80_to_f32" => Op::F80ToF32,
            "extF80_to_f64" => Op::F80ToF64,
            "extF80_to_i32" => Op::F80ToI32,
            "extF80_to_i64" => Op::F80ToI64,
            _ => return None,
        })
    }

    /// (input fields, output field).
    pub fn signature(self) -> (&'static [Field], Field) {
        use Field::*;
        match self {
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => (&[F80, F80], F80),
            Op::Sqrt | Op::RoundToInt => (&[F80], F80),
            Op::Eq | Op::Le | Op::Lt | Op::EqSignaling | Op::LeQuiet | Op::LtQuiet => (&[F80, F80], Bool),
            Op::I32ToF80 => (&[I32], F80),
            Op::I64ToF80 => (&[I64], F80),
            Op::F32ToF80 => (&[F32], F80),
            Op::F64ToF80 => (&[F64], F80),
            Op::F80ToF32 => (&[F80], F32),
            Op::F80ToF64 => (&[F80], F64),
            Op::F80ToI32 => (&[F80], I32),
            Op::F80ToI64 => (&[F80], I64),
        }
    }

    /// True for the operations the precision control affects.
    pub fn uses_pc(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Sqrt)
    }
}

/// What a vector file name says: `<op>.<rounding>.<precision>.txt.xz`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FileSpec {
    pub op: Op,
    /// `None` for `rany`.
    pub rounding: Option<Rounding>,
    /// 24, 53 or 64 significand bits.
    pub precision: u32,
}

/// Decodes a vector file name.
pub fn parse_file_name(name: &str) -> Result<FileSpec, String> {
    let mut parts = name.split('.');
    let (Some(op), Some(r), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("file name {name:?} is not <op>.<rounding>.<precision>.txt.xz"));
    };
    let op = Op::from_name(op).ok_or_else(|| format!("unknown operation {op:?}"))?;
    let rounding = match r {
        "rnear_even" => Some(Rounding::Nearest),
        "rmin" => Some(Rounding::Down),
        "rmax" => Some(Rounding::Up),
        "rminMag" => Some(Rounding::Zero),
        "rany" => None,
        _ => return Err(format!("unknown rounding tag {r:?}")),
    };
    let precision = match p {
        "p32" => 24,
        "p64" => 53,
        "p80" => 64,
        _ => return Err(format!("unknown precision tag {p:?}")),
    };
    Ok(FileSpec { op, rounding, precision })
}

/// One vector line: up to two operands, the expected result and the expected flags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Case {
    pub a: u128,
    pub b: u128,
    pub expected: u128,
    pub flags: u8,
}

/// A malformed line (1-based line number).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

fn hex(tok: &[u8], digits: usize) -> Result<u128, String> {
    if tok.len() != digits {
        return Err(format!("field {:?} has {} digits, expected {digits}", String::from_utf8_lossy(tok), tok.len()));
    }
    let mut v: u128 = 0;
    for &c in tok {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            b'a'..=b'f' => c - b'a' + 10,
            _ => return Err(format!("bad hex digit {:?}", c as char)),
        };
        v = v << 4 | d as u128;
    }
    Ok(v)
}

/// Parses one line for `op`.
pub fn parse_line(op: Op, line: &[u8], number: usize) -> Result<Case, ParseError> {
    let err = |message: String| ParseError { line: number, message };
    let (inputs, output) = op.signature();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut toks = line.split(|&c| c == b' ').filter(|t| !t.is_empty());
    let want = inputs.len() + 2;
    let mut vals = [0u128; 4];
    for (i, slot) in vals.iter_mut().take(want).enumerate() {
        let digits = if i < inputs.len() {
            inputs[i].digits()
        } else if i == inputs.len() {
            output.digits()
        } else {
            2
        };
        let tok = toks.next().ok_or_else(|| err(format!("{} fields, expected {want}", i)))?;
        *slot = hex(tok, digits).map_err(&err)?;
    }
    if toks.next().is_some() {
        return Err(err(format!("more than {want} fields")));
    }
    let n = inputs.len();
    let (a, b) = (vals[0], if n == 2 { vals[1] } else { 0 });
    Ok(Case { a, b, expected: vals[n], flags: vals[n + 1] as u8 })
}

/// Reads every case from decompressed text; stops at the first malformed line or read error.
pub fn read_cases<R: BufRead>(op: Op, mut input: R) -> Result<Vec<Case>, ParseError> {
    let mut cases = Vec::new();
    let mut buf = Vec::with_capacity(64);
    let mut number = 0;
    loop {
        buf.clear();
        number += 1;
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(cases),
            Ok(_) => {}
            Err(e) => return Err(ParseError { line: number, message: format!("read error: {e}") }),
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        cases.push(parse_line(op, line, number)?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines from the README's examples.
    #[test]
    fn good_lines() {
        let c = parse_line(Op::Mul, b"3FE3FFFDFFFFFFFFFFF0 00007FFFFFBFFFFFFFFB 00000000000FFFDFF800 03", 1).unwrap();
        assert_eq!(c.a, 0x3FE3_FFFD_FFFF_FFFF_FFF0);
        assert_eq!(c.flags, 3);
        let c = parse_line(Op::Eq, b"B687801003FFFFFFFFFE C04CFFFFFFFFFFFFBFF7 0 00", 1).unwrap();
        assert_eq!(c.expected, 0);
        let c = parse_line(Op::F64ToF80, b"3F9080000007FFFF 3FF9840000003FFFF800 00", 1).unwrap();
        assert_eq!(c.a, 0x3F90_8000_0007_FFFF);
    }

    #[test]
    fn bad_lines_report_line_numbers() {
        let e = parse_line(Op::Add, b"3FFF8000000000000000 3FFF8000000000000000 00", 7).unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.message.contains("digits"), "{e}");
        let e = parse_line(Op::Add, b"3FFF8000000000000000 3FFF8000000000000000", 9).unwrap_err();
        assert!(e.message.contains("fields"), "{e}");
        let e = parse_line(Op::Sqrt, b"3FFF80000000000000G0 3FFF8000000000000000 00", 3).unwrap_err();
        assert!(e.message.contains("hex"), "{e}");
        assert!(parse_line(Op::Sqrt, b"3FFF8000000000000000 3FFF8000000000000000 00 00", 3).is_err());
        assert!(parse_line(Op::I32ToF80, b"123 3FFF8000000000000000 00", 3).is_err());
        let text = b"3FFF8000000000000000 3FFF8000000000000000 00\n\nzz\n";
        let e = read_cases(Op::Sqrt, &text[..]).unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn truncated_xz_is_an_error() {
        use std::io::{BufReader, Write};
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 6);
        for _ in 0..2000 {
            enc.write_all(b"3FFF8000000000000000 3FFF8000000000000000 00\n").unwrap();
        }
        let data = enc.finish().unwrap();
        let cut = &data[..data.len() / 2];
        let r = read_cases(Op::Sqrt, BufReader::new(xz2::read::XzDecoder::new(cut)));
        assert!(r.is_err());
        let full = read_cases(Op::Sqrt, BufReader::new(xz2::read::XzDecoder::new(&data[..])));
        assert_eq!(full.unwrap().len(), 2000);
    }

    #[test]
    fn file_names() {
        let s = parse_file_name("extF80_add.rminMag.p32.txt.xz").unwrap();
        assert_eq!((s.op, s.rounding, s.precision), (Op::Add, Some(Rounding::Zero), 24));
        assert!(parse_file_name("extF80_foo.rany.p80.txt.xz").is_err());
        assert!(parse_file_name("junk").is_err());
    }
}
