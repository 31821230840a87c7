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
pub mod scaleout;
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
use crate::measure::checkpoint::{Checkpointer, Every, Shard, Snapshot};
use crate::plan::{Grid, Plan};
use crate::report::{OutDir, Progress};
use scaleout::{CheckpointFile, ShardFile, ShardParts, Store};

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
    /// Combine the --out directories of the shards of one study (--shard I/N) into the summary,
    /// CSV series and plots of the unsharded run. Refuses shards of different studies,
    /// duplicates and missing slices, naming them.
    Merge {
        /// The shard directories, in any order.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Directory for the merged outputs.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write into an existing non-empty --out directory.
        #[arg(long)]
        force: bool,
        /// Print the summary (JSON) on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// No notes on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Continue an interrupted run (killed, preempted, Ctrl-C) from the last checkpoint in its
    /// --out directory (written with --checkpoint-every); the results equal the uninterrupted
    /// run's.
    Resume {
        /// The --out directory of the interrupted run.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print the summary (JSON) on stdout instead of a table.
        #[arg(long)]
        json: bool,
        /// No progress bar or notes on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
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
    /// Run slice I of N of the particles (clone pairs) and write its mergeable statistics to
    /// --out/shard.json; `regimes merge` combines the N shard directories into the full study.
    /// Shards are numbered from 0. Example: --shard 0/3
    #[arg(
        long,
        value_name = "I/N",
        allow_hyphen_values = true,
        help_heading = "Scale-out"
    )]
    shard: Option<Shard>,
    /// Write a checkpoint into --out every so many time steps (500) or so much wall time (30s,
    /// 10m, 1h), and on SIGINT/SIGTERM; `regimes resume DIR` continues the run exactly.
    #[arg(long, value_name = "STEPS|DURATION", help_heading = "Scale-out")]
    checkpoint_every: Option<Every>,
    /// Run one slice per GPU adapter in this process and merge them at the end: all (the
    /// hardware adapters; lavapipe when it is the only one) or indices and name substrings from
    /// `regimes devices`, comma separated. With --shard, the shard is split across them.
    /// Example: --devices 0,1,2,3
    #[arg(long, value_name = "all|LIST", help_heading = "Scale-out")]
    devices: Option<String>,
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
    /// The slice of the particles this run measures (`--shard`); None: all of them.
    pub shard: Option<Shard>,
    /// This context's slice of the shard when the study runs on several devices (`--devices`).
    pub device: Option<Shard>,
    /// Saves checkpoints (`--checkpoint-every`).
    pub checkpoint: Option<Checkpointer<'static>>,
    /// The snapshot of each phase to resume from (`regimes resume`).
    pub resume: Vec<Option<Snapshot>>,
    /// The accumulators the study folded, for its shard file.
    pub parts: ShardParts,
}

impl Context {
    pub fn warn_all(&mut self, warnings: &[String]) {
        for w in warnings {
            if !self.quiet {
                crate::note!("warning: {w}");
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

    /// The particle (or clone pair) indices of this run's shard of a study of `total`.
    pub fn range(&self, total: u64) -> std::ops::Range<u64> {
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
                        r.start
                            + (Shard {
                                index: i,
                                count: d.count,
                            }
                            .range(len)
                            .start
                                / align
                                * align)
                    }
                };
                cut(d.index)..cut(d.index + 1)
            }
            None => r,
        }
    }

    /// The snapshot to resume phase `phase` from, if any.
    pub fn take_resume(&mut self, phase: usize) -> Option<Snapshot> {
        self.resume.get_mut(phase).and_then(Option::take)
    }

    /// A context without output, shard or checkpoint (`regimes merge` sets its output).
    fn new(cfg: Config, empirical: bool, grid: Grid, quiet: bool) -> Context {
        Context {
            cfg,
            empirical,
            grid,
            out: None,
            quiet,
            warnings: vec![],
            stopped_early: None,
            shard: None,
            device: None,
            checkpoint: None,
            resume: vec![],
            parts: ShardParts::default(),
        }
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
    /// The slice this run measured (`--shard I/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    /// The shard directories `regimes merge` combined, in shard order.
    #[serde(skip_serializing_if = "Option::is_none")]
    merged_from: Option<Vec<String>>,
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

    fn from_name(name: &str) -> Result<Study> {
        Ok(match name {
            "theory" => Study::Theory,
            "run" => Study::Run,
            "speciation" => Study::Speciation,
            "collapse" => Study::Collapse,
            _ => anyhow::bail!("unknown command '{name}'"),
        })
    }
}

/// One invocation of a study, resolved: from flags, or from a checkpoint to resume.
struct Invocation {
    kind: Study,
    cfg: Config,
    empirical: bool,
    out: Option<PathBuf>,
    force: bool,
    json: bool,
    quiet: bool,
    shard: Option<Shard>,
    every: Option<Every>,
    /// `--devices`.
    devices: Option<String>,
    /// Resuming from the checkpoint in `out`.
    resume: bool,
    early_warnings: Vec<String>,
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let (study_kind, args) = match cli.command {
        Command::Devices { json } => return devices::devices(json),
        Command::Bench(a) => return bench::main(a),
        Command::Reproduce(a) => return reproduce::main(a),
        Command::Merge {
            dirs,
            out,
            force,
            json,
            quiet,
        } => return scaleout::merge(&dirs, &out, force, json, quiet),
        Command::Resume { dir, json, quiet } => return resume(&dir, json, quiet),
        Command::Theory(a) => (Study::Theory, a),
        Command::Run(a) => (Study::Run, a),
        Command::Speciation(a) => (Study::Speciation, a),
        Command::Collapse(a) => (Study::Collapse, a),
    };
    let cfg = args.config.resolve()?;
    let empirical = args.config.n_train.is_some() || cfg.train_file.is_some();
    let early_warnings = preflight(study_kind, &args, &cfg, empirical)?;
    if args.devices.is_some() {
        anyhow::ensure!(
            study_kind != Study::Theory,
            "--devices has no effect on `theory`; drop it"
        );
        anyhow::ensure!(
            args.checkpoint_every.is_none(),
            "--devices with --checkpoint-every is not supported; run one process per device \
             with --shard I/N and --adapter instead"
        );
        anyhow::ensure!(
            cfg.backend != Backend::Cpu && cfg.adapter.is_none(),
            "--devices picks GPU adapters itself; drop --backend cpu and --adapter"
        );
    }
    for (flag, given) in [
        ("shard", args.shard.is_some()),
        ("checkpoint-every", args.checkpoint_every.is_some()),
    ] {
        if given {
            anyhow::ensure!(
                study_kind != Study::Theory,
                "--{flag} has no effect on `theory`; drop it"
            );
            anyhow::ensure!(
                args.out.is_some(),
                "--{flag} needs --out DIR (the {} lives there)",
                if flag == "shard" {
                    "shard's statistics for `regimes merge`"
                } else {
                    "checkpoint `regimes resume` reads"
                }
            );
        }
    }
    execute(Invocation {
        kind: study_kind,
        cfg,
        empirical,
        out: args.out,
        force: args.force,
        json: args.json,
        quiet: args.quiet,
        shard: args.shard,
        every: args.checkpoint_every,
        devices: args.devices,
        resume: false,
        early_warnings,
    })
}

/// `regimes resume DIR`: the study the checkpoint in DIR names, from where it stopped.
fn resume(dir: &Path, json: bool, quiet: bool) -> Result<()> {
    let path = dir.join(crate::report::CHECKPOINT_DIR).join("state.json");
    let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES).map_err(|_| {
        anyhow::anyhow!(
            "{} holds no checkpoint to resume (start a run with --checkpoint-every and --out; a \
             run that completed removes its checkpoint)",
            dir.display()
        )
    })?;
    let file: CheckpointFile = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a regimes checkpoint ({e})", path.display()))?;
    let kind = Study::from_name(&file.command)?;
    file.config.validate()?;
    // The files the run reads must be those it started with.
    let now = scaleout::config_hash(&file.command, &file.config);
    anyhow::ensure!(
        now == file.config_hash,
        "{}: the study changed since the run started (config hash {} then, {now} now): a file \
         it reads (u, q, mean, mixture or training file) has other contents, or this is another \
         version of regimes; restore them or start the run again",
        dir.display(),
        file.config_hash
    );
    execute(Invocation {
        kind,
        cfg: file.config,
        empirical: file.empirical,
        out: Some(dir.to_path_buf()),
        force: false,
        json,
        quiet,
        shard: file.shard,
        every: Some(file.every),
        devices: None,
        resume: true,
        early_warnings: vec![],
    })
}

/// Runs a study and reports it: the table (or JSON) on stdout, the files in --out.
fn execute(inv: Invocation) -> Result<()> {
    let study_kind = inv.kind;
    let name = study_kind.name();
    let grid = Grid::new(inv.cfg.t_max, inv.cfg.steps)?;
    // Refuse a bad --out before any work is done.
    let out = match (&inv.out, inv.resume) {
        (Some(p), true) => Some(OutDir::reopen(p, name)?),
        (Some(p), false) => Some(OutDir::create_for(p, inv.force, name)?),
        (None, _) => None,
    };
    let mut cx = Context::new(inv.cfg, inv.empirical, grid, inv.quiet || inv.json);
    cx.out = out;
    cx.shard = inv.shard;
    cx.warn_all(&inv.early_warnings);
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
        _ if inv.devices.is_some() => {
            let spec = inv.devices.as_deref().unwrap_or("all");
            scaleout::study_on_devices(study_kind, &mut cx, spec)?
        }
        _ => {
            let engine = select_engine(&cx)?;
            if let Selected::Gpu(e) = &engine {
                shader_compile_seconds = Some(e.compile_seconds());
                started = Instant::now();
            }
            if let (Some(every), Some(out)) = (inv.every, &cx.out) {
                let mut store = if inv.resume {
                    let (store, snaps) = Store::open(out.path())?;
                    cx.resume = snaps;
                    store
                } else {
                    let file = CheckpointFile::new(name, &cx.cfg, cx.empirical, cx.shard, every);
                    Store::create(out.path(), file)?
                };
                let every = store.file().every;
                cx.checkpoint = Some(Checkpointer::new(
                    every,
                    Box::new(move |phase, snap| store.save(phase, snap)),
                ));
            }
            let done = match engine {
                Selected::Cpu(e) => study(study_kind, &mut cx, &e),
                Selected::Gpu(e) => study(study_kind, &mut cx, e.as_ref()),
            };
            if let (Err(_), Some(out), false) = (&done, &cx.out, inv.resume) {
                Store::discard_if_unused(out.path());
            }
            done?
        }
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    if let (Some(shard), Some(out), None) = (cx.shard, &cx.out, &cx.stopped_early) {
        let file = ShardFile::new(
            name,
            shard,
            &cx.cfg,
            cx.empirical,
            &backend,
            wall_seconds,
            cx.parts.clone(),
        );
        out.write_json(scaleout::SHARD_FILE, &file)?;
    }
    let summary = Summary {
        command: name,
        version: env!("CARGO_PKG_VERSION"),
        seed: cx.cfg.seed,
        backend,
        wall_seconds,
        shader_compile_seconds,
        stopped_early: cx.stopped_early.as_deref(),
        shard: cx.shard.map(|s| s.to_string()),
        merged_from: None,
        warnings: &cx.warnings,
        config: &cx.cfg,
        result: json,
    };
    write_summary(&cx, &summary, &table, inv.json)?;
    let checkpointed = cx.checkpoint.is_some();
    match &cx.stopped_early {
        Some(reason) => {
            let hint = match (&cx.out, checkpointed) {
                (Some(out), true) => format!(
                    "; continue it with `regimes resume {}`",
                    out.path().display()
                ),
                _ => String::new(),
            };
            anyhow::bail!(
                "stopped early ({reason}); the partial results above cover what completed{hint}"
            )
        }
        None => {
            if let (Some(out), true) = (&cx.out, checkpointed) {
                Store::remove(out.path());
            }
            Ok(())
        }
    }
}

/// Writes the summary into --out (or stdout if that fails) and prints the table or the JSON.
fn write_summary<T: Serialize>(
    cx: &Context,
    summary: &Summary<T>,
    table: &str,
    json: bool,
) -> Result<()> {
    if let Some(out) = cx.out.as_ref()
        && let Err(e) = out
            .write_json("summary.json", summary)
            .and_then(|_| out.finish())
    {
        // The work is done: never lose its result to a full disk or a vanished directory.
        crate::out!("{}", serde_json::to_string_pretty(summary)?)?;
        return Err(e.context("the summary above could not be written to the output directory"));
    }
    if json {
        crate::out!("{}", serde_json::to_string_pretty(summary)?)?;
    } else {
        crate::out!("{table}")?;
        if let Some(out) = &cx.out {
            crate::out!("wrote {}", out.files().join(", "))?;
        }
    }
    Ok(())
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
        .chain(resources::checkpoint_warning(args.checkpoint_every, cfg))
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
            crate::note!("gpu: shaders compiled in {:.2} s", engine.compile_seconds());
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
                        crate::note!(
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
        crate::note!("engine: {backend}");
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
fn write_samples(out: &OutDir, cfg: &Config, rows: usize, dim: usize, x: &[f32]) -> Result<()> {
    let mut x = x.to_vec();
    if cfg.coupling.is_some() {
        crate::model::coupling::mode_frame_f32(&mut x, dim);
    }
    out.write_npy_f32("samples.npy", &[rows, dim], &x)?;
    Ok(())
}
