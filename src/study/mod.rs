//! The studies as a library. Each study (`theory`, `run`, `speciation`, `collapse`) is one type
//! implementing [`Study`]: the keys it reads, its set-up, its measurement on an engine (folded
//! into mergeable [`Parts`]), a pure `summarise` from set-up and parts, its files and its table.
//! One driver ([`driver`]) runs any study fresh, resumed, merged from shards or split across
//! devices; the command line, `reproduce` and any other front end call it.
//!
//! Inputs are immutable ([`Inputs`]: config, grid, slice); what a run accumulates on the way
//! (warnings, the stop, checkpoints) lives in its [`Session`].

pub mod backend;
pub mod collapse;
pub mod devices;
pub mod diagnostics;
pub mod driver;
pub mod fingerprint;
pub mod guard;
pub mod keys;
pub mod modes;
pub mod parts;
pub mod preflight;
pub mod request;
pub mod resources;
pub mod run;
pub mod scheme;
mod session;
pub mod shard;
pub mod speciation;
pub mod store;
pub mod sweep;
pub mod theory;

use std::ops::Range;

use anyhow::{Result, ensure};
use serde::Serialize;

use crate::config::Config;
use crate::config::build::{self, Built};
use crate::engine::Engine;
use crate::measure::{Shard, Tick};
use crate::model::labels::Labels;
use crate::plan::{Grid, Plan, Scheme, Spacing, Steps, stability};
use crate::report::{Figure, OutDir, Progress, Render};
pub use parts::Parts;
pub use session::{Phase, Session, Stopped};

/// The studies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Theory,
    Run,
    Speciation,
    Collapse,
}

/// Code generic over the study type, run by [`Kind::dispatch`].
pub trait Visit {
    type Out;
    fn visit<S: Study>(self) -> Self::Out;
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Theory, Kind::Run, Kind::Speciation, Kind::Collapse];

    /// The study's type for `kind`: the one place where a study kind becomes its code.
    pub fn dispatch<V: Visit>(self, v: V) -> V::Out {
        match self {
            Kind::Theory => v.visit::<theory::TheoryStudy>(),
            Kind::Run => v.visit::<run::RunStudy>(),
            Kind::Speciation => v.visit::<speciation::SpeciationStudy>(),
            Kind::Collapse => v.visit::<collapse::CollapseStudy>(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Theory => "theory",
            Kind::Run => "run",
            Kind::Speciation => "speciation",
            Kind::Collapse => "collapse",
        }
    }

    pub fn from_name(name: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| anyhow::anyhow!("unknown study '{name}'"))
    }

    /// What the study reads ([`Study::READS`]).
    pub fn reads(self) -> &'static [keys::Read] {
        struct Reads;
        impl Visit for Reads {
            type Out = &'static [keys::Read];
            fn visit<S: Study>(self) -> Self::Out {
                S::READS
            }
        }
        self.dispatch(Reads)
    }

    /// Whether the study's particles sample the empirical target (training points) rather than
    /// the mixture: always for `collapse`; for `run` when the config asks for training points
    /// (`n-train` or a `train-file`, from any layer). A function of the resolved config alone,
    /// so it is in the study's fingerprint. (`speciation` clones on a train-file's points through
    /// its own set-up; `theory` samples nothing.)
    pub fn empirical(self, cfg: &Config) -> bool {
        match self {
            Kind::Collapse => true,
            Kind::Run => cfg.n_train.is_some() || cfg.train_file.is_some(),
            Kind::Theory | Kind::Speciation => false,
        }
    }

    /// Config keys the study never reads: all that [`Study::READS`] leaves out.
    pub fn ignores(self) -> Vec<&'static str> {
        keys::left_out(self.reads())
    }
}

/// One study: what it reads, how it sets up and measures, and how it reports.
pub trait Study {
    const KIND: Kind;
    /// The config keys the study reads; the others are refused as flags and reported from a
    /// config file.
    const READS: &'static [keys::Read];
    /// Whether it runs particles on an engine (`theory` does not).
    const MEASURES: bool = true;
    /// The model, plan, theory and measurement points.
    type Setup: Sync;
    /// The serialisable result (the summary's study-specific keys).
    type Output: Serialize;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Self::Setup>;

    /// Measures the inputs' slice of the study on `engine`, folding into parts.
    fn measure<E: Engine>(
        inputs: &Inputs,
        setup: &Self::Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts>;

    /// The result from the set-up and the folded parts (a run's own, or merged slices).
    fn summarise(inputs: &Inputs, setup: &Self::Setup, parts: &Parts) -> Result<Self::Output>;

    /// The study's CSV series, samples and figures; `partial` describes a run that stopped
    /// early (for figure titles).
    fn write(
        inputs: &Inputs,
        setup: &Self::Setup,
        output: &Self::Output,
        parts: &Parts,
        out: &OutDir,
        partial: Option<&str>,
    ) -> Result<()>;

    /// The plans the measurement runs, for the engine to prepare ([`Engine::prepare`]) before
    /// the progress clock starts and as part of the set-up's time.
    fn plans(_setup: &Self::Setup) -> Vec<&crate::plan::Plan> {
        vec![]
    }

    /// The particle-steps the slice's measurement runs on the engine (for one progress bar and
    /// ETA over the whole study).
    fn work(_inputs: &Inputs, _setup: &Self::Setup) -> u64 {
        0
    }

    /// The fraction of the slice's work the parts hold (1 for a completed run).
    fn done(_inputs: &Inputs, _setup: &Self::Setup, _parts: &Parts) -> f64 {
        1.0
    }

    /// The human summary.
    fn table(output: &Self::Output) -> String;
}

/// What a study reads: the resolved config, its grid, and the slice of its particles this
/// process measures.
#[derive(Clone)]
pub struct Inputs {
    pub cfg: Config,
    pub grid: Grid,
    /// The slice of the particles this run measures (`--shard`); None: all of them.
    pub shard: Option<Shard>,
    /// This slice of the shard when the study runs on several devices (`--devices`).
    pub device: Option<Shard>,
    /// No progress bars or notes on stderr.
    pub quiet: bool,
}

impl Inputs {
    /// The whole study `kind` of `cfg`, validated, with its grid (the scheme `auto` resolved:
    /// [`scheme::resolve`]).
    pub fn new(kind: Kind, cfg: Config, quiet: bool) -> Result<Inputs> {
        // Explicit schemes are judged on the precision of the target the study samples.
        let empirical = kind.empirical(&cfg) || cfg.train_file.is_some();
        let auto = cfg.scheme == Scheme::Auto;
        let cfg = scheme::resolve(cfg, kind)?;
        if auto && !quiet && kind != Kind::Theory {
            crate::note!(
                "scheme auto: {} (steps {}, grid {}; the study's times are nodes)",
                clap::ValueEnum::to_possible_value(&cfg.scheme)
                    .map_or(String::new(), |v| v.get_name().to_string()),
                cfg.steps,
                match &cfg.grid {
                    crate::plan::Spacing::Nodes(v) => format!("{} nodes", v.len()),
                    g => g.to_string(),
                }
            );
        }
        // The times the study measures at are nodes, not the nearest node.
        // (`branch-times auto` chooses its times as it measures: see `speciation::auto`.)
        let branch = cfg.branch_times.as_ref().and_then(|b| b.times());
        let wanted: Vec<f64> = [
            branch,
            cfg.record_times.as_deref(),
            cfg.entropy_times.as_deref(),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
        let steps = match cfg.steps {
            Steps::Count(n) => n,
            Steps::Auto => {
                let n = auto_steps(&cfg, empirical, &wanted)?;
                if !quiet {
                    crate::note!(
                        "steps auto: {n} steps (Δt = {:.3e}) for an expected φ bias ≤ {AUTO_BIAS} \
                         and every rotating mode within {}× of the exact scale with --scheme {}",
                        cfg.t_max / n as f64,
                        stability::AUTO_SCALE,
                        scheme_name(cfg.scheme)
                    );
                }
                n
            }
        };
        let grid = Grid::spaced(cfg.t_max, steps, &cfg.grid)?.with_times(&wanted)?;
        Ok(Inputs {
            cfg,
            grid,
            shard: None,
            device: None,
            quiet,
        })
    }

    /// The particle (or clone pair) indices of this run's slice of a study of `total`.
    pub fn range(&self, total: u64) -> Range<u64> {
        let r = self.shard.unwrap_or(Shard::WHOLE).range(total);
        match self.device {
            // Device slices start on batch-aligned particles, so GPU workgroups fold the same
            // particles as in one run.
            Some(d) => {
                let align = crate::measure::BATCH_ALIGN as u64;
                let len = r.end - r.start;
                let cut = |i: u64| match i {
                    0 => r.start,
                    i if i == d.count => r.end,
                    i => {
                        let slice = Shard {
                            index: i,
                            count: d.count,
                        };
                        r.start + slice.range(len).start / align * align
                    }
                };
                cut(d.index)..cut(d.index + 1)
            }
            None => r,
        }
    }

    /// Whether this slice measures the host-side parts of a study (the first slice does).
    pub fn first_slice(&self) -> bool {
        let first = |s: Option<Shard>| s.is_none_or(|s| s.index == 0);
        first(self.shard) && first(self.device)
    }

    pub fn particles(&self, default: u64) -> u64 {
        self.cfg.particles.unwrap_or(default)
    }

    pub fn pairs(&self, default: u64) -> u64 {
        self.cfg.pairs.unwrap_or(default)
    }

    /// A note on stderr unless quiet.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            crate::note!("{text}");
        }
    }

    /// Runs `f` with a progress bar over `total` particle-steps.
    pub fn with_progress<R>(&self, total: u64, what: &str, f: impl FnOnce(Tick) -> R) -> R {
        let progress = Progress::new(total, what, self.quiet);
        let r = f(&mut |n| progress.inc(n));
        progress.finish();
        r
    }

    /// Grid indices of the requested times (nearest grid point), ascending and distinct; with
    /// `before_end` the final point t = 0 is excluded (nothing to branch there).
    pub fn grid_points(&self, times: &[f64], before_end: bool) -> Vec<usize> {
        let grid = &self.grid;
        let last = if before_end {
            grid.steps - 1
        } else {
            grid.steps
        };
        let mut j: Vec<usize> = times.iter().map(|&t| grid.index_of(t).min(last)).collect();
        j.sort_unstable();
        j.dedup();
        j
    }

    /// The mixture model of the config, its plan, and the theory (warnings reported).
    pub fn mixture_setup(
        &self,
        session: &mut Session,
    ) -> Result<(Built, Plan, crate::theory::Theory)> {
        let cfg = &self.cfg;
        let built = build::build(cfg)?;
        let plan = Plan::new(
            &built.mixture_model(),
            self.grid.clone(),
            cfg.scheme,
            cfg.start,
        )?;
        let theory = crate::theory::theory(
            &built.process,
            &built.mixture,
            None,
            cfg.t_max,
            explicit_dt(cfg, &self.grid),
        );
        session.warn_all(&theory.warnings);
        session.warn_all(plan.stability_warning().as_slice());
        Ok((built, plan, theory))
    }

    /// The empirical target of the config (training points drawn or read), its plan, and the
    /// theory with t_C for its N points (warnings reported).
    pub fn empirical_setup(&self, session: &mut Session) -> Result<EmpiricalSetup> {
        let cfg = &self.cfg;
        let built = build::build(cfg)?;
        let data = build::training_set(cfg, &built)?;
        // One definition of t_C whatever the source of the points: the REM criterion on the
        // target's within-class covariance, as `theory` computes it.
        let theory = crate::theory::theory(
            &built.process,
            &built.mixture,
            Some(data.points.nrows()),
            cfg.t_max,
            explicit_dt(cfg, &self.grid),
        );
        session.warn_all(&theory.warnings);
        let model = crate::model::Model {
            process: built.process.clone(),
            target: crate::model::Target::Empirical(data.clone()),
        };
        let plan = Plan::new(&model, self.grid.clone(), cfg.scheme, cfg.start)?;
        session.warn_all(plan.stability_warning().as_slice());
        Ok(EmpiricalSetup {
            built,
            data,
            plan,
            theory,
        })
    }
}

pub use crate::theory::relaxation::AUTO_BIAS;

/// `--steps auto` of the exact scheme: the transition has no step bias, so the grid's uniform
/// nodes only resolve the recorded series (the study's times are nodes besides).
pub const EXACT_STEPS: usize = 20;

/// Above this many steps `--steps auto` refuses an explicit scheme instead of picking it.
const AUTO_MAX_STEPS: usize = 1_000_000;

/// `--steps auto`: the least steps whose expected φ bias is at most [`AUTO_BIAS`] and on which
/// the explicit schemes keep every rotating mode's scale within [`stability::AUTO_SCALE`]× of the exact
/// dynamics (the judgement [`Plan::new`] refuses by and warns by, on the grid the study will
/// run: its spacing and the times it measures at). The bias per unit of the longest Δt was
/// measured by `reproduce discretisation` (d = 16, seed 1, 40 000 pairs): Euler and the
/// probability flow ≈ 0.028·‖QU‖₂ + 0.04 ([`crate::theory::relaxation::explicit_bias_rate`], the
/// stiffness warning's rule), at least 100 steps; the exponential schemes ≈ 0.005·‖QU‖₂ + 0.015
/// (lu-tang: −0.015 at Δt = 0.2, −0.005 at 0.1, −0.007 at 0.07), at least 50; the exact
/// transition has no step bias, so 20 steps (the study's times are nodes; the steps only resolve
/// the recorded series). `empirical`: the target is a training set (its precision Σ_t⁻¹ is
/// stiffer near t = 0 than a mixture's).
pub fn auto_steps(cfg: &Config, empirical: bool, wanted: &[f64]) -> Result<usize> {
    let built = build::build(cfg)?;
    let p = &built.process;
    let (rate, least) = match cfg.scheme {
        // Heun: the probability flow's rule, an upper bound (its bias is second order in Δt).
        Scheme::EulerMaruyama | Scheme::ProbabilityFlow | Scheme::Heun => {
            (crate::theory::relaxation::explicit_bias_rate(p), 100)
        }
        Scheme::Exponential | Scheme::ExponentialFlow => {
            let rotation = crate::theory::relaxation::stiffness(p, 1.0);
            (0.005 * rotation + 0.015, 50)
        }
        // (`auto` is resolved before the steps; exact is what it runs where steps are auto.)
        Scheme::Exact | Scheme::Auto => return Ok(EXACT_STEPS),
    };
    // The longest step allowed: T/n on a uniform grid, the first step T(1 − ρ) of a geometric
    // one (ρ = (t_min/T)^{1/(n−1)}).
    let dt = (AUTO_BIAS / rate).min(cfg.t_max);
    let accurate = match &cfg.grid {
        Spacing::Geometric { t_min } if *t_min < cfg.t_max && dt < cfg.t_max => {
            1.0 + ((t_min / cfg.t_max).ln() / (1.0 - dt / cfg.t_max).ln()).ceil()
        }
        _ => (cfg.t_max / dt).ceil(),
    };
    let mut n = (accurate.min(1e12) as usize).max(least);
    if !cfg.scheme.explicit() {
        return Ok(n);
    }
    let cov = (!empirical).then_some(&built.mixture.cov);
    for _ in 0..8 {
        ensure!(
            n <= AUTO_MAX_STEPS,
            "steps auto: --scheme {} would need {n} steps or more on this model to keep every \
             rotating mode of the reverse drift within {}× of the exact dynamics' scale (a fast \
             rotation grows by √((1 + aΔt)² + (ωΔt)²)·e^(−aΔt) per step); use --scheme exact (20 \
             steps suffice) or exponential, or name --steps yourself",
            scheme_name(cfg.scheme),
            stability::AUTO_SCALE
        );
        let grid = Grid::spaced(cfg.t_max, n, &cfg.grid)?.with_times(wanted)?;
        let modes = stability::Modes::for_grid(&grid, p.dim(), |t| {
            stability::linear_part(p, cov, cfg.scheme, t)
        })?;
        if modes.judge(&grid, cfg.scheme, 1.0).accurate() || matches!(cfg.grid, Spacing::Nodes(_)) {
            return Ok(n); // (explicit nodes: the plan judges them and says what to do)
        }
        let Some(r) = modes.refinement(&grid, cfg.scheme, stability::Verdict::accurate) else {
            return Ok(n);
        };
        // A little beyond the estimate: the refined grid is not exactly the respaced one.
        n = ((n as f64 * r * 1.01).ceil().min(1e12) as usize).max(n + 1);
    }
    Ok(n)
}

fn scheme_name(scheme: Scheme) -> String {
    clap::ValueEnum::to_possible_value(&scheme).map_or(String::new(), |v| v.get_name().to_string())
}

/// The longest step of a first-order explicit scheme (what the theory's stiffness warning is
/// about: its rate is Euler–Maruyama's measured bias per unit Δt), or 0 for the schemes that
/// integrate the linear part exactly and for Heun, whose bias is second order (nothing to warn
/// about; the plan's stability judgement still covers Heun's growth).
pub fn explicit_dt(cfg: &Config, grid: &Grid) -> f64 {
    if cfg.scheme.explicit() && !cfg.scheme.corrects() {
        grid.max_dt()
    } else {
        0.0
    }
}

impl Inputs {
    /// With --train-file: the theory of the points themselves and their labels
    /// ([`crate::theory::data`]); None for a drawn training set.
    pub fn data_theory(
        &self,
        built: &Built,
        data: &crate::model::Empirical,
    ) -> Result<Option<(crate::theory::data::DataTheory, Option<Labels>)>> {
        let cfg = &self.cfg;
        if cfg.train_file.is_none() {
            return Ok(None);
        }
        let labels = build::training_labels(cfg, data)?;
        let theory = crate::theory::data::data_theory(
            &built.process,
            &data.points,
            labels.as_ref(),
            cfg.t_max,
        )?;
        Ok(Some((theory, labels)))
    }
}

/// The empirical target of a study, built ([`Inputs::empirical_setup`]).
pub struct EmpiricalSetup {
    pub built: Built,
    pub data: crate::model::Empirical,
    pub plan: Plan,
    pub theory: crate::theory::Theory,
}

/// samples.npy (particles × d, f32), in the (x, y) frame for coupled modalities, and
/// labels.npy beside it (particles, i64: each sample's class or nearest training point, −1 for
/// none).
fn write_samples(out: &OutDir, cfg: &Config, samples: &parts::Samples, dim: usize) -> Result<()> {
    write_samples_as(out, cfg, samples, dim, (SAMPLES, LABELS))
}

/// The samples at each record time, `samples_t{t}.npy` and `labels_t{t}.npy` (t as written, e.g.
/// `samples_t2.5.npy`), listed with their times in `snapshots.csv`.
fn write_snapshots(
    out: &OutDir,
    cfg: &Config,
    snapshots: &[(f64, parts::Samples)],
    dim: usize,
) -> Result<()> {
    if snapshots.is_empty() {
        return Ok(());
    }
    let mut rows = vec![];
    for (t, s) in snapshots {
        let (x, labels) = (format!("samples_t{t}.npy"), format!("labels_t{t}.npy"));
        write_samples_as(out, cfg, s, dim, (&x, &labels))?;
        rows.push((vec![x, labels], vec![*t, s.rows as f64]));
    }
    out.write_csv_named(
        "snapshots.csv",
        (&["samples", "labels"], &["t", "rows"]),
        rows,
    )?;
    Ok(())
}

fn write_samples_as(
    out: &OutDir,
    cfg: &Config,
    samples: &parts::Samples,
    dim: usize,
    (x_name, labels_name): (&str, &str),
) -> Result<()> {
    let mut x = samples.x.clone();
    if cfg.coupling.is_some() {
        crate::model::coupling::mode_frame_f32(&mut x, dim);
    }
    out.write_npy_f32(x_name, &[samples.rows, dim], &x)?;
    let labels: Vec<i64> = samples
        .labels
        .iter()
        .map(|&l| {
            if l == crate::engine::NO_LABEL {
                -1
            } else {
                i64::from(l)
            }
        })
        .collect();
    out.write_bytes(
        labels_name,
        &crate::io::encode_npy(labels_name, &[samples.rows], &labels)?,
    )?;
    Ok(())
}

/// `done / total` (1 for an empty slice: nothing was left to do).
fn fraction(done: u64, total: u64) -> f64 {
    if total == 0 {
        1.0
    } else {
        done as f64 / total as f64
    }
}

/// A figure title with the study's parameters (d, ‖m‖², U, Q, the coupling, `count`), marked
/// when the run stopped early.
fn title(title: &str, inputs: &Inputs, count: &str, partial: Option<&str>) -> String {
    let cfg = &inputs.cfg;
    let mut params = vec![format!("d = {}", cfg.dim)];
    if cfg.mixture_file.is_none() && cfg.train_file.is_none() {
        let norm2 = cfg.mean_norm2.unwrap_or(cfg.dim as f64);
        params.push(format!("‖m‖² = {norm2}"));
    }
    params.push(format!("U = {}", cfg.u));
    params.push(format!("Q = {}", cfg.q));
    if let Some(c) = &cfg.coupling {
        params.push(format!("coupling {c}"));
    }
    params.push(count.to_string());
    let title = format!("{title} ({})", params.join(", "));
    match partial {
        Some(p) => format!("{title} — partial: {p}"),
        None => title,
    }
}

/// Writes a study's figure `stem` (SVG, PNG, data CSV) at the config's figure size and dpi,
/// its legend beside the axes.
fn write_figure(inputs: &Inputs, out: &OutDir, stem: &str, figure: &Figure) -> Result<()> {
    let render = Render::sized(inputs.cfg.figure_size, Some(inputs.cfg.dpi));
    crate::report::write_figure(out, stem, figure, &render)
}

/// The times of a theory curve beside measurements at `measured`: evenly spaced over their
/// span (padded by 15 % each side, staying above 0), with `knots` (where the curve bends, e.g.
/// t_C) added. 200 of them, where each costs O(d) (a diagonal A); with a dense A or a schedule
/// each costs a few d×d decompositions, and the grid holds what about 5·10⁹ flops afford, or
/// just the measured times when that is fewer than 24.
fn curve_times(measured: &[f64], knots: &[f64], process: &crate::model::Process) -> Vec<f64> {
    let (lo, hi) = measured
        .iter()
        .filter(|t| t.is_finite() && **t > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| {
            (a.min(t), b.max(t))
        });
    if lo > hi {
        return vec![];
    }
    let d = process.dim() as f64;
    let cheap = process.schedule.is_none() && process.a.form() != crate::linalg::Form::Dense;
    let n = if cheap {
        200
    } else {
        (5e9 / (d * d * d)).min(200.0) as usize
    };
    let mut ts: Vec<f64> = if n < 24 || hi == lo {
        measured.to_vec()
    } else {
        let pad = 0.15 * (hi - lo);
        let (a, b) = ((lo - pad).max(0.5 * lo), hi + pad);
        (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .chain(knots.iter().copied().filter(|k| (a..=b).contains(k)))
            .collect()
    };
    ts.retain(|t| t.is_finite() && *t > 0.0);
    ts.sort_by(f64::total_cmp);
    ts.dedup();
    ts
}

/// A measured value with its standard error for a table: `0.7129 ± 0.0032`, or `—` when
/// nothing was measured.
pub(crate) fn pm(value: Option<f64>, stderr: Option<f64>) -> String {
    match (value, stderr) {
        (Some(v), Some(e)) => format!("{v:.4} ± {e:.4}"),
        (Some(v), None) => format!("{v:.4}"),
        (None, _) => "—".to_string(),
    }
}

/// The final samples of a study with `--save-samples`.
const SAMPLES: &str = "samples.npy";
/// The label of each sample (see [`write_samples`]).
const LABELS: &str = "labels.npy";

/// Distinct values in first-seen order, joined.
fn distinct(items: impl IntoIterator<Item = String>) -> String {
    let mut seen: Vec<String> = vec![];
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scheme;

    /// The stiffness warning's rate is first order's: only Euler–Maruyama and the probability
    /// flow's Euler step are warned about, not Heun nor the exactly integrated schemes.
    #[test]
    fn only_first_order_explicit_schemes_get_the_stiffness_step() {
        let grid = Grid::new(10.0, 100).unwrap();
        for (scheme, warned) in [
            (Scheme::EulerMaruyama, true),
            (Scheme::ProbabilityFlow, true),
            (Scheme::Heun, false),
            (Scheme::Exact, false),
            (Scheme::Exponential, false),
        ] {
            let cfg = Config {
                scheme,
                ..Config::default()
            };
            assert_eq!(explicit_dt(&cfg, &grid) > 0.0, warned, "{scheme:?}");
        }
    }
}
