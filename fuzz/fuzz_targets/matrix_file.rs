//! `io::read_matrix` / `io::read_vector` on arbitrary file contents (.npy or text): errors are
//! fine; panics, and huge allocations (run with -rss_limit_mb / -malloc_limit_mb), are not.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("regimes-fuzz-matrix-{}.bin", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    if let Ok(m) = regimes::io::read_matrix(path) {
        assert!(m.nrows() > 0 && m.ncols() > 0);
        assert!(m.iter().all(|x| x.is_finite()));
    }
    if let Ok(v) = regimes::io::read_vector(path) {
        assert!(v.len() > 0);
        assert!(v.iter().all(|x| x.is_finite()));
    }
});
