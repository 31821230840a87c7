//! `regimes speciation`: the cloning experiment on the mixture target, beside the theory.

use super::keys::Read;
use crate::config::keys::Section;
use anyhow::Result;
use serde::Serialize;

pub use super::modes::{ModePhi, ModePoint};
use super::pm;
use super::{Inputs, Kind, Parts, Session, Study};
use crate::config::build::Built;
use crate::engine::Engine;
use crate::measure::cloning::{Branch, crossing_parts};
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

/// The empirical target of labelled training points: the model with its plan, the theory of the
/// labelled data as a mixture (t_C on the sample covariance), and each point's class.
struct DataSetup {
    built: Built,
    plan: crate::plan::Plan,
    theory: Theory,
    data: theory::data::DataTheory,
    labelled: crate::model::Mixture,
    classes: Vec<u32>,
    model: crate::model::Model,
}

fn data_setup(inputs: &Inputs, session: &mut Session) -> Result<DataSetup> {
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
        super::explicit_dt(cfg, &inputs.grid),
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
        data,
        labelled,
        classes: labels.class,
        model,
    })
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
    /// With --train-file: the data's theory, the labelled data as a mixture, the points' classes.
    data: Option<(theory::data::DataTheory, crate::model::Mixture, Vec<u32>)>,
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
    const READS: &'static [Read] = &[
        Read::All(Section::Model),
        Read::Key("train-file"),
        Read::Key("train-labels"),
        Read::Key("seed"),
        Read::Key("steps"),
        Read::Key("t-max"),
        Read::Key("scheme"),
        Read::Key("grid"),
        Read::Key("start"),
        Read::Key("pairs"),
        Read::Key("branch-times"),
        Read::All(Section::Engine),
        Read::All(Section::Figure),
    ];
    type Setup = Setup;
    type Output = Speciation;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        let (built, plan, theory, data, model) = match &cfg.train_file {
            Some(_) => {
                let d = data_setup(inputs, session)?;
                let data = (d.data, d.labelled, d.classes);
                (d.built, d.plan, d.theory, Some(data), d.model)
            }
            None => {
                let (built, plan, theory) = inputs.mixture_setup(session)?;
                let model = built.mixture_model();
                (built, plan, theory, None, model)
            }
        };
        let mode_times = mode_speciation_times(cfg, &built)?;
        let (times, plan) = match &cfg.branch_times {
            // The config's times are nodes already (Inputs::new).
            Some(times) => (times.clone(), plan),
            None => {
                let times = default_branch_times(theory.t_s, &mode_times, cfg.t_max);
                // Measured at, not at the nearest node: on a coarse grid that would be a
                // crossing interpolated across whole steps.
                let grid = plan.grid.with_times(&times)?;
                let plan = if grid.steps == plan.grid.steps {
                    plan
                } else {
                    crate::plan::Plan::new(&model, grid, cfg.scheme, cfg.start)?
                };
                (times, plan)
            }
        };
        let steps = branch_points(&plan.grid, &times);
        Ok(Setup {
            built,
            plan,
            theory,
            steps,
            pairs: inputs.pairs(20_000),
            mode_times,
            data,
        })
    }

    fn measure<E: Engine>(
        inputs: &Inputs,
        s: &Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts> {
        let classes = s.data.as_ref().map(|d| &d.2[..]);
        let cloning =
            session.clone_pairs(inputs, 0, (engine, &s.plan), (s.pairs, &s.steps), classes)?;
        Ok(Parts {
            clones: Some(cloning.state),
            ..Parts::default()
        })
    }

    /// The clone experiment's result from its folded pairs (its own, or merged from slices).
    fn summarise(inputs: &Inputs, s: &Setup, parts: &Parts) -> Result<Speciation> {
        let all = s.branches(parts.clone_pairs()?.clone());
        if let Some((data, labelled, _)) = &s.data {
            return Ok(data_summary(s, data, labelled, all));
        }
        let branches = all;
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
                .zip(&s.mode_times)
                .map(|(mode, &t_s)| super::modes::mode_phi(built, mode, t_s, &branches))
                .collect::<Vec<_>>()
        });
        let gap = |f: fn(&ModePhi) -> Option<f64>| {
            let m = modes.as_ref()?;
            Some(f(&m[0])? - f(&m[1])?)
        };
        let (t_s_measured, t_s_measured_note) = match &two_class {
            Some(m) => {
                let (p, c) = (&built.process, &built.mixture.cov);
                let shape = |t: f64| cloning_probability(snr(p, m, c, t));
                (crossing_parts(&branches, level, Some(&shape)), None)
            }
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
            t_s_measured: t_s_measured.map(|c| c.t),
            t_s_measured_stderr: t_s_measured.map(|c| c.error()),
            t_s_measured_interpolation: t_s_measured.map(|c| c.interpolation),
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
            data: None,
            phi_same_point: None,
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
        (range.end - range.start) * pair_steps(&s.steps, s.plan.grid.steps)
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

/// The class-level cloning of labelled training points beside the data's theory. With two
/// classes φ crosses F(1) at the between-class t_S (the labelled data's s(t) = 1), and F(s(t))
/// is its theory curve; with more classes F(1) marks only the two-class case, so no crossing is
/// measured.
fn data_summary(
    s: &Setup,
    data: &theory::data::DataTheory,
    labelled: &crate::model::Mixture,
    branches: Vec<Branch>,
) -> Speciation {
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
    let shape = |t: f64| {
        cloning_probability(theory::between_snr(
            &s.built.process,
            &dev,
            &labelled.cov,
            t,
        ))
    };
    let crossing = two
        .then(|| crossing_parts(&by_class, level, Some(&shape)))
        .flatten();
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

/// Grid indices of the branch times (nearest node; the last step's end, t = 0, excluded),
/// ascending and distinct.
fn branch_points(grid: &crate::plan::Grid, times: &[f64]) -> Vec<usize> {
    let mut j: Vec<usize> = times
        .iter()
        .map(|&t| grid.index_of(t).min(grid.steps - 1))
        .collect();
    j.sort_unstable();
    j.dedup();
    j
}

/// Particle-steps of one clone pair: its trunk to the last branch point, and two clones from
/// each branch point to the end.
pub fn pair_steps(branch_steps: &[usize], steps: usize) -> u64 {
    let trunk = branch_steps.iter().max().copied().unwrap_or(0);
    (trunk + branch_steps.iter().map(|&j| 2 * (steps - j)).sum::<usize>()) as u64
}

/// Each mode's theoretical t_S where per-mode φ is observable, else none. Per-mode φ is
/// observable only when each mode carries a label: a shared label commits once, at the joint
/// t_S, and a mode-regrouped φ is the joint φ.
pub(super) fn mode_speciation_times(
    cfg: &crate::config::Config,
    built: &crate::config::build::Built,
) -> Result<Vec<Option<f64>>> {
    let Some(c) = cfg.coupling.as_ref().filter(|_| cfg.mode_labels()) else {
        return Ok(vec![]);
    };
    Ok(theory::modes::mode_theory(
        &built.process,
        &built.mixture,
        c,
        cfg.mode_labels(),
        cfg.n_train_or_default(),
        cfg.t_max,
    )?
    .iter()
    .map(|m| m.t_s)
    .collect())
}

/// Branch times bracketing t_S (and each mode's t_S for coupled modalities), or spread over the
/// horizon when there is no theory.
pub(crate) fn default_branch_times(
    t_s: Option<f64>,
    mode_t_s: &[Option<f64>],
    t_max: f64,
) -> Vec<f64> {
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
    // A measured t_S is where φ crosses F(1): a dot there with its ±1 s.e. band in t, drawn
    // under the theory's dashed marker so that both show.
    let f1 = crate::theory::f_at_speciation();
    let band = |label: String, t: f64, e: Option<f64>, color: usize| Series {
        label,
        points: vec![(t, f1)],
        error: Some(vec![e.unwrap_or(f64::NAN)]),
        style: Style::XBand,
        color: Some(color),
    };
    if let Some(t) = r.t_s_measured {
        series.push(band(
            "t_S measured (φ = F(1), ±1 s.e.)".into(),
            t,
            r.t_s_measured_stderr,
            6,
        ));
    }
    for (j, m) in r.modes.iter().flatten().enumerate() {
        if let Some(t) = m.t_s_measured {
            series.push(band(
                format!("t_S {} measured (±1 s.e.)", m.name),
                t,
                m.t_s_measured_stderr,
                3 + j,
            ));
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
