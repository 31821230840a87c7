//! The exact derivative of the speciation time with respect to Q (docs/mathematics.md §6.4), for
//! [`super::steer`]: the Fréchet derivative of the matrix exponential (block-triangular
//! identity) carries dQ to dE_t, the first-order change of the between-class SNR s follows from
//! its leading generalised eigenvector, and the implicit-function theorem at s(t_S) = 1 turns
//! ∂s/∂Q into ∂t_S/∂Q.

use nalgebra::{DMatrix, DVector};

use crate::linalg::Linear;
use crate::model::Process;

/// `L(X, H) = d/dε exp(X + εH)` at ε = 0: the upper-right block of `exp([[X, H], [0, X]])`
/// (Higham, *Functions of Matrices*, (3.16)), one 2d×2d exponential. H is scaled to unit norm
/// inside (L is linear in H) so that the block exponential's scaling suits X, not H.
pub fn exp_frechet(x: &DMatrix<f64>, h: &DMatrix<f64>) -> DMatrix<f64> {
    let d = x.nrows();
    let hn = h.norm();
    if hn == 0.0 {
        return DMatrix::zeros(d, d);
    }
    let mut big = DMatrix::zeros(2 * d, 2 * d);
    big.view_mut((0, 0), (d, d)).copy_from(x);
    big.view_mut((d, d), (d, d)).copy_from(x);
    big.view_mut((0, d), (d, d)).copy_from(&(h / hn));
    big.exp().view((0, d), (d, d)) * hn
}

/// `∂t_S/∂Q` at the process's Q: the antisymmetric G with `t_S(Q + εH) = t_S(Q) + ε⟨G, H⟩_F +
/// O(ε²)` for every antisymmetric H, where t_S is [`super::t_speciation_between`] of these
/// class deviations (for two symmetric classes ±m, deviations ±m/√2, [`super::t_speciation`]).
/// `t_s` is that t_S. Zero when t_S is capped at `t_max`; `None` for a drift schedule, a
/// singular Γ or a tangent crossing (∂s/∂t = 0 there, where t_S is not differentiable).
///
/// With `A = (I + Q)U`, `E = e^{−tA}`, `W = C − U⁻¹`, `Γ = U⁻¹ + E W Eᵀ`, `B = Σ δ δᵀ` and
/// `E B Eᵀ w = s Γ w`, `wᵀ Γ w = 1`: `ds = 2 wᵀ dE y` with `y = B Eᵀw − s W Eᵀw`. Time moves E by
/// `−A E dt`; Q by `dE = L(−tA, −t dQ U)`, whose adjoint gives
/// `∂s/∂Q = −2t L(−tAᵀ, w yᵀ) U` (projected onto antisymmetric matrices). Then
/// `∂t_S/∂Q = −(∂s/∂Q)/(∂s/∂t)`.
pub fn t_speciation_gradient(
    p: &Process,
    deviations: &[DVector<f64>],
    c: &Linear,
    t_s: f64,
    t_max: f64,
) -> Option<DMatrix<f64>> {
    let d = p.dim();
    if p.schedule.is_some() || deviations.is_empty() {
        return None;
    }
    if t_s >= t_max {
        return Some(DMatrix::zeros(d, d));
    }
    let t = t_s;
    let e_lin = p.propagator(t);
    let e = e_lin.to_dense();
    let gamma = p.gamma_with(t, &e_lin, c).to_dense().cholesky()?;
    let v: Vec<DVector<f64>> = deviations.iter().map(|dev| &e * dev).collect();
    let gv: Vec<DVector<f64>> = v.iter().map(|x| gamma.solve(x)).collect();
    let k = v.len();
    let gram = DMatrix::from_fn(k, k, |i, j| 0.5 * (v[i].dot(&gv[j]) + v[j].dot(&gv[i])));
    let eig = gram.symmetric_eigen();
    let top = eig.eigenvalues.imax();
    let s = eig.eigenvalues[top];
    if !(s > 0.0 && s.is_finite()) {
        return None;
    }
    // w = Γ⁻¹ V a / √s solves E B Eᵀ w = s Γ w with wᵀ Γ w = 1.
    let a = eig.eigenvectors.column(top);
    let mut w = DVector::zeros(d);
    for (ai, g) in a.iter().zip(&gv) {
        w.axpy(*ai / s.sqrt(), g, 1.0);
    }
    let etw = e.transpose() * &w;
    let mut y = DVector::zeros(d);
    for (dev, vi) in deviations.iter().zip(&v) {
        y.axpy(vi.dot(&w), dev, 1.0);
    }
    let u = p.u.to_dense();
    let wmat = c.to_dense() - p.u_inv.to_dense();
    y -= (&wmat * &etw) * s;
    let a_mat = p.a.to_dense();
    let ds_dt = -2.0 * w.dot(&(&a_mat * (&e * &y)));
    if ds_dt.is_nan() || ds_dt >= 0.0 {
        return None;
    }
    let l = exp_frechet(&(a_mat.transpose() * -t), &(&w * y.transpose()));
    let ds_dq = l * u * (-2.0 * t);
    let anti = (&ds_dq - ds_dq.transpose()) * 0.5;
    Some(anti / -ds_dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mixture;
    use crate::rng::HostRng;
    use crate::theory::{between_class_deviations, t_speciation, t_speciation_between};

    fn antisymmetric(d: usize, rng: &mut HostRng, scale: f64) -> DMatrix<f64> {
        let x = DMatrix::from_fn(d, d, |_, _| rng.normal());
        (&x - x.transpose()) * (0.5 * scale)
    }

    /// The block-triangular L(X, H) against a central difference of exp.
    #[test]
    fn frechet_derivative_matches_finite_differences() {
        let mut rng = HostRng::new(3, "frechet");
        let d = 5;
        let x = DMatrix::from_fn(d, d, |_, _| rng.normal());
        let h = DMatrix::from_fn(d, d, |_, _| rng.normal());
        let eps = 1e-5;
        let fd = ((&x + &h * eps).exp() - (&x - &h * eps).exp()) / (2.0 * eps);
        let l = exp_frechet(&x, &h);
        let err = (&l - &fd).norm() / l.norm();
        eprintln!("L(X, H) against the central difference: relative error {err:.2e}");
        assert!(err < 1e-8, "relative error {err:.3e}");
    }

    /// ⟨∂t_S/∂Q, H⟩ against central differences of t_S along random antisymmetric H, for two
    /// symmetric classes (t_speciation) and a three-class mixture (t_speciation_between),
    /// with an anisotropic U, a dense C and a dense Q.
    #[test]
    fn t_s_gradient_matches_finite_differences() {
        let d = 6;
        let mut rng = HostRng::new(7, "grad");
        let u = Linear::Diagonal(DVector::from_fn(d, |i, _| 0.2 * 1.8f64.powi(i as i32)));
        let r = DMatrix::from_fn(d, d, |_, _| rng.normal());
        let c = Linear::from_dense(&r * r.transpose() * (0.05 / d as f64));
        let q0 = antisymmetric(d, &mut rng, 0.3);
        let m = DVector::from_fn(d, |_, _| rng.normal()).normalize() * 3.0;
        let two = Mixture {
            weights: vec![0.5, 0.5],
            means: vec![m.clone(), -&m],
            cov: c.clone(),
        };
        let three = Mixture {
            weights: vec![0.2, 0.5, 0.3],
            means: (0..3)
                .map(|_| DVector::from_fn(d, |_, _| 2.0 * rng.normal()))
                .collect(),
            cov: c.clone(),
        };
        let t_max = 6.0;
        for (mix, symmetric) in [(&two, true), (&three, false)] {
            let devs = between_class_deviations(mix);
            let t_s = |q: &DMatrix<f64>| {
                let p = Process::new(u.clone(), Linear::from_dense(q.clone())).unwrap();
                if symmetric {
                    t_speciation(&p, &m, &c, t_max).unwrap()
                } else {
                    t_speciation_between(&p, &devs, &c, t_max).unwrap()
                }
            };
            let p = Process::new(u.clone(), Linear::from_dense(q0.clone())).unwrap();
            let t0 = t_s(&q0);
            assert!(t0 > 0.1 && t0 < t_max, "t_S = {t0}");
            let g = t_speciation_gradient(&p, &devs, &c, t0, t_max).unwrap();
            assert!((&g + g.transpose()).norm() < 1e-12 * g.norm());
            for _ in 0..4 {
                let h = antisymmetric(d, &mut rng, 1.0);
                let h = &h / h.norm();
                let eps = 1e-4;
                let fd = (t_s(&(&q0 + &h * eps)) - t_s(&(&q0 - &h * eps))) / (2.0 * eps);
                let an = g.dot(&h);
                eprintln!("symmetric {symmetric}: ⟨G, H⟩ = {an:.9} finite difference {fd:.9}");
                // Bisection to 1e-11 bounds the difference quotient's error by ~1e-7 (measured
                // agreement ≤ 2e-8), O(ε²) adds less.
                assert!(
                    (an - fd).abs() < 5e-7,
                    "symmetric {symmetric}: analytic {an} vs finite difference {fd}"
                );
            }
        }
    }

    /// Capped at the horizon, t_S does not move: the gradient is zero.
    #[test]
    fn gradient_is_zero_at_the_horizon() {
        let d = 3;
        let u = Linear::Diagonal(DVector::from_vec(vec![0.5, 1.0, 2.0]));
        let p = Process::new(u, Linear::Scalar(0.0, d)).unwrap();
        let mix = Mixture::two_class(DVector::from_vec(vec![50.0, 0.0, 0.0]), 1.0);
        let devs = between_class_deviations(&mix);
        let g = t_speciation_gradient(&p, &devs, &mix.cov, 1.0, 1.0).unwrap();
        assert_eq!(g.norm(), 0.0);
    }
}
