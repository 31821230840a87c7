//! The default scheme, `auto`: the exact reverse transition wherever it applies, on a grid of
//! the study's own times, and Euler–Maruyama elsewhere.
//!
//! The exact transition ([`crate::plan::integrator::Bridge`]) has no discretisation bias at any
//! Δt for data with one shared covariance, which covers every Gaussian mixture and training set
//! this program builds: between two nodes it samples the reverse law itself, so a study needs
//! nodes only where it measures. `auto` is resolved here, once, into the config the study runs
//! and its summary records (scheme, steps and grid written out), so the fingerprint names what
//! ran and replaying the recorded config with explicit flags gives the same numbers.

use anyhow::Result;

use super::{EXACT_STEPS, Kind};
use crate::config::Config;
use crate::config::build::{self, Built};
use crate::plan::{Grid, Plan, Scheme, Spacing, Steps};

/// Collapse under `auto`: t̂_C is the node at which a trajectory commits to a training point,
/// so the trajectories need a resolution in time. A geometric grid from T down to
/// [`COLLAPSE_T_MIN`] in [`COLLAPSE_STEPS`] steps puts a node every 4.7 % of t (at T = 10):
/// as fine as the old default of 1000 uniform steps (Δt = 0.01) at t ≈ 0.2, finer below, where
/// t_C lies for small α; the same grid `reproduce collapse-gmm` runs with the exact scheme.
pub const COLLAPSE_STEPS: usize = 200;
pub const COLLAPSE_T_MIN: f64 = 1e-3;

/// The config with the scheme `auto` resolved (any other scheme is returned untouched): `exact`
/// where it applies, else Euler–Maruyama. Where the steps are `auto` (the command line's
/// default when neither the scheme, the steps nor the grid is given), exact runs on
/// [`EXACT_STEPS`] uniform nodes plus what the study measures (speciation: its default branch
/// times; explicit branch, record and entropy times are always nodes), or, for `collapse`, on
/// [`COLLAPSE_STEPS`] geometric ones; steps given as a number, and a grid given, stand.
pub fn resolve(mut cfg: Config, kind: Kind) -> Result<Config> {
    if cfg.scheme != Scheme::Auto {
        return Ok(cfg);
    }
    let built = build::build(&cfg)?;
    if !exact_applies(&cfg, &built) {
        // `--steps auto` then chooses Euler–Maruyama's steps for its bias.
        cfg.scheme = Scheme::EulerMaruyama;
        return Ok(cfg);
    }
    cfg.scheme = Scheme::Exact;
    if cfg.steps != Steps::Auto {
        return Ok(cfg);
    }
    match kind {
        Kind::Collapse => {
            cfg.steps = Steps::Count(COLLAPSE_STEPS);
            if cfg.grid == Spacing::Uniform {
                cfg.grid = Spacing::Geometric {
                    t_min: COLLAPSE_T_MIN,
                };
            }
        }
        _ => {
            cfg.steps = Steps::Count(EXACT_STEPS);
            if kind == Kind::Speciation
                && cfg.grid == Spacing::Uniform
                && cfg.branch_times.is_none()
                && cfg.train_file.is_none()
            {
                cfg.grid = Spacing::Nodes(speciation_nodes(&cfg, &built)?);
            }
        }
    }
    Ok(cfg)
}

/// Whether the exact transition applies: the target has one shared covariance (every mixture
/// and training set here) and the process bridges (a schedule's propagators are inverted), i.e.
/// its plan builds on a one-step grid.
fn exact_applies(cfg: &Config, built: &Built) -> bool {
    Grid::new(cfg.t_max, 1)
        .and_then(|g| Plan::new(&built.mixture_model(), g, Scheme::Exact, cfg.start))
        .is_ok()
}

/// The uniform nodes of [`EXACT_STEPS`] steps and speciation's default branch times (so that
/// they are measured where they are, not at the nearest of 20 nodes).
fn speciation_nodes(cfg: &Config, built: &Built) -> Result<Vec<f64>> {
    let theory = crate::theory::theory(&built.process, &built.mixture, None, cfg.t_max, 0.0);
    let per_mode = cfg.coupling.as_ref().filter(|_| cfg.mode_labels());
    let mode_times: Vec<Option<f64>> = match per_mode {
        Some(c) => crate::theory::modes::mode_theory(
            &built.process,
            &built.mixture,
            c,
            cfg.mode_labels(),
            cfg.n_train,
            cfg.t_max,
        )?
        .iter()
        .map(|m| m.t_s)
        .collect(),
        None => vec![],
    };
    let branch = super::speciation::default_branch_times(theory.t_s, &mode_times, cfg.t_max);
    let n = EXACT_STEPS;
    let mut nodes: Vec<f64> = (1..n)
        .map(|k| cfg.t_max * (n - k) as f64 / n as f64)
        .chain(branch.into_iter().filter(|t| *t > 0.0 && *t < cfg.t_max))
        .collect();
    nodes.sort_by(|a, b| b.total_cmp(a));
    nodes.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * cfg.t_max);
    Ok(nodes)
}
