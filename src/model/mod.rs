//! The forward process (U, Q) and the target distribution: what is being sampled.

pub mod coupling;
pub mod labels;
pub mod precision;
pub mod process;
pub mod rotation;
pub mod schedule;
pub mod spec;
pub mod target;

pub use process::Process;
pub use spec::{MeanSpec, QSpec, USpec};
pub use target::{Empirical, Mixture, Target};

/// A forward process together with the distribution it noises.
#[derive(Clone, Debug)]
pub struct Model {
    pub process: Process,
    pub target: Target,
}
