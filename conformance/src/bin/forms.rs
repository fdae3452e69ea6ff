//! `cargo run -p conformance --bin forms`: every instruction form (iced-x86 `Code`) tier 0
//! implements, grouped by family file, with the forms the differential harness excludes and why.

use conformance::exclude::exclusion;
use emu::decode::table;

fn main() {
    let mut total = 0;
    for (i, fam) in table::families().iter().enumerate() {
        let name = table::FAMILY_NAMES.get(i).copied().unwrap_or("(unnamed family)");
        let mut codes: Vec<_> = fam.iter().flat_map(|rows| rows.iter()).map(|r| r.code).collect();
        codes.sort_by_key(|c| *c as u32);
        codes.dedup();
        println!("{name} ({} forms)", codes.len());
        for c in &codes {
            let forms = match (table::lookup(*c, false).is_some(), table::lookup(*c, true).is_some()) {
                (true, true) => "reg+mem",
                (true, false) => "reg",
                (false, true) => "mem",
                _ => "-",
            };
            match exclusion(*c) {
                Some(why) => println!("  {:<28} {forms:<8} not in differential run: {why}", format!("{c:?}")),
                None => println!("  {:<28} {forms}", format!("{c:?}")),
            }
        }
        total += codes.len();
    }
    println!("total: {total} forms ({} distinct)", table::implemented_codes().len());
}
