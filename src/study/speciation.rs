//! `regimes speciation`: the cloning experiment on the mixture target, beside the theory.

use anyhow::Result;
use serde::Serialize;

pub use super::modes::{ModePhi, ModePoint};
use super::pm;
use super::{Inputs, Kind, Parts, Session, Study};
use crate::config::build::Built;
use crate::engine::Engine;
use crate::measure::cloning::{Branch, crossing_with_error};
use crate::report::{Figure, OutDir, Series, Style};
use crate::report::{format_table, or_dash as opt};
use crate::theory::{self, Theory, cloning_probability, f_at_speciation, snr};

/// φ at one branch time, measured by clones and by the posterior purity, beside F(s(t)).
/// Statistics over no pairs are null.
#[derive(Clone, Debug, Serialize)]
pub struct PhiPoint {
    pub t: f64,
    /// Fraction of clone pairs that agree.
    pub phi: Option<f64>,
    /// Half-width of φ's Wilson score interval at one standard deviation.
    pub stderr: Option<f64>,
    /// Exact-score estimate mean Σ r² at the branch point (no clones needed).
    pub phi_posterior: Option<f64>,
    pub phi_posterior_stderr: Option<f64>,
    /// F(s(t)) for two symmetric classes, else null.
    pub phi_theory: Option<f64>,
    pub pairs: u64,
}

impl PhiPoint {
    pub fn new(b: &Branch, theory: Option<f64>) -> Self {
        let posterior = b.purity.count > 0;
        PhiPoint {
            t: b.t,
            phi: b.measured().map(|m| m.0),
            stderr: b.measured().map(|m| m.1),
            phi_posterior: posterior.then(|| b.purity.mean[0]),
            phi_posterior_stderr: (b.purity.count > 1).then(|| b.purity.stderr(0)),
            phi_theory: theory,
            pairs: b.pairs,
        }
    }
}

/// The measured points of a series of (t, value, its standard error), for a plot: points without
/// a value are left out.
pub fn measured_points(
    points: impl Iterator<Item = (f64, Option<f64>, Option<f64>)>,
) -> (Vec<(f64, f64)>, Vec<f64>) {
    points
        .filter_map(|(t, v, e)| Some(((t, v?), e.unwrap_or(0.0))))
        .unzip()
}

/// Writes φ points as CSV, with a `phi_theory` column when the quantity has a theory (`nan`
/// where a point has none).
pub fn write_phi_csv(out: &OutDir, name: &str, points: &[PhiPoint], theory: bool) -> Result<()> {
    let mut header = vec![
        "t",
        "phi",
        "stderr",
        "phi_posterior",
        "phi_posterior_stderr",
    ];
    if theory {
        header.push("phi_theory");
    }
    out.write_csv(
        name,
        &header,
        points.iter().map(|p| {
            let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
            let mut row = vec![
                p.t,
                v(p.phi),
                v(p.stderr),
                v(p.phi_posterior),
                v(p.phi_posterior_stderr),
            ];
            if theory {
                row.push(v(p.phi_theory));
            }
            row
        }),
    )?;
    Ok(())
}

#[derive(Serialize)]
pub struct Speciation {
    pub t_s_theory: Option<f64>,
    /// Where φ crosses F(1): measured only for two symmetric classes, where that crossing is
    /// the speciation time; null otherwise (`t_s_measured_note` says why).
    pub t_s_measured: Option<f64>,
    /// Its standard error: the larger s.e. of φ at the bracketing branch times over φ's slope.
    pub t_s_measured_stderr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_s_measured_note: Option<String>,
    /// F(1), the level φ crosses at t_S.
    pub f_at_speciation: f64,
    pub pairs: u64,
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
}

/// What the clone experiment needs besides its engine.
pub struct Setup {
    built: Built,
    plan: crate::plan::Plan,
    theory: Theory,
    /// Grid indices of the branch points.
    pub steps: Vec<usize>,
    /// The study's clone pairs (all shards).
    pub pairs: u64,
    /// Each mode's theoretical t_S (coupled modalities).
    mode_times: Vec<Option<f64>>,
}

impl Setup {
    /// The branches of a folded clone experiment (merged shards).
    pub fn branches(&self, state: crate::measure::cloning::CloneState) -> Vec<Branch> {
        crate::measure::cloning::Cloning::from_state(&self.plan, &self.steps, state).branches
    }
}

/// `regimes speciation`.
pub struct SpeciationStudy;

impl Study for SpeciationStudy {
    const KIND: Kind = Kind::Speciation;
    const IGNORES: &'static [&'static str] = &[
        "particles",
        "n-train",
        "train-file",
        "entropy-times",
        "entropy-samples",
        "record-times",
        "save-samples",
    ];
    type Setup = Setup;
    type Output = Speciation;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        let (built, plan, theory) = inputs.mixture_setup(session)?;
        let mode_times = match &cfg.coupling {
            Some(c) => theory::modes::mode_theory(
                &built.process,
                &built.mixture,
                c,
                cfg.n_train,
                cfg.t_max,
            )?
            .iter()
            .map(|m| m.t_s)
            .collect(),
            None => vec![],
        };
        let times = cfg
            .branch_times
            .clone()
            .unwrap_or_else(|| default_branch_times(theory.t_s, &mode_times, cfg.t_max));
        let steps = inputs.grid_points(&times, true);
        Ok(Setup {
            built,
            plan,
            theory,
            steps,
            pairs: inputs.pairs(20_000),
            mode_times,
        })
    }

    fn measure<E: Engine>(
        inputs: &Inputs,
        s: &Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts> {
        let cloning = session.clone_pairs(inputs, 0, (engine, &s.plan), (s.pairs, &s.steps))?;
        Ok(Parts {
            clones: Some(cloning.state),
            ..Parts::default()
        })
    }

    /// The clone experiment's result from its folded pairs (its own, or merged from slices).
    fn summarise(inputs: &Inputs, s: &Setup, parts: &Parts) -> Result<Speciation> {
        let branches = s.branches(parts.clone_pairs()?.clone());
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
        let modes = inputs.cfg.coupling.as_ref().map(|c| {
            c.modes()
                .iter()
                .zip(&s.mode_times)
                .map(|(mode, &t_s)| super::modes::mode_phi(built, mode, t_s, &branches))
                .collect::<Vec<_>>()
        });
        let gap = |f: fn(&ModePhi) -> Option<f64>| {
            let m = modes.as_ref()?;
            Some(f(&m[0])? - f(&m[1])?)
        };
        let (t_s_measured, t_s_measured_note) = match &two_class {
            Some(_) => (crossing_of(&branches, level), None),
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
        Ok(Speciation {
            t_s_theory: theory.t_s,
            t_s_measured: t_s_measured.map(|c| c.0),
            t_s_measured_stderr: t_s_measured.map(|c| c.1),
            t_s_measured_note,
            f_at_speciation: level,
            pairs: branches.first().map_or(0, |b| b.pairs),
            phi,
            sync_gap_theory: gap(|m| m.t_s_theory),
            sync_gap_measured: gap(|m| m.t_s_measured),
            sync_gap_measured_stderr: modes
                .as_ref()
                .and_then(|m| Some(m[0].t_s_measured_stderr?.hypot(m[1].t_s_measured_stderr?))),
            modes,
            theory,
        })
    }

    fn write(
        inputs: &Inputs,
        s: &Setup,
        r: &Speciation,
        _: &Parts,
        out: &OutDir,
        partial: Option<&str>,
    ) -> Result<()> {
        write_outputs(inputs, s, out, r, partial)
    }

    fn work(inputs: &Inputs, s: &Setup) -> u64 {
        let range = inputs.range(s.pairs);
        (range.end - range.start) * pair_steps(&s.steps, inputs.grid.steps)
    }

    fn done(inputs: &Inputs, s: &Setup, parts: &Parts) -> f64 {
        let range = inputs.range(s.pairs);
        let done = parts.clones.as_ref().map_or(0, |c| c.done);
        super::fraction(done, range.end - range.start)
    }

    fn table(r: &Speciation) -> String {
        table(r)
    }
}

/// Particle-steps of one clone pair: its trunk to the last branch point, and two clones from
/// each branch point to the end.
pub fn pair_steps(branch_steps: &[usize], steps: usize) -> u64 {
    let trunk = branch_steps.iter().max().copied().unwrap_or(0);
    (trunk + branch_steps.iter().map(|&j| 2 * (steps - j)).sum::<usize>()) as u64
}

/// Where the measured φ of `branches` crosses `level`, with its standard error.
pub(super) fn crossing_of(branches: &[Branch], level: f64) -> Option<(f64, f64)> {
    let points: Vec<(f64, f64, f64)> = branches
        .iter()
        .filter_map(|b| b.measured().map(|(p, e)| (b.t, p, e)))
        .collect();
    crossing_with_error(&points, level)
}

/// Branch times bracketing t_S (and each mode's t_S for coupled modalities), or spread over the
/// horizon when there is no theory.
fn default_branch_times(t_s: Option<f64>, mode_t_s: &[Option<f64>], t_max: f64) -> Vec<f64> {
    let known: Vec<f64> = t_s
        .iter()
        .chain(mode_t_s.iter().flatten())
        .copied()
        .collect();
    if known.is_empty() {
        return (1..=8).map(|k| t_max * k as f64 / 9.0).collect();
    }
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &t| (l.min(t), h.max(t)));
    if mode_t_s.is_empty() || hi <= lo * 1.05 {
        return [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 2.0]
            .iter()
            .map(|f| f * hi)
            .collect();
    }
    // Several modes: an even spread from below the earliest to past the latest.
    let (a, b) = (0.6 * lo, (1.6 * hi).min(t_max));
    (0..12).map(|k| a + (b - a) * k as f64 / 11.0).collect()
}

fn write_outputs(
    inputs: &Inputs,
    setup: &Setup,
    out: &OutDir,
    r: &Speciation,
    partial: Option<&str>,
) -> Result<()> {
    write_phi_csv(out, "phi.csv", &r.phi, true)?;
    super::theory::write_s_curve(out, &r.theory)?;
    for m in r.modes.iter().flatten() {
        out.write_csv(
            &format!("phi_{}.csv", m.name),
            &["t", "phi", "stderr", "phi_theory"],
            m.phi.iter().map(|p| {
                let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
                vec![p.t, v(p.phi), v(p.stderr), v(p.phi_theory)]
            }),
        )?;
    }
    let (clones, clone_errors) = measured_points(r.phi.iter().map(|p| (p.t, p.phi, p.stderr)));
    let (posterior, _) = measured_points(r.phi.iter().map(|p| (p.t, p.phi_posterior, None)));
    let mut series = vec![
        Series {
            label: "φ from clones (±1 s.e.)".into(),
            points: clones,
            error: Some(clone_errors),
            style: Style::Points,
            color: None,
        },
        Series {
            label: "posterior Σ r² at the branch".into(),
            points: posterior,
            error: None,
            style: Style::Ring,
            color: None,
        },
    ];
    // Theory on a dense grid over the measured times (and a little beyond).
    let built = &setup.built;
    let times: Vec<f64> = r.phi.iter().map(|p| p.t).collect();
    let knots: Vec<f64> = r.t_s_theory.into_iter().collect();
    let grid = super::curve_times(&times, &knots, &built.process);
    if let Some(m) = crate::theory::symmetric_two_class(&built.mixture) {
        let (p, c) = (&built.process, &built.mixture.cov);
        series.push(Series::line(
            "theory F(s(t))",
            grid.iter()
                .map(|&t| {
                    (
                        t,
                        crate::theory::cloning_probability(crate::theory::snr(p, m, c, t)),
                    )
                })
                .collect(),
        ));
    }
    let modes = inputs.cfg.coupling.as_ref().map(|c| c.modes());
    // Each mode's measurement and theory share a colour.
    for (j, (m, mode)) in r
        .modes
        .iter()
        .flatten()
        .zip(modes.iter().flatten())
        .enumerate()
    {
        let (points, errors) = measured_points(m.phi.iter().map(|p| (p.t, p.phi, p.stderr)));
        series.push(Series {
            label: format!("φ on the {} mode (±1 s.e.)", m.name),
            points,
            error: Some(errors),
            style: Style::Points,
            color: Some(3 + j),
        });
        if let Some(curve) = super::modes::mode_phi_curve(built, mode, &grid) {
            series
                .push(Series::line(format!("theory on the {} mode", m.name), curve).colored(3 + j));
        }
    }
    let mut markers = vec![];
    for m in r.modes.iter().flatten() {
        if let Some(t) = m.t_s_theory {
            markers.push((format!("t_S {} theory", m.name), t));
        }
    }
    // With modes, the joint t_S is one of theirs: the modes' markers say it.
    if let (Some(t), None) = (r.t_s_theory, &r.modes) {
        markers.push(("t_S theory".to_string(), t));
    }
    if let Some(t) = r.t_s_measured {
        markers.push(("t_S measured".to_string(), t));
    }
    for m in r.modes.iter().flatten() {
        if let Some(t) = m.t_s_measured {
            markers.push((format!("t_S {} measured", m.name), t));
        }
    }
    super::write_figure(
        inputs,
        out,
        "phi",
        &Figure {
            title: &super::title(
                "Cloning probability φ(t)",
                inputs,
                &format!("{} pairs", r.pairs),
                partial,
            ),
            x_label: "branch time t",
            y_label: "φ",
            series: &series,
            markers: &markers,
        },
    )?;
    Ok(())
}

/// The human summary.
fn table(r: &Speciation) -> String {
    let mut s = String::from("     t   φ clones ± s.e.   φ posterior   F(s(t)) theory\n");
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
            pm(r.t_s_measured, r.t_s_measured_stderr),
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
