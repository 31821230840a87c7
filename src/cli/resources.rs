//! What a study will need, estimated before anything large is allocated or written: memory for
//! the training set and kept samples, disk for the output. Refusals name the estimate and the
//! flag that changes it.

use std::path::Path;

use anyhow::{Result, ensure};

use crate::config::Config;

/// Bytes of memory the host side of a study needs beyond the engine's bounded batches: the
/// training set (f64 points, the f32 copy the plan keeps, the moved copies of the excess
/// entropy) and the final samples kept for samples.npy.
pub fn memory_needed(cfg: &Config, keeps_samples: bool, empirical: bool) -> (u64, &'static str) {
    let d = cfg.dim as u64;
    let train = if empirical {
        (cfg.n_train as u64)
            .saturating_mul(d)
            .saturating_mul(8 + 4 + 8 + 8)
    } else {
        0
    };
    let samples = if keeps_samples {
        cfg.particles
            .unwrap_or(0)
            .saturating_mul(d.saturating_mul(4) + 24)
    } else {
        0
    };
    if train >= samples {
        (train, "--n-train")
    } else {
        (samples, "--particles (or drop --save-samples)")
    }
}

/// Memory the system can still give (Linux: MemAvailable), if known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Free bytes on the file system holding `dir`, if known.
fn available_disk(dir: &Path) -> Option<u64> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Refuses a study whose host memory would not fit in what the system has available.
pub fn check_memory(cfg: &Config, keeps_samples: bool, empirical: bool) -> Result<()> {
    let (need, flag) = memory_needed(cfg, keeps_samples, empirical);
    if let Some(avail) = available_memory() {
        ensure!(
            need <= avail,
            "this study needs about {:.1} GiB of memory, the system has {:.1} GiB available; \
             lower {flag}",
            gib(need),
            gib(avail)
        );
    }
    Ok(())
}

/// Refuses an output directory without room for the estimated output (the samples, plus 16 MiB
/// for the summary, tables and plots).
pub fn check_disk(cfg: &Config, keeps_samples: bool, dir: &Path) -> Result<()> {
    let samples = if keeps_samples {
        cfg.particles
            .unwrap_or(0)
            .saturating_mul(cfg.dim as u64 * 4)
    } else {
        0
    };
    let need = samples.saturating_add(16 << 20);
    if let Some(free) = available_disk(dir) {
        ensure!(
            need <= free,
            "the output needs about {:.2} GiB, {} has {:.2} GiB free; free some space or choose \
             another --out",
            gib(need),
            dir.display(),
            gib(free)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_name_the_flag_that_dominates() {
        let cfg = Config {
            dim: 100,
            n_train: 1_000_000_000,
            particles: Some(1000),
            ..Config::default()
        };
        let (bytes, flag) = memory_needed(&cfg, true, true);
        assert_eq!(bytes, 1_000_000_000 * 100 * 28);
        assert_eq!(flag, "--n-train");
        assert!(check_memory(&cfg, true, true).is_err());
        let (bytes, flag) = memory_needed(&cfg, true, false);
        assert_eq!((bytes, flag.starts_with("--particles")), (1000 * 424, true));
        assert!(check_memory(&cfg, true, false).is_ok());
        assert!(check_disk(&cfg, true, Path::new("/tmp")).is_ok());
        let huge = Config {
            particles: Some(1 << 47),
            ..cfg
        };
        assert!(check_disk(&huge, true, Path::new("/tmp")).is_err());
    }
}
