//! The command-line interface: parse flags and config, check what a study needs before it
//! starts, hand it to the study driver ([`crate::study::driver`]) and print its report.

pub mod args;
pub mod bench;
pub mod devices;
mod lists;
mod steer;
mod sweep;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Backend, Config};
use crate::measure::checkpoint::{Every, Shard};
use crate::study::Kind;
use crate::study::driver::{self, Report, Request};
use crate::study::request::{self, Options};
use sweep::{SweepArgs, print_sweep};

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
    /// Run a study at every point of the Cartesian grid of --over KEY=V1,V2,… (any config key;
    /// also `over = { q = ["zero", "optimal:1"] }` in a --config file) in one process on one
    /// engine: one directory per point (the study's usual files), sweep.json, the tidy
    /// sweep.csv and overlay figures (per-point series on one axis; t_S, t_C or the sync gap
    /// against the first swept key beside theory). Rerunning it into the same --out (or
    /// `regimes resume DIR`) reuses the completed points; --shard I/N runs a block of points,
    /// `regimes merge` combines the shards.
    /// Example: regimes sweep speciation --preset lu-tang --over q=zero,optimal:1 --out sw
    #[command(allow_negative_numbers = true)]
    Sweep(SweepArgs),
    /// Overlay existing outputs of one study kind (study directories, merges, sweeps) in one
    /// set of figures, each with its CSV, against --x KEY (default: the first config key on
    /// which they differ). Refuses outputs of different studies, naming them.
    Plot {
        /// The output directories.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// The config key on the x axis of the headline figures.
        #[arg(long, value_name = "KEY")]
        x: Option<String>,
        /// Path stem of the figures: STEM_phi.svg, STEM_phi.png, STEM_phi.csv, STEM_t_s.svg, …
        /// and STEM.csv (the tidy table).
        #[arg(long, value_name = "FILE", default_value = "overlay")]
        out: PathBuf,
        /// Figure size, WIDTHxHEIGHT in units of 1/96 inch (the SVG's size) [default: 860x540
        /// plus a 240-wide legend column].
        #[arg(long, value_name = "WxH", value_parser = crate::report::parse_figure_size)]
        figure_size: Option<(u32, u32)>,
        /// PNG resolution in dots per inch (the PNG is figure-size × DPI / 96 pixels)
        /// [default: 96].
        #[arg(long, value_name = "DPI")]
        dpi: Option<u32>,
        /// Replace files in the way that an earlier `plot` did not write.
        #[arg(long)]
        force: bool,
    },
    /// Search the antisymmetric Q with ‖Q‖_F ≤ --budget that speciates earliest in generation
    /// (largest theory t_S), optionally holding t_C within --tc-tolerance, beside Q = 0, the
    /// gap-optimal Q and the simple strategies; --write-q saves it for --q file:PATH.
    /// Example: regimes steer --preset lu-tang --mean ones --t-max 5 --budget 2 --write-q q.npy
    #[command(allow_negative_numbers = true)]
    Steer(steer::SteerArgs),
    /// Measure engine throughput (particle-steps/s, GFLOP/s, GB/s) on standard workloads,
    /// against the machine's measured peak.
    Bench(crate::bench::args::BenchArgs),
    /// Reproduce one of the sources' experiments: CSV data, SVG and PNG plots, summary.json
    /// with every check, report.md (the help lists the experiments from `Experiment::ALL`).
    Reproduce(crate::reproduce::ReproduceArgs),
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
        /// Continue on another engine than the run started on (e.g. a GPU run on the CPU); the
        /// engine is not part of the study, but CPU and GPU agree to f32 round-off, not bit for
        /// bit.
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// GPU adapter (a substring of its name in `regimes devices`) to continue on.
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        /// CPU threads to continue with (results do not depend on it).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
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

/// The figure settings of a command outside the studies (`plot`, `reproduce`), checked as
/// the config's figure keys are.
pub(crate) fn figure_render(
    size: Option<(u32, u32)>,
    dpi: Option<u32>,
) -> Result<crate::report::Render> {
    let mut cfg = Config {
        figure_size: size,
        ..Config::default()
    };
    if let Some(dpi) = dpi {
        cfg.dpi = dpi;
    }
    cfg.validate()?;
    Ok(crate::report::Render::sized(cfg.figure_size, Some(cfg.dpi)))
}

pub fn main() -> Result<()> {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    // One place for every command: a signal is a stop request that the command's work polls
    // (typed stop, partial results kept) — or, for the commands that finish promptly on their
    // own, the default (the process ends at once).
    if cli.command.stops() {
        let _ = ctrlc::set_handler(on_signal);
    }
    let (study_kind, args) = match cli.command {
        Command::Sweep(a) => {
            let json = a.study_args.json;
            let req = sweep::request(a)?;
            return print_sweep(crate::study::sweep::run(&req)?, json);
        }
        Command::Plot {
            dirs,
            x,
            out,
            figure_size,
            dpi,
            force,
        } => {
            let render = figure_render(figure_size, dpi)?;
            return sweep::plot(&dirs, x.as_deref(), &out, &render, force);
        }
        Command::Devices { json } => return devices::devices(json),
        Command::Bench(a) => return bench::main(a),
        Command::Steer(a) => return steer::main(a),
        Command::Reproduce(a) => return crate::reproduce::main(a),
        Command::Merge {
            dirs,
            out,
            force,
            json,
            quiet,
        } => {
            if dirs
                .first()
                .is_some_and(|d| crate::study::sweep::is_sweep(d))
            {
                let r = crate::study::sweep::merge(&dirs, &out, force)?;
                return print_sweep(r, json);
            }
            return print(driver::merge(&dirs, &out, force, quiet || json)?, json);
        }
        Command::Resume {
            dir,
            json,
            quiet,
            backend,
            adapter,
            threads,
        } => {
            let engine = request::EngineOverrides {
                backend,
                adapter,
                threads,
            };
            return match request::resume(&dir, quiet || json, engine)? {
                request::Resumed::Study(req) => execute(&req, json),
                request::Resumed::Sweep(req) => print_sweep(crate::study::sweep::run(&req)?, json),
            };
        }
        Command::Theory(a) => (Kind::Theory, a),
        Command::Run(a) => (Kind::Run, a),
        Command::Speciation(a) => (Kind::Speciation, a),
        Command::Collapse(a) => (Kind::Collapse, a),
    };
    let json = args.json;
    execute(&study_request(study_kind, args)?, json)
}

/// The request of a study's flags: the config resolved from them, then the library's checks
/// ([`request::study`]).
fn study_request(study_kind: Kind, args: StudyArgs) -> Result<Request> {
    let cfg = args.config.resolve()?;
    request::study(study_kind, cfg, options(&args))
}

/// The command line as parsed and documented: the flags a study never reads hidden, the lists
/// in the help written from the code's lists.
fn command() -> clap::Command {
    lists::fill(hide_ignored(Cli::command()))
}

/// The commands with the flags each study never reads hidden from its `--help` (they are still
/// parsed, to be refused with a message naming them).
fn hide_ignored(mut cli: clap::Command) -> clap::Command {
    for kind in Kind::ALL {
        cli = cli.mut_subcommand(kind.name(), |mut sub| {
            for key in kind.ignores() {
                let id = key.replace('-', "_");
                if sub.get_arguments().any(|a| a.get_id() == id.as_str()) {
                    sub = sub.mut_arg(id, |a| a.hide(true));
                }
            }
            sub
        });
    }
    cli
}

/// Runs a study (SIGINT and SIGTERM stop it at the next step boundary: the partial results are
/// reported, marked as stopped early; a second signal exits at once).
fn execute(req: &Request, json: bool) -> Result<()> {
    print(driver::run(req)?, json)
}

impl Command {
    /// Whether the command's work polls the stop request (`crate::stop`), so that SIGINT and
    /// SIGTERM become a typed stop that keeps what completed. Every command decides (no
    /// wildcard): one that polls nothing keeps the default, ending at once.
    fn stops(&self) -> bool {
        match self {
            Command::Theory(_)
            | Command::Run(_)
            | Command::Speciation(_)
            | Command::Collapse(_)
            | Command::Sweep(_)
            | Command::Steer(_)
            | Command::Bench(_)
            | Command::Reproduce(_)
            | Command::Resume { .. } => true,
            // Bounded reads and writes of files already there, or a list of adapters.
            Command::Plot { .. } | Command::Merge { .. } | Command::Devices { .. } => false,
        }
    }
}

/// The handler of SIGINT and SIGTERM.
fn on_signal() {
    if !crate::measure::request_stop() {
        std::process::exit(130);
    }
    // Acknowledged at once (the handler runs on a thread of its own, not in the signal).
    crate::note!(
        "\nregimes: stopping at the next step boundary and writing what completed (a second \
         signal ends the process at once)"
    );
}

/// Prints a study's report: the table (or JSON) on stdout; the summary itself when a file of
/// the output directory could not be written (the work is done: never lose its result to a full
/// disk or a vanished directory); an error when the study stopped early.
fn print(report: Report, json: bool) -> Result<()> {
    let pretty = || serde_json::to_string_pretty(&report.summary);
    if let Some(e) = report.write_error {
        crate::out!("{}", pretty()?)?;
        return Err(e.context(
            "not every file could be written to the output directory; the summary above holds \
             the result",
        ));
    }
    if json {
        crate::out!("{}", pretty()?)?;
    } else {
        crate::out!("{}", report.table)?;
        if report.out.is_some() {
            crate::out!("wrote {}", report.files.join(", "))?;
        }
    }
    if let Some(reason) = &report.stopped {
        let hint = match (&report.out, report.resumable) {
            (Some(out), true) => format!("; continue it with `regimes resume {}`", out.display()),
            _ => String::new(),
        };
        anyhow::bail!(
            "stopped early ({reason}); the partial results above cover what completed{hint}"
        )
    }
    Ok(())
}

/// The invocation's options of a study's flags.
fn options(args: &StudyArgs) -> Options {
    Options {
        out: args.out.clone(),
        force: args.force,
        quiet: args.quiet || args.json,
        shard: args.shard,
        every: args.checkpoint_every,
        devices: args.devices.clone(),
        given: args.config.given(),
        file_keys: args.config.file_keys(),
    }
}
