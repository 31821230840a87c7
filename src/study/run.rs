//! `regimes run`: a general run that streams moments, class fractions and the posterior purity at
//! chosen times and can save the final samples.

use super::keys::Read;
use crate::config::keys::Section;
use anyhow::Result;
use serde::Serialize;

use super::{Inputs, Kind, Parts, Session, Study};
use crate::engine::{Engine, Recorder};
use crate::report::{Figure, OutDir, Series, Style, or_dash as opt};
use crate::stats::PointStats;
use crate::theory::Theory;

/// The statistics at one recorded time; all null when no particle reached it (a run stopped
/// early), variances and standard errors null below two particles.
#[derive(Clone, Debug, Serialize)]
pub struct RecordPoint {
    pub t: f64,
    pub count: u64,
    /// ‖mean of x_t‖ over the particles: ‖E_t E\[x_0\]‖ in theory (about 0 for two classes ±m).
    pub mean_norm: Option<f64>,
    /// Projection on the class direction: mean and variance.
    pub projection_mean: Option<f64>,
    pub projection_var: Option<f64>,
    /// Mean posterior purity Σ r² and its standard error.
    pub purity: Option<f64>,
    pub purity_stderr: Option<f64>,
    /// Fraction of particles per argmax class.
    pub class_fractions: Option<Vec<f64>>,
    /// Per-coordinate mean and variance.
    pub mean: Option<Vec<f64>>,
    pub variance: Option<Vec<f64>>,
}

#[derive(Serialize)]
pub struct Run {
    pub particles: u64,
    pub record: Vec<RecordPoint>,
    /// Final class fractions (per training point on the empirical target); null when no
    /// particle completed.
    pub class_fractions: Option<Vec<f64>>,
    pub theory: Theory,
}

fn point(t: f64, s: &PointStats) -> RecordPoint {
    let n = s.coords.count;
    let total = n as f64;
    let d = s.coords.dim();
    let (some, two) = (n > 0, n > 1);
    RecordPoint {
        t,
        count: n,
        mean_norm: some.then(|| s.coords.mean.iter().map(|m| m * m).sum::<f64>().sqrt()),
        projection_mean: s.projections.mean.first().copied().filter(|_| some),
        projection_var: (two && s.projections.dim() > 0).then(|| s.projections.variance(0)),
        purity: some.then(|| s.purity.mean[0]),
        purity_stderr: two.then(|| s.purity.stderr(0)),
        class_fractions: some.then(|| s.classes.iter().map(|&c| c as f64 / total).collect()),
        mean: some.then(|| s.coords.mean.clone()),
        variance: two.then(|| (0..d).map(|i| s.coords.variance(i)).collect()),
    }
}

/// What the run needs besides its engine: the model, its plan, the theory, the record points.
pub struct Setup {
    built: crate::config::build::Built,
    plan: crate::plan::Plan,
    theory: Theory,
    points: Vec<usize>,
    directions: Vec<f32>,
    /// The study's particles (all shards).
    pub particles: u64,
}

impl Setup {
    /// Dimension of the particles.
    pub fn dim(&self) -> usize {
        self.plan.dim
    }
}

/// `regimes run`.
pub struct RunStudy;

/// The samples of this slice's particles at each record time (`--save-samples` with
/// `--record-times`), by replaying them: a particle's position at a node depends only on the
/// plan, the seed and its id, so a second pass that stops at each record time reads exactly
/// the positions the run passed through (and a resumed run gets them too). It costs one more
/// pass over the trajectories; a stop between two times leaves no snapshots (noted).
fn snapshots<E: Engine>(
    inputs: &Inputs,
    s: &Setup,
    engine: &E,
) -> Result<Vec<(f64, super::parts::Samples)>> {
    let plan = &s.plan;
    let range = inputs.range(s.particles);
    let size = crate::measure::batch_size(engine, plan, inputs.cfg.batch) as u64;
    let mut out: Vec<(f64, super::parts::Samples)> = s
        .points
        .iter()
        .map(|&j| (plan.grid.node(j), super::parts::Samples::default()))
        .collect();
    let mut next = range.start;
    while next < range.end {
        let end = range.end.min(next + size);
        let ids: Vec<u64> = (next..end).map(|i| crate::rng::rng_id(i, 0)).collect();
        let mut batch = engine.start(plan, inputs.cfg.seed, &ids)?;
        let mut at = 0;
        for (k, &j) in s.points.iter().enumerate() {
            if crate::measure::stop_reason().is_some() {
                inputs.note("stopped: the samples at --record-times are not written");
                return Ok(vec![]);
            }
            engine.advance(plan, &mut batch, at, j, &mut Recorder::none(plan))?;
            let p = engine.read(&batch)?;
            let snap = &mut out[k].1;
            snap.rows += p.len();
            snap.x.extend(p.x);
            snap.labels.extend(p.label);
            at = j;
        }
        next = end;
    }
    Ok(out)
}

impl Study for RunStudy {
    const KIND: Kind = Kind::Run;
    const READS: &'static [Read] = &[
        Read::All(Section::Model),
        Read::Key("n-train"),
        Read::Key("train-file"),
        Read::All(Section::Sampling),
        Read::Key("record-times"),
        Read::Key("save-samples"),
        Read::All(Section::Engine),
        Read::All(Section::Figure),
    ];
    type Setup = Setup;
    type Output = Run;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        // The mixture, or the empirical target when training points were asked for.
        let (built, plan, theory) = if Kind::Run.empirical(cfg) {
            let s = inputs.empirical_setup(session)?;
            (s.built, s.plan, s.theory)
        } else {
            inputs.mixture_setup(session)?
        };
        let times = cfg.record_times.clone().unwrap_or_else(|| {
            (0..=20)
                .map(|k| cfg.t_max * (20 - k) as f64 / 20.0)
                .collect()
        });
        let points = inputs.grid_points(&times, false);
        let directions: Vec<f32> = built
            .class_dir
            .iter()
            .flat_map(|m| m.iter().map(|&x| x as f32))
            .collect();
        Ok(Setup {
            built,
            plan,
            theory,
            points,
            directions,
            particles: inputs.particles(100_000),
        })
    }

    fn measure<E: Engine>(
        inputs: &Inputs,
        s: &Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts> {
        let rec = Recorder::new(&s.plan, s.points.clone(), s.directions.clone());
        let out = session.trajectories(
            inputs,
            0,
            (engine, &s.plan),
            (s.particles, rec),
            "particles",
        )?;
        let snapshots = match (&inputs.cfg.record_times, &out.samples, &out.stopped) {
            (Some(_), Some(_), None) => snapshots(inputs, s, engine)?,
            _ => vec![],
        };
        Ok(Parts {
            run: Some(out.state(&inputs.range(s.particles))),
            samples: out.samples.map(super::parts::Samples::from_particles),
            snapshots,
            ..Parts::default()
        })
    }

    /// The run's record from its folded statistics (its own, or merged from slices).
    fn summarise(inputs: &Inputs, s: &Setup, parts: &Parts) -> Result<Run> {
        let state = parts.trajectories()?;
        let record: Vec<RecordPoint> = s
            .points
            .iter()
            .zip(&state.stats)
            .map(|(&j, p)| point(inputs.grid.node(j), p))
            .collect();
        let tally = &state.tally;
        let total = tally.labels.iter().sum::<u64>();
        Ok(Run {
            particles: state.done,
            class_fractions: (total > 0).then(|| {
                let total = total as f64;
                tally.labels.iter().map(|&c| c as f64 / total).collect()
            }),
            record,
            theory: s.theory.clone(),
        })
    }

    fn write(
        inputs: &Inputs,
        s: &Setup,
        result: &Run,
        parts: &Parts,
        dir: &OutDir,
        partial: Option<&str>,
    ) -> Result<()> {
        let Setup { built, plan, .. } = s;
        let k = plan.centers_count;
        let mut header = vec![
            "t".to_string(),
            "count".into(),
            "mean_norm".into(),
            "projection_mean".into(),
        ];
        header.extend([
            "projection_var".into(),
            "purity".into(),
            "purity_stderr".into(),
        ]);
        header.extend((0..k).map(|c| format!("class_{c}")));
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        dir.write_csv(
            "moments.csv",
            &header,
            result.record.iter().map(|r| {
                let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
                let mut row = vec![r.t, r.count as f64, v(r.mean_norm)];
                row.extend([v(r.projection_mean), v(r.projection_var)]);
                row.extend([v(r.purity), v(r.purity_stderr)]);
                match &r.class_fractions {
                    Some(f) => row.extend(f),
                    None => row.extend(std::iter::repeat_n(f64::NAN, k)),
                }
                row
            }),
        )?;
        if let Some(samples) = &parts.samples {
            super::write_samples(dir, &inputs.cfg, samples, plan.dim)?;
        }
        super::write_snapshots(dir, &inputs.cfg, &parts.snapshots, plan.dim)?;
        let (points, errors) = super::speciation::measured_points(
            result
                .record
                .iter()
                .map(|r| (r.t, r.purity, r.purity_stderr)),
        );
        // Purity and spread have different units: one panel each, with their own y axes, a
        // dot at every recorded time (a line between a few of them only guides the eye).
        let purity = [Series {
            label: "posterior purity Σ r² (±1 s.e.)".into(),
            points,
            error: Some(errors),
            style: Style::LinePoints,
            color: Some(0),
        }];
        let spread: Vec<Series> = built
            .class_dir
            .as_ref()
            .map(|m| {
                let norm = built.mixture.means[0].dot(m).abs().max(f64::MIN_POSITIVE);
                // The classes are ±m, so the spread along m̂ (not the mean) shows them separating.
                Series {
                    label: "√var(x·m) / ‖m‖² at the record times".into(),
                    points: result
                        .record
                        .iter()
                        .filter_map(|r| r.projection_var.map(|v| (r.t, v.sqrt() / norm)))
                        .collect(),
                    error: None,
                    style: Style::LinePoints,
                    color: Some(1),
                }
            })
            .into_iter()
            .collect();
        let markers: Vec<(String, f64)> = result
            .theory
            .t_s
            .map(|t| ("t_S theory".to_string(), t))
            .into_iter()
            .collect();
        let x_label = "time t (generation runs from t = T down to 0)";
        let mut panels = vec![Figure {
            title: "Posterior purity: how surely a sample's class is decided",
            x_label,
            y_label: "purity Σ r²",
            series: &purity,
            markers: &markers,
        }];
        if !spread.is_empty() {
            panels.push(Figure {
                // (m/‖m‖², not m̂/‖m‖: the embedded font cannot put a hat on m.)
                title: "Spread along the class direction (near 1 once the classes ±m have \
                        separated)",
                x_label,
                y_label: "√var(x·m) / ‖m‖²",
                series: &spread,
                markers: &[],
            });
        }
        let render = crate::report::Render::sized(inputs.cfg.figure_size, Some(inputs.cfg.dpi));
        crate::report::write_panels(
            dir,
            "run",
            &crate::report::Panels {
                title: &super::title(
                    "Generation from t = T to 0",
                    inputs,
                    &format!("{} particles", result.particles),
                    partial,
                ),
                panels: &panels,
            },
            &render,
        )?;
        if let Some(samples) = &parts.samples {
            crate::report::write_samples_figure(
                dir,
                "samples",
                &super::title(
                    "Final samples",
                    inputs,
                    &format!("{} particles", samples.rows),
                    partial,
                ),
                &crate::report::SampleSet {
                    x: &samples.x,
                    rows: samples.rows,
                    dim: plan.dim,
                    labels: &samples.labels,
                    class_dir: built.class_dir.as_ref(),
                },
                &render,
            )?;
        }
        Ok(())
    }

    fn table(r: &Run) -> String {
        table(r)
    }

    fn work(inputs: &Inputs, s: &Setup) -> u64 {
        let range = inputs.range(s.particles);
        (range.end - range.start) * inputs.grid.steps as u64
    }

    fn done(inputs: &Inputs, s: &Setup, parts: &Parts) -> f64 {
        let range = inputs.range(s.particles);
        let done = parts.run.as_ref().map_or(0, |r| r.done);
        super::fraction(done, range.end - range.start)
    }
}

/// The human summary.
fn table(r: &Run) -> String {
    let mut s = String::from("     t   ‖mean‖    proj. mean   proj. var   purity Σr²\n");
    for p in &r.record {
        s += &format!(
            "{:>6.3}   {:>6}    {:>9}   {:>9}   {}\n",
            p.t,
            opt(p.mean_norm),
            opt(p.projection_mean),
            opt(p.projection_var),
            super::pm(p.purity, p.purity_stderr)
        );
    }
    let fractions = match &r.class_fractions {
        Some(f) => format!("{f:?}"),
        None => "—".to_string(),
    };
    s += &format!(
        "\nfinal class fractions: {fractions}\nparticles: {}",
        r.particles
    );
    s
}
