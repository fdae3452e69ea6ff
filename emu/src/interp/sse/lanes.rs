//! Per-lane helpers over a 128-bit XMM value (lane 0 in the low bits, SDM Vol. 1, 4.6.1).
//! Written as fixed-length loops over arrays so the compiler can vectorize them on the host.

macro_rules! lane_fns {
    ($map:ident, $split:ident, $join:ident, $t:ty, $n:expr) => {
        /// Splits into lanes, lane 0 first.
        #[inline(always)]
        pub fn $split(v: u128) -> [$t; $n] {
            let b = v.to_le_bytes();
            let mut out = [0 as $t; $n];
            for (i, o) in out.iter_mut().enumerate() {
                let mut x = [0u8; core::mem::size_of::<$t>()];
                x.copy_from_slice(&b[i * core::mem::size_of::<$t>()..(i + 1) * core::mem::size_of::<$t>()]);
                *o = <$t>::from_le_bytes(x);
            }
            out
        }
        /// Joins lanes, lane 0 first.
        #[inline(always)]
        pub fn $join(l: [$t; $n]) -> u128 {
            let mut b = [0u8; 16];
            for (i, x) in l.iter().enumerate() {
                b[i * core::mem::size_of::<$t>()..(i + 1) * core::mem::size_of::<$t>()]
                    .copy_from_slice(&x.to_le_bytes());
            }
            u128::from_le_bytes(b)
        }
        /// Applies `f` lane by lane to `a` and `b`.
        #[inline(always)]
        pub fn $map(a: u128, b: u128, f: impl Fn($t, $t) -> $t) -> u128 {
            let (a, b) = ($split(a), $split(b));
            let mut r = [0 as $t; $n];
            for i in 0..$n {
                r[i] = f(a[i], b[i]);
            }
            $join(r)
        }
    };
}

lane_fns!(map8, split8, join8, u8, 16);
lane_fns!(map16, split16, join16, u16, 8);
lane_fns!(map32, split32, join32, u32, 4);
lane_fns!(map64, split64, join64, u64, 2);
