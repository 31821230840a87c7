//! Speciation on the configured mixture: φ over its classes beside F(s(t)), a measured t_S for
//! two symmetric classes, and with coupled modalities (a label per mode) φ and t_S per mode.

use super::Setup;
use super::phi::PhiPoint;
use super::summary::Speciation;
use crate::measure::cloning::{Branch, Crossing, crossing_parts};
use crate::study::Inputs;
use crate::study::modes::ModePhi;
use crate::theory::{self, cloning_probability, f_at_speciation, snr};

/// The summary of the mixture's clone pairs; `mode_times` are the modes' theoretical t_S when
/// each mode carries a label (empty otherwise).
pub(super) fn mixture_summary(
    inputs: &Inputs,
    s: &Setup,
    branches: Vec<Branch>,
    mode_times: &[Option<f64>],
) -> Speciation {
    let theory = s.theory.clone();
    let built = &s.built;
    let two_class = theory::symmetric_two_class(&built.mixture).cloned();
    let level = f_at_speciation();
    let phi: Vec<PhiPoint> = branches
        .iter()
        .map(|b| {
            let th = two_class
                .as_ref()
                .map(|m| cloning_probability(snr(&built.process, m, &built.mixture.cov, b.t)));
            PhiPoint::new(b, th)
        })
        .collect();
    let per_mode = inputs.cfg.mode_labels();
    let modes = inputs.cfg.coupling.as_ref().filter(|_| per_mode).map(|c| {
        c.modes()
            .iter()
            .zip(mode_times)
            .map(|(mode, &t_s)| crate::study::modes::mode_phi(built, mode, t_s, &branches))
            .collect::<Vec<_>>()
    });
    let gap = |f: fn(&ModePhi) -> Option<f64>| {
        let m = modes.as_ref()?;
        Some(f(&m[0])? - f(&m[1])?)
    };
    let (t_s_measured, t_s_measured_note) = match &two_class {
        Some(_) => (measured_crossing(s, &branches), None),
        None => (
            None,
            Some(format!(
                "no measured t_S: φ crosses F(1) = {level:.4} at t_S only for two classes \
                 of equal weight ±m, and this target has {} classes{}",
                built.mixture.weights.len(),
                if built.mixture.weights.len() == 2 {
                    " of unequal weight or not symmetric"
                } else {
                    ""
                }
            )),
        ),
    };
    Speciation {
        t_s_theory: theory.t_s,
        t_s_measured: t_s_measured.map(|c| c.t),
        t_s_measured_stderr: t_s_measured.map(|c| c.error()),
        t_s_measured_interpolation: t_s_measured.map(|c| c.interpolation),
        t_s_measured_note,
        f_at_speciation: level,
        pairs: branches.first().map_or(0, |b| b.pairs),
        pair_steps: 0, // (the study fills it in)
        refinement: None,
        phi,
        sync_gap_theory: gap(|m| m.t_s_theory),
        sync_gap_measured: gap(|m| m.t_s_measured),
        sync_gap_measured_stderr: modes
            .as_ref()
            .and_then(|m| Some(m[0].t_s_measured_stderr?.hypot(m[1].t_s_measured_stderr?))),
        modes,
        theory,
        data: None,
        phi_same_point: None,
    }
}

/// Where φ crosses F(1), interpolated with the theory's φ as its shape: for two symmetric
/// classes, where that crossing is t_S; None otherwise.
pub(super) fn measured_crossing(s: &Setup, branches: &[Branch]) -> Option<Crossing> {
    let built = &s.built;
    let m = theory::symmetric_two_class(&built.mixture)?;
    let (p, c) = (&built.process, &built.mixture.cov);
    let shape = |t: f64| cloning_probability(snr(p, m, c, t));
    crossing_parts(branches, f_at_speciation(), Some(&shape))
}
