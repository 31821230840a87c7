//! Relaxation of the forward process (docs/mathematics.md §6.1, §7.7): spectral gap and the stiffness of the
//! explicit Euler–Maruyama step.

use nalgebra::{Complex, DMatrix, DVector};

use crate::linalg::Linear;
use crate::model::Process;

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

/// All eigenvalues of L (complex), or None where the bounded Schur iteration does not converge:
/// closed forms for scalar and diagonal L, the symmetric solver for a symmetric dense one (whose
/// Schur iteration can cycle on repeated eigenvalues, see [`spectral_gap`]).
pub fn eigenvalues(l: &Linear) -> Option<Vec<Complex<f64>>> {
    let real = |v: Vec<f64>| Some(v.into_iter().map(|x| Complex::new(x, 0.0)).collect());
    match l {
        Linear::Scalar(c, d) => real(vec![*c; *d]),
        Linear::Diagonal(v) => real(v.iter().copied().collect()),
        Linear::Dense(m) => {
            let scale = m.amax().max(f64::MIN_POSITIVE);
            if (m - m.transpose()).amax() <= 1e-14 * scale {
                return real(l.symmetric_eigenvalues());
            }
            let max_iter = 1000 * m.nrows().max(1);
            nalgebra::linalg::Schur::try_new(m.clone(), f64::EPSILON, max_iter)
                .map(|schur| schur.complex_eigenvalues().iter().copied().collect())
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

/// The φ bias `--steps auto` aims at (`study::auto_steps`): about the standard error of 10⁴ clone
/// pairs.
pub const AUTO_BIAS: f64 = 0.005;

/// Euler–Maruyama's (and the probability flow's) expected φ bias per unit of Δt, `0.028‖QU‖₂ +
/// 0.04`, measured by `reproduce discretisation` (d = 16, seed 1, 40 000 pairs; lu-tang: +0.047 at
/// Δt = 0.1 with ‖QU‖₂ = 19.6; U = I: −0.008 at Δt = 0.2): the one rule behind `--steps auto`
/// and [`stiffness_warning`].
pub fn explicit_bias_rate(p: &Process) -> f64 {
    0.028 * stiffness(p, 1.0) + 0.04
}

/// A warning when the explicit step's expected φ bias `explicit_bias_rate · Δt` exceeds
/// [`AUTO_BIAS`] (the rule `--steps auto` picks its steps by), saying how many more steps (or
/// which Δt) would fix it. Δt is the grid's longest step.
pub fn stiffness_warning(p: &Process, dt: f64) -> Option<String> {
    let rate = explicit_bias_rate(p);
    let bias = rate * dt.abs();
    if bias.is_nan() || bias <= AUTO_BIAS * (1.0 + 1e-9) {
        return None;
    }
    let factor = (bias / AUTO_BIAS - 1e-9).ceil();
    let dt_max = AUTO_BIAS / rate;
    Some(format!(
        "stiff rotation: with Δt = {dt:.3e} (Δt·‖QU‖₂ = {:.3}, the rotation's frequencies max \
         |Im λ(A)| = {:.3}) Euler–Maruyama biases φ upward by about {bias:.4} > {AUTO_BIAS} \
         (0.028·‖QU‖₂ + 0.04 per unit Δt, as measured by `reproduce discretisation`) and t_S \
         with it. Use --scheme exact (no bias at any Δt), or Δt ≤ {dt_max:.3e}, i.e. at least \
         {factor}× as many steps (--steps auto picks them)",
        stiffness(p, dt),
        max_rotation_frequency(&p.a),
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
        // Bias rate 0.028·30 + 0.04 = 0.88 per unit Δt: 0.0088 at Δt = 0.01, twice the target.
        let w = stiffness_warning(&p, 0.01).unwrap();
        assert!(w.contains("2×") && w.contains("0.0088"), "{w}");
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
