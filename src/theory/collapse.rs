//! Collapse (docs/mathematics.md §7.3, §7.4): Random-Energy-Model condensation of the empirical score onto the
//! training points.
//!
//! Gaussian approximation: with `R(t) = Σ_t^{−1/2} E_t C E_tᵀ Σ_t^{−1/2}` (eigenvalues ρ_k),
//! `rem_alpha(t) = (1/2d) Σ_k log(1 + ρ_k) = (1/2d)[log det Γ_t − log det Σ_t]`,
//! `Γ_t = Σ_t + E_t C E_tᵀ`: the entropy gap per dimension between the noised population and one
//! noise ball, equal to `I(x_0; x_t)/d` for x_0 ~ N(0, C), hence non-increasing in t for every Q.
//! Collapse happens where it equals `α = ln N / d`.
//!
//! Which C: for a mixture we use the within-class covariance. The class means add a rank-(K−1)
//! term to the data covariance, which changes Σ_k log(1 + ρ_k) by O(log d), i.e. α by
//! O(log d / d): negligible at large d, and leaving it out reproduces Biroli's closed form.

use super::{bisect, log_det_spd};
use crate::linalg::Linear;
use crate::model::Process;

/// `(1/2d) Σ_k log(1 + ρ_k(t))`. Closed form with `ln_1p`/`expm1` when A and C are scalar or
/// diagonal; otherwise the difference of two Cholesky log-determinants (O(d³)). `+∞` for t ≤ 0
/// (Σ_0 = 0) or when Σ_t is numerically singular (t ≲ 1e−14).
pub fn rem_alpha_at(p: &Process, c: &Linear, t: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t <= 0.0 {
        return f64::INFINITY;
    }
    let d = p.dim();
    if p.schedule.is_none()
        && p.a.form() != crate::linalg::Form::Dense
        && c.form() != crate::linalg::Form::Dense
    {
        // A = U diagonal (Q = 0): Σ_t = (1 − e^{−2ut})/u per coordinate.
        let a = p.a.diagonal();
        let cd = c.diagonal();
        let sum: f64 = a
            .iter()
            .zip(cd.iter())
            .map(|(&u, &ck)| {
                let e2 = (-2.0 * u * t).exp();
                let sigma = -(-2.0 * u * t).exp_m1() / u;
                (e2 * ck / sigma).ln_1p()
            })
            .sum();
        return sum / (2.0 * d as f64);
    }
    let e = p.propagator(t);
    let sigma = p.sigma_with(t, &e);
    let gamma = sigma.add(&e.mul(c).mul(&e.transpose()));
    match (log_det_spd(&gamma), log_det_spd(&sigma)) {
        (Some(lg), Some(ls)) => ((lg - ls) / (2.0 * d as f64)).max(0.0),
        _ => f64::INFINITY,
    }
}

/// The Gaussian REM of data with covariance C on process p, reduced to C's spectrum once where
/// the process is isotropic ([`super::isotropic`]): each evaluation is then O(d), not two
/// Cholesky factorisations of d × d (the collapse figure evaluates it on a dense grid).
#[derive(Clone, Debug)]
pub struct Rem {
    process: Process,
    cov: Linear,
}

impl Rem {
    pub fn new(p: &Process, c: &Linear) -> Rem {
        match super::isotropic::Spectral::of(p, c) {
            Some(s) => Rem {
                process: s.process,
                cov: s.cov,
            },
            None => Rem {
                process: p.clone(),
                cov: c.clone(),
            },
        }
    }

    /// [`rem_alpha_at`] of the pair.
    pub fn alpha_at(&self, t: f64) -> f64 {
        rem_alpha_at(&self.process, &self.cov, t)
    }
}

/// Collapse time: the largest t ≤ t_max with `rem_alpha_at(t) = α = ln N / d` (rem_alpha is
/// non-increasing, so the root is unique): bracket by halving t from t_max, then bisection to
/// 1e-11. `Some(t_max)` when rem_alpha(t_max) ≥ α already (t_C is at least the horizon);
/// `None` when N ≤ 1 (nothing to collapse onto) or the level is never reached (C = 0, or a root
/// below t_max·2⁻²⁰⁰).
pub fn t_collapse(p: &Process, c: &Linear, n_train: usize, t_max: f64) -> Option<f64> {
    if n_train <= 1 || !(t_max.is_finite() && t_max > 0.0) {
        return None;
    }
    let alpha = (n_train as f64).ln() / p.dim() as f64;
    let mut g = |t: f64| rem_alpha_at(p, c, t) - alpha;
    if g(t_max) >= 0.0 {
        return Some(t_max);
    }
    let mut hi = t_max;
    for _ in 0..200 {
        if super::stopping() {
            return None;
        }
        let lo = 0.5 * hi;
        if g(lo) >= 0.0 {
            return Some(bisect(&mut g, lo, hi));
        }
        hi = lo;
    }
    None
}

/// Biroli's closed form (U = I, Q = 0, C = σ²I): `t_C = ½ log(1 + σ²/(N^{2/d} − 1))`
/// (+∞ for N = 1).
pub fn biroli_t_collapse(n: usize, d: usize, sigma2: f64) -> f64 {
    let denom = (2.0 * (n as f64).ln() / d as f64).exp_m1();
    0.5 * (sigma2 / denom).ln_1p()
}

/// Biroli's excess entropy per dimension (U = I, Q = 0, C = σ²I):
/// `max(0, α + ½ log(Δ_t/(Δ_t + σ² e^{−2t})))`, `Δ_t = 1 − e^{−2t}`; equals
/// `max(0, α − rem_alpha_at(t))`.
pub fn biroli_excess_entropy(t: f64, alpha: f64, sigma2: f64) -> f64 {
    let delta = -(-2.0 * t).exp_m1();
    (alpha + 0.5 * (delta / (delta + sigma2 * (-2.0 * t).exp())).ln()).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{antisym, reversible};
    use super::*;
    use nalgebra::{DMatrix, DVector};

    #[test]
    fn biroli_collapse_closed_form() {
        let n = 1000;
        for d in [10, 50, 100, 400, 1000] {
            for sigma2 in [1.0, 0.5, 2.0] {
                let p = reversible(Linear::identity(d));
                let want = biroli_t_collapse(n, d, sigma2);
                let got = t_collapse(&p, &Linear::Scalar(sigma2, d), n, 20.0).unwrap();
                assert!(
                    (got - want).abs() < 1e-8,
                    "d={d} σ²={sigma2}: {got} vs {want}"
                );
                let alpha = (n as f64).ln() / d as f64;
                for t in [0.05, 0.3, 1.0, 3.0] {
                    let f = biroli_excess_entropy(t, alpha, sigma2);
                    let g = (alpha - rem_alpha_at(&p, &Linear::Scalar(sigma2, d), t)).max(0.0);
                    assert!((f - g).abs() < 1e-12, "t={t}: {f} vs {g}");
                }
            }
        }
        // The dense code path (Cholesky log-determinants) agrees.
        let d = 100;
        let p = reversible(Linear::identity(d));
        let c = Linear::Dense(DMatrix::identity(d, d));
        let got = t_collapse(&p, &c, n, 20.0).unwrap();
        assert!((got - biroli_t_collapse(n, d, 1.0)).abs() < 1e-8);
        // Conventions.
        assert_eq!(t_collapse(&p, &c, 1, 20.0), None);
        assert_eq!(t_collapse(&p, &c, 0, 20.0), None);
        assert_eq!(t_collapse(&p, &c, n, 0.5), Some(0.5));
        assert_eq!(t_collapse(&p, &Linear::Scalar(0.0, d), n, 20.0), None);
        assert_eq!(rem_alpha_at(&p, &c, 0.0), f64::INFINITY);
    }

    /// U = cI: Q is a pure rotation and leaves rem_alpha and t_C unchanged.
    #[test]
    fn isotropic_u_is_rotation_invariant() {
        let d = 8;
        let u = Linear::Scalar(0.8, d);
        let c = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.2 + 0.3 * i as f64));
        let p0 = reversible(u.clone());
        let pq = Process::new(u, antisym(d, 2.0)).unwrap();
        for t in [0.01, 0.2, 1.0, 4.0] {
            let (a, b) = (rem_alpha_at(&p0, &c, t), rem_alpha_at(&pq, &c, t));
            assert!((a - b).abs() < 1e-10, "t={t}: {a} vs {b}");
        }
        let t0 = t_collapse(&p0, &c, 50, 20.0).unwrap();
        let tq = t_collapse(&pq, &c, 50, 20.0).unwrap();
        assert!((t0 - tq).abs() < 1e-8, "{t0} vs {tq}");
    }

    /// Anisotropic U: Q moves t_C only at second order. No tolerance is claimed; the numbers
    /// are printed for the record.
    #[test]
    fn anisotropic_u_with_rotation() {
        let d = 6;
        let u = Linear::Diagonal(DVector::from_vec(vec![0.2, 0.5, 1.0, 2.0, 4.0, 8.0]));
        let c = Linear::Scalar(0.5, d);
        let p0 = reversible(u.clone());
        let pq = Process::new(u, antisym(d, 3.0)).unwrap();
        let mut prev = f64::INFINITY;
        for k in 1..=400 {
            let r = rem_alpha_at(&pq, &c, k as f64 * 0.025);
            assert!(r <= prev * (1.0 + 1e-10), "rem_alpha increased at step {k}");
            prev = r;
        }
        for n in [10, 100, 1000] {
            let t0 = t_collapse(&p0, &c, n, 20.0).unwrap();
            let tq = t_collapse(&pq, &c, n, 20.0).unwrap();
            assert!(t0.is_finite() && tq.is_finite() && t0 > 0.0 && tq > 0.0);
            eprintln!("anisotropic U, N = {n}: t_C(Q=0) = {t0:.6}, t_C(Q) = {tq:.6}");
        }
    }
}
