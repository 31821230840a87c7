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
        (cfg.n_train_or_default() as u64)
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
    let model = model_bytes(cfg);
    if model >= train && model >= samples {
        (
            model,
            "--dim, or keep U diagonal (identity, diag:, linspace:, geomspace:) and --q zero, \
             whose matrices stay d numbers",
        )
    } else if train >= samples {
        (train.saturating_add(model), "--n-train")
    } else {
        (
            samples.saturating_add(model),
            "--particles (or drop --save-samples)",
        )
    }
}

/// Dense d×d copies the model, the theory and the plan hold at once when U or Q is dense (U, Q,
/// A, U⁻¹, an eigenbasis, E(t), Γ(t) and its inverse, a plan point's M and W).
const DENSE_COPIES: u64 = 12;

/// Bytes of the model's matrices: d numbers each for a scalar or diagonal U with Q = 0, and
/// `DENSE_COPIES` d×d f64 matrices when either is dense (a rotated or file U, any Q ≠ 0; a
/// coupled model doubles d).
pub fn model_bytes(cfg: &Config) -> u64 {
    use crate::model::{QSpec, USpec};
    let d = cfg.dim as u64 * if cfg.coupling.is_some() { 2 } else { 1 };
    let dense =
        matches!(cfg.u, USpec::Rotated(..) | USpec::File(_)) || !matches!(cfg.q, QSpec::Zero);
    if dense {
        d.saturating_mul(d).saturating_mul(8 * DENSE_COPIES)
    } else {
        d.saturating_mul(8 * DENSE_COPIES)
    }
}

/// A warning for a checkpoint interval so short that writing the particles' state would cost
/// more than the steps between (`--checkpoint-every 1` ran 150× slower), with what it writes.
pub fn checkpoint_warning(every: Option<crate::measure::Every>, cfg: &Config) -> Option<String> {
    use crate::measure::Every;
    let state = cfg
        .particles
        .unwrap_or(100_000)
        .saturating_mul(cfg.dim as u64 * 4 + 16);
    match every? {
        Every::Steps(n) if n < 100 => Some(format!(
            "--checkpoint-every {n}: a checkpoint every {n} step(s) writes and syncs every \
             particle's state (about {:.1} MiB) {} times, which can make the run many times \
             slower (150× at 1); 500 steps or a duration such as 30s costs little",
            state as f64 / (1u64 << 20) as f64,
            (cfg.steps.count().unwrap_or(1000) as u64).div_ceil(n)
        )),
        Every::Seconds(s) if s < 1.0 => Some(format!(
            "--checkpoint-every {s}s: a checkpoint more often than once a second writes and syncs \
             every particle's state (about {:.1} MiB) each time, which can make the run many \
             times slower; 30s costs little",
            state as f64 / (1u64 << 20) as f64
        )),
        _ => None,
    }
}

/// Memory the system can still give (Linux: MemAvailable), if known.
pub fn available_memory() -> Option<u64> {
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

/// Room for the summary, tables and plots of one output directory.
const REPORT_BYTES: u64 = 16 << 20;

/// Bytes a study writes: the final samples (f32) and labels (i64) with `--save-samples`, the
/// same again at each record time (`run` writes a snapshot there), and `REPORT_BYTES`.
pub fn disk_needed(cfg: &Config, keeps_samples: bool, snapshots: usize) -> u64 {
    let one = if keeps_samples {
        cfg.particles
            .unwrap_or(0)
            .saturating_mul(cfg.dim as u64 * 4 + 8)
    } else {
        0
    };
    one.saturating_mul(1 + snapshots as u64)
        .saturating_add(REPORT_BYTES)
}

/// Refuses an output directory without room for `need` bytes.
pub fn check_disk_bytes(need: u64, dir: &Path) -> Result<()> {
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

/// Refuses an output directory without room for the estimated output of one study
/// ([`disk_needed`], without snapshots).
pub fn check_disk(cfg: &Config, keeps_samples: bool, dir: &Path) -> Result<()> {
    check_disk_bytes(disk_needed(cfg, keeps_samples, 0), dir)
}

/// What a command needs before it starts: host memory (with the flag that lowers it) and disk
/// in its output directory. Every command checks its needs through [`Needs::check`]: the
/// studies and each sweep point ([`Needs::study`]) and the commands beside them (`steer`,
/// `bench`, `reproduce`).
#[derive(Clone, Debug)]
pub struct Needs {
    pub memory: u64,
    /// What lowers the memory, for the message.
    pub memory_flag: &'static str,
    pub disk: u64,
}

impl Needs {
    /// A command that holds `memory` bytes (lowered by `memory_flag`) and writes a report.
    pub fn new(memory: u64, memory_flag: &'static str) -> Needs {
        Needs {
            memory,
            memory_flag,
            disk: REPORT_BYTES,
        }
    }

    /// What a study of `kind` on `cfg` needs, whichever command runs it.
    pub fn study(kind: super::Kind, cfg: &Config) -> Needs {
        use super::Kind;
        let keeps_samples = cfg.save_samples && matches!(kind, Kind::Run | Kind::Collapse);
        let uses_training = kind.empirical(cfg) || cfg.train_file.is_some();
        // `run --save-samples --record-times` keeps a copy of the samples per record time.
        let snapshots = match (kind, &cfg.record_times) {
            (Kind::Run, Some(times)) if keeps_samples => times.len(),
            _ => 0,
        };
        let (memory, memory_flag) = memory_needed(cfg, keeps_samples, uses_training);
        let extra = if keeps_samples {
            cfg.particles
                .unwrap_or(0)
                .saturating_mul(cfg.dim as u64 * 4 + 4)
                .saturating_mul(snapshots as u64)
        } else {
            0
        };
        Needs {
            memory: memory.saturating_add(extra),
            memory_flag: if extra > 0 {
                "--particles, --record-times (a copy of the samples each) or drop --save-samples"
            } else {
                memory_flag
            },
            disk: disk_needed(cfg, keeps_samples, snapshots),
        }
    }

    /// The needs of `self` and then `next` in one process, one after the other: the larger
    /// memory, the disk of both (a sweep's points all stay on disk).
    pub fn then(self, next: Needs) -> Needs {
        let bigger = next.memory > self.memory;
        Needs {
            memory: self.memory.max(next.memory),
            memory_flag: if bigger {
                next.memory_flag
            } else {
                self.memory_flag
            },
            disk: self.disk.saturating_add(next.disk),
        }
    }

    /// Refuses needs the machine cannot meet: memory against what the system has available,
    /// disk where `out` (or its nearest existing ancestor) is.
    pub fn check(&self, out: Option<&Path>) -> Result<()> {
        if let Some(avail) = available_memory() {
            ensure!(
                self.memory <= avail,
                "the run needs about {:.1} GiB of memory, the system has {:.1} GiB available; \
                 lower {}",
                gib(self.memory),
                gib(avail),
                self.memory_flag
            );
        }
        if let Some(dir) = out {
            let existing = dir
                .ancestors()
                .find(|a| a.exists())
                .unwrap_or(Path::new("."));
            check_disk_bytes(self.disk, existing)?;
        }
        Ok(())
    }
}

/// What every study checks before it starts, whichever command runs it (the study alone, each
/// point of a sweep): host memory, and disk where `out` (or its nearest existing ancestor) is.
pub fn check_study(kind: super::Kind, cfg: &Config, out: Option<&Path>) -> Result<()> {
    Needs::study(kind, cfg).check(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_name_the_flag_that_dominates() {
        let cfg = Config {
            dim: 100,
            n_train: Some(1_000_000_000),
            particles: Some(1000),
            ..Config::default()
        };
        let (bytes, flag) = memory_needed(&cfg, true, true);
        let model = 100 * 8 * DENSE_COPIES; // U = I, Q = 0: d numbers each
        assert_eq!(bytes, 1_000_000_000 * 100 * 28 + model);
        assert_eq!(flag, "--n-train");
        assert!(check_memory(&cfg, true, true).is_err());
        let (bytes, flag) = memory_needed(&cfg, true, false);
        assert_eq!(
            (bytes, flag.starts_with("--particles")),
            (1000 * 424 + model, true)
        );
        assert!(check_memory(&cfg, true, false).is_ok());
        assert!(check_disk(&cfg, true, Path::new("/tmp")).is_ok());
        let huge = Config {
            particles: Some(1 << 47),
            ..cfg
        };
        assert!(check_disk(&huge, true, Path::new("/tmp")).is_err());
        // A scalar U of d = 100 000 stays small; a dense Q of that d is counted (and refused).
        let wide = Config {
            dim: 100_000,
            ..Config::default()
        };
        assert!(memory_needed(&wide, false, false).0 < 1 << 30);
        let dense = Config {
            q: crate::model::QSpec::Optimal(1.0),
            ..wide
        };
        let (bytes, flag) = memory_needed(&dense, false, false);
        assert_eq!(
            (bytes, flag.starts_with("--dim")),
            (100_000u64.pow(2) * 8 * DENSE_COPIES, true)
        );
        assert!(check_memory(&dense, false, false).is_err());
    }

    /// `run --save-samples --record-times` writes (and holds) a copy of the samples at each
    /// record time; a sweep's points all stay on disk, so their disk adds up.
    #[test]
    fn disk_counts_snapshots_and_sums_over_a_sweep() {
        use crate::study::Kind;
        let cfg = Config {
            dim: 10,
            particles: Some(1000),
            save_samples: true,
            record_times: Some(vec![5.0, 1.0, 0.5]),
            ..Config::default()
        };
        let one = 1000 * (10 * 4 + 8);
        let run = Needs::study(Kind::Run, &cfg);
        assert_eq!(run.disk, 4 * one + REPORT_BYTES);
        let (memory, _) = memory_needed(&cfg, true, false);
        assert_eq!(run.memory, memory + 3 * 1000 * (10 * 4 + 4));
        // Speciation keeps no samples; collapse keeps the final ones only.
        assert_eq!(Needs::study(Kind::Speciation, &cfg).disk, REPORT_BYTES);
        // Three points: three times the disk, the memory of the largest.
        let big = Config {
            particles: Some(2000),
            ..cfg.clone()
        };
        let sweep = Needs::study(Kind::Run, &cfg)
            .then(Needs::study(Kind::Run, &big))
            .then(Needs::study(Kind::Run, &cfg));
        assert_eq!(
            sweep.disk,
            2 * run.disk + Needs::study(Kind::Run, &big).disk
        );
        assert_eq!(sweep.memory, Needs::study(Kind::Run, &big).memory);
        // One point (about 0.2 GB) fits on /tmp, 10⁵ of them (20 TB) do not.
        let huge = Config {
            particles: Some(1 << 20),
            ..cfg
        };
        let point = Needs::study(Kind::Run, &huge);
        assert!(point.check(Some(Path::new("/tmp"))).is_ok());
        let mut all = point.clone();
        for _ in 0..100_000 {
            all = all.then(point.clone());
        }
        let err = all.check(Some(Path::new("/tmp"))).unwrap_err().to_string();
        assert!(err.contains("GiB free"), "{err}");
    }
}
