//! The start distribution at t = T: a mixture of Gaussians with a shared Cholesky factor.

use anyhow::Result;
use nalgebra::DVector;

use super::{Plan, Start, StartPlan};
use crate::linalg::Linear;
use crate::model::Target;

impl Plan {
    pub(super) fn start_plan(&self, start: Start) -> Result<StartPlan> {
        let p = &self.process;
        let d = self.dim;
        let (means, weights, cov): (Vec<DVector<f64>>, Vec<f64>, Linear) =
            match (start, &self.target) {
                (Start::Stationary, _) => (vec![DVector::zeros(d)], vec![1.0], p.u_inv.clone()),
                (Start::Exact, Target::Mixture(mix)) => {
                    let e = p.propagator(self.grid.t_max);
                    (
                        mix.means.iter().map(|m| e.apply(m)).collect(),
                        mix.weights.clone(),
                        p.gamma_with(self.grid.t_max, &e, &mix.cov),
                    )
                }
                (Start::Exact, Target::Empirical(emp)) => {
                    let e = p.propagator(self.grid.t_max);
                    let n = emp.points.nrows();
                    (
                        emp.points
                            .row_iter()
                            .map(|a| e.apply(&a.transpose()))
                            .collect(),
                        vec![1.0 / n as f64; n],
                        p.sigma_with(self.grid.t_max, &e),
                    )
                }
            };
        let chol = cov.cholesky()?;
        let mut acc = 0.0;
        let mut cumulative: Vec<f32> = weights
            .iter()
            .map(|w| {
                acc += w;
                acc as f32
            })
            .collect();
        *cumulative.last_mut().expect("at least one component") = 1.0;
        Ok(StartPlan {
            means: means
                .iter()
                .flat_map(|m| m.iter().map(|&x| x as f32))
                .collect(),
            cumulative,
            chol_form: chol.form(),
            chol: chol.to_f32(),
        })
    }
}
