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
pub mod modes;
pub mod relaxation;
pub mod speciation;

use nalgebra::DVector;
use serde::Serialize;

use crate::linalg::{Form, Linear};
use crate::model::{Mixture, Process};

pub use collapse::{biroli_excess_entropy, biroli_t_collapse, rem_alpha_at, t_collapse};
pub use relaxation::{gap_bound, reversible_gap, spectral_gap, stiffness, stiffness_warning};
pub use speciation::{
    between_class_deviations, between_snr, biroli_t_speciation, cloning_probability,
    f_at_speciation, lambda_min_mtilde, s_curve, snr, t_speciation, t_speciation_between,
    t_speciation_mixture,
};

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
    pub s_curve: Vec<(f64, f64, f64, f64)>,
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
            .chain(out.s_curve.iter().map(|row| row.1))
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
    out.warnings = warnings;
    out
}

// ---------------------------------------------------------------------------------------------
// Shared numerics.

/// `vᵀ G⁻¹ v` for a symmetric positive definite G; `+∞` if G is not positive definite.
pub(crate) fn quad_inv(g: &Linear, v: &DVector<f64>) -> f64 {
    match g {
        Linear::Scalar(c, _) => {
            if *c > 0.0 {
                v.norm_squared() / c
            } else {
                f64::INFINITY
            }
        }
        Linear::Diagonal(diag) => {
            if diag.iter().all(|&x| x > 0.0) {
                v.iter().zip(diag.iter()).map(|(x, g)| x * x / g).sum()
            } else {
                f64::INFINITY
            }
        }
        Linear::Dense(m) => match ((m + m.transpose()) * 0.5).cholesky() {
            Some(ch) => {
                let mut w = v.clone();
                ch.l_dirty().solve_lower_triangular_mut(&mut w);
                // l_dirty's upper part is garbage; solve_lower_triangular only reads the lower.
                w.norm_squared()
            }
            None => f64::INFINITY,
        },
    }
}

/// `log det G` of a symmetric positive definite G; `None` if G is not positive definite.
pub(crate) fn log_det_spd(g: &Linear) -> Option<f64> {
    match g {
        Linear::Scalar(c, d) => (*c > 0.0).then(|| *d as f64 * c.ln()),
        Linear::Diagonal(v) => v
            .iter()
            .all(|&x| x > 0.0)
            .then(|| v.iter().map(|x| x.ln()).sum()),
        Linear::Dense(m) => ((m + m.transpose()) * 0.5)
            .cholesky()
            .map(|ch| 2.0 * ch.l_dirty().diagonal().iter().map(|x| x.ln()).sum::<f64>()),
    }
}

/// `λ_min(G − m mᵀ)` for a symmetric G: closed form (scalar), secular equation (diagonal) or a
/// dense symmetric eigensolve (O(d³)).
pub(crate) fn lambda_min_rank_one_down(g: &Linear, m: &DVector<f64>) -> f64 {
    match g {
        Linear::Scalar(c, d) => {
            let n2 = m.norm_squared();
            if *d >= 2 { (c - n2).min(*c) } else { c - n2 }
        }
        Linear::Diagonal(diag) => {
            let dmin_all = diag.iter().copied().fold(f64::INFINITY, f64::min);
            let pairs: Vec<(f64, f64)> = diag
                .iter()
                .zip(m.iter())
                .filter(|(_, mi)| **mi != 0.0)
                .map(|(di, mi)| (*di, mi * mi))
                .collect();
            if pairs.is_empty() {
                return dmin_all;
            }
            let dmin = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let n2: f64 = pairs.iter().map(|p| p.1).sum();
            // Secular equation f(λ) = Σ m_i²/(d_i − λ) = 1 on (dmin − ‖m‖², dmin): f increases
            // from ≤ 1 to +∞, so the smallest eigenvalue of the coupled block is its root.
            let f = |l: f64| pairs.iter().map(|(di, mi2)| mi2 / (di - l)).sum::<f64>();
            let (mut lo, mut hi) = (dmin - n2, dmin);
            for _ in 0..300 {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                if f(mid) > 1.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            lo.min(dmin_all)
        }
        Linear::Dense(mat) => {
            let mut a = (mat + mat.transpose()) * 0.5;
            a.ger(-1.0, m, m, 1.0);
            a.symmetric_eigenvalues()
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
        }
    }
}

/// Visit `E_t` on the uniform grid `t_k = t_max·k/n`, k = 0..=n. Dense propagators are built
/// by repeated multiplication `E_{t_k} = E_{t_{k−1}} E_h` (one matrix product per point instead
/// of a matrix exponential; the relative error grows like k·ε); cheap forms and schedules (whose
/// steps differ) use the closed form.
pub(crate) fn for_each_on_grid(
    p: &Process,
    t_max: f64,
    n: usize,
    mut f: impl FnMut(usize, f64, &Linear),
) {
    let at = |k: usize| t_max * k as f64 / n as f64;
    if p.a.form() != Form::Dense || p.schedule.is_some() {
        for k in 0..=n {
            f(k, at(k), &p.propagator(at(k)));
        }
        return;
    }
    let step = p.propagator(at(1));
    let mut e = Linear::identity(p.dim());
    for k in 0..=n {
        f(k, at(k), &e);
        if k < n {
            e = e.mul(&step);
        }
    }
}

/// `sup{t ∈ [0, t_max] : g(t, E_t) ≥ 0}`: evaluate g on a uniform grid of `n` intervals
/// ([`for_each_on_grid`]), take the highest grid point with g ≥ 0 (as if scanning from t_max
/// downward), then bisect the bracket above it with exact propagators to an absolute width of
/// `1e-11·max(1, t)`. NaN counts as < 0. `Some(t_max)` when g(t_max) ≥ 0, `None` when g < 0 at
/// every grid point.
pub(crate) fn last_crossing(
    p: &Process,
    mut g: impl FnMut(f64, &Linear) -> f64,
    t_max: f64,
    n: usize,
) -> Option<f64> {
    if !(t_max.is_finite() && t_max > 0.0) {
        return None;
    }
    let n = n.max(1);
    let at_max = g(t_max, &p.propagator(t_max));
    if at_max >= 0.0 {
        return Some(t_max);
    }
    let mut values = vec![at_max; n + 1];
    for_each_on_grid(p, t_max, n, |k, t, e| {
        if k < n {
            values[k] = g(t, e);
        }
    });
    crossing_from_grid(&values, t_max, |t| g(t, &p.propagator(t)))
}

/// The refinement step of [`last_crossing`] given `values[k] = g(t_max·k/n)`, k = 0..=n, and an
/// exact evaluator for the bisection.
pub(crate) fn crossing_from_grid(
    values: &[f64],
    t_max: f64,
    mut g: impl FnMut(f64) -> f64,
) -> Option<f64> {
    let n = values.len().checked_sub(1)?;
    if n == 0 || !(t_max.is_finite() && t_max > 0.0) {
        return None;
    }
    if values[n] >= 0.0 {
        return Some(t_max);
    }
    let k = (0..n).rev().find(|&k| values[k] >= 0.0)?;
    let (lo, hi) = (
        t_max * k as f64 / n as f64,
        t_max * (k + 1) as f64 / n as f64,
    );
    Some(bisect(&mut g, lo, hi))
}

/// Bisection for the boundary between `lo` (g ≥ 0) and `hi` (g < 0); returns the midpoint of the
/// final bracket.
pub(crate) fn bisect(g: &mut impl FnMut(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    for _ in 0..200 {
        if hi - lo <= 1e-11 * hi.abs().max(1.0) {
            break;
        }
        let mid = 0.5 * (lo + hi);
        if g(mid) >= 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
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
        for &(t, s, lmin, phi) in &th.s_curve {
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
