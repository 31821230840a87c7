//! The content hash of a file as written (the digest its manifest entry records).

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The hash of a file's contents, reading at most `limit` bytes (None when it holds more).
pub(super) fn hash_file(path: &Path, limit: u64) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let mut h = crate::digest::Digest::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if h.len() > limit {
            return None;
        }
    }
    Some(h.finish())
}
