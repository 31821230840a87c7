//! `regimes run`: a general run that streams moments, class fractions and the posterior purity at
//! chosen times and can save the final samples.

use anyhow::Result;
use serde::Serialize;

use super::{Inputs, Kind, Parts, Session, Study};
use crate::engine::{Engine, Recorder};
use crate::measure::run::{RunSpec, run_from};
use crate::report::{OutDir, Series, Style};
use crate::stats::PointStats;
use crate::theory::Theory;

#[derive(Clone, Debug, Serialize)]
pub struct RecordPoint {
    pub t: f64,
    pub count: u64,
    /// ‖mean of x_t‖ over the particles: ‖E_t E\[x_0\]‖ in theory (about 0 for two classes ±m).
    pub mean_norm: f64,
    /// Projection on the class direction: mean and variance.
    pub projection_mean: Option<f64>,
    pub projection_var: Option<f64>,
    /// Mean posterior purity Σ r² and its standard error.
    pub purity: f64,
    pub purity_stderr: f64,
    /// Fraction of particles per argmax class.
    pub class_fractions: Vec<f64>,
    /// Per-coordinate mean and variance.
    pub mean: Vec<f64>,
    pub variance: Vec<f64>,
}

#[derive(Serialize)]
pub struct Run {
    pub particles: u64,
    pub record: Vec<RecordPoint>,
    /// Final class fractions (per training point on the empirical target).
    pub class_fractions: Vec<f64>,
    pub theory: Theory,
}

fn point(t: f64, s: &PointStats) -> RecordPoint {
    let total = s.coords.count.max(1) as f64;
    let d = s.coords.dim();
    RecordPoint {
        t,
        count: s.coords.count,
        mean_norm: s.coords.mean.iter().map(|m| m * m).sum::<f64>().sqrt(),
        projection_mean: s.projections.mean.first().copied(),
        projection_var: (s.projections.dim() > 0).then(|| s.projections.variance(0)),
        purity: s.purity.mean[0],
        purity_stderr: s.purity.stderr(0),
        class_fractions: s.classes.iter().map(|&c| c as f64 / total).collect(),
        mean: s.coords.mean.clone(),
        variance: (0..d).map(|i| s.coords.variance(i)).collect(),
    }
}

/// What the run needs besides its engine: the model, its plan, the theory, the record points.
pub struct Setup {
    built: crate::model::build::Built,
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

impl Study for RunStudy {
    const KIND: Kind = Kind::Run;
    const IGNORES: &'static [&'static str] =
        &["pairs", "branch-times", "entropy-times", "entropy-samples"];
    type Setup = Setup;
    type Output = Run;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        // The mixture, or the empirical target when training points were asked for.
        let (built, plan, theory) = if inputs.empirical {
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
        let cfg = &inputs.cfg;
        let steps = inputs.grid.steps as u64;
        let out = session.phase(inputs, 0, (s.particles, steps), "particles", |ph| {
            let spec = RunSpec {
                seed: cfg.seed,
                particles: s.particles,
                keep_samples: cfg.save_samples,
                batch: cfg.batch,
            };
            let rec = Recorder::new(&s.plan, s.points.clone(), s.directions.clone());
            run_from(
                engine, &s.plan, spec, ph.range, rec, ph.resume, ph.ckpt, ph.tick,
            )
        })?;
        Ok(Parts {
            run: Some(out.state(&inputs.range(s.particles))),
            samples: out.samples.map(|p| (p.len(), p.x)),
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
            .map(|(&j, p)| point(inputs.grid.time(j), p))
            .collect();
        let tally = &state.tally;
        let total = tally.labels.iter().sum::<u64>().max(1) as f64;
        Ok(Run {
            particles: state.done,
            class_fractions: tally.labels.iter().map(|&c| c as f64 / total).collect(),
            record,
            theory: s.theory.clone(),
        })
    }

    fn write(inputs: &Inputs, s: &Setup, result: &Run, parts: &Parts, dir: &OutDir) -> Result<()> {
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
                let mut row = vec![r.t, r.count as f64, r.mean_norm];
                row.extend([
                    r.projection_mean.unwrap_or(f64::NAN),
                    r.projection_var.unwrap_or(f64::NAN),
                ]);
                row.extend([r.purity, r.purity_stderr]);
                row.extend(&r.class_fractions);
                row
            }),
        )?;
        if let Some((rows, x)) = &parts.samples {
            super::write_samples(dir, &inputs.cfg, *rows, plan.dim, x)?;
        }
        let mut series = vec![Series {
            label: "posterior purity Σ r²".into(),
            points: result.record.iter().map(|r| (r.t, r.purity)).collect(),
            error: Some(result.record.iter().map(|r| r.purity_stderr).collect()),
            style: Style::Points,
            color: None,
        }];
        if let Some(m) = &built.class_dir {
            let norm = built.mixture.means[0].dot(m).abs().max(f64::MIN_POSITIVE);
            // The classes are ±m, so the spread along m̂ (not the mean) shows them separating.
            series.push(Series {
                label: "spread along m̂: √var(x·m̂) / ‖m‖".into(),
                points: result
                    .record
                    .iter()
                    .filter_map(|r| r.projection_var.map(|v| (r.t, v.sqrt() / norm)))
                    .collect(),
                error: None,
                style: Style::Line,
                color: None,
            });
        }
        let markers: Vec<(String, f64)> = result
            .theory
            .t_s
            .map(|t| ("t_S theory".to_string(), t))
            .into_iter()
            .collect();
        crate::report::plot_series(
            dir,
            "run.svg",
            "Generation from t = T to 0",
            "time t",
            "",
            &series,
            &markers,
        )?;
        Ok(())
    }

    fn table(r: &Run) -> String {
        table(r)
    }
}

/// The human summary.
fn table(r: &Run) -> String {
    let mut s = String::from("     t   ‖mean‖    proj. mean   proj. var   purity Σr²\n");
    for p in &r.record {
        s += &format!(
            "{:>6.3}   {:.4}    {:>9}   {:>9}   {:.4}\n",
            p.t,
            p.mean_norm,
            p.projection_mean.map_or("—".into(), |x| format!("{x:.4}")),
            p.projection_var.map_or("—".into(), |x| format!("{x:.4}")),
            p.purity
        );
    }
    s += &format!(
        "\nfinal class fractions: {:?}\nparticles: {}",
        r.class_fractions, r.particles
    );
    s
}
