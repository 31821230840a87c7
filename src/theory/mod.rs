//! Theory the runs are compared against (docs/mathematics.md §6, §7): speciation (t_S, cloning probability),
//! collapse (t_C, excess entropy) and relaxation (spectral gap, stiffness of the explicit step).
//!
//! Everything is host-side f64 and takes a [`Process`] plus plain data. Root finders return
//! `Option` where a root may not exist.
//!
//! Two monotonicity facts make the root finding unambiguous, for every antisymmetric Q:
//! * `s(t) = m_tᵀ Γ_t⁻¹ m_t` is the Fisher information about the class sign θ carried by x_t
//!   (x_0 = θ m + ξ). The forward process is Markov, θ → x_0 → x_t → x_t', so by the data
//!   processing inequality for Fisher information s(t) is non-increasing in t. It does *not*
//!   oscillate, even with rotations; the grid scan in [`speciation::t_speciation`] is a safety net.
//! * `rem_alpha_at(t) = I(x_0; x_t)/d` for Gaussian x_0, a mutual information along a Markov
//!   chain, hence non-increasing as well.

pub mod collapse;
pub mod data;
pub mod gradient;
pub mod isotropic;
pub mod modes;
pub mod relaxation;
mod roots;
mod spd;
pub mod speciation;
pub mod steer;

use nalgebra::DVector;
use serde::Serialize;

use crate::model::{Mixture, Process};

pub use collapse::{biroli_excess_entropy, biroli_t_collapse, rem_alpha_at, t_collapse};
pub use relaxation::{gap_bound, reversible_gap, spectral_gap, stiffness, stiffness_warning};
pub use speciation::{
    between_class_deviations, between_snr, biroli_t_speciation, cloning_probability,
    f_at_speciation, lambda_min_mtilde, s_curve, snr, t_speciation, t_speciation_between,
    t_speciation_mixture,
};

pub(crate) use roots::{bisect, crossing_from_grid, for_each_on_grid, last_crossing};
pub(crate) use spd::{lambda_min_rank_one_down, log_det_spd, quad_inv};

/// A stop was requested (a signal): the scans and bisections end at their next evaluation, so
/// that a large-d theory stops within one evaluation. What they return then is meaningless;
/// every caller that can be stopped checks [`crate::stop::stop_reason`] after the theory
/// and reports the stop instead of the numbers.
pub(crate) fn stopping() -> bool {
    crate::stop::stop_reason().is_some()
}

/// Number of points of the `s_curve` in (0, t_max].
pub const S_CURVE_POINTS: usize = 200;

/// Theoretical predictions for one run, serialised into the JSON summary.
#[derive(Clone, Debug, Serialize)]
pub struct Theory {
    /// Speciation time (two symmetric classes: s(t) = 1; otherwise the general-data criterion).
    /// Equal to `t_max` when the criterion already holds at the horizon.
    pub t_s: Option<f64>,
    /// Collapse time (only with a training-set size N).
    pub t_c: Option<f64>,
    /// `min Re λ(A)`.
    pub spectral_gap: f64,
    /// `λ_min(U)`, the gap of the reversible process (Q = 0).
    pub spectral_gap_reversible: f64,
    /// `Tr(U)/d`, the largest gap any Q can reach.
    pub gap_bound: f64,
    /// `Δt ‖QU‖₂`.
    pub stiffness: f64,
    pub warnings: Vec<String>,
    /// `(t, s(t), λ_min(M̃(t)), F(s(t)))` on a uniform grid of (0, t_max]; empty unless the
    /// target is two symmetric classes ±m with weights ½.
    pub s_curve: Vec<speciation::SPoint>,
}

/// If `mixture` is two symmetric classes ±m with weights ½, return m.
pub fn symmetric_two_class(mixture: &Mixture) -> Option<&DVector<f64>> {
    if mixture.weights.len() != 2 || mixture.means.len() != 2 {
        return None;
    }
    let w_ok = mixture.weights.iter().all(|w| (w - 0.5).abs() <= 1e-12);
    let (a, b) = (&mixture.means[0], &mixture.means[1]);
    let scale = a.amax().max(b.amax()).max(f64::MIN_POSITIVE);
    let sym_ok = a.len() == b.len() && (a + b).amax() <= 1e-12 * scale;
    (w_ok && sym_ok).then_some(a)
}

/// All theoretical predictions for a mixture target.
///
/// * t_S: two symmetric classes → `s(t) = 1` ([`t_speciation`]); otherwise the same criterion on
///   the leading between-class SNR ([`t_speciation_mixture`]), which equals s(t) for two
///   symmetric classes, so t_S is continuous in the target.
/// * t_C (when `n_train` is given): [`t_collapse`] with C = the within-class covariance
///   `mixture.cov`. The class means add a rank-one (rank K−1) term to the data covariance, which
///   changes Σ_k log(1+ρ_k) by O(log d) and so α by O(log d / d): negligible at large d, and
///   leaving it out reproduces Biroli's closed form `½ log(1 + σ²/(N^{2/d} − 1))` exactly.
pub fn theory(
    p: &Process,
    mixture: &Mixture,
    n_train: Option<usize>,
    t_max: f64,
    dt: f64,
) -> Theory {
    let mut warnings = Vec::new();
    let spectral_gap = relaxation::spectral_gap(&p.a);
    let spectral_gap_reversible = reversible_gap(&p.u);
    let gap_bound = gap_bound(&p.u);
    let stiffness = stiffness(p, dt);
    if let Some(w) = stiffness_warning(p, dt) {
        warnings.push(w);
    }
    let mut out = Theory {
        t_s: None,
        t_c: None,
        spectral_gap,
        spectral_gap_reversible,
        gap_bound,
        stiffness,
        warnings: Vec::new(),
        s_curve: Vec::new(),
    };
    let dims_ok = mixture.dim() == p.dim()
        && mixture.means.iter().all(|m| m.len() == p.dim())
        && mixture.weights.len() == mixture.means.len()
        && !mixture.means.is_empty();
    if !dims_ok {
        warnings.push(format!(
            "theory: the mixture (d = {}, {} means, {} weights) does not match the process \
             (d = {}); t_S and t_C not computed",
            mixture.dim(),
            mixture.means.len(),
            mixture.weights.len(),
            p.dim()
        ));
        out.warnings = warnings;
        return out;
    }
    if !(t_max.is_finite() && t_max > 0.0) {
        warnings.push(format!(
            "theory: horizon t_max = {t_max} must be positive and finite; t_S and t_C not computed"
        ));
        out.warnings = warnings;
        return out;
    }

    let c = &mixture.cov;
    if let Some(m) = symmetric_two_class(mixture) {
        // The s curve doubles as the scan grid of t_speciation (s(0) completes it).
        out.s_curve = speciation::s_curve(p, m, c, t_max, S_CURVE_POINTS);
        let values: Vec<f64> = std::iter::once(snr(p, m, c, 0.0))
            .chain(out.s_curve.iter().map(|row| row.s))
            .map(|s| s - 1.0)
            .collect();
        out.t_s = crossing_from_grid(&values, t_max, |t| snr(p, m, c, t) - 1.0);
        if out.t_s.is_none() {
            warnings.push(
                "speciation: s(t) < 1 at all times, the classes are never resolved (t_S undefined)"
                    .to_string(),
            );
        }
    } else {
        out.t_s = t_speciation_mixture(p, mixture, t_max);
        warnings.push(
            "speciation: the target is not two symmetric classes, so t_S is where the leading \
             between-class SNR λ_max(Γ_t⁻¹ E_t B E_tᵀ) crosses 1 (the first split; s(t) for two \
             symmetric classes) and no s(t) curve is given"
                .to_string(),
        );
    }
    if out.t_s == Some(t_max) {
        warnings.push(format!(
            "speciation: the criterion already holds at the horizon t = {t_max}, so t_S ≥ {t_max}"
        ));
    }
    if let Some(n) = n_train {
        out.t_c = t_collapse(p, c, n, t_max);
        if out.t_c == Some(t_max) {
            warnings.push(format!(
                "collapse: α = ln N / d is above the entropy gap already at the horizon \
                 t = {t_max}, so t_C ≥ {t_max}"
            ));
        }
        if let (Some(ts), Some(tc)) = (out.t_s, out.t_c)
            && tc > ts
        {
            warnings.push(format!(
                "collapse before speciation (t_C = {tc:.4} > t_S = {ts:.4}): with N = {n} the \
                 samples memorise before the classes are decided"
            ));
        }
    }
    // Stopped: the scans ended early, their numbers and warnings mean nothing (the caller
    // reports the stop).
    out.warnings = if stopping() { vec![] } else { warnings };
    out
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    pub use crate::linalg::Linear;
    pub use nalgebra::DMatrix;

    /// A fixed dense antisymmetric matrix G − Gᵀ (G from a simple deterministic formula).
    pub fn antisym(d: usize, scale: f64) -> Linear {
        let g = DMatrix::from_fn(d, d, |i, j| {
            (((i * 7 + j * 13 + 3) % 11) as f64 - 5.0) / 5.0
        });
        Linear::Dense((&g - g.transpose()) * scale)
    }

    /// The reversible process (Q = 0) of precision U.
    pub fn reversible(u: Linear) -> Process {
        let d = u.dim();
        Process::new(u, Linear::Scalar(0.0, d)).unwrap()
    }

    /// A fixed vector with entries of both signs.
    pub fn vector(d: usize) -> DVector<f64> {
        DVector::from_fn(d, |i, _| 1.0 + 0.5 * ((i * 5 % 7) as f64 - 3.0) / 3.0)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn rank_one_down_matches_dense() {
        let d = 6;
        let diag = DVector::from_fn(d, |i, _| 0.5 + i as f64 * 0.7);
        let mut m = vector(d) * 0.6;
        m[2] = 0.0;
        let want = lambda_min_rank_one_down(&Linear::Dense(DMatrix::from_diagonal(&diag)), &m);
        let got = lambda_min_rank_one_down(&Linear::Diagonal(diag.clone()), &m);
        assert!((want - got).abs() < 1e-12, "{want} vs {got}");
        let s = lambda_min_rank_one_down(&Linear::Scalar(2.0, d), &m);
        let sd = lambda_min_rank_one_down(&Linear::Dense(DMatrix::identity(d, d) * 2.0), &m);
        assert!((s - sd).abs() < 1e-12);
        // A coordinate with m_i = 0 and the smallest d_i is an eigenvalue on its own.
        let diag2 = DVector::from_vec(vec![0.1, 5.0, 6.0]);
        let m2 = DVector::from_vec(vec![0.0, 0.5, 0.5]);
        assert_eq!(lambda_min_rank_one_down(&Linear::Diagonal(diag2), &m2), 0.1);
    }

    #[test]
    fn theory_two_class_biroli() {
        let d = 100;
        let m = DVector::from_element(d, 1.0);
        let mix = Mixture::two_class(m, 1.0);
        let p = Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap();
        let th = theory(&p, &mix, Some(1000), 10.0, 0.01);
        let ts = th.t_s.unwrap();
        assert!((ts - 0.5 * (d as f64).ln()).abs() < 1e-8);
        let tc = th.t_c.unwrap();
        assert!((tc - biroli_t_collapse(1000, d, 1.0)).abs() < 1e-8);
        assert_eq!(th.s_curve.len(), S_CURVE_POINTS);
        assert_eq!(th.spectral_gap, 1.0);
        assert_eq!(th.gap_bound, 1.0);
        assert_eq!(th.stiffness, 0.0);
        // φ crosses F(1) exactly where s crosses 1.
        for &speciation::SPoint {
            t,
            s,
            lambda_min_mtilde: lmin,
            phi_theory: phi,
        } in &th.s_curve
        {
            assert_eq!(s >= 1.0, t <= ts, "t = {t}");
            assert_eq!(lmin <= 0.0, s >= 1.0 - 1e-12, "t = {t}");
            assert_eq!(phi >= f_at_speciation(), s >= 1.0, "t = {t}");
        }
        let json = serde_json::to_value(&th).unwrap();
        for key in [
            "t_s",
            "t_c",
            "spectral_gap",
            "spectral_gap_reversible",
            "gap_bound",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }

    /// Anisotropic U (geometric spectrum 0.2..5), ±m along (1,…,1) with ‖m‖² = d, σ = 1,
    /// N = 1000: the numbers for the record, with and without a dense rotation. Timing of the
    /// dense path. `cargo test --release --lib theory -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn record_anisotropic_and_timing() {
        for d in [20, 100, 200] {
            let u = Linear::Diagonal(DVector::from_fn(d, |i, _| {
                0.2 * 25f64.powf(i as f64 / (d - 1) as f64)
            }));
            let mix = Mixture::two_class(DVector::from_element(d, 1.0), 1.0);
            for scale in [0.0, 0.1, 0.5] {
                let q = if scale == 0.0 {
                    Linear::Scalar(0.0, d)
                } else {
                    antisym(d, scale)
                };
                let p = Process::new(u.clone(), q).unwrap();
                let start = std::time::Instant::now();
                let th = theory(&p, &mix, Some(1000), 10.0, 0.01);
                eprintln!(
                    "d={d} |Q| scale={scale}: t_S={:.6} t_C={:.6} gap={:.4} (rev {:.4}, bound \
                     {:.4}) stiffness={:.4} [{:.2} s]",
                    th.t_s.unwrap_or(f64::NAN),
                    th.t_c.unwrap_or(f64::NAN),
                    th.spectral_gap,
                    th.spectral_gap_reversible,
                    th.gap_bound,
                    th.stiffness,
                    start.elapsed().as_secs_f64()
                );
            }
        }
    }

    /// theory() reuses its s curve as the scan grid: same t_S as [`t_speciation`].
    #[test]
    fn theory_matches_t_speciation_dense() {
        let d = 9;
        let u = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.3 + 0.4 * i as f64));
        let p = Process::new(u, antisym(d, 0.8)).unwrap();
        let mix = Mixture::two_class(vector(d) * 0.8, 0.7);
        let th = theory(&p, &mix, Some(100), 10.0, 0.01);
        let ts = t_speciation(&p, &mix.means[0], &mix.cov, 10.0).unwrap();
        assert!((th.t_s.unwrap() - ts).abs() < 1e-9, "{:?} vs {ts}", th.t_s);
        let tc = t_collapse(&p, &mix.cov, 100, 10.0).unwrap();
        assert_eq!(th.t_c, Some(tc));
        assert!(th.spectral_gap > th.spectral_gap_reversible);
        assert!(th.spectral_gap <= th.gap_bound + 1e-12);
    }

    #[test]
    fn theory_general_mixture_uses_the_between_class_snr() {
        let d = 20;
        let mut means = vec![DVector::zeros(d); 3];
        means[0][0] = 3.0;
        means[1][1] = 3.0;
        let mix = Mixture {
            weights: vec![0.2, 0.3, 0.5],
            means,
            cov: Linear::Scalar(0.5, d),
        };
        let p = Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap();
        let th = theory(&p, &mix, None, 10.0, 0.01);
        let want = speciation::t_speciation_mixture(&p, &mix, 10.0).unwrap();
        assert_eq!(th.t_s, Some(want));
        assert!(th.t_c.is_none());
        assert!(th.s_curve.is_empty());
        // Mismatched dimensions: no panic, a warning.
        let p3 = Process::new(Linear::identity(3), Linear::Scalar(0.0, 3)).unwrap();
        let th = theory(&p3, &mix, Some(10), 10.0, 0.01);
        assert!(th.t_s.is_none() && !th.warnings.is_empty());
    }
}
