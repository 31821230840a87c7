//! The time grid of the reverse run (t_j = T − jΔt, j = 0..=n) and the discretisation choices.

use std::sync::Arc;

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

/// How the reverse dynamics are discretised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// The default: `exact` wherever it applies (every shared-covariance mixture and training
    /// set), on a grid of the study's own times; Euler–Maruyama elsewhere. Resolved before a
    /// run ([`crate::study::scheme`]), so summaries record the scheme that ran.
    Auto,
    /// Euler–Maruyama on the reverse SDE (what practitioners run; biased by O(Δt)).
    EulerMaruyama,
    /// Euler on the probability-flow ODE (deterministic after the start).
    ProbabilityFlow,
    /// The exact reverse transition of a shared-covariance mixture or an empirical target: draw
    /// the component from the posterior at x_t, then x_s = G x_t + c_k + L ξ (no bias at any Δt).
    Exact,
    /// Exponential Euler–Maruyama: the affine part of the reverse drift integrated exactly, with
    /// its exact noise covariance; the score's nonlinear part frozen over the step.
    Exponential,
    /// The exponential integrator of the probability-flow ODE (deterministic after the start).
    ExponentialFlow,
    /// Heun's method (the explicit trapezoidal rule) on the probability-flow ODE: an Euler
    /// predictor, then the mean of the drifts at both ends of the step. Two score evaluations
    /// per step, second order in Δt, deterministic after the start; Gaussian-mixture targets.
    Heun,
}

impl Scheme {
    /// Whether the scheme adds noise at each step (the SDE schemes).
    pub fn stochastic(self) -> bool {
        matches!(
            self,
            Scheme::Auto | Scheme::EulerMaruyama | Scheme::Exact | Scheme::Exponential
        )
    }

    /// Weight c of the score in the reverse drift `A x + c ∇log p_t`: 2 for the SDE, 1 for the
    /// probability-flow ODE.
    pub fn score_weight(self) -> f64 {
        if self.stochastic() { 2.0 } else { 1.0 }
    }

    /// Whether a step draws a component from the posterior (instead of averaging over it).
    pub fn draws_component(self) -> bool {
        self == Scheme::Exact
    }

    /// Whether the step is explicit in the linear part (and so unstable for too large Δt).
    pub fn explicit(self) -> bool {
        matches!(
            self,
            Scheme::EulerMaruyama | Scheme::ProbabilityFlow | Scheme::Heun
        )
    }

    /// Whether a step corrects its Euler predictor with a second score evaluation at the
    /// step's end (Heun).
    pub fn corrects(self) -> bool {
        self == Scheme::Heun
    }
}

/// Where generation starts at t = T.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Start {
    /// The exact noised target p_T.
    Exact,
    /// The stationary law N(0, U⁻¹).
    Stationary,
}

/// How the grid's nodes are spaced (`--grid`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Spacing {
    /// `t_j = T − jΔt`, Δt = T/steps.
    Uniform,
    /// `steps` nodes geometric from T down to `t_min`, then 0: fine steps where the score is
    /// stiff (near t = 0), coarse ones where nothing happens.
    Geometric { t_min: f64 },
    /// These nodes (besides T and 0), whatever `steps` says.
    Nodes(Vec<f64>),
}

impl std::fmt::Display for Spacing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spacing::Uniform => write!(f, "uniform"),
            Spacing::Geometric { t_min } => write!(f, "geometric:{t_min}"),
            Spacing::Nodes(v) => {
                let list: Vec<String> = v.iter().map(f64::to_string).collect();
                write!(f, "nodes:{}", list.join(","))
            }
        }
    }
}

impl std::str::FromStr for Spacing {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            anyhow::anyhow!(
                "grid: '{s}' is not a spacing; forms: uniform | geometric:TMIN (e.g. \
                 geometric:0.001) | nodes:T1,T2,... (e.g. nodes:2.5,1.1,0.3)"
            )
        };
        let number = |x: &str| x.trim().parse::<f64>().map_err(|_| bad());
        Ok(match s.split_once(':') {
            None if s == "uniform" => Spacing::Uniform,
            Some(("geometric", t)) => {
                let t_min = number(t)?;
                ensure!(
                    t_min.is_finite() && t_min > 0.0,
                    "grid: geometric:TMIN needs TMIN > 0 (got {t_min})"
                );
                Spacing::Geometric { t_min }
            }
            Some(("nodes", list)) => {
                let v = list.split(',').map(number).collect::<Result<Vec<f64>>>()?;
                ensure!(
                    v.iter().all(|t| t.is_finite() && *t > 0.0),
                    "grid: nodes must be positive and finite"
                );
                Spacing::Nodes(v)
            }
            _ => return Err(bad()),
        })
    }
}

impl From<Spacing> for String {
    fn from(s: Spacing) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Spacing {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// The time grid of the reverse run: nodes `t_0 = T > t_1 > … > t_n = 0`; uniform
/// (`t_j = T − jΔt`) unless built with a [`Spacing`] or with extra nodes ([`Grid::with_times`]).
#[derive(Clone, Debug)]
pub struct Grid {
    pub t_max: f64,
    /// The number of steps n (nodes n + 1).
    pub steps: usize,
    /// `t_j` as the coefficients use it.
    times: Arc<[f64]>,
    /// `t_j` as a user writes it (outputs only): T(n − j)/n correctly rounded on a uniform
    /// grid, so `--branch-times 2.14` on a grid of step 0.01 reports 2.14, not the
    /// 2.1399999999999997 of T − jΔt; the given value for an inserted node.
    nodes: Arc<[f64]>,
}

impl Serialize for Grid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Grid", 3)?;
        st.serialize_field("t_max", &self.t_max)?;
        st.serialize_field("steps", &self.steps)?;
        st.serialize_field("uniform", &self.is_uniform())?;
        st.end()
    }
}

impl Grid {
    /// The uniform grid of `steps` steps on [0, t_max].
    pub fn new(t_max: f64, steps: usize) -> Result<Self> {
        ensure!(
            t_max.is_finite() && t_max > 0.0,
            "t-max: must be positive and finite (got {t_max})"
        );
        ensure!(steps > 0, "steps: must be positive");
        ensure!(
            steps < u32::MAX as usize - 1,
            "steps: at most {} supported",
            u32::MAX - 2
        );
        let dt = t_max / steps as f64;
        let times = (0..=steps)
            .map(|j| {
                if j == steps {
                    0.0
                } else {
                    t_max - j as f64 * dt
                }
            })
            .collect();
        let nodes = (0..=steps)
            .map(|j| t_max * (steps - j) as f64 / steps as f64)
            .collect();
        Ok(Grid {
            t_max,
            steps,
            times,
            nodes,
        })
    }

    /// The grid of a spacing: uniform with `steps` steps, geometric with `steps` steps, or the
    /// given nodes.
    pub fn spaced(t_max: f64, steps: usize, spacing: &Spacing) -> Result<Self> {
        let uniform = Grid::new(t_max, steps)?;
        let inner: Vec<f64> = match spacing {
            Spacing::Uniform => return Ok(uniform),
            Spacing::Geometric { t_min } => {
                ensure!(
                    *t_min < t_max,
                    "grid: geometric:{t_min} must lie below t-max = {t_max}"
                );
                ensure!(steps >= 2, "grid: a geometric grid needs --steps 2 or more");
                // steps − 1 ratios from T to t_min, then the last step to 0.
                let ratio = (t_min / t_max).powf(1.0 / (steps - 1) as f64);
                (1..steps).map(|j| t_max * ratio.powi(j as i32)).collect()
            }
            Spacing::Nodes(v) => v.clone(),
        };
        Grid::from_nodes(t_max, &inner)
    }

    /// T, the nodes of `inner` inside (0, T) (sorted, duplicates dropped), and 0.
    fn from_nodes(t_max: f64, inner: &[f64]) -> Result<Self> {
        let mut v: Vec<f64> = inner
            .iter()
            .copied()
            .filter(|t| *t > 0.0 && *t < t_max)
            .collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v.dedup();
        let all: Arc<[f64]> = std::iter::once(t_max)
            .chain(v)
            .chain(std::iter::once(0.0))
            .collect();
        ensure!(
            all.len() - 1 < u32::MAX as usize - 1,
            "grid: too many nodes"
        );
        Ok(Grid {
            t_max,
            steps: all.len() - 1,
            times: all.clone(),
            nodes: all,
        })
    }

    /// The grid with each of `times` inside (0, T) as a node: the time points a study measures
    /// at, so branch and record times are exact instead of the nearest node. A time within
    /// 1e-9·T of a node is that node (a uniform grid keeps its bits).
    pub fn with_times(&self, times: &[f64]) -> Result<Self> {
        let tol = 1e-9 * self.t_max;
        let mut missing: Vec<f64> = times
            .iter()
            .copied()
            .filter(|&t| t > tol && t < self.t_max - tol)
            .filter(|&t| (self.node(self.index_of(t)) - t).abs() > tol)
            .collect();
        // A time asked twice (a branch time that is also a record time) is one node.
        missing.sort_by(|a, b| b.total_cmp(a));
        missing.dedup_by(|a, b| (*a - *b).abs() <= tol);
        if missing.is_empty() {
            return Ok(self.clone());
        }
        // (time, node as written) pairs, descending, so the two stay aligned.
        let mut pairs: Vec<(f64, f64)> = self
            .times
            .iter()
            .copied()
            .zip(self.nodes.iter().copied())
            .collect();
        pairs.extend(missing.into_iter().map(|t| (t, t)));
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (times, nodes): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        Ok(Grid {
            t_max: self.t_max,
            steps: times.len() - 1,
            times: times.into(),
            nodes: nodes.into(),
        })
    }

    /// Whether every step has the same length.
    pub fn is_uniform(&self) -> bool {
        let dt = self.t_max / self.steps as f64;
        self.times
            .windows(2)
            .all(|w| ((w[0] - w[1]) - dt).abs() <= 1e-9 * self.t_max)
    }

    /// The length of step j (from t_j to t_{j+1}).
    pub fn dt_at(&self, j: usize) -> f64 {
        self.times[j] - self.times[j + 1]
    }

    /// The longest step (what stability and bias depend on).
    pub fn max_dt(&self) -> f64 {
        (0..self.steps).map(|j| self.dt_at(j)).fold(0.0, f64::max)
    }

    pub fn time(&self, j: usize) -> f64 {
        self.times[j]
    }

    /// The time of node `j` as a user writes it (see the field); for outputs only.
    pub fn node(&self, j: usize) -> f64 {
        self.nodes[j.min(self.steps)]
    }

    /// The node closest to time t.
    pub fn index_of(&self, t: f64) -> usize {
        // Nodes descend: the first at or below t, or the one before it.
        let i = self.times.partition_point(|&x| x > t).min(self.steps);
        if i > 0 && (self.times[i - 1] - t) < (t - self.times[i]) {
            i - 1
        } else {
            i
        }
    }
}

/// The number of steps: `--steps N`, or `--steps auto` (chosen per scheme and model for a
/// target accuracy, see `study::auto_steps`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "StepsRepr", try_from = "StepsRepr")]
pub enum Steps {
    Count(usize),
    Auto,
}

/// How [`Steps`] reads and writes: a number or the word "auto".
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StepsRepr {
    Count(u64),
    Word(String),
}

impl From<Steps> for StepsRepr {
    fn from(s: Steps) -> StepsRepr {
        match s {
            Steps::Count(n) => StepsRepr::Count(n as u64),
            Steps::Auto => StepsRepr::Word("auto".into()),
        }
    }
}

impl TryFrom<StepsRepr> for Steps {
    type Error = anyhow::Error;
    fn try_from(r: StepsRepr) -> Result<Steps> {
        match r {
            StepsRepr::Count(n) => Ok(Steps::Count(usize::try_from(n)?)),
            StepsRepr::Word(w) => w.parse(),
        }
    }
}

impl std::str::FromStr for Steps {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Steps> {
        if s.trim() == "auto" {
            return Ok(Steps::Auto);
        }
        let t = s.trim().replace('_', "");
        let n = t
            .parse::<u64>()
            .ok()
            .or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0 && x.fract() == 0.0 && *x < 1.8e19)
                    .map(|x| x as u64)
            })
            .ok_or_else(|| {
                anyhow::anyhow!("steps: '{s}' is neither a whole number (e.g. 1000) nor 'auto'")
            })?;
        Ok(Steps::Count(usize::try_from(n)?))
    }
}

impl std::fmt::Display for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Steps::Count(n) => write!(f, "{n}"),
            Steps::Auto => write!(f, "auto"),
        }
    }
}

impl Steps {
    /// The given count; None for `auto`.
    pub fn count(self) -> Option<usize> {
        match self {
            Steps::Count(n) => Some(n),
            Steps::Auto => None,
        }
    }
}
