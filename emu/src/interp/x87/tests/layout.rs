//! The environment and save images (FNSTENV, FNSAVE, FLDENV, FRSTOR in their 14/28/94/108-byte
//! forms), checked against the images the host writes: after a plain sequence of loads and
//! arithmetic (so the reference image does not come from our own FRSTOR), and from random
//! images with inconsistent tags, pending unmasked exceptions and reserved bits set.

use super::differential::{compare_forms_with, random_image, Rng};
use super::harness::{describe, run_emu_raw, Guest, Native, MEM_LEN, SAVE_VA};
use iced_x86::{Code, Decoder, DecoderOptions};

/// An FPU image with everything FRSTOR/FLDENV may meet: any FCW bits, flags that may be
/// pending and unmasked, ES in either state, tags that disagree with the contents.
fn wild_image(r: &mut Rng) -> Vec<u8> {
    let mut b = random_image(r).to_vec();
    if r.below(2) == 0 {
        b[0..2].copy_from_slice(&(r.next() as u16).to_le_bytes());
        b[4] = r.next() as u8;
    }
    if r.below(2) == 0 {
        b[8..10].copy_from_slice(&(r.next() as u16).to_le_bytes());
    }
    if r.below(4) == 0 {
        for v in b.iter_mut().take(28) {
            if r.below(8) == 0 {
                *v = r.next() as u8;
            }
        }
    }
    b.resize(MEM_LEN, 0);
    b
}

/// Length of the image a store form writes at [RSI].
fn stored_len(code: Code) -> usize {
    match code {
        Code::Fnstenv_m14byte => 14,
        Code::Fnstenv_m28byte => 28,
        Code::Fnsave_m94byte => 94,
        Code::Fnsave_m108byte => 108,
        _ => 0,
    }
}

fn forms(encodings: &[&[u8]]) -> Vec<(Vec<u8>, Code)> {
    encodings
        .iter()
        .map(|enc| {
            // A WAIT prefix decodes as its own WAIT instruction; the form is named by the last.
            let mut d = Decoder::with_ip(64, enc, 0, DecoderOptions::NONE);
            let mut code = Code::INVALID;
            while d.can_decode() {
                code = d.decode().code();
            }
            (enc.to_vec(), code)
        })
        .collect()
}

#[test]
fn environment_forms_match_the_host() {
    let forms = forms(&[
        &[0xd9, 0x26],       // fldenv m28
        &[0x66, 0xd9, 0x26], // fldenv m14
        &[0xdd, 0x26],       // frstor m108
        &[0x66, 0xdd, 0x26], // frstor m94
        &[0xd9, 0x36],       // fnstenv m28
        &[0x66, 0xd9, 0x36], // fnstenv m14
        &[0x48, 0xd9, 0x36], // fnstenv m28 with REX.W
        &[0xdd, 0x36],       // fnsave m108
        &[0x66, 0xdd, 0x36], // fnsave m94
        &[0xd9, 0x3e],       // fnstcw
        &[0xdd, 0x3e],       // fnstsw m16
        &[0x9b, 0xdd, 0x3e], // fstsw m16 (waits: nothing is pending in the starting images)
        &[0xdb, 0xe2],       // fnclex
        &[0x9b, 0xdb, 0xe3], // finit
        &[0x9b],             // fwait
    ]);
    let report = compare_forms_with(&forms, 300, 0xe4e4, wild_image, stored_len);
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// `fninit; fldcw [rsi]; fld qword [rsi+8]; fld1; fldpi; fild dword [rsi+16]; fadd st0, st1;
/// fxch st2; fidiv dword [rsi+20]` and then the store form under test at [RDI]. The FIDIV
/// divides by zero with ZE unmasked, so FOP and FDP are recorded and ES/B are set.
fn sequence(store: &[u8]) -> (Vec<u8>, usize) {
    let mut code = vec![
        0xdb, 0xe3, 0xd9, 0x2e, 0xdd, 0x46, 0x08, 0xd9, 0xe8, 0xd9, 0xeb, 0xdb, 0x46, 0x10, 0xd8, 0xc1, 0xd9, 0xca,
    ];
    let fidiv = code.len();
    code.extend_from_slice(&[0xda, 0x76, 0x14]);
    code.extend_from_slice(store);
    // The FPU must be left initialized for the host: FNINIT after an FNSTENV.
    code.extend_from_slice(&[0xdb, 0xe3]);
    (code, fidiv)
}

#[test]
fn images_after_plain_loads_match_the_host() {
    let mut mem = vec![0u8; 32];
    mem[0..2].copy_from_slice(&0x0b7bu16.to_le_bytes()); // ZE unmasked, RC up, PC 64
    mem[8..16].copy_from_slice(&(-2.75f64).to_bits().to_le_bytes());
    mem[16..20].copy_from_slice(&12345i32.to_le_bytes());
    mem[20..24].copy_from_slice(&0i32.to_le_bytes());
    let mut g = Guest::new();
    for (store, len) in [
        (&[0xdd, 0x37][..], 108),      // fnsave m108
        (&[0x66, 0xdd, 0x37][..], 94), // fnsave m94
        (&[0xd9, 0x37][..], 28),       // fnstenv m28
        (&[0x66, 0xd9, 0x37][..], 14), // fnstenv m14
    ] {
        let (code, fidiv) = sequence(store);
        let blank = [0xccu8; 108];
        let want = Native::raw(&code, fidiv).run_raw(&blank, &mem, len);
        g.write(SAVE_VA, &blank);
        let got = run_emu_raw(&mut g, &code, fidiv, &blank, &mem, 0, 0);
        assert_eq!(got.fault, None);
        let mut got_image = g.read(SAVE_VA, 108);
        super::harness::normalize(
            &mut got_image[..len],
            super::harness::CODE_VA + fidiv as u64,
            super::harness::MEM_VA,
        );
        assert_eq!(
            want[..len],
            got_image[..len],
            "store {store:02x?}\nhost  {:02x?}\ntier0 {:02x?}\n{}",
            &want[..len],
            &got_image[..len],
            if len >= 108 { describe(&got_image) } else { String::new() }
        );
        // FOP is DA /6 with ModR/M 76; FDP is the operand at RSI+20 (SDM Vol. 1, 8.1.9).
        if len == 108 || len == 28 {
            assert_eq!(u16::from_le_bytes([want[18], want[19]]), 0x276);
        }
    }
}
