//! Speciation on labelled training points (`--train-file` with `--train-labels`): the empirical
//! target's set-up with the data's own theory, and the class-level φ beside it.

use anyhow::Result;

use super::Setup;
use super::phi::PhiPoint;
use super::summary::Speciation;
use crate::config::build::Built;
use crate::measure::cloning::{Branch, Crossing, crossing_parts};
use crate::study::{Inputs, Session};
use crate::theory::{self, Theory, cloning_probability, f_at_speciation};

/// Labelled training points: the data's theory, the points as a mixture of their classes, and
/// each point's class.
pub struct Labelled {
    pub data: theory::data::DataTheory,
    pub mixture: crate::model::Mixture,
    pub classes: Vec<u32>,
}

/// The empirical target of labelled training points: the model with its plan, the theory of the
/// labelled data as a mixture (t_C on the sample covariance), and the labelled points.
pub(super) struct DataSetup {
    pub built: Built,
    pub plan: crate::plan::Plan,
    pub theory: Theory,
    pub labelled: Labelled,
    pub model: crate::model::Model,
}

pub(super) fn data_setup(inputs: &Inputs, session: &mut Session) -> Result<DataSetup> {
    let cfg = &inputs.cfg;
    let built = crate::config::build::build(cfg)?;
    let points = crate::config::build::training_set(cfg, &built)?;
    let Some((data, Some(labels))) = inputs.data_theory(&built, &points)? else {
        anyhow::bail!(
            "train-file: speciation on training points measures class-level cloning, which \
             needs each point's class: give --train-labels FILE (N whole numbers)"
        );
    };
    let labelled = theory::data::labelled_mixture(&points.points, &labels)?;
    let mut th = theory::theory(
        &built.process,
        &labelled,
        Some(points.points.nrows()),
        cfg.t_max,
        crate::study::explicit_dt(cfg, &inputs.grid),
    );
    th.t_c = data.t_c;
    th.warnings
        .retain(|w| !w.starts_with("speciation: the target is not"));
    th.warnings.push(format!(
        "speciation: on the train-file's {} points in {} classes; t_S is the between-class \
         criterion of the labelled data (class fractions, class means, pooled within-class \
         covariance), t_C the REM criterion on its sample covariance; ½ ln Λ = {:.4}",
        data.n,
        labels.classes(),
        data.half_ln_lambda
    ));
    session.warn_all(&th.warnings);
    let model = crate::model::Model {
        process: built.process.clone(),
        target: crate::model::Target::Empirical(points),
    };
    let plan = crate::plan::Plan::new(&model, inputs.grid.clone(), cfg.scheme, cfg.start)?;
    Ok(DataSetup {
        built,
        plan,
        theory: th,
        labelled: Labelled {
            data,
            mixture: labelled,
            classes: labels.class,
        },
        model,
    })
}

/// The class-level cloning of labelled training points beside the data's theory. With two
/// classes φ crosses F(1) at the between-class t_S (the labelled data's s(t) = 1), and F(s(t))
/// is its theory curve; with more classes F(1) marks only the two-class case, so no crossing is
/// measured.
pub(super) fn data_summary(s: &Setup, l: &Labelled, branches: Vec<Branch>) -> Speciation {
    let (data, labelled) = (&l.data, &l.mixture);
    let level = f_at_speciation();
    let by_class: Vec<Branch> = branches.iter().filter_map(Branch::by_class).collect();
    let dev = theory::between_class_deviations(labelled);
    let two = labelled.weights.len() == 2;
    let phi: Vec<PhiPoint> = by_class
        .iter()
        .map(|b| {
            let th = two.then(|| {
                cloning_probability(theory::between_snr(
                    &s.built.process,
                    &dev,
                    &labelled.cov,
                    b.t,
                ))
            });
            PhiPoint::new(b, th)
        })
        .map(|p| PhiPoint {
            // Σ r² is the purity over training points, not classes.
            phi_posterior: None,
            phi_posterior_stderr: None,
            ..p
        })
        .collect();
    let crossing = measured_crossing(s, l, &branches);
    Speciation {
        t_s_theory: data.t_s_between,
        t_s_measured: crossing.map(|c| c.t),
        t_s_measured_stderr: crossing.map(|c| c.error()),
        t_s_measured_interpolation: crossing.map(|c| c.interpolation),
        t_s_measured_note: (!two).then(|| {
            format!(
                "no measured t_S: φ crosses F(1) = {level:.4} at t_S only for two classes, and \
                 the labels name {}; the split times are in data.t_s_splits",
                labelled.weights.len()
            )
        }),
        f_at_speciation: level,
        pairs: branches.first().map_or(0, |b| b.pairs),
        pair_steps: 0, // (the study fills it in)
        refinement: None,
        phi,
        modes: None,
        sync_gap_theory: None,
        sync_gap_measured: None,
        sync_gap_measured_stderr: None,
        theory: s.theory.clone(),
        data: Some(data.clone()),
        phi_same_point: Some(branches.iter().map(|b| PhiPoint::new(b, None)).collect()),
    }
}

/// Where the class-level φ crosses F(1), interpolated with the data's between-class φ as its
/// shape: for two classes, where that crossing is the between-class t_S; None otherwise.
pub(super) fn measured_crossing(s: &Setup, l: &Labelled, branches: &[Branch]) -> Option<Crossing> {
    let labelled = &l.mixture;
    if labelled.weights.len() != 2 {
        return None;
    }
    let by_class: Vec<Branch> = branches.iter().filter_map(Branch::by_class).collect();
    let dev = theory::between_class_deviations(labelled);
    let shape = |t: f64| {
        cloning_probability(theory::between_snr(
            &s.built.process,
            &dev,
            &labelled.cov,
            t,
        ))
    };
    crossing_parts(&by_class, f_at_speciation(), Some(&shape))
}
