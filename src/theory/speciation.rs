//! Speciation (docs/mathematics.md §7.1, §7.2): when the noised two-class population turns from one well into two.
//!
//! Two classes ±m with within-class covariance C: `m_t = E_t m`, `Γ_t = U⁻¹ + E_t(C − U⁻¹)E_tᵀ`,
//! `s(t) = m_tᵀ Γ_t⁻¹ m_t`, `M̃(t) = Γ_t − m_t m_tᵀ`; `det M̃ = det Γ_t (1 − s)`, so λ_min(M̃)
//! changes sign exactly where s(t) = 1. s(t) is non-increasing in t for every Q (see the module
//! docs of [`crate::theory`]).

use nalgebra::{DMatrix, DVector};

use super::{for_each_on_grid, lambda_min_rank_one_down, last_crossing, quad_inv};
use crate::linalg::Linear;
use crate::model::{Mixture, Process};

/// Grid intervals of the downward scan before bisection.
const SCAN_INTERVALS: usize = 400;

/// The Mahalanobis SNR `s(t) = m_tᵀ Γ_t⁻¹ m_t` (t ≥ 0; negative t is clamped to 0). `+∞` when
/// Γ_t is singular (only possible at t = 0 with a singular C).
pub fn snr(p: &Process, m: &DVector<f64>, c: &Linear, t: f64) -> f64 {
    let t = t.max(0.0);
    snr_with(p, t, &p.propagator(t), m, c)
}

/// `s(t)` given `E_t`.
fn snr_with(p: &Process, t: f64, e: &Linear, m: &DVector<f64>, c: &Linear) -> f64 {
    quad_inv(&p.gamma_with(t, e, c), &e.apply(m))
}

/// `λ_min(Γ_t − m_t m_tᵀ)`: positive while the origin is a single well (s < 1), ≤ 0 after.
/// Closed form / secular equation for scalar and diagonal Γ_t, a dense eigensolve (O(d³)) else.
pub fn lambda_min_mtilde(p: &Process, m: &DVector<f64>, c: &Linear, t: f64) -> f64 {
    let t = t.max(0.0);
    let e = p.propagator(t);
    let mt = e.apply(m);
    lambda_min_rank_one_down(&p.gamma_with(t, &e, c), &mt)
}

/// `t_S = sup{t ≤ t_max : s(t) ≥ 1}`: scan of 400 intervals from t_max down, then bisection to
/// 1e-11. `Some(t_max)` when s(t_max) ≥ 1 (t_S is at least the horizon), `None` when s < 1 on
/// the whole grid (the classes are never resolved).
pub fn t_speciation(p: &Process, m: &DVector<f64>, c: &Linear, t_max: f64) -> Option<f64> {
    last_crossing(
        p,
        |t, e| snr_with(p, t, e, m, c) - 1.0,
        t_max,
        SCAN_INTERVALS,
    )
}

/// `(t, s(t), λ_min(M̃(t)), F(s(t)))` at `t = t_max·k/n`, k = 1..=n (one matrix product, one
/// Cholesky and, for dense forms, one symmetric eigensolve per point).
/// One point of the theory curve: s(t), λ_min(M̃_t) and F(s(t)).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SPoint {
    pub t: f64,
    pub s: f64,
    pub lambda_min_mtilde: f64,
    pub phi_theory: f64,
}

pub fn s_curve(p: &Process, m: &DVector<f64>, c: &Linear, t_max: f64, n: usize) -> Vec<SPoint> {
    let mut out = Vec::with_capacity(n);
    if !(t_max.is_finite() && t_max > 0.0) || n == 0 {
        return out;
    }
    for_each_on_grid(p, t_max, n, |k, t, e| {
        if k > 0 {
            let gamma = p.gamma_with(t, e, c);
            let mt = e.apply(m);
            let s = quad_inv(&gamma, &mt);
            let lmin = lambda_min_rank_one_down(&gamma, &mt);
            out.push(SPoint {
                t,
                s,
                lambda_min_mtilde: lmin,
                phi_theory: cloning_probability(s),
            });
        }
    });
    out
}

/// The class deviations of a mixture, weighted: `√(w_k/Σw) (μ_k − μ̄)`, so that the between-class
/// covariance is `B = Σ_k δ_k δ_kᵀ`. Zero deviations are left out.
pub fn between_class_deviations(mixture: &Mixture) -> Vec<DVector<f64>> {
    let wsum: f64 = mixture.weights.iter().sum();
    let mut mean = DVector::zeros(mixture.dim());
    for (w, mu) in mixture.weights.iter().zip(&mixture.means) {
        mean += mu * (*w / wsum);
    }
    mixture
        .weights
        .iter()
        .zip(&mixture.means)
        .map(|(w, mu)| (mu - &mean) * (*w / wsum).sqrt())
        .filter(|dev| dev.iter().any(|&x| x != 0.0))
        .collect()
}

/// The between-class SNR of a mixture with shared covariance C,
/// `s(t) = λ_max(Γ_t⁻¹ E_t B E_tᵀ)` with `B = Σ_k δ_k δ_kᵀ` ([`between_class_deviations`]):
/// the largest ratio of class separation to noised within-class spread over all directions.
/// For two symmetric classes B = m mᵀ and this is [`snr`] exactly; it is continuous in the
/// means and weights. Computed on the K×K Gram matrix `G_ij = (E δ_i)ᵀ Γ_t⁻¹ (E δ_j)`.
pub fn between_snr(p: &Process, deviations: &[DVector<f64>], c: &Linear, t: f64) -> f64 {
    let t = t.max(0.0);
    between_snr_with(p, t, &p.propagator(t), deviations, c)
}

fn between_snr_with(
    p: &Process,
    t: f64,
    e: &Linear,
    deviations: &[DVector<f64>],
    c: &Linear,
) -> f64 {
    between_eigenvalues_with(p, t, e, deviations, c)
        .first()
        .copied()
        .unwrap_or(0.0)
}

/// The eigenvalues of `Γ_t⁻¹ E_t B E_tᵀ` on the span of the deviations, descending (one per
/// deviation; all `+∞` when Γ_t is singular): the k-th crossing 1 is the k-th split.
pub(crate) fn between_eigenvalues_with(
    p: &Process,
    t: f64,
    e: &Linear,
    deviations: &[DVector<f64>],
    c: &Linear,
) -> Vec<f64> {
    if deviations.is_empty() {
        return vec![];
    }
    let Ok(gamma_inv) = p.gamma_with(t, e, c).inverse_spd() else {
        return vec![f64::INFINITY; deviations.len()];
    };
    let v: Vec<DVector<f64>> = deviations.iter().map(|dev| e.apply(dev)).collect();
    let (k, d) = (v.len(), p.dim());
    let mut eig: Vec<f64> = if k <= d {
        let w: Vec<DVector<f64>> = v.iter().map(|x| gamma_inv.apply(x)).collect();
        let gram = DMatrix::from_fn(k, k, |i, j| 0.5 * (v[i].dot(&w[j]) + v[j].dot(&w[i])));
        gram.symmetric_eigenvalues().iter().copied().collect()
    } else {
        // More classes than dimensions: the K×K Gram (O(K³) per time, minutes at K = 1000)
        // has rank ≤ d. With Γ⁻¹ = L Lᵀ its nonzero eigenvalues are those of the d×d
        // Σ_i (Lᵀv_i)(Lᵀv_i)ᵀ; the other K − d are zero.
        let Ok(l) = gamma_inv.cholesky() else {
            return vec![f64::INFINITY; k];
        };
        let lt = l.transpose();
        let y = DMatrix::from_columns(&v.iter().map(|x| lt.apply(x)).collect::<Vec<_>>());
        let mut eig: Vec<f64> = (&y * y.transpose())
            .symmetric_eigenvalues()
            .iter()
            .copied()
            .collect();
        eig.resize(k, 0.0);
        eig
    };
    eig.sort_unstable_by(|a, b| b.total_cmp(a));
    eig
}

/// `t_S = sup{t ≤ t_max : s(t) ≥ 1}` for a general mixture, s the [`between_snr`]: the first
/// split of the population, where the leading between-class direction turns from one well into
/// two. With K > 2 classes later splits follow where the next eigenvalues of the Gram matrix
/// cross 1. Same conventions as [`t_speciation`]; one Cholesky inverse per evaluation.
pub fn t_speciation_mixture(p: &Process, mixture: &Mixture, t_max: f64) -> Option<f64> {
    t_speciation_between(p, &between_class_deviations(mixture), &mixture.cov, t_max)
}

/// [`t_speciation_mixture`] given the class deviations (e.g. their projection onto one mode).
pub fn t_speciation_between(
    p: &Process,
    deviations: &[DVector<f64>],
    c: &Linear,
    t_max: f64,
) -> Option<f64> {
    last_crossing(
        p,
        |t, e| between_snr_with(p, t, e, deviations, c) - 1.0,
        t_max,
        SCAN_INTERVALS,
    )
}

/// Biroli's closed form for U = I, Q = 0, ±m, C = σ²I: `t_S = ½ log(1 + ‖m‖² − σ²)`
/// (NaN or −∞ when `1 + ‖m‖² − σ² ≤ 0`: the classes are never resolved).
pub fn biroli_t_speciation(norm2_m: f64, sigma2: f64) -> f64 {
    0.5 * (1.0 + norm2_m - sigma2).ln()
}

/// Numerically stable logistic function 1/(1 + e^{−x}).
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Cloning probability as a function of the SNR:
/// `F(s) = ½ ∫ [N(q;s,s)² + N(q;−s,s)²] / [N(q;s,s) + N(q;−s,s)] dq`.
///
/// Since `N(q;s,s)/N(q;−s,s) = e^{2q}`, the integrand is `N₊ σ(2q) + N₋ σ(−2q)` and by symmetry
/// `F(s) = E[σ(2q)]`, q ~ N(s, s) (σ the logistic function), `= ½ + ½ E[tanh q]`. We compute
/// `1 − F = ∫ φ(z) σ(−2s − 2√s z) dz` by the trapezoid rule on z ∈ [−9, 9] with step
/// `min(0.05, 0.25/√s)`: the integrand is analytic in a strip of half-width π/(2√s), so the
/// error is ~e^{−4π²} ≈ 1e−17, and the truncated Gaussian tails weigh < 1e−18.
/// `F(0) = ½` exactly; `F(s) = 1` for s ≥ 1500 (where 1 − F ~ e^{−s/2} underflows).
pub fn cloning_probability(s: f64) -> f64 {
    if s.is_nan() {
        return f64::NAN;
    }
    if s <= 0.0 {
        return 0.5;
    }
    if s >= 1500.0 {
        return 1.0;
    }
    let r = s.sqrt();
    let h = (0.25 / r).min(0.05);
    let half = 9.0;
    let n = (2.0 * half / h).ceil() as usize;
    let h = 2.0 * half / n as f64;
    let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    let mut g = 0.0;
    for k in 0..=n {
        let z = -half + k as f64 * h;
        let w = if k == 0 || k == n { 0.5 } else { 1.0 };
        g += w * (-0.5 * z * z).exp() * logistic(-2.0 * s - 2.0 * r * z);
    }
    1.0 - g * h * norm
}

/// `F(1)`, the cloning probability at the speciation time (≈ 0.7752): the measured t_S is
/// where φ(t) crosses this value.
pub fn f_at_speciation() -> f64 {
    cloning_probability(1.0)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{antisym, reversible, vector};
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn cloning_probability_values() {
        assert_eq!(cloning_probability(0.0), 0.5);
        let f1 = f_at_speciation();
        assert!((f1 - 0.7752).abs() < 1e-4, "F(1) = {f1}");
        // Reference values from an independent quadrature of ½ + ½E[tanh q].
        assert!((f1 - 0.775_200_245_396_663).abs() < 1e-12, "F(1) = {f1}");
        assert!((cloning_probability(0.5) - 0.675_056_702_337_565).abs() < 1e-12);
        assert!((cloning_probability(20.0) - 0.999_993_981_689_562).abs() < 1e-12);
        // Small s: F = ½ + ½E[tanh q] ≈ ½ + s/2 to first order.
        let e = 1e-6;
        assert!((cloning_probability(e) - (0.5 + 0.5 * e)).abs() < 1e-11);
        assert_eq!(cloning_probability(f64::INFINITY), 1.0);
        assert!(cloning_probability(f64::NAN).is_nan());
        let mut prev = 0.5;
        for k in 1..=4000 {
            let s = k as f64 * 0.01;
            let f = cloning_probability(s);
            assert!(
                f > prev || (f == 1.0 && prev == 1.0),
                "not monotone at s = {s}"
            );
            assert!(f <= 1.0);
            prev = f;
        }
        assert!(cloning_probability(60.0) > 1.0 - 1e-12);
        assert!(cloning_probability(1499.0) <= 1.0);
    }

    /// U = I, Q = 0, ±m with ‖m‖² = d, C = σ²I: t_S = ½ log(1 + ‖m‖² − σ²).
    #[test]
    fn biroli_speciation_closed_form() {
        for (d, sigma2, mu2) in [
            (100, 1.0, 1.0),
            (50, 0.5, 2.0),
            (400, 2.0, 0.25),
            (10, 0.3, 1.0),
        ] {
            let p = reversible(Linear::identity(d));
            let m = DVector::from_element(d, f64::sqrt(mu2));
            let c = Linear::Scalar(sigma2, d);
            let want = biroli_t_speciation(d as f64 * mu2, sigma2);
            let got = t_speciation(&p, &m, &c, 10.0).unwrap();
            assert!((got - want).abs() < 1e-8, "d={d}: {got} vs {want}");
            // Same through the dense code path.
            let cd = Linear::Dense(DMatrix::identity(d, d) * sigma2);
            let got = t_speciation(&p, &m, &cd, 10.0).unwrap();
            assert!((got - want).abs() < 1e-8, "dense d={d}: {got} vs {want}");
            // λ_min(M̃) vanishes at t_S.
            assert!(lambda_min_mtilde(&p, &m, &c, want).abs() < 1e-9);
            assert!(lambda_min_mtilde(&p, &m, &c, want + 0.1) > 0.0);
            assert!(lambda_min_mtilde(&p, &m, &c, want - 0.1) < 0.0);
        }
        let d = 100;
        let p = reversible(Linear::identity(d));
        let t = t_speciation(
            &p,
            &DVector::from_element(d, 1.0),
            &Linear::Scalar(1.0, d),
            10.0,
        );
        assert!((t.unwrap() - 0.5 * (d as f64).ln()).abs() < 1e-8);
        // Horizon conventions.
        let m = DVector::from_element(d, 1.0);
        assert_eq!(
            t_speciation(&p, &m, &Linear::Scalar(1.0, d), 1.0),
            Some(1.0)
        );
        let weak = DVector::from_element(d, 0.01);
        assert_eq!(t_speciation(&p, &weak, &Linear::Scalar(1.0, d), 10.0), None);
    }

    #[test]
    fn between_snr_is_the_two_class_snr_and_continuous() {
        let d = 6;
        let u = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.3 + 0.5 * i as f64));
        let p = Process::new(u, antisym(d, 0.8)).unwrap();
        let c = Linear::Scalar(0.6, d);
        let m = vector(d) * 0.8;
        let mix = Mixture {
            weights: vec![0.5, 0.5],
            means: vec![m.clone(), -&m],
            cov: c.clone(),
        };
        let dev = between_class_deviations(&mix);
        for t in [0.1, 0.7, 2.0] {
            let (a, b) = (between_snr(&p, &dev, &c, t), snr(&p, &m, &c, t));
            assert!((a - b).abs() < 1e-10 * b, "t = {t}: {a} vs {b}");
        }
        let ts = t_speciation(&p, &m, &c, 10.0).unwrap();
        assert!((t_speciation_mixture(&p, &mix, 10.0).unwrap() - ts).abs() < 1e-9);
        // A target 1e-6 away from symmetric moves t_S by O(1e-6), not to another criterion.
        let mut near = mix.clone();
        near.weights = vec![0.5 + 1e-6, 0.5 - 1e-6];
        near.means[1][0] += 1e-6;
        let tn = t_speciation_mixture(&p, &near, 10.0).unwrap();
        assert!((tn - ts).abs() < 1e-5, "{tn} vs {ts}");
    }

    #[test]
    fn between_snr_closed_form_for_isotropic_u() {
        // U = I, Q = 0, C = σ²I: s(t) = e^{−2t} Λ / (1 + e^{−2t}(σ² − 1)), Λ = λ_max(B), so
        // t_S = ½ log(1 + Λ − σ²) (Biroli's form with ‖m‖² → Λ).
        let d = 5;
        let p = reversible(Linear::identity(d));
        let mut means = vec![DVector::zeros(d); 3];
        means[0][0] = 3.0;
        means[1][1] = 2.0;
        let mix = Mixture {
            weights: vec![0.2, 0.3, 0.5],
            means,
            cov: Linear::Scalar(0.5, d),
        };
        let mut b = DMatrix::zeros(d, d);
        for dev in between_class_deviations(&mix) {
            b.ger(1.0, &dev, &dev, 1.0);
        }
        let lam = b.symmetric_eigenvalues().max();
        let got = t_speciation_mixture(&p, &mix, 10.0).unwrap();
        assert!((got - 0.5 * (1.0 + lam - 0.5).ln()).abs() < 1e-8, "{got}");
    }

    /// U = cI: A = c(I + Q), E_t = e^{−ct} exp(−cQt) is a scaled rotation, and s(t) and t_S do
    /// not depend on Q (for any C and m).
    #[test]
    fn isotropic_u_is_rotation_invariant() {
        let d = 8;
        let u = Linear::Scalar(1.7, d);
        let c = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.2 + 0.3 * i as f64));
        let m = vector(d) * 0.9;
        let p0 = reversible(u.clone());
        let pq = Process::new(u, antisym(d, 1.3)).unwrap();
        assert_eq!(pq.a.form(), crate::linalg::Form::Dense);
        for t in [0.0, 0.05, 0.3, 1.0, 2.5] {
            let (a, b) = (snr(&p0, &m, &c, t), snr(&pq, &m, &c, t));
            assert!((a - b).abs() < 1e-10 * a.max(1.0), "t={t}: {a} vs {b}");
            let (a, b) = (
                lambda_min_mtilde(&p0, &m, &c, t),
                lambda_min_mtilde(&pq, &m, &c, t),
            );
            assert!((a - b).abs() < 1e-10, "λ_min at t={t}: {a} vs {b}");
        }
        let t0 = t_speciation(&p0, &m, &c, 10.0).unwrap();
        let tq = t_speciation(&pq, &m, &c, 10.0).unwrap();
        assert!((t0 - tq).abs() < 1e-8, "{t0} vs {tq}");
    }

    /// The s curve built from repeated products E_h^k agrees with exact propagators.
    #[test]
    fn s_curve_matches_direct_evaluation() {
        let d = 7;
        let u = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.3 + 0.5 * i as f64));
        let c = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.4 + 0.1 * i as f64));
        let m = vector(d);
        let p = Process::new(u, antisym(d, 1.1)).unwrap();
        let curve = s_curve(&p, &m, &c, 8.0, 200);
        assert_eq!(curve.len(), 200);
        assert_eq!(curve[199].t, 8.0);
        for &SPoint {
            t,
            s,
            lambda_min_mtilde: lmin,
            phi_theory: phi,
        } in &curve
        {
            let s_exact = snr(&p, &m, &c, t);
            assert!((s - s_exact).abs() < 1e-11 * s_exact.max(1.0), "t={t}");
            assert!(
                (lmin - lambda_min_mtilde(&p, &m, &c, t)).abs() < 1e-11,
                "t={t}"
            );
            assert_eq!(phi, cloning_probability(s));
        }
    }

    /// s(t) is a Fisher information along a Markov chain: non-increasing for any Q, also for an
    /// anisotropic U where the rotation moves m_t between stiff and soft directions.
    #[test]
    fn snr_is_monotone_with_rotation() {
        let d = 6;
        let u = Linear::Diagonal(DVector::from_vec(vec![0.2, 0.5, 1.0, 2.0, 4.0, 8.0]));
        let c = Linear::Scalar(0.5, d);
        let mut m = DVector::zeros(d);
        m[5] = 3.0;
        let p0 = reversible(u.clone());
        let pq = Process::new(u, antisym(d, 3.0)).unwrap();
        let mut prev = f64::INFINITY;
        for k in 0..=2000 {
            let s = snr(&pq, &m, &c, k as f64 * 0.005);
            assert!(s <= prev * (1.0 + 1e-12), "s increased at step {k}");
            prev = s;
        }
        let t0 = t_speciation(&p0, &m, &c, 10.0).unwrap();
        let tq = t_speciation(&pq, &m, &c, 10.0).unwrap();
        // Rotating the stiff class direction into soft ones delays its decay: t_S grows.
        assert!(tq > t0, "t_S(Q=0) = {t0}, t_S(Q) = {tq}");
        eprintln!("anisotropic U, m along the stiffest axis: t_S(Q=0) = {t0:.6}, t_S(Q) = {tq:.6}");
    }
}
