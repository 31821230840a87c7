//! How the schemes turn the reverse dynamics into the coefficients of one step (docs/mathematics.md
//! §9): the exponential integrator's `exp(hL)`, `hφ₁(hL)` and noise covariance, and the exact
//! reverse transition (the Gaussian bridge) of a shared-covariance target. All in f64, in the
//! cheapest [`Linear`] form that holds them.

use nalgebra::DMatrix;

use crate::linalg::Linear;

/// `φ₁(x) = (eˣ − 1)/x`, continuous at 0.
fn phi1(x: f64) -> f64 {
    if x == 0.0 { 1.0 } else { x.exp_m1() / x }
}

/// `(exp(hL), hφ₁(hL))`: the exponential integrator's linear map and the factor of the forcing
/// held constant over the step (`∫₀ʰ exp(sL) ds`).
pub fn exponential(l: &Linear, h: f64) -> (Linear, Linear) {
    match l {
        Linear::Scalar(c, d) => (
            Linear::Scalar((c * h).exp(), *d),
            Linear::Scalar(h * phi1(c * h), *d),
        ),
        Linear::Diagonal(v) => (
            Linear::Diagonal(v.map(|c| (c * h).exp())),
            Linear::Diagonal(v.map(|c| h * phi1(c * h))),
        ),
        Linear::Dense(m) => {
            // exp([[hL, hI], [0, 0]]) = [[exp(hL), hφ₁(hL)], [0, I]].
            let d = m.nrows();
            let mut big = DMatrix::zeros(2 * d, 2 * d);
            big.view_mut((0, 0), (d, d)).copy_from(&(m * h));
            big.view_mut((0, d), (d, d))
                .copy_from(&(DMatrix::identity(d, d) * h));
            let e = big.exp();
            (
                Linear::Dense(e.view((0, 0), (d, d)).into_owned()),
                Linear::Dense(e.view((0, d), (d, d)).into_owned()),
            )
        }
    }
}

/// The covariance `2∫₀ʰ exp(sL) exp(sLᵀ) ds` that `dx = L x ds + √2 dW` adds over h.
pub fn noise_covariance(l: &Linear, h: f64) -> Linear {
    match l {
        Linear::Scalar(c, d) => Linear::Scalar(2.0 * h * phi1(2.0 * c * h), *d),
        Linear::Diagonal(v) => Linear::Diagonal(v.map(|c| 2.0 * h * phi1(2.0 * c * h))),
        Linear::Dense(m) => {
            // Van Loan: exp(h [[−L, 2I], [0, Lᵀ]]) = [[·, F₁₂], [0, F₂₂]], covariance F₂₂ᵀ F₁₂.
            let d = m.nrows();
            let mut big = DMatrix::zeros(2 * d, 2 * d);
            big.view_mut((0, 0), (d, d)).copy_from(&(m * -h));
            big.view_mut((0, d), (d, d))
                .copy_from(&(DMatrix::identity(d, d) * (2.0 * h)));
            big.view_mut((d, d), (d, d)).copy_from(&(m.transpose() * h));
            let e = big.exp();
            let cov = e.view((d, d), (d, d)).transpose() * e.view((0, d), (d, d));
            Linear::Dense((&cov + cov.transpose()) * 0.5)
        }
    }
}

/// The exact reverse transition from t to s < t of data with one shared covariance: given the
/// component (or training point) k with x_s ~ N(E_s μ_k, Γ_s) and x_t = E_{t←s} x_s + noise,
/// `x_s | x_t, k ~ N(G x_t + (E_s − G E_t) μ_k, K)`, with `G = Γ_s E_{t←s}ᵀ Γ_t⁻¹` and
/// `K = Γ_s − G E_{t←s} Γ_s`. Neither depends on k because the covariance is shared.
pub struct Bridge {
    pub g: Linear,
    /// The Cholesky factor of K.
    pub noise: Linear,
    /// `E_s − G E_t`, the map from μ_k to the offset c_k.
    pub offset: Linear,
}

impl Bridge {
    /// From Γ_s, Γ_t⁻¹, the propagators E_s, E_t and E_{t←s}.
    pub fn new(
        gamma_s: &Linear,
        gamma_t_inv: &Linear,
        e_s: &Linear,
        e_t: &Linear,
        e_ts: &Linear,
    ) -> anyhow::Result<Self> {
        let g = gamma_s.mul(&e_ts.transpose()).mul(gamma_t_inv);
        let k = gamma_s.sub(&g.mul(e_ts).mul(gamma_s));
        Ok(Bridge {
            noise: k.cholesky()?,
            offset: e_s.sub(&g.mul(e_t)),
            g,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DVector;

    /// A dense matrix equal to a diagonal one gives the diagonal form's numbers: the block
    /// exponentials (φ₁ and Van Loan) agree with the closed forms.
    #[test]
    fn dense_forms_agree_with_the_closed_forms() {
        let v = DVector::from_vec(vec![-3.0, -0.5, 1e-9, 0.7]);
        let (diag, dense) = (
            Linear::Diagonal(v.clone()),
            Linear::Dense(DMatrix::from_diagonal(&v)),
        );
        let h = 0.3;
        let (m1, p1) = exponential(&diag, h);
        let (m2, p2) = exponential(&dense, h);
        let close = |a: &Linear, b: &Linear| (a.to_dense() - b.to_dense()).amax() < 1e-12;
        assert!(close(&m1, &m2) && close(&p1, &p2));
        assert!(close(
            &noise_covariance(&diag, h),
            &noise_covariance(&dense, h)
        ));
        // φ₁ → 1 as L → 0: hφ₁(0) = h and the noise 2h, Euler–Maruyama's.
        let (_, p0) = exponential(&Linear::Scalar(0.0, 1), h);
        assert_eq!(p0, Linear::Scalar(h, 1));
        assert_eq!(
            noise_covariance(&Linear::Scalar(0.0, 1), h),
            Linear::Scalar(2.0 * h, 1)
        );
    }

    /// The Van Loan covariance of a rotation-plus-decay L solves the Lyapunov equation
    /// `L K + K Lᵀ = exp(hL) 2 exp(hLᵀ) − 2I`.
    #[test]
    fn noise_covariance_solves_its_lyapunov_equation() {
        let l = DMatrix::from_row_slice(3, 3, &[-1.0, 2.0, 0.0, -2.0, -1.5, 0.3, 0.1, -0.3, -0.2]);
        let h = 0.4;
        let Linear::Dense(k) = noise_covariance(&Linear::Dense(l.clone()), h) else {
            panic!("dense in, dense out")
        };
        let e = (&l * h).exp();
        let lhs = &l * &k + &k * l.transpose();
        let rhs = &e * e.transpose() * 2.0 - DMatrix::identity(3, 3) * 2.0;
        assert!((lhs - rhs).amax() < 1e-12);
    }
}
