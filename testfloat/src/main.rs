//! testfloat: runs TestFloat vector files through x87float.
fn main() {}
