//! The coefficients of one time point in f64 (docs/mathematics.md §5): the scheme's step
//! `(M, P, L)`, the logits' `B` and bias, before rounding.

use anyhow::Result;
use nalgebra::DMatrix;

use super::{Plan, Point, integrator};
use crate::linalg::Linear;
use crate::model::Target;

impl Plan {
    /// Coefficients at time point j, in f64.
    pub(super) fn point(&self, j: usize) -> Result<Point> {
        let n = self.grid.steps;
        let p = &self.process;
        let d = p.dim();
        match &self.target {
            Target::Mixture(mix) => {
                // Γ_s of the data at any time s, given E_s.
                let cov = |s: f64, e: &Linear| p.gamma_with(s, e, &mix.cov);
                let t = self.grid.time(j);
                let e = p.propagator(t);
                let gamma_inv = self.precision(cov(t, &e), t)?;
                let mut w = DMatrix::zeros(mix.means.len(), d);
                let mut bias = Vec::with_capacity(mix.means.len());
                for (k, (mu, wk)) in mix.means.iter().zip(&mix.weights).enumerate() {
                    let mt = e.apply(mu);
                    let g = gamma_inv.apply(&mt);
                    bias.push(wk.ln() - 0.5 * mt.dot(&g));
                    w.set_row(k, &g.transpose());
                }
                let (m, p, noise, offsets) = if j == n {
                    let o = self
                        .mixture_offsets()
                        .then(|| DMatrix::zeros(mix.means.len(), d));
                    (
                        Linear::identity(d),
                        Linear::Scalar(0.0, d),
                        Linear::Scalar(0.0, d),
                        o,
                    )
                } else if self.scheme.draws_component() {
                    let b = self.bridge(j, &gamma_inv, cov)?;
                    let mut offsets = DMatrix::zeros(mix.means.len(), d);
                    for (k, mu) in mix.means.iter().enumerate() {
                        offsets.set_row(k, &b.offset.apply(mu).transpose());
                    }
                    (b.g, Linear::identity(d), b.noise, Some(offsets))
                } else {
                    let (m, forcing, noise) = self.integrate(j, &gamma_inv, cov)?;
                    (m, forcing, noise, None)
                };
                Ok(Point {
                    m,
                    b: Linear::identity(d),
                    p,
                    w: Some(w),
                    bias,
                    noise,
                    offsets,
                    gram: None,
                })
            }
            Target::Empirical(emp) => {
                // Σ_0 = 0: the last positive time stands in for the logits at t = 0.
                // Σ_s of a training point at any time s, given E_s.
                let cov = |s: f64, e: &Linear| p.sigma_with(s, e);
                let t = self.grid.time(j.min(n - 1));
                let e = p.propagator(t);
                let sigma_inv = self.precision(cov(t, &e), t)?;
                let b = e.transpose().mul(&sigma_inv);
                let g = b.mul(&e);
                let bias = g.quad_rows(&emp.points).iter().map(|q| -0.5 * q).collect();
                let (m, pm, noise) = if j == n {
                    (
                        Linear::identity(d),
                        Linear::Scalar(0.0, d),
                        Linear::Scalar(0.0, d),
                    )
                } else if self.scheme.draws_component() {
                    let br = self.bridge(j, &sigma_inv, cov)?;
                    (br.g, br.offset, br.noise)
                } else {
                    let (m, forcing, noise) = self.integrate(j, &sigma_inv, cov)?;
                    (m, forcing.mul(&sigma_inv.mul(&e)), noise)
                };
                Ok(Point {
                    m,
                    b,
                    p: pm,
                    w: None,
                    bias,
                    noise,
                    offsets: None,
                    gram: Some(g),
                })
            }
        }
    }

    /// The inverse of the covariance of x_t given the component (Γ_t or Σ_t): the score's
    /// linear part.
    pub(super) fn precision(&self, cov: Linear, t: f64) -> Result<Linear> {
        cov.inverse_spd().map_err(|_| {
            anyhow::anyhow!(
                "plan: the covariance at t = {t} is singular (is the covariance C degenerate, or \
                 the grid too fine near t = 0? use fewer steps or a larger t-max)"
            )
        })
    }

    /// `(M, P, L)` of the step from t_j for the averaging schemes, with the reverse drift
    /// `A x + c(forcing − precision·x)`: P multiplies the forcing (the posterior-mean center,
    /// held at t_j). Euler: `M = I + Δt(A − c·precision_t)`, `P = cΔt`, `L = √(2Δt)`.
    /// Exponential: the linear part taken at the step's midpoint (`cov(s, E_s)` gives the
    /// covariance whose inverse is the precision there) and integrated exactly ([`integrator`]);
    /// the midpoint halved the φ bias of t_j's linear part on `lu-tang` at Δt = 0.1 (+0.0107 →
    /// −0.0054 ± 0.0009; Euler–Maruyama +0.054).
    pub(super) fn integrate(
        &self,
        j: usize,
        precision: &Linear,
        cov: impl Fn(f64, &Linear) -> Linear,
    ) -> Result<(Linear, Linear, Linear)> {
        let (t, dt) = (self.grid.time(j), self.grid.dt_at(j));
        let c = self.scheme.score_weight();
        let d = self.dim;
        let noisy = self.scheme.stochastic();
        let linear_at = |t: f64, precision: &Linear| self.process.drift(t).sub(&precision.scale(c));
        Ok(if self.scheme.explicit() {
            let linear = linear_at(t, precision);
            let noise = if noisy { (2.0 * dt).sqrt() } else { 0.0 };
            (
                linear.scale(dt).add_identity(1.0),
                Linear::Scalar(c * dt, d),
                Linear::Scalar(noise, d),
            )
        } else {
            let mid = t - 0.5 * dt;
            let e = self.process.propagator(mid);
            let linear = linear_at(mid, &self.precision(cov(mid, &e), mid)?);
            let (m, phi) = integrator::exponential(&linear, dt);
            let noise = if noisy {
                integrator::noise_covariance(&linear, dt).cholesky()?
            } else {
                Linear::Scalar(0.0, d)
            };
            (m, phi.scale(c), noise)
        })
    }

    /// The exact reverse transition from t_j to t_{j+1}; `cov(s, E_s)` is the covariance of x_s
    /// given the component (Γ_s, or Σ_s for training points).
    pub(super) fn bridge(
        &self,
        j: usize,
        precision_t: &Linear,
        cov: impl Fn(f64, &Linear) -> Linear,
    ) -> Result<integrator::Bridge> {
        let p = &self.process;
        let (t, s) = (self.grid.time(j), self.grid.time(j + 1));
        let (e_t, e_s) = (p.propagator(t), p.propagator(s));
        let e_ts = p.propagator_between(s, t, &e_s, &e_t)?;
        integrator::Bridge::new(&cov(s, &e_s), precision_t, &e_s, &e_t, &e_ts)
    }
}
