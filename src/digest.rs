//! Content digests: BLAKE3 in hex, the one function that seals files and configs (a study's
//! fingerprint, the checksums of shard and checkpoint files and their data, the manifest of an
//! output directory). Against accidents and edits, not adversaries: nothing is keyed.

/// The digest of `bytes`: BLAKE3, 64 hex digits.
pub fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// [`digest`] over pieces (a file read in chunks): equal to the digest of the pieces joined.
#[derive(Default)]
pub struct Digest {
    hasher: blake3::Hasher,
    len: u64,
}

impl Digest {
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes digested so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// Whether `s` looks like a digest of an older regimes (16 hex digits: the FNV-1a and Fx-style
/// hashes before BLAKE3), so that a refusal can say why.
pub fn is_legacy(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_digest_as_the_whole_and_known_answer() {
        // BLAKE3 of the empty input (the reference test vector).
        assert_eq!(
            digest(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut d = Digest::default();
        for c in data.chunks(333) {
            d.update(c);
        }
        assert_eq!(d.len(), data.len() as u64);
        assert_eq!(d.finish(), digest(&data));
        assert_ne!(digest(&data[1..]), digest(&data));
        assert!(is_legacy("0123456789abcdef") && !is_legacy(&digest(b"x")));
    }
}
