//! Target distributions p_0 (DESIGN §3).

use nalgebra::{DMatrix, DVector};

use crate::linalg::Linear;

/// Gaussian mixture with shared covariance: `Σ_k w_k N(μ_k, C)`.
#[derive(Clone, Debug)]
pub struct Mixture {
    /// Weights, summing to one.
    pub weights: Vec<f64>,
    /// Component means μ_k.
    pub means: Vec<DVector<f64>>,
    /// Shared within-class covariance C (symmetric positive definite).
    pub cov: Linear,
}

/// The empirical distribution of N training points (rows of `points`, N×d).
#[derive(Clone, Debug)]
pub struct Empirical {
    pub points: DMatrix<f64>,
}

#[derive(Clone, Debug)]
pub enum Target {
    Mixture(Mixture),
    Empirical(Empirical),
}

impl Mixture {
    /// Two symmetric classes ±m with covariance σ²I.
    pub fn two_class(m: DVector<f64>, sigma: f64) -> Self {
        let d = m.len();
        Mixture {
            weights: vec![0.5, 0.5],
            means: vec![m.clone(), -m],
            cov: Linear::Scalar(sigma * sigma, d),
        }
    }

    pub fn dim(&self) -> usize {
        self.cov.dim()
    }
}

impl Target {
    pub fn dim(&self) -> usize {
        match self {
            Target::Mixture(m) => m.dim(),
            Target::Empirical(e) => e.points.ncols(),
        }
    }
}
