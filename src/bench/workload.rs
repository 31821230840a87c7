//! The standard throughput workloads: their models and plans.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use nalgebra::DVector;
use serde::Serialize;

use crate::linalg::Linear;
use crate::model::coupling::{Coupling, paired_mean};
use crate::model::precision::build_u;
use crate::model::rotation::optimal_q;
use crate::model::{Empirical, Mixture, Model, Process, Target, USpec};
use crate::plan::{Grid, Plan, Scheme, Start};

/// The coupling of the `coupled` workload.
pub const COUPLING: f64 = 0.5;

/// The horizon T of every workload.
pub const T_MAX: f64 = 10.0;

/// Within-class standard deviation σ (C = σ²I) of every workload.
pub const SIGMA: f64 = 1.0;

/// The standard workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Two-class Gaussian mixture, U = I, Q = 0: every plan matrix is a scalar.
    Gmm,
    /// Two-class mixture, U = rotated:0.2:5 with the optimal Q: a dense d×d M per step.
    Dense,
    /// The empirical target of --n-train points, U = I, Q = 0: a softmax over N per step.
    Empirical,
    /// Two modalities of dimension d/2 coupled additively (γ = 0.5): a dense K ⊗ I per step.
    Coupled,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Gmm,
        Workload::Dense,
        Workload::Empirical,
        Workload::Coupled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Gmm => "gmm",
            Workload::Dense => "dense",
            Workload::Empirical => "empirical",
            Workload::Coupled => "coupled",
        }
    }

    /// What the workload is and what dominates its step, for `bench --help`.
    pub fn describe(self) -> &'static str {
        match self {
            Workload::Gmm => "U = I, Q = 0: every plan matrix is a scalar; a step costs O(d)",
            Workload::Dense => {
                "U = rotated:0.2:5 (geometric spectrum in a random basis), optimal Q: a dense d×d \
                 matrix-vector product per step, O(d²)"
            }
            Workload::Empirical => {
                "U = I, Q = 0, target = --n-train points drawn from the mixture: a softmax over \
                 the N points per step, O(N·d)"
            }
            Workload::Coupled => {
                "two modalities of d/2 coupled additively (γ = 0.5): U = K ⊗ I is a dense d×d \
                 matrix, classes ±(m_x, m_y) with m_x ⟂ m_y, O(d²)"
            }
        }
    }

    /// Particles when none are asked for: a few seconds each on two cores at d = 100.
    pub fn default_particles(self) -> u64 {
        match self {
            Workload::Gmm => 65_536,
            Workload::Dense => 65_536,
            Workload::Empirical => 8_192,
            Workload::Coupled => 65_536,
        }
    }
}

/// One measurement to make.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub workload: Workload,
    pub dim: usize,
    pub particles: u64,
    pub steps: usize,
    /// Training points of the empirical workload (ignored by the others).
    pub n_train: usize,
    pub seed: u64,
}

impl Spec {
    /// Refuses values no workload can run, naming the flag.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.dim > 0, "--dim: must be positive (got 0)");
        ensure!(self.particles > 0, "--particles: must be positive (got 0)");
        ensure!(self.steps > 0, "--steps: must be positive (got 0)");
        if self.workload == Workload::Coupled {
            ensure!(
                self.dim >= 4 && self.dim.is_multiple_of(2),
                "--dim: the coupled workload needs an even d ≥ 4 (two modalities of d/2; got {})",
                self.dim
            );
        }
        if self.workload == Workload::Empirical {
            ensure!(
                self.n_train >= 2,
                "--n-train: the empirical workload needs at least 2 training points (got {})",
                self.n_train
            );
            // The training set in f64 and the plan's f32 copy, before anything is allocated.
            let need = (self.n_train as u64)
                .saturating_mul(self.dim as u64)
                .saturating_mul(8 + 4);
            if let Some(avail) = crate::study::resources::available_memory() {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                ensure!(
                    need <= avail,
                    "--n-train: {} training points in d = {} need about {:.1} GiB of memory, the \
                     system has {:.1} GiB available; lower --n-train or --dim",
                    self.n_train,
                    self.dim,
                    gib(need),
                    gib(avail)
                );
            }
        }
        Grid::new(T_MAX, self.steps).map_err(|e| anyhow::anyhow!("--{e:#}"))?;
        Ok(())
    }

    /// [`Spec::validate`], then the model and its plan (the step's stability checked) without
    /// the chunks of coefficients: what `bench` checks of every workload before measuring any.
    pub fn check(&self) -> Result<()> {
        self.validate()?;
        let grid = Grid::new(T_MAX, self.steps)?;
        let plan = Plan::new(&self.model()?, grid, Scheme::EulerMaruyama, Start::Exact);
        // A stop during the stability judgement is a stop, not a verdict on the settings.
        crate::stop::unless_stopped()?;
        plan.with_context(|| {
            format!(
                "the {} workload cannot run at these settings (bench's T = {T_MAX} and \
                 Euler–Maruyama scheme are fixed: of the advice below, --steps applies)",
                self.workload.name()
            )
        })?;
        Ok(())
    }

    /// Training points, for the empirical workload only.
    pub fn n_train(&self) -> Option<usize> {
        (self.workload == Workload::Empirical).then_some(self.n_train)
    }

    /// The class mean m: along (1, …, 1) with ‖m‖² = d.
    pub fn mean(&self) -> DVector<f64> {
        match self.workload {
            // (m_x, m_y) with m_x along ones, m_y ⟂ m_x: ‖m‖² = d as for the other workloads.
            Workload::Coupled => paired_mean(&DVector::from_element(self.dim / 2, 1.0), 90.0)
                .unwrap_or_else(|_| DVector::from_element(self.dim, 1.0)),
            _ => DVector::from_element(self.dim, 1.0),
        }
    }

    /// The model of the workload (random parts drawn with the seed).
    pub fn model(&self) -> Result<Model> {
        let d = self.dim;
        let mixture = Mixture::two_class(self.mean(), SIGMA);
        let identity = || Process::new(Linear::identity(d), Linear::Scalar(0.0, d));
        Ok(match self.workload {
            Workload::Gmm => Model {
                process: identity()?,
                target: Target::Mixture(mixture),
            },
            Workload::Dense => {
                let u = build_u(&USpec::Rotated(0.2, 5.0), d, self.seed)?;
                let q = optimal_q(&u, None)?;
                Model {
                    process: Process::new(u, q)?,
                    target: Target::Mixture(mixture),
                }
            }
            Workload::Coupled => Model {
                process: Process::new(
                    Coupling::additive(COUPLING).joint_precision(&Linear::identity(d / 2))?,
                    Linear::Scalar(0.0, d),
                )?,
                target: Target::Mixture(mixture),
            },
            Workload::Empirical => Model {
                process: identity()?,
                target: Target::Empirical(Empirical {
                    points: mixture.sample_training_set(self.n_train, self.seed),
                }),
            },
        })
    }

    /// The model and its plan with every chunk of coefficients built, and the seconds it took.
    pub fn plan(&self) -> Result<(Plan, f64)> {
        self.validate()?;
        let started = Instant::now();
        let grid = Grid::new(T_MAX, self.steps)?;
        let plan = Plan::new(
            &self.model()?,
            grid.clone(),
            Scheme::EulerMaruyama,
            Start::Exact,
        )?;
        for c in 0..plan.chunk_count() {
            plan.chunk(c)?;
        }
        Ok((plan, started.elapsed().as_secs_f64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cost;
    use crate::linalg::Form;
    use crate::plan::Kind;

    fn spec(workload: Workload, dim: usize) -> Spec {
        Spec {
            workload,
            dim,
            particles: 16,
            steps: 1000,
            n_train: 5,
            seed: 1,
        }
    }

    #[test]
    fn workloads_have_the_plan_shapes_they_claim() {
        let shape = |w, d| spec(w, d).plan().unwrap().0.shape();
        let g = shape(Workload::Gmm, 2);
        assert_eq!((g.kind, g.centers), (Kind::Mixture, 2));
        assert_eq!([g.m_form, g.b_form, g.p_form], [Form::Scalar; 3]);
        // The cost model's hand count (cost::tests) applies to the real plan.
        assert_eq!(cost::cost(&g, 16).flops, 34);
        let dense = shape(Workload::Dense, 3);
        assert_eq!(dense.m_form, Form::Dense);
        assert_eq!([dense.b_form, dense.p_form], [Form::Scalar; 2]);
        assert_eq!(cost::cost(&dense, 16).flops, 63);
        let c = shape(Workload::Coupled, 4);
        assert_eq!(
            (c.kind, c.centers, c.m_form),
            (Kind::Mixture, 2, Form::Dense)
        );
        assert!(spec(Workload::Coupled, 3).validate().is_err(), "odd d");
        let e = shape(Workload::Empirical, 2);
        assert_eq!((e.kind, e.centers), (Kind::Empirical, 5));
        assert_eq!(cost::cost(&e, 16).flops, 67);
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = |s: Spec| format!("{:#}", s.validate().unwrap_err());
        assert!(
            err(Spec {
                dim: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--dim")
        );
        assert!(
            err(Spec {
                particles: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--particles")
        );
        assert!(
            err(Spec {
                steps: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--steps")
        );
        assert!(
            err(Spec {
                n_train: 1,
                ..spec(Workload::Empirical, 2)
            })
            .contains("--n-train")
        );
        // n-train only matters to the empirical workload.
        assert!(
            Spec {
                n_train: 1,
                ..spec(Workload::Gmm, 2)
            }
            .validate()
            .is_ok()
        );
    }
}
