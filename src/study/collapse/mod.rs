//! `regimes collapse`: memorisation on the empirical target — per-trajectory collapse times, the
//! excess entropy and the clone-collapse fraction — beside the REM prediction.

mod clones;
mod figures;
mod table;

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
use crate::measure::Stop;
use crate::measure::checkpoint::Snapshot;
use crate::measure::cloning::Branch;
use crate::measure::entropy::{CollapseTimes, EntropyRow, collapse_times, excess_entropy_series};
use crate::report::OutDir;
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
    /// The clone pairs' own plan where they need fewer nodes ([`clones`]), else the study's.
    clone_plan: Option<crate::plan::Plan>,
    /// Grid indices of the branch points on the clone pairs' plan.
    pub branch_steps: Vec<usize>,
    entropy_times: Vec<f64>,
}

impl Setup {
    /// Dimension of the particles.
    pub fn dim(&self) -> usize {
        self.plan.dim
    }

    /// The plan the clone pairs run on.
    pub fn clone_plan(&self) -> &crate::plan::Plan {
        self.clone_plan.as_ref().unwrap_or(&self.plan)
    }

    /// The branches of a folded clone experiment (merged shards).
    pub fn branches(
        &self,
        state: crate::measure::cloning::CloneState,
    ) -> Vec<crate::measure::cloning::Branch> {
        let plan = self.clone_plan();
        crate::measure::cloning::Cloning::from_state(plan, &self.branch_steps, state).branches
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
        // The trajectories read labels only: under the exact scheme each draws its training point
        // once and follows the bridge to it (exact in law, `plan::Draws`), so its later steps
        // compute the label alone.
        let plan = if plan.scheme.draws_component() {
            plan.drawing_once()?
        } else {
            plan
        };
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
        let model = crate::model::Model {
            process: built.process.clone(),
            target: crate::model::Target::Empirical(data.clone()),
        };
        let (clone_plan, branch_steps) =
            match clones::clone_plan(&model, &plan, cfg.start, &branch_times)? {
                Some((own, steps)) => (Some(own), steps),
                None => (None, branch_steps),
            };
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
            clone_plan,
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
        if cfg.scheme == crate::plan::Scheme::Exact {
            session.warn_all(&coarse_median(&run.tally, &inputs.grid));
        }
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
            (engine, s.clone_plan()),
            (s.pairs, &s.branch_steps),
            s.classes.as_deref(),
        )?;
        let clone_pairs = lap();
        let (clone_pairs_above_t_c, clone_pairs_below_t_c) =
            PrunedTiles::split(&engine.take_pruning(), &s.clone_plan().grid, t_c);
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
        figures::write_outputs(inputs, s, result, parts, dir, partial)
    }

    fn table(r: &Collapse) -> String {
        table::table(r)
    }

    fn plans(s: &Setup) -> Vec<&crate::plan::Plan> {
        vec![&s.plan, s.clone_plan()]
    }

    fn work(inputs: &Inputs, s: &Setup) -> u64 {
        let (particles, pairs) = (inputs.range(s.particles), inputs.range(s.pairs));
        (particles.end - particles.start) * inputs.grid.steps as u64
            + (pairs.end - pairs.start) * pair_steps(&s.branch_steps, s.clone_plan().grid.steps)
    }

    /// Trajectories and clone pairs of the slice, by their particle-steps.
    fn done(inputs: &Inputs, s: &Setup, parts: &Parts) -> f64 {
        let per_pair = pair_steps(&s.branch_steps, s.clone_plan().grid.steps);
        let done = parts.run.as_ref().map_or(0, |r| r.done) * inputs.grid.steps as u64
            + parts.clones.as_ref().map_or(0, |c| c.done) * per_pair;
        super::fraction(done, Self::work(inputs, s))
    }
}

/// A warning where t̂_C's median interval reaches steps coarser than the grid's finest: the
/// default grid is fine only up to a multiple of t_C (`scheme::COLLAPSE_SPAN`).
fn coarse_median(tally: &crate::stats::Tally, grid: &crate::plan::Grid) -> Vec<String> {
    let finest = (0..grid.steps)
        .map(|j| grid.dt_at(j))
        .fold(f64::INFINITY, f64::min);
    let Some([_, hi]) = collapse_times(tally, grid).median_interval else {
        return vec![];
    };
    let j = grid.index_of(hi);
    let step = if j > 0 { grid.dt_at(j - 1) } else { 0.0 };
    if step <= 1.5 * finest {
        return vec![];
    }
    vec![format!(
        "t̂_C's median interval reaches t = {hi:.4}, where the grid's steps are {step:.4} long \
         (its finest {finest:.4}): for a finer t̂_C give the nodes (--grid nodes:...) or --steps"
    )]
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
