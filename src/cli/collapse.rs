//! `regimes collapse`: memorisation on the empirical target — per-trajectory collapse times, the
//! excess entropy and the clone-collapse fraction — beside the REM prediction.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::speciation::PhiPoint;
use super::{Context, grid_points};
use crate::engine::Engine;
use crate::engine::Recorder;
use crate::linalg::Linear;
use crate::measure::checkpoint::{PhaseState, Snapshot};
use crate::measure::cloning::{Pairs, clone_pairs_from};
use crate::measure::entropy::{CollapseTimes, collapse_times, excess_entropy};
use crate::measure::run::{RunSpec, run_from};
use crate::model::coupling::{Coupling, mode_coordinates, mode_process};
use crate::model::{Empirical, Process};
use crate::report::{Series, Style};
use crate::report::{format_table, or_dash as opt};
use crate::theory::{Theory, rem_alpha_at, t_collapse};

#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EntropyRow {
    pub t: f64,
    pub f_over_alpha: f64,
    pub stderr: f64,
    /// Gaussian REM prediction max(0, 1 − (1/2dα) Σ log(1 + ρ_k(t))).
    pub f_over_alpha_theory: f64,
}

/// Where the wall time of a collapse study goes, in seconds. The plan's coefficients are built
/// lazily, during the first trajectories.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PhaseSeconds {
    /// Training set, theory and plan set-up.
    pub setup: f64,
    pub trajectories: f64,
    pub clone_pairs: f64,
    pub excess_entropy: f64,
}

#[derive(Serialize)]
pub struct Collapse {
    /// The REM t_C on the target's within-class covariance (the `theory` command's t_C).
    pub t_c_theory: Option<f64>,
    /// With --train-file: the REM t_C on the training points' own sample covariance.
    pub t_c_sample_covariance: Option<f64>,
    /// Median per-trajectory collapse time t̂_C (last change of the nearest training point).
    pub t_c_measured: f64,
    pub n_train: usize,
    /// α = ln N / d.
    pub alpha: f64,
    pub particles: u64,
    pub collapse_times: CollapseTimes,
    pub excess_entropy: Vec<EntropyRow>,
    /// Fraction of clone pairs that end on the same training point (φ_C), with its posterior
    /// estimate mean Σ_μ r_μ².
    pub clone_collapse: Vec<PhiPoint>,
    /// With a symmetric constant --coupling: collapse read on each mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<ModeCollapse>>,
    pub theory: Theory,
    pub seconds: PhaseSeconds,
}

/// The excess entropy of one mode: exact samples of the mode's own marginal (a d-dimensional OU
/// process at κ·U_d over the training pairs' mode coordinates), beside the REM of that process.
#[derive(Serialize)]
pub struct ModeCollapse {
    pub name: &'static str,
    pub t_c_theory: Option<f64>,
    /// α = ln N / d on the mode's d coordinates.
    pub alpha: f64,
    pub excess_entropy: Vec<EntropyRow>,
}

/// What the collapse study needs besides its engine.
pub struct Setup {
    built: super::build::Built,
    data: crate::model::Empirical,
    plan: crate::plan::Plan,
    theory: Theory,
    t_c_sample_covariance: Option<f64>,
    /// The study's particles and clone pairs (all shards).
    pub particles: u64,
    pub pairs: u64,
    /// Grid indices of the branch points.
    pub branch_steps: Vec<usize>,
    entropy_times: Vec<f64>,
}

impl Setup {
    /// Dimension of the particles.
    pub fn dim(&self) -> usize {
        self.plan.dim
    }

    /// The branches of a folded clone experiment (merged shards).
    pub fn branches(
        &self,
        state: crate::measure::cloning::CloneState,
    ) -> Vec<crate::measure::cloning::Branch> {
        crate::measure::cloning::Cloning::from_state(&self.plan, &self.branch_steps, state).branches
    }
}

pub fn setup(cx: &mut Context) -> Result<Setup> {
    let cfg = cx.cfg.clone();
    let super::EmpiricalSetup {
        built,
        data,
        plan,
        theory,
    } = cx.empirical_setup()?;
    let n = data.points.nrows();
    // A training file need not come from the configured target: the REM criterion on its own
    // sample covariance gives a second t_C beside the theory's.
    let t_c_sample_covariance = cfg.train_file.as_ref().and_then(|_| {
        t_collapse(
            &built.process,
            &sample_covariance(&data.points),
            n,
            cfg.t_max,
        )
    });
    let t_ref = theory.t_c.unwrap_or(cfg.t_max / 4.0);
    let branch_times = cfg.branch_times.clone().unwrap_or_else(|| {
        [0.25, 0.5, 1.0, 2.0, 4.0]
            .iter()
            .map(|f| f * t_ref)
            .filter(|&t| t < cfg.t_max)
            .collect()
    });
    let branch_steps = grid_points(&cx.grid, &branch_times, true);
    let entropy_times = cfg.entropy_times.clone().unwrap_or_else(|| {
        [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
            .iter()
            .map(|f| f * t_ref)
            .filter(|&t| t <= cfg.t_max)
            .collect()
    });
    Ok(Setup {
        built,
        data,
        plan,
        theory,
        t_c_sample_covariance,
        particles: cx.particles(2_000),
        pairs: cx.pairs(500),
        branch_steps,
        entropy_times,
    })
}

/// What the collapse study measured: trajectories, clone pairs, the excess entropy.
pub struct Measured<'a> {
    pub tally: &'a crate::stats::Tally,
    pub particles: u64,
    pub branches: Vec<crate::measure::cloning::Branch>,
    pub excess_entropy: Vec<EntropyRow>,
    pub seconds: PhaseSeconds,
    /// (rows, positions) with --save-samples.
    pub samples: Option<(usize, &'a [f32])>,
}

pub fn collapse<E: Engine>(cx: &mut Context, engine: &E) -> Result<Collapse> {
    let mut clock = Instant::now();
    let mut lap = move || {
        let s = clock.elapsed().as_secs_f64();
        clock = Instant::now();
        s
    };
    let mut seconds = PhaseSeconds::default();
    let cfg = cx.cfg.clone();
    let s = setup(cx)?;
    seconds.setup = lap();
    let steps = cx.grid.steps;
    let range = cx.range(s.particles);
    let resume = cx.take_resume(0);
    let mut ck = cx.checkpoint.take();
    let skipped = resume
        .as_ref()
        .map_or(0, |r| r.work_done(&range, steps as u64));
    let work = ((range.end - range.start) * steps as u64).saturating_sub(skipped);
    let out = cx.with_progress(work, "trajectories", |tick| {
        let spec = RunSpec {
            seed: cfg.seed,
            particles: s.particles,
            keep_samples: cfg.save_samples,
            batch: cfg.batch,
        };
        let rec = Recorder::none(&s.plan);
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
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            cx.checkpoint = ck;
            return Err(e);
        }
    };
    seconds.trajectories = lap();
    cx.stopped(out.stopped.clone());
    cx.parts.run = Some(out.state(&range));
    if cx.device.is_some() {
        cx.parts.samples = out.samples.as_ref().map(|p| (p.len(), p.x.clone()));
    }
    // The trajectories are done: the clone pairs' checkpoints start from them.
    if let Some(c) = ck.as_mut()
        && out.stopped.is_none()
    {
        let mut state = out.state(&range);
        let particles: Vec<crate::engine::Particles> = out.samples.iter().cloned().collect();
        state.samples = out.samples.as_ref().map(|_| 0);
        c.save(Snapshot {
            state: PhaseState::Run(state),
            particles,
        })?;
        c.phase = 1;
    }

    let range = cx.range(s.pairs);
    let branch_steps = &s.branch_steps;
    let work = (range.end - range.start)
        * (branch_steps.iter().max().copied().unwrap_or(0)
            + branch_steps.iter().map(|&j| 2 * (steps - j)).sum::<usize>()) as u64;
    let resume = cx.take_resume(1);
    let per_pair = work / (range.end - range.start).max(1);
    let work = work.saturating_sub(resume.as_ref().map_or(0, |r| r.work_done(&range, per_pair)));
    let cloning = cx.with_progress(work, "clone pairs", |tick| {
        let seeded = Pairs {
            seed: cfg.seed,
            batch: cfg.batch,
        };
        let plan = &s.plan;
        clone_pairs_from(
            engine,
            plan,
            seeded,
            range,
            branch_steps,
            resume,
            ck.as_mut(),
            tick,
        )
    });
    cx.checkpoint = ck;
    let cloning = cloning?;
    seconds.clone_pairs = lap();
    cx.stopped(cloning.stopped);
    cx.parts.clones = Some(cloning.state.clone());

    // The excess entropy samples the target on the host, apart from the particles: the first
    // shard measures it.
    let first = |s: Option<crate::measure::Shard>| s.is_none_or(|s| s.index == 0);
    let excess = if first(cx.shard) && first(cx.device) {
        excess_entropy_rows(&cfg, &s)?
    } else {
        vec![]
    };
    cx.parts.entropy = Some(excess.clone());
    seconds.excess_entropy = lap();
    if !cx.quiet {
        crate::note!(
            "time: set-up {:.1} s, trajectories {:.1} s, clone pairs {:.1} s, excess entropy {:.1} s",
            seconds.setup,
            seconds.trajectories,
            seconds.clone_pairs,
            seconds.excess_entropy
        );
    }
    cx.parts.seconds = Some(seconds.clone());
    let measured = Measured {
        tally: &out.tally,
        particles: out.particles_done,
        branches: cloning.branches,
        excess_entropy: excess,
        seconds,
        samples: out.samples.as_ref().map(|p| (p.len(), &p.x[..])),
    };
    report(cx, &s, measured)
}

fn excess_entropy_rows(cfg: &crate::config::Config, s: &Setup) -> Result<Vec<EntropyRow>> {
    let (p, c) = (&s.built.process, &s.built.mixture.cov);
    entropy_rows(cfg, p, &s.data, c, &s.entropy_times)
}

/// f^e/α from exact samples of p_t^e at `times`, beside the REM of process `p` with covariance C.
fn entropy_rows(
    cfg: &crate::config::Config,
    p: &Process,
    data: &Empirical,
    c: &Linear,
    times: &[f64],
) -> Result<Vec<EntropyRow>> {
    let alpha = (data.points.nrows() as f64).ln() / data.points.ncols() as f64;
    times
        .iter()
        .map(|&t| {
            let point = excess_entropy(p, data, t, cfg.entropy_samples, cfg.seed)?;
            Ok(EntropyRow {
                t,
                f_over_alpha: point.f_over_alpha,
                stderr: point.stderr,
                f_over_alpha_theory: (1.0 - rem_alpha_at(p, c, t) / alpha).max(0.0),
            })
        })
        .collect()
}

/// Per-mode excess entropy, where each mode is a process of its own (symmetric constant
/// couplings); None otherwise. Host work like the joint excess entropy, and as deterministic:
/// a merge recomputes it.
fn mode_collapse(
    cfg: &crate::config::Config,
    s: &Setup,
    coupling: &Coupling,
) -> Result<Option<Vec<ModeCollapse>>> {
    let n = s.data.points.nrows();
    let theory = super::theory::mode_theory(&s.built, coupling, n, cfg.t_max)?;
    let d = s.built.process.dim() / 2;
    let c = Linear::Scalar(s.built.mixture.cov.diagonal()[0], d);
    let mut out = vec![];
    for (mode, th) in coupling.modes().iter().zip(theory) {
        let Some(p) = mode_process(&s.built.process, mode)? else {
            return Ok(None);
        };
        let projected = Empirical {
            points: mode_coordinates(mode, &s.data.points),
        };
        out.push(ModeCollapse {
            name: mode.name,
            t_c_theory: th.t_c,
            alpha: (n as f64).ln() / d as f64,
            excess_entropy: entropy_rows(cfg, &p, &projected, &c, &s.entropy_times)?,
        });
    }
    Ok(Some(out))
}

/// The summary, CSVs and plot of the collapse study from what it measured (its own, or merged
/// from shards).
pub fn report(cx: &mut Context, s: &Setup, m: Measured) -> Result<Collapse> {
    let (n, d) = (s.data.points.nrows(), s.data.points.ncols());
    let alpha = (n as f64).ln() / d as f64;
    let times = collapse_times(m.tally, &cx.grid);
    let clone_collapse = m.branches.iter().map(|b| PhiPoint::new(b, None)).collect();
    // Measured with the excess entropy (the first shard, or a merge).
    let modes = match &cx.cfg.coupling {
        Some(c) if !m.excess_entropy.is_empty() => mode_collapse(&cx.cfg, s, c)?,
        _ => None,
    };
    let result = Collapse {
        t_c_theory: s.theory.t_c,
        t_c_sample_covariance: s.t_c_sample_covariance,
        t_c_measured: times.median,
        n_train: n,
        alpha,
        particles: m.particles,
        collapse_times: times,
        excess_entropy: m.excess_entropy,
        clone_collapse,
        modes,
        theory: s.theory.clone(),
        seconds: m.seconds,
    };
    if let Some(dir) = cx.out.as_ref() {
        dir.write_csv(
            "collapse_times.csv",
            &["t", "fraction"],
            result
                .collapse_times
                .histogram
                .iter()
                .map(|&(t, f)| vec![t, f]),
        )?;
        dir.write_csv(
            "excess_entropy.csv",
            &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
            result
                .excess_entropy
                .iter()
                .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
        )?;
        super::speciation::write_phi_csv(dir, "clone_collapse.csv", &result.clone_collapse)?;
        for m in result.modes.iter().flatten() {
            dir.write_csv(
                &format!("excess_entropy_{}.csv", m.name),
                &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
                m.excess_entropy
                    .iter()
                    .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
            )?;
        }
        if let Some((rows, x)) = m.samples {
            super::write_samples(dir, &cx.cfg, rows, d, x)?;
        }
        let markers: Vec<(String, f64)> = result
            .t_c_theory
            .map(|t| ("t_C theory (REM)".to_string(), t))
            .into_iter()
            .chain([("median t̂_C".to_string(), result.t_c_measured)])
            .collect();
        let series = [
            Series {
                label: "f^e/α from exact samples (±1 s.e.)".into(),
                points: result
                    .excess_entropy
                    .iter()
                    .map(|e| (e.t, e.f_over_alpha))
                    .collect(),
                error: Some(result.excess_entropy.iter().map(|e| e.stderr).collect()),
                style: Style::Points,
                color: None,
            },
            Series {
                label: "Gaussian REM theory".into(),
                points: result
                    .excess_entropy
                    .iter()
                    .map(|e| (e.t, e.f_over_alpha_theory))
                    .collect(),
                error: None,
                style: Style::Line,
                color: None,
            },
            Series {
                label: "clone-collapse φ_C".into(),
                points: result.clone_collapse.iter().map(|p| (p.t, p.phi)).collect(),
                error: Some(result.clone_collapse.iter().map(|p| p.stderr).collect()),
                style: Style::Points,
                color: None,
            },
        ];
        crate::report::plot_series(
            dir,
            "collapse.svg",
            "Collapse onto the training set",
            "time t",
            "f^e/α, φ_C",
            &series,
            &markers,
        )?;
    }
    Ok(result)
}

/// Sample covariance of the rows of `x` (N×d), as a dense matrix.
fn sample_covariance(x: &nalgebra::DMatrix<f64>) -> Linear {
    let n = x.nrows() as f64;
    let mean = x.row_mean();
    let centred = x - nalgebra::DMatrix::from_fn(x.nrows(), x.ncols(), |_, j| mean[j]);
    Linear::Dense(centred.transpose() * centred / (n - 1.0).max(1.0))
}

/// The human summary.
pub fn table(r: &Collapse) -> String {
    let mut s = String::from("     t   f^e/α ± s.e.      REM theory\n");
    for e in &r.excess_entropy {
        s += &format!(
            "{:>6.3}   {:.4} ± {:.4}    {:.4}\n",
            e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory
        );
    }
    for m in r.modes.iter().flatten() {
        s += &format!(
            "\n{} mode (α = {:.4}, t_C theory {})\n     t   f^e/α ± s.e.      REM theory\n",
            m.name,
            m.alpha,
            opt(m.t_c_theory)
        );
        for e in &m.excess_entropy {
            s += &format!(
                "{:>6.3}   {:.4} ± {:.4}    {:.4}\n",
                e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory
            );
        }
    }
    s += "\n     t   φ_C clones ± s.e.  posterior Σr²\n";
    for p in &r.clone_collapse {
        s += &format!(
            "{:>6.3}   {:.4} ± {:.4}     {:.4}\n",
            p.t, p.phi, p.stderr, p.phi_posterior
        );
    }
    s += "\n";
    s += &format_table(&[
        ("t_C theory (Gaussian REM)".into(), opt(r.t_c_theory)),
        (
            "  on the file's sample covariance".into(),
            opt(r.t_c_sample_covariance),
        ),
        (
            "t̂_C median per trajectory".into(),
            format!("{:.4}", r.t_c_measured),
        ),
        (
            "t̂_C mean ± s.e.".into(),
            format!(
                "{:.4} ± {:.4}",
                r.collapse_times.mean, r.collapse_times.stderr
            ),
        ),
        (
            "t̂_C 10%–90%".into(),
            format!("{:.4} – {:.4}", r.collapse_times.q10, r.collapse_times.q90),
        ),
        (
            "training points N, α = ln N/d".into(),
            format!("{}, {:.4}", r.n_train, r.alpha),
        ),
    ]);
    s
}
