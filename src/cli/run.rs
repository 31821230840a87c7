//! `regimes run`: a general run that streams moments, class fractions and the posterior purity at
//! chosen times and can save the final samples.

use anyhow::Result;
use serde::Serialize;

use super::{Context, grid_points};
use crate::engine::{Engine, Recorder};
use crate::measure::run::{RunSpec, run_from};
use crate::report::{Series, Style};
use crate::stats::{PointStats, Tally};
use crate::theory::Theory;

#[derive(Clone, Debug, Serialize)]
pub struct RecordPoint {
    pub t: f64,
    pub count: u64,
    /// ‖mean of x_t‖ over the particles: ‖E_t E[x_0]‖ in theory (about 0 for two classes ±m).
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
    built: super::build::Built,
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

pub fn setup(cx: &mut Context) -> Result<Setup> {
    let cfg = cx.cfg.clone();
    // The mixture, or the empirical target when training points were asked for.
    let (built, plan, theory) = if cx.empirical {
        let s = cx.empirical_setup()?;
        (s.built, s.plan, s.theory)
    } else {
        cx.mixture_setup()?
    };
    let times = cfg.record_times.clone().unwrap_or_else(|| {
        (0..=20)
            .map(|k| cfg.t_max * (20 - k) as f64 / 20.0)
            .collect()
    });
    let points = grid_points(&cx.grid, &times, false);
    let directions: Vec<f32> = built
        .class_dir
        .iter()
        .flat_map(|m| m.iter().map(|&x| x as f32))
        .collect();
    let particles = cx.particles(100_000);
    Ok(Setup {
        built,
        plan,
        theory,
        points,
        directions,
        particles,
    })
}

pub fn run<E: Engine>(cx: &mut Context, engine: &E) -> Result<Run> {
    let cfg = cx.cfg.clone();
    let s = setup(cx)?;
    let range = cx.range(s.particles);
    let resume = cx.take_resume(0);
    let mut ck = cx.checkpoint.take();
    let steps = cx.grid.steps as u64;
    let skipped = resume.as_ref().map_or(0, |r| r.work_done(&range, steps));
    let work = ((range.end - range.start) * steps).saturating_sub(skipped);
    let out = cx.with_progress(work, "particles", |tick| {
        let spec = RunSpec {
            seed: cfg.seed,
            particles: s.particles,
            keep_samples: cfg.save_samples,
            batch: cfg.batch,
        };
        let rec = Recorder::new(&s.plan, s.points.clone(), s.directions.clone());
        run_from(
            engine,
            &s.plan,
            spec,
            range.clone(),
            rec,
            resume,
            ck.as_mut(),
            tick,
        )
    });
    cx.checkpoint = ck;
    let out = out?;
    cx.stopped(out.stopped.clone());
    cx.parts.run = Some(out.state(&range));
    if cx.device.is_some() {
        cx.parts.samples = out.samples.as_ref().map(|p| (p.len(), p.x.clone()));
    }
    let samples = out.samples.as_ref().map(|p| (p.len(), &p.x[..]));
    report(
        cx,
        &s,
        &out.recorder.stats,
        &out.tally,
        out.particles_done,
        samples,
    )
}

/// The summary, CSV and plots of a run from its folded statistics (the run's own, or merged
/// from shards); `samples` are (rows, positions).
pub fn report(
    cx: &mut Context,
    s: &Setup,
    stats: &[PointStats],
    tally: &Tally,
    particles: u64,
    samples: Option<(usize, &[f32])>,
) -> Result<Run> {
    let Setup {
        built,
        plan,
        theory,
        points,
        ..
    } = s;
    let theory = theory.clone();
    let record: Vec<RecordPoint> = points
        .iter()
        .zip(stats)
        .map(|(&j, s)| point(cx.grid.time(j), s))
        .collect();
    let total = tally.labels.iter().sum::<u64>().max(1) as f64;
    let result = Run {
        particles,
        class_fractions: tally.labels.iter().map(|&c| c as f64 / total).collect(),
        record,
        theory,
    };
    if let Some(dir) = cx.out.as_ref() {
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
        if let Some((rows, x)) = samples {
            super::write_samples(dir, &cx.cfg, rows, plan.dim, x)?;
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
    }
    Ok(result)
}

/// The human summary.
pub fn table(r: &Run) -> String {
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
