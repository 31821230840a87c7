//! `regimes collapse`: memorisation on the empirical target — per-trajectory collapse times, the
//! excess entropy and the clone-collapse fraction — beside the REM prediction.

use super::keys::Read;
use crate::config::keys::Section;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

pub use super::diagnostics::{PhaseSeconds, PrunedTiles};
pub use super::modes::ModeCollapse;
use super::speciation::{PhiPoint, pair_steps};
use super::{Inputs, Kind, Parts, Session, Study};
use crate::engine::Engine;
use crate::engine::Recorder;
use crate::linalg::Linear;
use crate::measure::Stop;
use crate::measure::checkpoint::Snapshot;
use crate::measure::cloning::Branch;
use crate::measure::entropy::{CollapseTimes, EntropyRow, collapse_times, excess_entropy_series};
use crate::report::{Figure, OutDir, Series, Style};
use crate::report::{format_table, or_dash as opt};
use crate::theory::Theory;
use crate::theory::collapse::Rem;
use crate::theory::data::sample_covariance;

#[derive(Serialize)]
pub struct Collapse {
    /// The REM t_C of the training points the run used: on their own sample covariance with
    /// --train-file, else on the target's within-class covariance (the `theory` command's t_C).
    pub t_c_theory: Option<f64>,
    /// What `t_c_theory` is computed from: `sample-covariance` or `target-covariance`.
    pub t_c_theory_basis: &'static str,
    /// With --train-file: the REM t_C of the configured target (not the file's), for comparison.
    pub t_c_target: Option<f64>,
    /// Median per-trajectory collapse time t̂_C (last change of the nearest training point);
    /// null when no trajectory completed.
    pub t_c_measured: Option<f64>,
    /// A distribution-free ±1σ interval of that median.
    pub t_c_measured_interval: Option<[f64; 2]>,
    pub n_train: usize,
    /// α = ln N / d.
    pub alpha: f64,
    pub particles: u64,
    pub collapse_times: CollapseTimes,
    pub excess_entropy: Vec<EntropyRow>,
    /// Fraction of clone pairs that end on the same training point (φ_C), with its posterior
    /// estimate mean Σ_μ r_μ².
    pub clone_collapse: Vec<PhiPoint>,
    /// With --train-labels: fraction of clone pairs that end on training points of the same
    /// class (no posterior estimate: null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone_same_class: Option<Vec<PhiPoint>>,
    /// With --train-file: the theory of the file's points ([`crate::theory::data`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<crate::theory::data::DataTheory>,
    /// With a symmetric constant --coupling: collapse read on each mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<ModeCollapse>>,
    pub theory: Theory,
    pub seconds: PhaseSeconds,
    /// Tiles of training points the exact pruning skipped (CPU engine; null on the GPU).
    pub pruned_tiles: Option<PrunedTiles>,
}

/// What the collapse study needs besides its engine.
pub struct Setup {
    built: crate::config::build::Built,
    data: crate::model::Empirical,
    plan: crate::plan::Plan,
    theory: Theory,
    data_theory: Option<crate::theory::data::DataTheory>,
    /// The covariance of the REM theory of f^e/α: the file's sample covariance with
    /// --train-file, else the target's within-class covariance.
    /// The REM of the excess entropy: on the training file's sample covariance where there is
    /// one, else on the target's.
    rem: Rem,
    /// The class of each training point (--train-labels).
    classes: Option<Vec<u32>>,
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

/// `regimes collapse`.
pub struct CollapseStudy;

impl Study for CollapseStudy {
    const KIND: Kind = Kind::Collapse;
    const READS: &'static [Read] = &[
        Read::All(Section::Model),
        Read::All(Section::Target),
        Read::All(Section::Sampling),
        Read::Key("pairs"),
        Read::Key("branch-times"),
        Read::Key("entropy-times"),
        Read::Key("entropy-samples"),
        Read::Key("save-samples"),
        Read::All(Section::Engine),
        Read::All(Section::Figure),
    ];
    type Setup = Setup;
    type Output = Collapse;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        let super::EmpiricalSetup {
            built,
            data,
            plan,
            theory,
        } = inputs.empirical_setup(session)?;
        // A training file need not come from the configured target: the REM criterion on its
        // own sample covariance gives a second t_C beside the theory's.
        let data_theory = inputs.data_theory(&built, &data)?;
        let rem = match &data_theory {
            Some(_) => Rem::new(&built.process, &sample_covariance(&data.points)),
            None => Rem::new(&built.process, &built.mixture.cov),
        };
        let (data_theory, classes) = match data_theory {
            Some((d, labels)) => (Some(d), labels.map(|l| l.class)),
            None => (None, None),
        };
        let t_ref = theory.t_c.unwrap_or(cfg.t_max / 4.0);
        let branch_times = match &cfg.branch_times {
            Some(crate::config::BranchTimes::At(times)) => times.clone(),
            Some(crate::config::BranchTimes::Auto) => anyhow::bail!(
                "branch-times: auto refines branch times around speciation's crossing of F(1); \
                 collapse has none to refine (give times T1,T2,... or omit it)"
            ),
            None => [0.25, 0.5, 1.0, 2.0, 4.0]
                .iter()
                .map(|f| f * t_ref)
                .filter(|&t| t < cfg.t_max)
                .collect(),
        };
        let branch_steps = inputs.grid_points(&branch_times, true);
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
            data_theory,
            rem,
            classes,
            particles: inputs.particles(2_000),
            pairs: inputs.pairs(500),
            branch_steps,
            entropy_times,
        })
    }

    /// Trajectories (phase 0), clone pairs (phase 1), then the excess entropy on the host.
    fn measure<E: Engine>(
        inputs: &Inputs,
        s: &Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts> {
        let mut clock = Instant::now();
        let mut lap = move || {
            let s = clock.elapsed().as_secs_f64();
            clock = Instant::now();
            s
        };
        let cfg = &inputs.cfg;
        let rec = Recorder::none(&s.plan);
        let t_c = s.theory.t_c.unwrap_or(cfg.t_max / 4.0);
        engine.take_pruning();
        let out = session.trajectories(
            inputs,
            0,
            (engine, &s.plan),
            (s.particles, rec),
            "trajectories",
        )?;
        let trajectories = lap();
        let (trajectories_above_t_c, trajectories_below_t_c) =
            PrunedTiles::split(&engine.take_pruning(), &s.plan.grid, t_c);
        let run = out.state(&inputs.range(s.particles));
        // The trajectories are done: the clone pairs' checkpoints start from them.
        if out.stopped.is_none() {
            let mut state = run.clone();
            state.samples = out.samples.as_ref().map(|_| 0);
            let particles = out.samples.iter().cloned().collect();
            session.save_phase(0, Snapshot { state, particles })?;
        }
        let cloning = session.clone_pairs(
            inputs,
            1,
            (engine, &s.plan),
            (s.pairs, &s.branch_steps),
            s.classes.as_deref(),
        )?;
        let clone_pairs = lap();
        let (clone_pairs_above_t_c, clone_pairs_below_t_c) =
            PrunedTiles::split(&engine.take_pruning(), &s.plan.grid, t_c);
        let pruning = PrunedTiles {
            trajectories_above_t_c,
            trajectories_below_t_c,
            clone_pairs_above_t_c,
            clone_pairs_below_t_c,
        };
        let pruned_any = [trajectories_above_t_c, trajectories_below_t_c]
            .iter()
            .chain(&[clone_pairs_above_t_c, clone_pairs_below_t_c])
            .any(|c| c[1] > 0);
        if pruned_any {
            inputs.note(&format!("pruned tiles (exact): {}", pruning.describe()));
        }
        // The excess entropy samples the target on the host, apart from the particles: the
        // first slice measures it, for the joint process and for each mode.
        let (entropy, mode_entropy) = if inputs.first_slice() && session.stopped.is_none() {
            let (joint, stop) = excess_entropy_rows(cfg, s)?;
            session.stopped(stop);
            let modes = match &cfg.coupling {
                Some(c) if session.stopped.is_none() => super::modes::mode_collapse(
                    cfg,
                    (&s.built, &s.data),
                    &s.entropy_times,
                    c,
                    session,
                )?,
                _ => None,
            };
            (joint, modes)
        } else {
            (vec![], None)
        };
        let seconds = PhaseSeconds {
            setup: session.setup_seconds,
            trajectories,
            clone_pairs,
            excess_entropy: lap(),
        };
        inputs.note(&format!(
            "time: set-up {:.1} s, trajectories {:.1} s, clone pairs {:.1} s, excess entropy {:.1} s",
            seconds.setup, seconds.trajectories, seconds.clone_pairs, seconds.excess_entropy
        ));
        Ok(Parts {
            run: Some(run),
            clones: Some(cloning.state),
            rounds: None,
            entropy: Some(entropy),
            mode_entropy,
            seconds: Some(seconds),
            pruning: pruned_any.then_some(pruning),
            samples: out.samples.map(super::parts::Samples::from_particles),
            snapshots: vec![],
        })
    }

    /// The collapse result from what was measured (its own, or merged slices).
    fn summarise(inputs: &Inputs, s: &Setup, parts: &Parts) -> Result<Collapse> {
        let (n, d) = (s.data.points.nrows(), s.data.points.ncols());
        let alpha = (n as f64).ln() / d as f64;
        let traj = parts.trajectories()?;
        let times = collapse_times(&traj.tally, &inputs.grid);
        let branches = s.branches(parts.clone_pairs()?.clone());
        let clone_collapse = branches.iter().map(|b| PhiPoint::new(b, None)).collect();
        let clone_same_class = s.classes.as_ref().map(|_| {
            branches
                .iter()
                .filter_map(Branch::by_class)
                .map(|b| PhiPoint {
                    phi_posterior: None,
                    phi_posterior_stderr: None,
                    ..PhiPoint::new(&b, None)
                })
                .collect()
        });
        // With a training file the headline t_C is the data's.
        let from_file = inputs.cfg.train_file.is_some();
        Ok(Collapse {
            t_c_theory: if from_file {
                s.data_theory.as_ref().and_then(|d| d.t_c)
            } else {
                s.theory.t_c
            },
            t_c_theory_basis: if from_file {
                "sample-covariance"
            } else {
                "target-covariance"
            },
            t_c_target: from_file.then_some(s.theory.t_c).flatten(),
            t_c_measured: times.median,
            t_c_measured_interval: times.median_interval,
            n_train: n,
            alpha,
            particles: traj.done,
            collapse_times: times,
            excess_entropy: parts.entropy.clone().unwrap_or_default(),
            clone_collapse,
            clone_same_class,
            data: s.data_theory.clone(),
            modes: parts.mode_entropy.clone(),
            theory: s.theory.clone(),
            seconds: parts.seconds.clone().unwrap_or_default(),
            pruned_tiles: parts.pruning.clone(),
        })
    }

    fn write(
        inputs: &Inputs,
        s: &Setup,
        result: &Collapse,
        parts: &Parts,
        dir: &OutDir,
        partial: Option<&str>,
    ) -> Result<()> {
        write_outputs(inputs, s, result, parts, dir, partial)
    }

    fn table(r: &Collapse) -> String {
        table(r)
    }

    fn work(inputs: &Inputs, s: &Setup) -> u64 {
        let (particles, pairs) = (inputs.range(s.particles), inputs.range(s.pairs));
        (particles.end - particles.start) * inputs.grid.steps as u64
            + (pairs.end - pairs.start) * pair_steps(&s.branch_steps, inputs.grid.steps)
    }

    /// Trajectories and clone pairs of the slice, by their particle-steps.
    fn done(inputs: &Inputs, s: &Setup, parts: &Parts) -> f64 {
        let per_pair = pair_steps(&s.branch_steps, inputs.grid.steps);
        let done = parts.run.as_ref().map_or(0, |r| r.done) * inputs.grid.steps as u64
            + parts.clones.as_ref().map_or(0, |c| c.done) * per_pair;
        super::fraction(done, Self::work(inputs, s))
    }
}

fn excess_entropy_rows(
    cfg: &crate::config::Config,
    s: &Setup,
) -> Result<(Vec<EntropyRow>, Option<Stop>)> {
    excess_entropy_series(
        &s.built.process,
        &s.data,
        &s.rem,
        &s.entropy_times,
        cfg.entropy_samples,
        cfg.seed,
    )
}

/// The collapse study's CSVs, samples and plot.
fn write_outputs(
    inputs: &Inputs,
    s: &Setup,
    result: &Collapse,
    parts: &Parts,
    dir: &OutDir,
    partial: Option<&str>,
) -> Result<()> {
    let d = s.data.points.ncols();
    {
        dir.write_csv(
            "collapse_times.csv",
            &["t", "fraction"],
            result
                .collapse_times
                .histogram
                .iter()
                .map(|b| vec![b.t, b.fraction]),
        )?;
        dir.write_csv(
            "excess_entropy.csv",
            &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
            result
                .excess_entropy
                .iter()
                .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
        )?;
        // No theory of φ_C: its CSV has no theory column.
        super::speciation::write_phi_csv(dir, "clone_collapse.csv", &result.clone_collapse, false)?;
        if let Some(class) = &result.clone_same_class {
            super::speciation::write_phi_csv(dir, "clone_same_class.csv", class, false)?;
        }
        for m in result.modes.iter().flatten() {
            dir.write_csv(
                &format!("excess_entropy_{}.csv", m.name),
                &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
                m.excess_entropy
                    .iter()
                    .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
            )?;
        }
        if let Some(samples) = &parts.samples {
            super::write_samples(dir, &inputs.cfg, samples, d)?;
        }
        let markers: Vec<(String, f64)> = result
            .t_c_theory
            .map(|t| ("t_C theory (REM)".to_string(), t))
            .into_iter()
            .chain(result.t_c_measured.map(|t| ("median t̂_C".to_string(), t)))
            .collect();
        let (clones, clone_errors) = super::speciation::measured_points(
            result.clone_collapse.iter().map(|p| (p.t, p.phi, p.stderr)),
        );
        // Different quantities on different axes: the excess entropy, and the clone-collapse
        // fraction. The REM theory is drawn on a dense grid (sharp at t_C, where it bends).
        let alpha = (s.data.points.nrows() as f64).ln() / d as f64;
        let p = &s.built.process;
        let times: Vec<f64> = result.excess_entropy.iter().map(|e| e.t).collect();
        let grid = super::curve_times(
            &times,
            &result.t_c_theory.into_iter().collect::<Vec<_>>(),
            p,
        );
        // The summary's REM (the file's sample covariance with --train-file), not the target's.
        let rem = |rem: &Rem, alpha: f64| -> Vec<(f64, f64)> {
            grid.iter()
                .map(|&t| (t, (1.0 - rem.alpha_at(t) / alpha).max(0.0)))
                .collect()
        };
        let measured = |label: String, rows: &[EntropyRow]| Series {
            label,
            points: rows.iter().map(|e| (e.t, e.f_over_alpha)).collect(),
            error: Some(rows.iter().map(|e| e.stderr).collect()),
            style: Style::Points,
            color: None,
        };
        let mut entropy = vec![
            measured(
                "f^e/α from exact samples (±1 s.e.)".into(),
                &result.excess_entropy,
            ),
            Series::line("Gaussian REM theory", rem(&s.rem, alpha)).colored(0),
        ];
        // Each mode on its own process: its measurement and REM theory share a colour.
        let modes = inputs.cfg.coupling.as_ref().map(|c| c.modes());
        for (j, (m, mode)) in result
            .modes
            .iter()
            .flatten()
            .zip(modes.iter().flatten())
            .enumerate()
        {
            entropy.push(
                measured(format!("{} mode (±1 s.e.)", m.name), &m.excess_entropy).colored(2 + j),
            );
            if let Some(mp) = crate::model::coupling::mode_process(p, mode)? {
                let half = Linear::Scalar(s.built.mixture.cov.diagonal()[0], d / 2);
                entropy.push(
                    Series::line(
                        format!("REM theory, {} mode", m.name),
                        rem(&Rem::new(&mp, &half), m.alpha),
                    )
                    .colored(2 + j),
                );
            }
        }
        super::write_figure(
            inputs,
            dir,
            "collapse",
            &Figure {
                title: &super::title(
                    "Excess entropy f^e/α: collapse onto the training set",
                    inputs,
                    &format!("N = {}", result.n_train),
                    partial,
                ),
                x_label: "time t",
                y_label: "f^e/α",
                series: &entropy,
                markers: &markers,
            },
        )?;
        write_histogram(inputs, dir, result, &markers, partial)?;
        let clone_series = [Series {
            label: "clone-collapse φ_C (±1 s.e.)".into(),
            points: clones,
            error: Some(clone_errors),
            style: Style::Points,
            color: Some(2),
        }];
        super::write_figure(
            inputs,
            dir,
            "clone_collapse",
            &Figure {
                title: &super::title(
                    "Clone-collapse fraction φ_C",
                    inputs,
                    &format!("N = {}", result.n_train),
                    partial,
                ),
                x_label: "branch time t",
                y_label: "φ_C",
                series: &clone_series,
                markers: &markers,
            },
        )?;
        if let Some(class) = &result.clone_same_class {
            write_same_class(inputs, dir, result, class, &clone_series, partial)?;
        }
    }
    Ok(())
}

/// With --train-labels: the fraction of clone pairs ending on training points of the same
/// class beside the fraction ending on the same point (a pair on one point is in one class, so
/// it is the lower curve), with the data's between-class t_S.
fn write_same_class(
    inputs: &Inputs,
    dir: &OutDir,
    result: &Collapse,
    class: &[PhiPoint],
    same_point: &[Series],
    partial: Option<&str>,
) -> Result<()> {
    let (points, errors) =
        super::speciation::measured_points(class.iter().map(|p| (p.t, p.phi, p.stderr)));
    let mut series = vec![Series {
        label: "same class (±1 s.e.)".into(),
        points,
        error: Some(errors),
        style: Style::Points,
        color: Some(0),
    }];
    series.extend(same_point.iter().map(|s| Series {
        label: "same training point φ_C (±1 s.e.)".into(),
        ..s.clone()
    }));
    let markers: Vec<(String, f64)> = result
        .data
        .as_ref()
        .and_then(|d| d.t_s_between)
        .map(|t| ("t_S between the classes (data)".to_string(), t))
        .into_iter()
        .chain(
            result
                .t_c_theory
                .map(|t| ("t_C theory (REM)".to_string(), t)),
        )
        .collect();
    super::write_figure(
        inputs,
        dir,
        "clone_same_class",
        &Figure {
            title: &super::title(
                "Clone pairs ending in the same class",
                inputs,
                &format!("N = {}", result.n_train),
                partial,
            ),
            x_label: "branch time t",
            y_label: "fraction of clone pairs",
            series: &series,
            markers: &markers,
        },
    )
}

/// The per-trajectory collapse times as a histogram: the fraction of trajectories per bin, as
/// a density in t with ±1 s.e. (binomial) error bars. Each bin holds the same number of grid
/// times (no aliasing), about 40 bins over the times up to the 99.5th percentile
/// (collapse_times.csv holds them all).
fn write_histogram(
    inputs: &Inputs,
    dir: &OutDir,
    result: &Collapse,
    markers: &[(String, f64)],
    partial: Option<&str>,
) -> Result<()> {
    let ct = &result.collapse_times;
    let mut hist: Vec<(f64, f64)> = ct.histogram.iter().map(|b| (b.t, b.fraction)).collect();
    hist.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = hist.iter().map(|b| b.1).sum();
    let (Some(&(lo, _)), true) = (hist.first(), ct.count > 0 && total > 0.0) else {
        return Ok(());
    };
    let mut cumulative = 0.0;
    let hi = hist
        .iter()
        .find(|b| {
            cumulative += b.1;
            cumulative >= 0.995 * total
        })
        .map_or(lo, |b| b.0);
    // Whole (longest) grid steps per bin: t̂_C is a node, so finer bins alias with the grid.
    let dt = inputs.grid.max_dt();
    let per_bin = ((hi - lo) / (40.0 * dt)).ceil().max(1.0);
    let width = per_bin * dt;
    let start = lo - 0.5 * dt;
    let bins = (((hi - start) / width).floor() as usize + 1).max(1);
    let mut fraction = vec![0.0; bins];
    for &(t, f) in &hist {
        if let Some(slot) = fraction.get_mut(((t - start) / width).floor().max(0.0) as usize) {
            *slot += f;
        }
    }
    let n = ct.count as f64;
    let series = [Series {
        label: format!("t̂_C of {} trajectories (±1 s.e.)", ct.count),
        points: (0..bins)
            .map(|k| (start + (k as f64 + 0.5) * width, fraction[k] / width))
            .collect(),
        error: Some(
            fraction
                .iter()
                .map(|&f| (f * (1.0 - f) / n).sqrt() / width)
                .collect(),
        ),
        style: Style::Points,
        color: Some(0),
    }];
    super::write_figure(
        inputs,
        dir,
        "collapse_times",
        &Figure {
            title: &super::title(
                "Per-trajectory collapse times t̂_C",
                inputs,
                &format!("N = {}", result.n_train),
                partial,
            ),
            x_label: "t̂_C (last change of the nearest training point)",
            y_label: "density",
            series: &series,
            markers,
        },
    )
}

/// The human summary.
fn table(r: &Collapse) -> String {
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
    s += "\n     t   φ_C clones ± s.e.  posterior Σr²";
    s += if r.clone_same_class.is_some() {
        "   same class ± s.e.\n"
    } else {
        "\n"
    };
    for (i, p) in r.clone_collapse.iter().enumerate() {
        s += &format!(
            "{:>6.3}   {:>15}     {:>13}",
            p.t,
            super::pm(p.phi, p.stderr),
            opt(p.phi_posterior)
        );
        if let Some(c) = r.clone_same_class.as_ref().and_then(|c| c.get(i)) {
            s += &format!("   {:>17}", super::pm(c.phi, c.stderr));
        }
        s += "\n";
    }
    s += "\n";
    let ct = &r.collapse_times;
    let range = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{a:.4} – {b:.4}"),
        _ => "—".to_string(),
    };
    let mut rows = vec![(
        match r.t_c_theory_basis {
            "sample-covariance" => "t_C theory (REM, the file's sample covariance)".into(),
            _ => "t_C theory (Gaussian REM)".to_string(),
        },
        opt(r.t_c_theory),
    )];
    if r.t_c_target.is_some() {
        rows.push((
            "  of the configured target instead".into(),
            opt(r.t_c_target),
        ));
    }
    rows.extend([
        (
            "t̂_C median per trajectory (±1σ)".into(),
            match (r.t_c_measured, r.t_c_measured_interval) {
                (Some(m), Some([lo, hi])) => format!("{m:.4} ({lo:.4} – {hi:.4})"),
                _ => "—".to_string(),
            },
        ),
        ("t̂_C mean ± s.e.".into(), super::pm(ct.mean, ct.stderr)),
        ("t̂_C 10%–90%".into(), range(ct.q10, ct.q90)),
        (
            "training points N, α = ln N/d".into(),
            format!("{}, {:.4}", r.n_train, r.alpha),
        ),
    ]);
    s += &format_table(&rows);
    s
}
