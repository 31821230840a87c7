//! The command-line interface: parse flags and config, pick an engine, run a study, print and
//! write its summary. Every study returns a serialisable result; this module wraps it in the
//! common envelope (command, version, seed, backend, wall time, resolved config).

pub mod args;
pub mod bench;
pub mod build;
pub mod collapse;
pub mod devices;
pub mod reproduce;
pub mod resources;
pub mod run;
pub mod speciation;
pub mod theory;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{Backend, Config};
use crate::engine::Engine;
use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};
use crate::measure::Tick;
use crate::plan::{Grid, Plan};
use crate::report::{OutDir, Progress};

const ABOUT: &str = "Sample diffusion models with a non-reversible Ornstein–Uhlenbeck forward process \
and measure their dynamical regimes: speciation (samples commit to a class) and collapse (samples \
become copies of training points), beside the theory.";

const LONG_ABOUT: &str = "Sample diffusion models with a non-reversible Ornstein–Uhlenbeck forward \
process dx = −(I+Q)U x dt + √2 dW and measure their dynamical regimes beside the theory.

U is the stationary precision (--u), Q an antisymmetric rotation (--q) that breaks detailed balance \
without changing the stationary law. Generation integrates the reverse SDE with the exact score from \
t = T (--t-max) down to 0 in --steps Euler–Maruyama steps, on the GPU (wgpu) or the CPU.

Start with:
  regimes theory --preset biroli --dim 64          predictions only, instant
  regimes speciation --preset biroli               cloning experiment vs. t_S = ½ ln d
  regimes speciation --u geomspace:0.2:5 --q optimal --mean soft
  regimes collapse --preset biroli --dim 8 --n-train 200
Parameters can come from a TOML file (--config study.toml, keys as the flags without '--'); flags \
override the file, which overrides --preset.";

#[derive(Parser)]
#[command(name = "regimes", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Theoretical predictions only: spectral gaps, s(t) and t_S, t_C, stiffness of the step.
    #[command(allow_negative_numbers = true)]
    Theory(StudyArgs),
    /// Run particles from T to 0 and stream moments, class fractions and posterior purity at
    /// --record-times; --save-samples writes the final particles to samples.npy.
    #[command(allow_negative_numbers = true)]
    Run(StudyArgs),
    /// Cloning experiment: branch trajectories at --branch-times into two clones and measure the
    /// probability φ(t) that both end in the same class; t_S is where φ crosses F(1) = 0.7752.
    #[command(allow_negative_numbers = true)]
    Speciation(StudyArgs),
    /// Collapse on the empirical target (--n-train points): per-trajectory collapse times, excess
    /// entropy at --entropy-times and the clone-collapse fraction, beside the REM time t_C.
    #[command(allow_negative_numbers = true)]
    Collapse(StudyArgs),
    /// Measure engine throughput (particle-steps/s, GFLOP/s, GB/s) on standard workloads,
    /// against the machine's measured peak.
    #[command(long_about = bench::LONG_ABOUT)]
    Bench(bench::BenchArgs),
    /// Reproduce one of the sources' experiments (speciation-gmm, collapse-gmm, gap, steering,
    /// multimodal): CSV data, SVG and PNG plots, summary.json with every check, report.md.
    /// --quick finishes within a minute on 2 CPU cores.
    Reproduce(reproduce::ReproduceArgs),
    /// List the GPU adapters wgpu can see, with backend, type, limits and features.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct StudyArgs {
    #[command(flatten)]
    config: args::ConfigArgs,
    /// Directory for summary.json, CSV series, plots and samples (created; refused if it exists
    /// and is not empty, unless --force).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write into an existing non-empty --out directory, replacing files of the same name.
    #[arg(long)]
    force: bool,
    /// Print the machine-readable summary (JSON) on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// No progress bar or notes on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// The empirical target of a study, built ([`Context::empirical_setup`]).
pub struct EmpiricalSetup {
    pub built: build::Built,
    pub data: crate::model::Empirical,
    pub plan: Plan,
    pub theory: crate::theory::Theory,
}

/// What a study needs besides its engine: the config, the grid, the output directory.
pub struct Context {
    pub cfg: Config,
    /// The training points were asked for (`--n-train`, `--train-file`): `run` samples the
    /// empirical target instead of the mixture.
    pub empirical: bool,
    pub grid: Grid,
    pub out: Option<OutDir>,
    pub quiet: bool,
    pub warnings: Vec<String>,
    /// Why a measurement stopped before completing (interrupt, device error); partial results
    /// are still reported and written.
    pub stopped_early: Option<String>,
}

impl Context {
    pub fn warn_all(&mut self, warnings: &[String]) {
        for w in warnings {
            if !self.quiet {
                eprintln!("warning: {w}");
            }
            self.warnings.push(w.clone());
        }
    }

    pub fn stopped(&mut self, reason: Option<String>) {
        if self.stopped_early.is_none() {
            self.stopped_early = reason;
        }
    }

    /// The mixture model of the config, its plan, and the theory (warnings reported).
    pub fn mixture_setup(&mut self) -> Result<(build::Built, Plan, crate::theory::Theory)> {
        let cfg = &self.cfg;
        let built = build::build(cfg)?;
        let plan = Plan::new(&built.mixture_model(), self.grid, cfg.scheme, cfg.start)?;
        let theory = crate::theory::theory(
            &built.process,
            &built.mixture,
            None,
            cfg.t_max,
            self.grid.dt(),
        );
        self.warn_all(&theory.warnings);
        Ok((built, plan, theory))
    }

    /// The empirical target of the config (training points drawn or read), its plan, and the
    /// theory with t_C for its N points (warnings reported).
    pub fn empirical_setup(&mut self) -> Result<EmpiricalSetup> {
        let cfg = self.cfg.clone();
        let built = build::build(&cfg)?;
        let data = build::training_set(&cfg, &built)?;
        // One definition of t_C whatever the source of the points: the REM criterion on the
        // target's within-class covariance, as `theory` computes it.
        let theory = crate::theory::theory(
            &built.process,
            &built.mixture,
            Some(data.points.nrows()),
            cfg.t_max,
            self.grid.dt(),
        );
        self.warn_all(&theory.warnings);
        let model = crate::model::Model {
            process: built.process.clone(),
            target: crate::model::Target::Empirical(data.clone()),
        };
        let plan = Plan::new(&model, self.grid, cfg.scheme, cfg.start)?;
        Ok(EmpiricalSetup {
            built,
            data,
            plan,
            theory,
        })
    }

    pub fn particles(&self, default: u64) -> u64 {
        self.cfg.particles.unwrap_or(default)
    }

    pub fn pairs(&self, default: u64) -> u64 {
        self.cfg.pairs.unwrap_or(default)
    }

    /// Runs `f` with a progress bar over `total` particle-steps.
    pub fn with_progress<R>(&self, total: u64, what: &str, f: impl FnOnce(Tick) -> R) -> R {
        let progress = Progress::new(total, what, self.quiet);
        let r = f(&mut |n| progress.inc(n));
        progress.finish();
        r
    }
}

/// Grid indices of the requested times (nearest grid point), ascending and distinct; with
/// `before_end` the final point t = 0 is excluded (nothing to branch there).
pub fn grid_points(grid: &Grid, times: &[f64], before_end: bool) -> Vec<usize> {
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

/// The common envelope of every summary.
#[derive(Serialize)]
struct Summary<'a, T: Serialize> {
    command: &'a str,
    version: &'a str,
    seed: u64,
    backend: String,
    wall_seconds: f64,
    /// GPU shader compilation (JIT) time, kept apart from the run's wall time.
    shader_compile_seconds: Option<f64>,
    /// Set when the run stopped before completing; counts in the result are what completed.
    stopped_early: Option<&'a str>,
    warnings: &'a [String],
    config: &'a Config,
    #[serde(flatten)]
    result: T,
}

/// The studies: commands that resolve a [`Config`] and report a summary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Study {
    Theory,
    Run,
    Speciation,
    Collapse,
}

impl Study {
    /// Config keys the study never reads.
    fn ignores(self) -> &'static [&'static str] {
        match self {
            // Theory runs no engine and samples nothing.
            Study::Theory => &[
                "particles",
                "pairs",
                "branch-times",
                "entropy-times",
                "record-times",
                "entropy-samples",
                "save-samples",
                "scheme",
                "start",
                "backend",
                "adapter",
                "batch",
                "threads",
                "steps-per-dispatch",
            ],
            Study::Run => &["pairs", "branch-times", "entropy-times", "entropy-samples"],
            Study::Speciation => &[
                "particles",
                "n-train",
                "train-file",
                "entropy-times",
                "entropy-samples",
                "record-times",
                "save-samples",
            ],
            Study::Collapse => &["record-times"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Study::Theory => "theory",
            Study::Run => "run",
            Study::Speciation => "speciation",
            Study::Collapse => "collapse",
        }
    }
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let (study_kind, args) = match cli.command {
        Command::Devices { json } => return devices::devices(json),
        Command::Bench(a) => return bench::main(a),
        Command::Reproduce(a) => return reproduce::main(a),
        Command::Theory(a) => (Study::Theory, a),
        Command::Run(a) => (Study::Run, a),
        Command::Speciation(a) => (Study::Speciation, a),
        Command::Collapse(a) => (Study::Collapse, a),
    };
    let name = study_kind.name();
    let cfg = args.config.resolve()?;
    let empirical = args.config.n_train.is_some() || cfg.train_file.is_some();
    let early_warnings = preflight(study_kind, &args, &cfg, empirical)?;
    let grid = Grid::new(cfg.t_max, cfg.steps)?;
    // Refuse a bad --out before any work is done.
    let out = args
        .out
        .as_deref()
        .map(|p| OutDir::create_for(p, args.force, name))
        .transpose()?;
    let mut cx = Context {
        cfg,
        grid,
        out,
        quiet: args.quiet || args.json,
        warnings: vec![],
        stopped_early: None,
        empirical,
    };
    cx.warn_all(&early_warnings);
    // SIGINT or SIGTERM stops at the next step boundary; the partial results are reported and
    // written, marked as stopped early (a second signal exits at once).
    let _ = ctrlc::set_handler(crate::measure::request_stop);
    let mut started = Instant::now();
    let mut shader_compile_seconds = None;
    let (backend, table, json) = match study_kind {
        Study::Theory => {
            let r = theory::theory(&mut cx)?;
            (
                "none".to_string(),
                theory::table(&r),
                serde_json::to_value(&r)?,
            )
        }
        _ => {
            let engine = select_engine(&cx)?;
            if let Selected::Gpu(e) = &engine {
                shader_compile_seconds = Some(e.compile_seconds());
                started = Instant::now();
            }
            match engine {
                Selected::Cpu(e) => study(study_kind, &mut cx, &e)?,
                Selected::Gpu(e) => study(study_kind, &mut cx, e.as_ref())?,
            }
        }
    };
    let summary = Summary {
        command: name,
        version: env!("CARGO_PKG_VERSION"),
        seed: cx.cfg.seed,
        backend,
        wall_seconds: started.elapsed().as_secs_f64(),
        shader_compile_seconds,
        stopped_early: cx.stopped_early.as_deref(),
        warnings: &cx.warnings,
        config: &cx.cfg,
        result: json,
    };
    if let Some(out) = cx.out.as_ref()
        && let Err(e) = out
            .write_json("summary.json", &summary)
            .and_then(|_| out.finish())
    {
        // The work is done: never lose its result to a full disk or a vanished directory.
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Err(e.context("the summary above could not be written to the output directory"));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{table}");
        if let Some(out) = &cx.out {
            println!("wrote {}", out.files().join(", "));
        }
    }
    match &cx.stopped_early {
        Some(reason) => anyhow::bail!(
            "stopped early ({reason}); the partial results above cover what completed"
        ),
        None => Ok(()),
    }
}

/// What a study checks before any work, with the warnings it has for the user: settings it does
/// not read (refused as flags, reported from a config file), cloning under the deterministic
/// flow, and the memory and disk it will need.
fn preflight(kind: Study, args: &StudyArgs, cfg: &Config, empirical: bool) -> Result<Vec<String>> {
    let name = kind.name();
    // Settings the study does not read: refused as flags, reported when a shared file sets them.
    let ignored = kind.ignores();
    if let Some(k) = args
        .config
        .given()
        .iter()
        .find(|k| ignored.contains(&k.as_str()))
    {
        anyhow::bail!("--{k} has no effect on `{name}`; drop it (see regimes {name} --help)");
    }
    let mut early_warnings: Vec<String> = args
        .config
        .file_keys()
        .iter()
        .filter(|k| ignored.contains(&k.as_str()))
        .map(|k| format!("{k} (from the config file) has no effect on `{name}`"))
        .collect();
    if matches!(kind, Study::Speciation | Study::Collapse)
        && cfg.scheme == crate::plan::Scheme::ProbabilityFlow
    {
        early_warnings.push(
            "the probability flow is deterministic: two clones never separate, so every clone \
             probability is 1 by construction (use --scheme euler-maruyama)"
                .to_string(),
        );
    }
    // Estimate what the study needs before anything large is allocated or written.
    let keeps_samples = cfg.save_samples && matches!(kind, Study::Run | Study::Collapse);
    let uses_training = empirical || kind == Study::Collapse;
    resources::check_memory(cfg, keeps_samples, uses_training)?;
    if let Some(dir) = &args.out {
        let existing = dir
            .ancestors()
            .find(|a| a.exists())
            .unwrap_or(Path::new("."));
        resources::check_disk(cfg, keeps_samples, existing)?;
    }
    Ok(early_warnings)
}

enum Selected {
    Cpu(CpuEngine),
    Gpu(Box<GpuEngine>),
}

/// The engine of `--backend`: auto takes a hardware GPU when wgpu sees one (or the `--adapter`
/// named), and the CPU engine otherwise — a software adapter such as lavapipe is slower than it.
fn select_engine(cx: &Context) -> Result<Selected> {
    let cfg = &cx.cfg;
    let gpu = |adapter: Option<String>| -> Result<Selected> {
        let options = GpuOptions {
            adapter,
            steps_per_dispatch: cfg.steps_per_dispatch,
            ..GpuOptions::default()
        };
        let engine = GpuEngine::with_options(options)?;
        if !cx.quiet {
            eprintln!("gpu: shaders compiled in {:.2} s", engine.compile_seconds());
        }
        Ok(Selected::Gpu(Box::new(engine)))
    };
    match cfg.backend {
        Backend::Cpu => cpu_engine(cfg),
        Backend::Gpu => gpu(cfg.adapter.clone()),
        Backend::Auto if cfg.adapter.is_some() => gpu(cfg.adapter.clone()),
        Backend::Auto => {
            let hardware = list_adapters().into_iter().find(|a| a.device_type != "Cpu");
            match hardware {
                Some(a) => gpu(Some(a.name)),
                None => {
                    if !cx.quiet {
                        eprintln!(
                            "backend auto: no hardware GPU adapter found, using the CPU engine"
                        );
                    }
                    cpu_engine(cfg)
                }
            }
        }
    }
}

fn cpu_engine(cfg: &Config) -> Result<Selected> {
    Ok(Selected::Cpu(match cfg.threads {
        Some(t) => CpuEngine::with_threads(t)?,
        None => CpuEngine::new(),
    }))
}

/// Runs a study on an engine: (backend description, human table, JSON result).
fn study<E: Engine>(
    kind: Study,
    cx: &mut Context,
    engine: &E,
) -> Result<(String, String, serde_json::Value)> {
    let backend = engine.describe();
    if !cx.quiet {
        eprintln!("engine: {backend}");
    }
    Ok(match kind {
        Study::Run => {
            let r = run::run(cx, engine)?;
            (backend, run::table(&r), serde_json::to_value(&r)?)
        }
        Study::Speciation => {
            let r = speciation::speciation(cx, engine)?;
            (backend, speciation::table(&r), serde_json::to_value(&r)?)
        }
        Study::Collapse => {
            let r = collapse::collapse(cx, engine)?;
            (backend, collapse::table(&r), serde_json::to_value(&r)?)
        }
        Study::Theory => unreachable!("theory runs no engine"),
    })
}

/// samples.npy (particles × d, f32), in the (x, y) frame for coupled modalities.
fn write_samples(out: &OutDir, cfg: &Config, s: &crate::engine::Particles) -> Result<()> {
    let mut x = s.x.clone();
    if cfg.coupling.is_some() {
        crate::model::coupling::mode_frame_f32(&mut x, s.dim);
    }
    out.write_npy_f32("samples.npy", &[s.len(), s.dim], &x)?;
    Ok(())
}
