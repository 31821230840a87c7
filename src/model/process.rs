//! The forward OU process `dx = −A x dt + √2 dW`, `A = (I + Q) U` (docs/mathematics.md §1, §2).

use std::sync::Arc;

use anyhow::{Result, bail, ensure};

use super::schedule::ScheduledDrift;
use crate::linalg::Linear;

#[derive(Clone, Debug)]
pub struct Process {
    /// Stationary precision (symmetric positive definite).
    pub u: Linear,
    /// Antisymmetric rotation.
    pub q: Linear,
    /// Drift matrix `(I + Q) U`.
    pub a: Linear,
    /// Stationary covariance U⁻¹.
    pub u_inv: Linear,
    /// A drift that changes with time (a coupling schedule); U, A and U⁻¹ above are then those
    /// the process settles at once the schedule stops changing.
    pub schedule: Option<Arc<ScheduledDrift>>,
}

/// Largest eigenvalue of U, and inverse of the smallest, that a process may have.
pub const MAX_RATE: f64 = 1e12;

/// Largest ‖QU‖_F relative to Tr(U)/d: beyond it the real parts of A's eigenvalues drown in the
/// round-off of its imaginary parts (f64 keeps 16 digits; we keep 8 for the gap).
pub const MAX_ROTATION: f64 = 1e8;

impl Process {
    /// Validates U (finite, symmetric positive definite) and Q (finite, antisymmetric, same d).
    /// Refuses U and Q outside the range the plans and the theory can compute with (see the
    /// bounds [`MAX_RATE`], [`MAX_ROTATION`]).
    pub fn new(u: Linear, q: Linear) -> Result<Self> {
        let d = u.dim();
        ensure!(d > 0, "U: dimension must be positive");
        ensure!(
            q.dim() == d,
            "Q: dimension {} does not match U's dimension {}",
            q.dim(),
            d
        );
        // Checked in their own forms: a scalar U = I of d = 100 000 stays one number (its
        // dense form would be 80 GB).
        ensure!(u.all_finite(), "U: contains NaN or infinite entries");
        ensure!(q.all_finite(), "Q: contains NaN or infinite entries");
        let scale = u.amax().max(f64::MIN_POSITIVE);
        let asym = u.transpose_residual(1.0);
        ensure!(
            asym <= 1e-10 * scale,
            "U: not symmetric (max |U − Uᵀ| = {asym:.3e})"
        );
        let eig = u.symmetric_eigenvalues();
        let (lmin, lmax) = (eig[0], eig[d - 1]);
        if lmin <= 0.0 {
            bail!("U: not positive definite (smallest eigenvalue {lmin:.6e})");
        }
        // f32 plans hold U, U⁻¹ and their products: keep the spectrum well inside its range.
        ensure!(
            lmax <= MAX_RATE && lmin >= 1.0 / MAX_RATE,
            "U: eigenvalues {lmin:.3e} … {lmax:.3e} leave the usable range [1e−12, 1e12] \
             (f32 plans and the theory's eigen-solvers lose every digit beyond it)"
        );
        let residual = q.transpose_residual(-1.0);
        ensure!(
            residual <= 1e-10 * q.amax().max(1.0),
            "Q: not antisymmetric (max |Q + Qᵀ| = {residual:.3e})"
        );
        // Antisymmetrise to kill round-off, and keep the cheapest form.
        let q = if let Linear::Dense(qd) = &q {
            Linear::from_dense((qd - qd.transpose()) * 0.5)
        } else {
            Linear::Scalar(0.0, d) // a diagonal antisymmetric matrix is zero
        };
        // A rotation much faster than the relaxation leaves the real parts of A's eigenvalues
        // (the spectral gap) below round-off, and needs more steps than a run can take.
        let qu = q.mul(&u).frobenius();
        let relax = u.diagonal().sum() / d as f64;
        ensure!(
            qu <= MAX_ROTATION * relax,
            "Q: ‖QU‖ = {qu:.3e} is more than {MAX_ROTATION:.0e} times the relaxation rate Tr(U)/d = \
             {relax:.3e}: the spectral gap would be lost to round-off and Euler–Maruyama would \
             need over 10⁸ steps; use a weaker Q"
        );
        let a = u.add(&q.mul(&u));
        let u_inv = u.inverse_spd()?;
        Ok(Process {
            u,
            q,
            a,
            u_inv,
            schedule: None,
        })
    }

    /// The same process with a time-dependent drift.
    pub fn with_schedule(mut self, drift: Arc<ScheduledDrift>) -> Self {
        self.schedule = Some(drift);
        self
    }

    pub fn dim(&self) -> usize {
        self.u.dim()
    }

    /// `E_t`, the mean's factor at time t: `exp(−A t)`, or the time-ordered product under a
    /// schedule.
    pub fn propagator(&self, t: f64) -> Linear {
        match &self.schedule {
            Some(s) => s.propagator(t),
            None => self.a.exp_scaled(-t),
        }
    }

    /// `E_{t←s}`, the mean's factor from time s to t ≥ s, given `E_s` and `E_t`: `exp(−A(t − s))`
    /// for a constant drift; `E_t E_s⁻¹` under a schedule (whose propagators are symmetric
    /// positive definite and commute).
    pub fn propagator_between(&self, s: f64, t: f64, e_s: &Linear, e_t: &Linear) -> Result<Linear> {
        Ok(match &self.schedule {
            Some(_) => e_t.mul(&e_s.inverse_spd()?),
            None => self.a.exp_scaled(-(t - s)),
        })
    }

    /// The drift matrix A(t) at time t.
    pub fn drift(&self, t: f64) -> Linear {
        match &self.schedule {
            Some(s) => s.drift(t),
            None => self.a.clone(),
        }
    }

    /// `Σ_t`, the covariance of `x_t | x_0`, given `E_t`: `U⁻¹ − E_t U⁻¹ E_tᵀ` for a constant
    /// drift.
    pub fn sigma_with(&self, t: f64, e: &Linear) -> Linear {
        match &self.schedule {
            Some(s) => s.noise(t),
            None => self.u_inv.sub(&e.mul(&self.u_inv).mul(&e.transpose())),
        }
    }

    /// `Γ(t) = Σ_t + E_t C E_tᵀ`, the covariance at time t of data with covariance C.
    pub fn gamma_with(&self, t: f64, e: &Linear, c: &Linear) -> Linear {
        match &self.schedule {
            Some(s) => s.noise(t).add(&e.mul(c).mul(&e.transpose())),
            // Σ_t + E C Eᵀ, not U⁻¹ + E (C − U⁻¹) Eᵀ: at t = 0 (E = I) the latter rounds a small
            // C away against U⁻¹ (σ = 1e-9 gave Γ(0) = 0), the former is C exactly.
            None => self.sigma_with(t, e).add(&e.mul(c).mul(&e.transpose())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    #[test]
    fn rejects_bad_matrices() {
        let u = Linear::Diagonal(DVector::from_vec(vec![1.0, -0.5]));
        let err = Process::new(u, Linear::Scalar(0.0, 2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("smallest eigenvalue"), "{err}");
        let q = Linear::Dense(DMatrix::from_row_slice(2, 2, &[0.0, 1.0, 1.0, 0.0]));
        let err = Process::new(Linear::identity(2), q)
            .unwrap_err()
            .to_string();
        assert!(err.contains("antisymmetric"), "{err}");
    }

    /// N(0, U⁻¹) is stationary for any antisymmetric Q: A U⁻¹ + U⁻¹ Aᵀ = 2I, so Σ_t → U⁻¹
    /// and Γ(t) = U⁻¹ for C = U⁻¹ at all t.
    #[test]
    fn stationary_law_is_q_invariant() {
        let u = Linear::Dense(DMatrix::from_row_slice(
            3,
            3,
            &[2.0, 0.3, 0.0, 0.3, 1.0, 0.1, 0.0, 0.1, 0.5],
        ));
        let q = Linear::Dense(DMatrix::from_row_slice(
            3,
            3,
            &[0.0, 1.5, -0.4, -1.5, 0.0, 2.0, 0.4, -2.0, 0.0],
        ));
        let p = Process::new(u, q).unwrap();
        let lyap =
            p.a.mul(&p.u_inv)
                .add(&p.u_inv.mul(&p.a.transpose()))
                .to_dense();
        assert!((lyap - DMatrix::identity(3, 3) * 2.0).amax() < 1e-12);
        for t in [0.1, 1.0, 5.0] {
            let g = p.gamma_with(t, &p.propagator(t), &p.u_inv);
            assert!((g.to_dense() - p.u_inv.to_dense()).amax() < 1e-12);
        }
    }
}
