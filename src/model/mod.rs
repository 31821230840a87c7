//! The forward process (U, Q) and the target distribution: what is being sampled.

pub mod precision;
pub mod process;
pub mod rotation;
pub mod target;

pub use process::Process;
pub use target::{Empirical, Mixture, Target};

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the stationary precision U is built (`--u`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum USpec {
    /// U = I.
    Identity,
    /// U = diag(values); its length fixes d.
    Diag(Vec<f64>),
    /// Diagonal with eigenvalues linearly spaced from lo to hi.
    Linspace(f64, f64),
    /// Diagonal with eigenvalues geometrically spaced from lo to hi.
    Geomspace(f64, f64),
    /// Geometric spectrum lo..hi in a random orthonormal basis (seeded).
    Rotated(f64, f64),
    /// A d×d matrix from .npy or CSV.
    File(PathBuf),
}

/// How the antisymmetric Q is built (`--q`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum QSpec {
    /// Reversible: Q = 0.
    Zero,
    /// `scale · Q_opt`, the Lelièvre–Nier–Pavliotis optimum (scale 1 reaches the gap Tr(U)/d).
    Optimal(f64),
    /// `q (e_i e_jᵀ − e_j e_iᵀ)` on coordinate axes i, j (0-based): U's eigen-directions when U is
    /// diagonal.
    Pair(usize, usize, f64),
    /// Rotation of strength q coupling the class direction to U's softest directions.
    TowardSoft(f64),
    /// Random antisymmetric matrix with the given Frobenius norm (seeded).
    Random(f64),
    /// A d×d antisymmetric matrix from .npy or CSV.
    File(PathBuf),
}

/// Direction of the class mean m for the two-class target (`--mean`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum MeanSpec {
    /// Along (1, …, 1).
    Ones,
    /// Along U's stiffest eigenvector (largest eigenvalue).
    Stiff,
    /// Along U's softest eigenvector (smallest eigenvalue).
    Soft,
    /// A random direction (seeded).
    Random,
    /// A vector from .npy or CSV (rescaled to the requested ‖m‖²).
    File(PathBuf),
}

/// A forward process together with the distribution it noises.
#[derive(Clone, Debug)]
pub struct Model {
    pub process: Process,
    pub target: Target,
}
