//! Relaxation of the forward process (docs/mathematics.md §6.1, §7.7): spectral gap and the stiffness of the
//! explicit Euler–Maruyama step.

use nalgebra::{DMatrix, DVector};

use crate::linalg::Linear;
use crate::model::Process;

/// Largest acceptable `Δt ‖QU‖₂` (docs/mathematics.md §4.3).
pub const STIFFNESS_LIMIT: f64 = 0.05;

/// `min_j Re λ_j(A)`: closed form for scalar and diagonal A, the real Schur form (nalgebra's
/// `complex_eigenvalues`) for dense A.
pub fn spectral_gap(a: &Linear) -> f64 {
    match a {
        Linear::Scalar(c, _) => *c,
        Linear::Diagonal(v) => v.min(),
        Linear::Dense(m) => {
            let scale = m.amax().max(f64::MIN_POSITIVE);
            if (m - m.transpose()).amax() <= 1e-14 * scale {
                // Q = 0: A = U is symmetric. (nalgebra's Schur iteration can cycle forever on
                // a symmetric matrix with repeated eigenvalues, e.g. K ⊗ I of coupled modalities.)
                return Linear::Dense(m.clone()).symmetric_eigenvalues()[0];
            }
            // A bounded Schur iteration: NaN, never a hang, if it does not converge.
            let max_iter = 1000 * m.nrows().max(1);
            nalgebra::linalg::Schur::try_new(m.clone(), f64::EPSILON, max_iter).map_or(
                f64::NAN,
                |schur| {
                    schur
                        .complex_eigenvalues()
                        .iter()
                        .map(|z| z.re)
                        .fold(f64::INFINITY, f64::min)
                },
            )
        }
    }
}

/// The gap of the reversible process (Q = 0): `λ_min(U)`.
pub fn reversible_gap(u: &Linear) -> f64 {
    u.symmetric_eigenvalues()[0]
}

/// `Tr(U)/d`: since Tr(QU) = 0 the eigenvalues of A sum to Tr(U), so no Q does better.
pub fn gap_bound(u: &Linear) -> f64 {
    u.diagonal().sum() / u.dim() as f64
}

/// Spectral norm ‖M‖₂: exact SVD for d ≤ 64, else power iteration on MᵀM from a fixed
/// pseudo-random start (converged to 1e−10 relative, at most 2000 iterations).
fn spectral_norm(m: &DMatrix<f64>) -> f64 {
    let d = m.nrows();
    if d <= 64 {
        return m.singular_values().max();
    }
    let mut v = DVector::from_fn(d, |i, _| {
        // Weyl sequence: deterministic, never orthogonal to a structured singular vector.
        ((i as f64 + 1.0) * 0.618_033_988_749_895).fract() - 0.5
    });
    v /= v.norm();
    let mut est = 0.0;
    for _ in 0..2000 {
        let w = m.tr_mul(&(m * &v));
        let norm = w.norm();
        if norm == 0.0 {
            return 0.0;
        }
        let next = norm.sqrt();
        v = w / norm;
        if (next - est).abs() <= 1e-10 * next {
            return next;
        }
        est = next;
    }
    est
}

/// `Δt ‖QU‖₂` (spectral norm: the rotation rate the explicit step must resolve; the ∞-norm
/// would overstate it by up to √d for dense random Q). Zero for Q = 0.
pub fn stiffness(p: &Process, dt: f64) -> f64 {
    let qu = p.q.mul(&p.u);
    let norm = match &qu {
        Linear::Scalar(c, _) => c.abs(),
        Linear::Diagonal(v) => v.amax(),
        Linear::Dense(m) => spectral_norm(m),
    };
    dt.abs() * norm
}

/// A warning when `Δt ‖QU‖₂ > 0.05`, saying how many more steps (or which Δt) would fix it.
pub fn stiffness_warning(p: &Process, dt: f64) -> Option<String> {
    let s = stiffness(p, dt);
    if s.is_nan() || s <= STIFFNESS_LIMIT {
        return None;
    }
    let factor = (s / STIFFNESS_LIMIT - 1e-9).ceil();
    let dt_max = dt.abs() * STIFFNESS_LIMIT / s;
    // Euler–Maruyama's φ bias measured on `lu-tang` (optimal Q, F(s) = 0.77): +0.0036 at
    // Δt‖QU‖₂ = 0.196, +0.017 at 0.98, +0.054 at 1.96, i.e. 0.018–0.028 per unit.
    let (lo, hi) = (0.018 * s, 0.028 * s);
    Some(format!(
        "stiff rotation: Δt·‖QU‖₂ = {s:.3} > {STIFFNESS_LIMIT} with Δt = {dt:.3e} (the rotation's \
         frequencies max |Im λ(A)| = {:.3}); Euler–Maruyama then biases φ upward by about \
         {lo:.3}–{hi:.3} (0.018–0.028 per unit of Δt‖QU‖₂, as measured on the lu-tang preset) \
         and t_S with it. Use --scheme exact (no bias at any Δt), or Δt ≤ {dt_max:.3e}, i.e. at \
         least {factor}× as many steps ({} for T = 10)",
        max_rotation_frequency(&p.a),
        (10.0 / dt_max).ceil()
    ))
}

/// `max |Im λ(A)|`: how fast the drift rotates (what sets Euler–Maruyama's stability, not the
/// larger ‖QU‖₂).
pub fn max_rotation_frequency(a: &Linear) -> f64 {
    match a {
        Linear::Dense(m) => m
            .complex_eigenvalues()
            .iter()
            .map(|z| z.im.abs())
            .fold(0.0, f64::max),
        _ => 0.0, // a diagonal drift does not rotate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(q: f64) -> Process {
        let u = Linear::Diagonal(DVector::from_vec(vec![1.0, 3.0]));
        let qm = Linear::Dense(DMatrix::from_row_slice(2, 2, &[0.0, q, -q, 0.0]));
        Process::new(u, qm).unwrap()
    }

    /// A = [[1, 3q], [−q, 3]]: λ = 2 ± √(1 − 3q²). The gap saturates at ū = 2 for
    /// |q| ≥ |u₁ − u₂|/(2√(u₁u₂)) = 1/√3.
    #[test]
    fn two_dimensional_gap() {
        let p = plane(0.5);
        assert!((spectral_gap(&p.a) - 1.5).abs() < 1e-12);
        let p = plane(1.0);
        assert!((spectral_gap(&p.a) - 2.0).abs() < 1e-12);
        let p = plane(1.0 / 3f64.sqrt());
        assert!((spectral_gap(&p.a) - 2.0).abs() < 1e-6); // defective: √ε sensitivity
        assert!((reversible_gap(&p.u) - 1.0).abs() < 1e-15);
        assert!((gap_bound(&p.u) - 2.0).abs() < 1e-15);
        assert_eq!(spectral_gap(&Linear::Scalar(0.7, 5)), 0.7);
        assert_eq!(
            spectral_gap(&Linear::Diagonal(DVector::from_vec(vec![2.0, 0.3, 1.0]))),
            0.3
        );
    }

    #[test]
    fn stiffness_and_warning() {
        // QU = [[0, 3q], [−q, 0]]: ‖QU‖₂ = 3q.
        let p = plane(10.0);
        assert!((stiffness(&p, 0.01) - 0.3).abs() < 1e-12);
        let w = stiffness_warning(&p, 0.01).unwrap();
        assert!(w.contains("6×"), "{w}");
        assert!(stiffness_warning(&p, 0.001).is_none());
        let p0 = Process::new(Linear::identity(4), Linear::Scalar(0.0, 4)).unwrap();
        assert_eq!(stiffness(&p0, 0.01), 0.0);
        assert!(stiffness_warning(&p0, 0.01).is_none());
        // Power iteration (d > 64) against the exact SVD.
        let d = 80;
        let g = DMatrix::from_fn(d, d, |i, j| (((i * 31 + j * 17) % 23) as f64 - 11.0) / 11.0);
        let q = &g - g.transpose();
        let u = DVector::from_fn(d, |i, _| 0.5 + i as f64 / d as f64);
        let p = Process::new(Linear::Diagonal(u.clone()), Linear::Dense(q.clone())).unwrap();
        let exact = (&q * DMatrix::from_diagonal(&u)).singular_values().max();
        let got = stiffness(&p, 1.0);
        assert!((got - exact).abs() < 1e-6 * exact, "{got} vs {exact}");
    }

    #[test]
    fn spectral_gap_of_simple_forms() {
        assert_eq!(spectral_gap(&Linear::Scalar(0.7, 3)), 0.7);
        let g = Linear::Diagonal(DVector::from_vec(vec![2.0, 0.3, 1.0]));
        assert_eq!(spectral_gap(&g), 0.3);
        assert!((spectral_gap(&g.in_form(crate::linalg::Form::Dense)) - 0.3).abs() < 1e-14);
    }
}
