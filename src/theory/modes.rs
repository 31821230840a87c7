//! The theory of two coupled modalities read on each mode (common and difference): rate, t_S
//! (or, with one shared label, the marginal decodability time) and t_C per mode.

use anyhow::Result;
use serde::Serialize;

use crate::linalg::Linear;
use crate::model::coupling::{Coupling, Mode, mode_process, project};
use crate::model::{Mixture, Process};

/// One mode of two coupled modalities.
#[derive(Clone, Debug, Serialize)]
pub struct ModeTheory {
    pub name: &'static str,
    /// K's eigenvalue κ times the mean rate Tr(U_d)/d: how fast the mode relaxes; under a
    /// schedule, the rate in force at the mode's `t_decodable`.
    pub rate: f64,
    /// The mode's speciation time, where its own label commits: `t_decodable` when the modes
    /// carry labels of their own (per-mode pairing, or a mixture file's classes seen on each
    /// mode); null with one shared label, which commits once, at the joint t_S (s_c + s_d = 1),
    /// so no per-mode commitment exists to observe.
    pub t_s: Option<f64>,
    /// The mode's marginal decodability time: s_k(t) = 1 for the class deviations' projection
    /// onto the mode, where the mode's marginal alone becomes bimodal.
    pub t_decodable: Option<f64>,
    /// When N training points memorise along this mode alone (the REM on its d directions).
    pub t_c: Option<f64>,
}

/// The per-mode speciation and collapse times (`mode_labels`: whether the modes carry labels of
/// their own: per-mode pairing, or a paired mixture file). Symmetric couplings and C = σ²I act
/// within each mode, so a mode's s(t) is the joint between-class SNR of the class deviations projected onto
/// it (exact under a schedule too: the process evaluates E(t) and Γ(t) in closed form), and its
/// collapse that of the mode's own d-dimensional process (the joint one restricted to the mode).
pub fn mode_theory(
    p: &Process,
    mixture: &Mixture,
    coupling: &Coupling,
    mode_labels: bool,
    n: usize,
    t_max: f64,
) -> Result<Vec<ModeTheory>> {
    let c = &mixture.cov;
    let d = p.dim() / 2;
    let deviations = super::between_class_deviations(mixture);
    coupling
        .modes()
        .iter()
        .map(|mode| {
            let projected: Vec<_> = deviations.iter().map(|dev| project(mode, dev)).collect();
            let alone = mode_process(p, mode)?;
            let c_d = Linear::Scalar(c.diagonal()[0], d);
            let t_decodable = super::t_speciation_between(p, &projected, c, t_max);
            // p.u holds K at the final γ; a schedule's mode runs at κ(γ(t)) at time t.
            let rate = match (coupling.schedule(), t_decodable) {
                (Some(s), Some(t)) => {
                    mode_rate(p, mode) * mode.kappa(s.at(t)) / mode.kappa(s.last())
                }
                _ => mode_rate(p, mode),
            };
            Ok(ModeTheory {
                name: mode.name,
                rate,
                t_s: mode_labels.then_some(t_decodable).flatten(),
                t_decodable,
                t_c: alone.and_then(|alone| super::t_collapse(&alone, &c_d, n, t_max)),
            })
        })
        .collect()
}

/// κ·Tr(U_d)/d: the mean rate of U restricted to the mode (its half of the mode frame).
fn mode_rate(p: &Process, mode: &Mode) -> f64 {
    let d = p.dim() / 2;
    p.u.block(mode.half * d, d).diagonal().sum() / d as f64
}
