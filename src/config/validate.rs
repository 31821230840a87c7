//! The checks of a resolved config: each refuses a value no study can run with, naming its key.

use std::collections::BTreeSet;

use anyhow::{Result, ensure};

use super::{
    Config, FIGURE_DPI, FIGURE_UNITS, MAX_HORIZON, MAX_PARTICLES, MAX_PNG_SIDE, MAX_SCALE,
    MAX_THREADS_PER_CORE,
};
use crate::model::coupling::Pairing;
use crate::model::{QSpec, USpec};
use crate::plan::{Spacing, Steps};

/// Times in (0, t_max], or [0, t_max] where t = 0 is meaningful (`zero`: the samples themselves;
/// a branch or an entropy time needs t > 0).
fn check_times(field: &str, times: &Option<Vec<f64>>, t_max: f64, zero: bool) -> Result<()> {
    if let Some(ts) = times {
        ensure!(
            !ts.is_empty(),
            "{field}: must not be empty (omit it for the default grid)"
        );
        let open = if zero { "[" } else { "(" };
        for &t in ts {
            ensure!(t.is_finite(), "{field}: {t} is not finite");
            ensure!(
                (t > 0.0 || (zero && t == 0.0)) && t <= t_max,
                "{field}: {t} is outside {open}0, t-max = {t_max}]"
            );
        }
    }
    Ok(())
}

impl Config {
    /// Check every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.dim > 0, "dim: must be positive");
        ensure!(self.particles != Some(0), "particles: must be positive");
        ensure!(self.steps != Steps::Count(0), "steps: must be positive");
        ensure!(self.pairs != Some(0), "pairs: must be positive");
        if let Some(n) = self.n_train {
            ensure!(
                n >= 2,
                "n-train: {n} training point{} make no empirical target (α = ln N / d = 0); use \
                 at least 2",
                if n == 1 { "" } else { "s" }
            );
        }
        // Particle ids carry a clone's stream tag in their top 16 bits.
        if let Some(p) = self.particles {
            ensure!(
                p <= MAX_PARTICLES,
                "particles: {p} is more than the {MAX_PARTICLES} (2⁴⁸) a run can tell apart"
            );
            ensure!(
                p.checked_mul(self.steps.count().unwrap_or(1) as u64)
                    .is_some_and(|n| n < u64::MAX / 4),
                "particles × steps = {p} × {} overflows the 64-bit counters",
                self.steps
            );
        }
        if let Some(p) = self.pairs {
            ensure!(
                p <= MAX_PARTICLES / 2,
                "pairs: {p} is more than the {} a run can tell apart",
                MAX_PARTICLES / 2
            );
        }
        // One sample has no standard error (it would print as 0).
        ensure!(
            self.entropy_samples >= 2,
            "entropy-samples: must be at least 2 (f^e's standard error needs two samples)"
        );
        ensure!(
            self.steps_per_dispatch != Some(0),
            "steps-per-dispatch: must be positive"
        );
        ensure!(
            self.t_max.is_finite() && self.t_max > 0.0,
            "t-max: must be positive and finite (got {})",
            self.t_max
        );
        ensure!(
            self.t_max <= MAX_HORIZON,
            "t-max: {:e} is beyond any useful horizon (at most {MAX_HORIZON:e}: the process has \
             relaxed after a few times 1/gap, and the theory's time scans lose their resolution)",
            self.t_max
        );
        ensure!(
            self.sigma.is_finite() && self.sigma > 0.0,
            "sigma: must be positive and finite (got {})",
            self.sigma
        );
        ensure!(
            (1.0 / MAX_SCALE..=MAX_SCALE).contains(&(self.sigma * self.sigma)),
            "sigma: σ² = {:e} is outside [1e−30, 1e30], where f32 plans overflow",
            self.sigma * self.sigma
        );
        if let Some(m2) = self.mean_norm2 {
            ensure!(
                m2.is_finite() && m2 >= 0.0,
                "mean-norm2: must be ≥ 0 and finite (got {m2})"
            );
            ensure!(
                m2 <= MAX_SCALE,
                "mean-norm2: {m2:e} is above 1e30, where f32 plans overflow"
            );
        }
        // At t = 0 the logits hold ‖m‖²/σ² (Γ(0) = C = σ²I): above 1e30 their f32 sums overflow
        // and every particle turns NaN (‖m‖² = 1e20 with σ = 1e-12 did).
        let m2 = self.mean_norm2.unwrap_or(self.dim as f64);
        let ratio = m2 / (self.sigma * self.sigma);
        ensure!(
            ratio <= MAX_SCALE,
            "sigma: ‖m‖²/σ² = {ratio:.1e} (mean-norm2 {m2:e}, sigma {:e}) is above 1e30, where the \
             f32 logits at t = 0 overflow to NaN; use a larger --sigma or a smaller --mean-norm2",
            self.sigma
        );
        if let Some(b) = self.batch {
            ensure!(
                b > 0,
                "batch: must be positive (omit it for the engine's maximum)"
            );
        }
        if let Some(t) = self.threads {
            ensure!(t > 0, "threads: must be positive (omit it for all cores)");
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            ensure!(
                t <= MAX_THREADS_PER_CORE * cores,
                "threads: {t} is more than {MAX_THREADS_PER_CORE} per core ({cores} cores here); \
                 more threads only add overhead"
            );
        }
        if let Some(a) = &self.adapter {
            ensure!(!a.trim().is_empty(), "adapter: must not be empty");
        }
        let branch = self
            .branch_times
            .as_ref()
            .and_then(|b| b.times().map(<[f64]>::to_vec));
        check_times("branch-times", &branch, self.t_max, false)?;
        if let Spacing::Nodes(v) = &self.grid {
            check_times("grid", &Some(v.clone()), self.t_max, false)?;
        }
        check_times("entropy-times", &self.entropy_times, self.t_max, false)?;
        check_times("record-times", &self.record_times, self.t_max, true)?;

        if let USpec::Diag(v) = &self.u {
            ensure!(
                v.len() == self.dim,
                "u: diag has {} eigenvalues but dim is {} (set dim = {} or give {} values)",
                v.len(),
                self.dim,
                v.len(),
                self.dim
            );
        }
        ensure!(
            self.coupling.is_some() || (self.pairing == Pairing::Shared && self.pair_angle == 90.0),
            "pairing, pair-angle: they shape the classes of coupled modalities; set --coupling \
             too (or leave them out)"
        );
        if let Some(c) = &self.coupling {
            c.check(Some(self.dim))?;
            ensure!(
                self.q == QSpec::Zero,
                "q: --q does not apply to coupled modalities; rotate them with --coupling \
                 rotating:GAMMA,OMEGA"
            );
            ensure!(
                self.pairing == Pairing::Shared || self.mixture_file.is_none(),
                "pairing: per-mode builds its four classes from m_x and m_y; a mixture-file gives \
                 its own classes (omit one of them)"
            );
            ensure!(self.dim >= 2, "dim: --coupling needs d ≥ 2 per modality");
        }
        if let QSpec::Pair(i, j, _) = self.q {
            ensure!(
                i < self.dim && j < self.dim,
                "q: pair indices {i}, {j} must be below dim = {} (they are 0-based)",
                self.dim
            );
        }
        if let Some(ls) = &self.q_lambdas {
            ensure!(
                ls.len() == self.dim,
                "q-lambdas: needs dim = {} values, got {}",
                self.dim,
                ls.len()
            );
            ensure!(
                ls.iter().all(|l| l.is_finite() && *l > 0.0),
                "q-lambdas: every value must be positive and finite"
            );
            let distinct: BTreeSet<u64> = ls.iter().map(|l| l.to_bits()).collect();
            ensure!(
                distinct.len() == ls.len(),
                "q-lambdas: values must be distinct"
            );
        }
        if let Some((w, h)) = self.figure_size {
            ensure!(
                FIGURE_UNITS.contains(&w) && FIGURE_UNITS.contains(&h),
                "figure-size: {w}x{h}: width and height from {} to {} (units of 1/96 inch)",
                FIGURE_UNITS.start(),
                FIGURE_UNITS.end()
            );
        }
        ensure!(
            FIGURE_DPI.contains(&self.dpi),
            "dpi: {} is not from {} to {}",
            self.dpi,
            FIGURE_DPI.start(),
            FIGURE_DPI.end()
        );
        let (w, h) = self.figure_size.unwrap_or((1100, 540));
        let pixels = |v: u32| u64::from(v) * u64::from(self.dpi) / 96;
        ensure!(
            pixels(w).max(pixels(h)) <= MAX_PNG_SIDE,
            "dpi: {} makes a {}x{}-pixel PNG of a {w}x{h} figure; at most {MAX_PNG_SIDE} pixels \
             a side (lower dpi or figure-size)",
            self.dpi,
            pixels(w),
            pixels(h)
        );
        for (field, p) in [
            ("mixture-file", &self.mixture_file),
            ("train-file", &self.train_file),
            ("train-labels", &self.train_labels),
        ] {
            if let Some(p) = p {
                ensure!(!p.as_os_str().is_empty(), "{field}: must not be empty");
            }
        }
        ensure!(
            self.train_labels.is_none() || self.train_file.is_some(),
            "train-labels: labels belong to the points of a train-file (give --train-file too)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BranchTimes;

    /// The samples themselves (t = 0) may be recorded; a branch or an entropy time needs t > 0.
    #[test]
    fn record_times_may_include_the_end() {
        let ok = Config {
            record_times: Some(vec![10.0, 0.0]),
            ..Config::default()
        };
        ok.validate().unwrap();
        for c in [
            Config {
                branch_times: Some(BranchTimes::At(vec![0.0])),
                ..Config::default()
            },
            Config {
                entropy_times: Some(vec![0.0]),
                ..Config::default()
            },
            Config {
                record_times: Some(vec![-0.5]),
                ..Config::default()
            },
        ] {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("is outside"), "{e}");
        }
    }

    #[test]
    fn each_validation_error_names_its_field() {
        type Case = (&'static str, Box<dyn Fn(&mut Config)>);
        let cases: Vec<Case> = vec![
            ("dim", Box::new(|c| c.dim = 0)),
            ("particles", Box::new(|c| c.particles = Some(0))),
            ("steps", Box::new(|c| c.steps = Steps::Count(0))),
            ("pairs", Box::new(|c| c.pairs = Some(0))),
            ("n-train", Box::new(|c| c.n_train = Some(0))),
            ("entropy-samples", Box::new(|c| c.entropy_samples = 0)),
            (
                "steps-per-dispatch",
                Box::new(|c| c.steps_per_dispatch = Some(0)),
            ),
            ("t-max", Box::new(|c| c.t_max = f64::INFINITY)),
            ("t-max", Box::new(|c| c.t_max = -1.0)),
            ("sigma", Box::new(|c| c.sigma = f64::NAN)),
            ("sigma", Box::new(|c| c.sigma = 0.0)),
            ("mean-norm2", Box::new(|c| c.mean_norm2 = Some(-1.0))),
            ("mean-norm2", Box::new(|c| c.mean_norm2 = Some(f64::NAN))),
            ("batch", Box::new(|c| c.batch = Some(0))),
            ("threads", Box::new(|c| c.threads = Some(0))),
            ("adapter", Box::new(|c| c.adapter = Some(" ".into()))),
            (
                "branch-times",
                Box::new(|c| c.branch_times = Some(BranchTimes::At(vec![1.0, 11.0]))),
            ),
            (
                "branch-times",
                Box::new(|c| c.branch_times = Some(BranchTimes::At(vec![0.0]))),
            ),
            (
                "entropy-times",
                Box::new(|c| c.entropy_times = Some(vec![f64::NAN])),
            ),
            ("record-times", Box::new(|c| c.record_times = Some(vec![]))),
            ("u", Box::new(|c| c.u = USpec::Diag(vec![1.0, 2.0]))),
            ("q", Box::new(|c| c.q = QSpec::Pair(0, 16, 1.0))),
            ("q-lambdas", Box::new(|c| c.q_lambdas = Some(vec![1.0; 16]))),
            (
                "q-lambdas",
                Box::new(|c| c.q_lambdas = Some(vec![1.0, 2.0])),
            ),
        ];
        for (field, f) in cases {
            let mut c = Config::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{field}:")) || e.starts_with(&format!("{field} (")),
                "{field}: {e}"
            );
        }
    }
}
