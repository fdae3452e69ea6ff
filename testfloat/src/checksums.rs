//! Checks the vector files against `SHA256SUMS` before a run, so a truncated or edited vector
//! file is reported as such and not as x87float mismatches.
//!
//! `SHA256SUMS` is the `sha256sum` output format: per line, 64 hex digits, two spaces (or a
//! space and `*`), and a path relative to the folder holding `SHA256SUMS`. SHA-256 itself is
//! written here from FIPS 180-4 (section 6.2) rather than pulled in as a dependency: the
//! runner needs one digest of ~33 MB, and the tests below check it against the FIPS 180-4
//! example vectors.
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why the vector files could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: not a sha256sum line")]
    Malformed { path: PathBuf, line: usize },
    #[error("{path}: SHA-256 mismatch (expected {expected}, got {actual}): the vector file is damaged")]
    Mismatch { path: PathBuf, expected: String, actual: String },
    #[error("{path}: not listed in {sums}")]
    Unlisted { path: PathBuf, sums: PathBuf },
}

/// The FIPS 180-4 (4.2.2) round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// A streaming SHA-256 (FIPS 180-4, 6.2).
pub struct Sha256 {
    state: [u32; 8],
    block: [u8; 64],
    block_len: usize,
    total_len: u64,
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        Sha256 {
            // FIPS 180-4, 5.3.3.
            state: [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19],
            block: [0; 64],
            block_len: 0,
            total_len: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total_len = self.total_len.wrapping_add(data.len() as u64);
        while !data.is_empty() {
            let take = (64 - self.block_len).min(data.len());
            self.block[self.block_len..self.block_len + take].copy_from_slice(&data[..take]);
            self.block_len += take;
            data = &data[take..];
            if self.block_len == 64 {
                let block = self.block;
                self.compress(&block);
                self.block_len = 0;
            }
        }
    }

    /// Pads the message (FIPS 180-4, 5.1.1) and returns the digest.
    pub fn finish(mut self) -> [u8; 32] {
        let bit_len = self.total_len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.block_len != 56 {
            self.update(&[0]);
        }
        self.update(&bit_len.to_be_bytes());
        let mut out = [0; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn compress(&mut self, block: &[u8; 64]) {
        let mut w = [0u32; 64];
        for (t, chunk) in block.chunks_exact(4).enumerate() {
            w[t] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16].wrapping_add(s0).wrapping_add(w[t - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = self.state;
        for t in 0..64 {
            let big_s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = h.wrapping_add(big_s1).wrapping_add(ch).wrapping_add(K[t]).wrapping_add(w[t]);
            let big_s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = big_s0.wrapping_add(maj);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (s, v) in self.state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// The lower-case hex SHA-256 of a file.
pub fn file_sha256(path: &Path) -> Result<String, ChecksumError> {
    let io = |source| ChecksumError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish().iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a `SHA256SUMS` file: (expected hex digest, path resolved against the file's folder).
pub fn read_sums(sums: &Path) -> Result<Vec<(String, PathBuf)>, ChecksumError> {
    let text =
        std::fs::read_to_string(sums).map_err(|source| ChecksumError::Io { path: sums.to_path_buf(), source })?;
    let base = sums.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let malformed = || ChecksumError::Malformed { path: sums.to_path_buf(), line: i + 1 };
        let (hex, rest) = line.split_once(' ').ok_or_else(malformed)?;
        let name = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('*')).ok_or_else(malformed)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() {
            return Err(malformed());
        }
        out.push((hex.to_ascii_lowercase(), base.join(name)));
    }
    Ok(out)
}

/// Confirms that every file in `files` is listed in `sums` with a matching digest.
pub fn verify(sums: &Path, files: &[PathBuf]) -> Result<(), ChecksumError> {
    let listed = read_sums(sums)?;
    for file in files {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let want = canonical(file);
        let Some((expected, _)) = listed.iter().find(|(_, p)| canonical(p) == want) else {
            return Err(ChecksumError::Unlisted { path: file.clone(), sums: sums.to_path_buf() });
        };
        let actual = file_sha256(file)?;
        if &actual != expected {
            return Err(ChecksumError::Mismatch { path: file.clone(), expected: expected.clone(), actual });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        let mut h = Sha256::new();
        h.update(data);
        h.finish().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The FIPS 180-4 examples (NIST "SHA256.pdf", one block and two blocks) and the empty
    /// message, as published with the standard.
    #[test]
    fn digest_matches_the_fips_examples() {
        assert_eq!(hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    /// One million 'a's (the long FIPS example), fed in uneven pieces to cross block edges.
    #[test]
    fn digest_of_a_million_a_in_pieces() {
        let data = vec![b'a'; 1_000_000];
        let mut h = Sha256::new();
        for piece in data.chunks(997) {
            h.update(piece);
        }
        let got: String = h.finish().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    }

    #[test]
    fn a_damaged_file_is_a_mismatch_and_a_bad_line_an_error() {
        let dir = std::env::temp_dir().join(format!("testfloat-sums-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("v.txt.xz");
        std::fs::write(&file, b"abc").unwrap();
        let sums = dir.join("SHA256SUMS");
        std::fs::write(&sums, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  v.txt.xz\n").unwrap();
        verify(&sums, std::slice::from_ref(&file)).unwrap();
        std::fs::write(&file, b"abd").unwrap();
        assert!(matches!(verify(&sums, std::slice::from_ref(&file)), Err(ChecksumError::Mismatch { .. })));
        std::fs::write(&sums, "xyz v.txt.xz\n").unwrap();
        assert!(matches!(verify(&sums, std::slice::from_ref(&file)), Err(ChecksumError::Malformed { line: 1, .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
