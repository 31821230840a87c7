//! Coupled modalities read on each mode (common and difference): the clone pairs of
//! `speciation` regrouped by each mode's label, and the excess entropy of `collapse` on each
//! mode's own process.

use anyhow::Result;
use serde::Serialize;

use super::Session;
use crate::config::Config;
use crate::config::build::Built;
use crate::linalg::Linear;
use crate::measure::cloning::Branch;
use crate::measure::entropy::{EntropyRow, excess_entropy_series};
use crate::model::Empirical;
use crate::model::coupling::{Coupling, Mode, mode_coordinates, mode_process};
use crate::theory::collapse::Rem;
use crate::theory::{self, cloning_probability, f_at_speciation};

/// The cloning experiment read on one mode of coupled modalities.
#[derive(Serialize)]
pub struct ModePhi {
    pub name: &'static str,
    /// s(t) = 1 for the class deviations projected onto the mode.
    pub t_s_theory: Option<f64>,
    /// Where the mode's φ crosses F(1), when its classes are two symmetric groups.
    pub t_s_measured: Option<f64>,
    pub t_s_measured_stderr: Option<f64>,
    /// The mode's label of each class (classes whose means project alike share one).
    pub class_groups: Vec<usize>,
    pub phi: Vec<ModePoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModePoint {
    pub t: f64,
    pub phi: Option<f64>,
    pub stderr: Option<f64>,
    /// F(s(t)) of the mode, when its classes are two symmetric groups (per-mode pairing).
    pub phi_theory: Option<f64>,
}

/// The clone pairs read on one mode: a pair agrees when its two final classes carry the same
/// label on the mode.
pub(super) fn mode_phi(
    built: &Built,
    mode: &Mode,
    t_s: Option<f64>,
    branches: &[Branch],
) -> ModePhi {
    let (groups, symmetric) = mode_groups(built, mode);
    let deviations = mode_deviations(built, mode);
    let mode_branches: Vec<Branch> = branches
        .iter()
        .filter_map(|b| b.regrouped(&groups))
        .collect();
    let crossing = symmetric
        .then(|| crate::measure::cloning::crossing_of(&mode_branches, f_at_speciation()))
        .flatten();
    let phi = mode_branches
        .iter()
        .map(|b| ModePoint {
            t: b.t,
            phi: b.measured().map(|m| m.0),
            stderr: b.measured().map(|m| m.1),
            phi_theory: symmetric.then(|| phi_theory(built, &deviations, b.t)),
        })
        .collect();
    ModePhi {
        name: mode.name,
        t_s_theory: t_s,
        t_s_measured: crossing.map(|c| c.0),
        t_s_measured_stderr: crossing.map(|c| c.1),
        class_groups: groups,
        phi,
    }
}

/// The mode's label of each class, and whether they form two symmetric groups (two labels of
/// equal weight), where F(s) holds.
fn mode_groups(built: &Built, mode: &Mode) -> (Vec<usize>, bool) {
    let mix = &built.mixture;
    let groups = mode.groups(&mix.means);
    let weight = |g: usize| -> f64 {
        groups
            .iter()
            .zip(&mix.weights)
            .filter(|(h, _)| **h == g)
            .map(|(_, w)| w)
            .sum()
    };
    let symmetric = groups.iter().max() == Some(&1) && (weight(0) - weight(1)).abs() < 1e-12;
    (groups, symmetric)
}

/// The class deviations projected onto `mode`.
fn mode_deviations(built: &Built, mode: &Mode) -> Vec<nalgebra::DVector<f64>> {
    theory::between_class_deviations(&built.mixture)
        .iter()
        .map(|d| crate::model::coupling::project(mode, d))
        .collect()
}

/// F(s(t)) of a mode whose classes form two symmetric groups, from its projected deviations.
fn phi_theory(built: &Built, deviations: &[nalgebra::DVector<f64>], t: f64) -> f64 {
    cloning_probability(theory::between_snr(
        &built.process,
        deviations,
        &built.mixture.cov,
        t,
    ))
}

/// The theory of a mode's φ at `times` (a dense grid for its figure), when its classes form
/// two symmetric groups (per-mode pairing); None otherwise.
pub(super) fn mode_phi_curve(built: &Built, mode: &Mode, times: &[f64]) -> Option<Vec<(f64, f64)>> {
    if !mode_groups(built, mode).1 {
        return None;
    }
    let deviations = mode_deviations(built, mode);
    Some(
        times
            .iter()
            .map(|&t| (t, phi_theory(built, &deviations, t)))
            .collect(),
    )
}

/// The excess entropy of one mode: exact samples of the mode's own marginal (a d-dimensional OU
/// process at κ·U_d over the training pairs' mode coordinates), beside the REM of that process.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ModeCollapse {
    pub name: String,
    pub t_c_theory: Option<f64>,
    /// α = ln N / d on the mode's d coordinates.
    pub alpha: f64,
    pub excess_entropy: Vec<EntropyRow>,
}

/// Per-mode excess entropy, where each mode is a process of its own (symmetric constant
/// couplings); None otherwise. Host work like the joint excess entropy, and as deterministic:
/// a merge recomputes it.
pub(super) fn mode_collapse(
    cfg: &Config,
    (built, data): (&Built, &Empirical),
    entropy_times: &[f64],
    coupling: &Coupling,
    session: &mut Session,
) -> Result<Option<Vec<ModeCollapse>>> {
    let n = data.points.nrows();
    let theory = crate::theory::modes::mode_theory(
        &built.process,
        &built.mixture,
        coupling,
        cfg.mode_labels(),
        n,
        cfg.t_max,
    )?;
    let d = built.process.dim() / 2;
    let c = Linear::Scalar(built.mixture.cov.diagonal()[0], d);
    let mut out = vec![];
    for (mode, th) in coupling.modes().iter().zip(theory) {
        let Some(p) = mode_process(&built.process, mode)? else {
            return Ok(None);
        };
        let projected = Empirical {
            points: mode_coordinates(mode, &data.points),
        };
        out.push(ModeCollapse {
            name: mode.name.to_string(),
            t_c_theory: th.t_c,
            alpha: (n as f64).ln() / d as f64,
            excess_entropy: {
                let (rows, stop) = excess_entropy_series(
                    &p,
                    &projected,
                    &Rem::new(&p, &c),
                    entropy_times,
                    cfg.entropy_samples,
                    cfg.seed,
                )?;
                session.stopped(stop);
                rows
            },
        });
    }
    Ok(Some(out))
}
