//! The speciation summary: its keys (summary.json) and its table.

use serde::Serialize;

use super::phi::PhiPoint;
use crate::report::{format_table, or_dash as opt};
use crate::study::modes::ModePhi;
use crate::study::pm;
use crate::theory::{self, Theory};

#[derive(Serialize)]
pub struct Speciation {
    pub t_s_theory: Option<f64>,
    /// Where φ crosses F(1): measured only for two symmetric classes, where that crossing is
    /// the speciation time; null otherwise (`t_s_measured_note` says why).
    pub t_s_measured: Option<f64>,
    /// Its error: φ's noise at the bracketing branch times and the interpolation across the
    /// bracket, in quadrature ([`crate::measure::cloning::crossing_estimate`]).
    pub t_s_measured_stderr: Option<f64>,
    /// The interpolation's part of `t_s_measured_stderr`.
    pub t_s_measured_interpolation: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_s_measured_note: Option<String>,
    /// F(1), the level φ crosses at t_S.
    pub f_at_speciation: f64,
    pub pairs: u64,
    /// Particle-steps the clone pairs ran (each pair's trunk to its last branch point and two
    /// clones from each branch point to t = 0, on the study's grid), all rounds together.
    pub pair_steps: u64,
    /// With `--branch-times auto`: its rounds and why it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refinement: Option<Refinement>,
    pub phi: Vec<PhiPoint>,
    /// With --coupling: φ per mode (clone pairs that agree on the mode's label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<ModePhi>>,
    /// t_S(common) − t_S(difference), theory and measured: positive when the common mode
    /// resolves first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_gap_theory: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_gap_measured: Option<f64>,
    /// The two per-mode t_S errors in quadrature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_gap_measured_stderr: Option<f64>,
    pub theory: Theory,
    /// With --train-file: the theory of its points; φ is then the class-level φ of the empirical
    /// target (both clones end on training points of the same class), `t_s_theory` the
    /// between-class criterion of the labelled data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<theory::data::DataTheory>,
    /// With --train-file: φ by training point (both clones end on the same point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phi_same_point: Option<Vec<PhiPoint>>,
}

/// How `--branch-times auto` went: each round's times and the t_S measured with the rounds so
/// far, and whether the last bracket met its goal.
#[derive(Clone, Debug, Serialize)]
pub struct Refinement {
    pub rounds: Vec<RefinementRound>,
    /// The crossing lies between the last round's two times and its interpolation error is at
    /// most half its statistical error; false: the round budget ran out first (or no crossing).
    pub converged: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefinementRound {
    pub times: Vec<f64>,
    pub pairs: u64,
    pub pair_steps: u64,
    /// t_S from this and the earlier rounds: value, total error, its statistical and
    /// interpolation parts.
    pub t_s: Option<f64>,
    pub t_s_stderr: Option<f64>,
    pub t_s_statistical: Option<f64>,
    pub t_s_interpolation: Option<f64>,
}

/// The human summary.
pub(super) fn table(r: &Speciation) -> String {
    let mut s = String::from(if r.data.is_some() {
        "     t   class φ ± s.e.    φ posterior   F(s(t)) theory\n"
    } else {
        "     t   φ clones ± s.e.   φ posterior   F(s(t)) theory\n"
    });
    for p in &r.phi {
        s += &format!(
            "{:>6.3}   {:>15}      {:>6}        {}\n",
            p.t,
            pm(p.phi, p.stderr),
            opt(p.phi_posterior),
            opt(p.phi_theory)
        );
    }
    for m in r.modes.iter().flatten() {
        s += &format!(
            "\n{} mode\n     t   φ clones ± s.e.   F(s(t)) theory\n",
            m.name
        );
        for p in &m.phi {
            s += &format!(
                "{:>6.3}   {:>15}      {}\n",
                p.t,
                pm(p.phi, p.stderr),
                opt(p.phi_theory)
            );
        }
    }
    s += "\n";
    let mut rows = vec![
        ("t_S theory (s(t) = 1)".into(), opt(r.t_s_theory)),
        (
            format!("t_S measured (φ = {:.4})", r.f_at_speciation),
            pm(r.t_s_measured, r.t_s_measured_stderr)
                + &r.t_s_measured_interpolation
                    .map_or(String::new(), |i| format!(" (interpolation {i:.4})")),
        ),
        ("clone pairs per time".into(), r.pairs.to_string()),
        (
            "spectral gap / bound".into(),
            format!("{:.4} / {:.4}", r.theory.spectral_gap, r.theory.gap_bound),
        ),
    ];
    for m in r.modes.iter().flatten() {
        rows.push((
            format!("t_S {} mode: theory, measured", m.name),
            format!(
                "{}, {}",
                opt(m.t_s_theory),
                pm(m.t_s_measured, m.t_s_measured_stderr)
            ),
        ));
    }
    if let Some(d) = &r.data {
        rows[0].0 = "t_S theory (between-class, labels)".into();
        rows[1].0 = format!("t_S measured (class φ = {:.4})", r.f_at_speciation);
        rows.insert(
            1,
            (
                "  ½ ln Λ of the data".into(),
                format!("{:.4}", d.half_ln_lambda),
            ),
        );
        rows.insert(
            2,
            (
                "  top-eigenvalue criterion (this U)".into(),
                opt(d.t_s_top_eigenvalue),
            ),
        );
        if d.t_s_splits.len() > 1 {
            let splits: Vec<String> = d.t_s_splits.iter().map(|&t| opt(t)).collect();
            rows.insert(3, ("  split times".into(), splits.join(", ")));
        }
        rows.push(("t_C theory (REM, sample covariance)".into(), opt(d.t_c)));
    }
    if r.modes.is_some() {
        rows.push((
            "synchronization gap: theory, measured".into(),
            format!(
                "{}, {}",
                opt(r.sync_gap_theory),
                pm(r.sync_gap_measured, r.sync_gap_measured_stderr)
            ),
        ));
    }
    s += &format_table(&rows);
    if let Some(note) = &r.t_s_measured_note {
        s += &format!("\n{note}");
    }
    s
}
