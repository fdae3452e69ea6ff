//! Placeholder.
/// Runs the report.
pub fn main() -> i32 {
    0
}
