//! `regimes reproduce NAME`: the sources' experiments as one command each. Every experiment runs
//! the ordinary studies (theory, speciation, collapse) on a list of configs, then writes CSV data,
//! SVG and PNG plots, `summary.json` with every check as `{name, value, expected, tolerance,
//! pass}`, and `report.md` that embeds the plots and states machine, command and wall time. The
//! exit status is non-zero when a check fails.

mod collapse_gmm;
mod discretisation;
mod gap;
mod multimodal;
mod speciation_gmm;
mod steering;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

pub use crate::measure::cloning::crossing_with_error;
use crate::study::backend::{Selected, select_engine};
use crate::study::collapse::{Collapse, CollapseStudy};
use crate::study::driver::measure_on;
use crate::study::guard::Guard;
use crate::study::resources::Needs;
use crate::study::speciation::{Speciation, SpeciationStudy};
use crate::study::theory::{TheoryOutput, TheoryStudy};
use crate::study::{Inputs, Study};

use crate::config::{Backend, Config};
use crate::engine::Engine;
use crate::measure::run::{RunSpec, run as run_particles};
use crate::plan::Grid;
use crate::plan::Plan;
use crate::report::{Figure, OutDir, Render, Series, write_figure};

#[derive(clap::Args)]
pub struct ReproduceArgs {
    /// The experiment (the help lists them from [`Experiment::ALL`]).
    #[arg(value_enum)]
    pub name: Experiment,
    /// Small sizes that finish within a minute on 2 CPU cores; the checks still apply.
    #[arg(long)]
    pub quick: bool,
    /// Output directory [default: reproduce/NAME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the files of an earlier run in --out.
    #[arg(long)]
    pub force: bool,
    /// Clone pairs per branch time in the cloning experiments [default: 10 000, quick 2 000].
    #[arg(long, value_name = "N")]
    pub pairs: Option<u64>,
    /// Engine [default: auto: a hardware GPU if wgpu sees one, else the CPU].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// CPU threads [default: all cores].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seed of every random choice [default: 1].
    #[arg(long, value_name = "SEED")]
    pub seed: Option<u64>,
    /// Discretisation of the reverse dynamics [default: auto, i.e. exact wherever it applies];
    /// with `exact` (or `auto`), speciation-gmm runs on a coarse grid (--steps 20: the branch
    /// times are nodes) and collapse-gmm on 200 geometric steps.
    #[arg(long, value_enum)]
    pub scheme: Option<crate::plan::Scheme>,
    /// Time steps of speciation-gmm and collapse-gmm [default: 20 for speciation-gmm and 200
    /// geometric ones for collapse-gmm; 1000 with --scheme other than exact or auto].
    #[arg(long, value_name = "N")]
    pub steps: Option<usize>,
    /// No progress notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Figure size, WIDTHxHEIGHT in units of 1/96 inch (the SVG's size) [default: 860x540].
    #[arg(long, value_name = "WxH", value_parser = crate::report::parse_figure_size)]
    pub figure_size: Option<(u32, u32)>,
    /// PNG resolution in dots per inch (the PNG is figure-size × DPI / 96 pixels) [default: 96].
    #[arg(long, value_name = "DPI")]
    pub dpi: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Experiment {
    SpeciationGmm,
    CollapseGmm,
    Gap,
    Steering,
    Multimodal,
    Discretisation,
}

impl Experiment {
    /// Every experiment, in the order the help and the README list them.
    pub const ALL: [Experiment; 6] = [
        Experiment::SpeciationGmm,
        Experiment::CollapseGmm,
        Experiment::Gap,
        Experiment::Steering,
        Experiment::Multimodal,
        Experiment::Discretisation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Experiment::SpeciationGmm => "speciation-gmm",
            Experiment::CollapseGmm => "collapse-gmm",
            Experiment::Gap => "gap",
            Experiment::Steering => "steering",
            Experiment::Multimodal => "multimodal",
            Experiment::Discretisation => "discretisation",
        }
    }

    /// What it shows, for the help.
    pub fn what(self) -> &'static str {
        match self {
            Experiment::SpeciationGmm => "φ against t/t_S for growing d",
            Experiment::CollapseGmm => "excess entropy and collapse times against the REM",
            Experiment::Gap => "spectral gap against the strength of Q",
            Experiment::Steering => "t_S and t_C across Q strategies for anisotropic U",
            Experiment::Multimodal => {
                "per-mode φ and the synchronization gap against the coupling, and a coupling \
                 schedule"
            }
            Experiment::Discretisation => {
                "φ bias at t_S and t_S shift against Δt for each SDE scheme, with the cost of \
                 accuracy"
            }
        }
    }

    fn title(self) -> &'static str {
        match self {
            Experiment::SpeciationGmm => "Speciation of a two-class Gaussian mixture",
            Experiment::CollapseGmm => "Collapse onto the training set",
            Experiment::Gap => "Spectral gap against the strength of Q",
            Experiment::Steering => "Steering t_S and t_C with Q for anisotropic U",
            Experiment::Multimodal => {
                "Coupled modalities: per-mode speciation and the synchronization gap"
            }
            Experiment::Discretisation => "Discretisation bias of the samplers against Δt",
        }
    }
}

/// One verified claim: `value` (with its standard error when it is an estimate) against
/// `expected`: |value − expected| ≤ `tolerance` for `=`, value ≤ expected + tolerance for `<=`,
/// value ≥ expected − tolerance for `>=`. The value is what the name says, never shifted by
/// its allowance: the allowance is the tolerance, printed beside it.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub value: f64,
    /// The value's standard error; None for a computed (not sampled) value.
    pub stderr: Option<f64>,
    pub expected: f64,
    pub tolerance: f64,
    pub relation: &'static str,
    pub pass: bool,
}

impl Check {
    fn new(name: impl Into<String>, value: f64, relation: &'static str, expected: f64) -> Check {
        Check {
            name: name.into(),
            value,
            stderr: None,
            expected,
            tolerance: 0.0,
            relation,
            pass: false,
        }
        .judged()
    }

    fn judged(mut self) -> Check {
        let (v, e, tol) = (self.value, self.expected, self.tolerance);
        self.pass = match self.relation {
            "=" => (v - e).abs() <= tol,
            "<=" => v <= e + tol,
            _ => v >= e - tol,
        };
        self
    }

    pub fn near(name: impl Into<String>, value: f64, expected: f64, tolerance: f64) -> Check {
        Check::new(name, value, "=", expected).within(tolerance)
    }

    pub fn at_most(name: impl Into<String>, value: f64, limit: f64) -> Check {
        Check::new(name, value, "<=", limit)
    }

    pub fn at_least(name: impl Into<String>, value: f64, limit: f64) -> Check {
        Check::new(name, value, ">=", limit)
    }

    /// The check with this tolerance (for a bound: what the value may pass it by).
    pub fn within(self, tolerance: f64) -> Check {
        Check { tolerance, ..self }.judged()
    }

    /// The check with the value's standard error (printed; the tolerance says what is allowed).
    pub fn with_stderr(self, stderr: f64) -> Check {
        Check {
            stderr: Some(stderr),
            ..self
        }
    }

    fn stderr_text(&self) -> String {
        self.stderr.map_or("—".into(), |e| format!("{e:.5}"))
    }
}

/// What an experiment has to work with, and what it has produced so far.
pub struct Lab<'a, E: Engine> {
    pub engine: &'a E,
    pub quick: bool,
    pub out: &'a OutDir,
    /// The base config: backend, threads, seed.
    pub base: Config,
    pub pairs: Option<u64>,
    /// `--steps`, for the experiments that take it.
    pub steps: Option<usize>,
    pub quiet: bool,
    pub checks: Vec<Check>,
    /// (file stem, caption) of every figure.
    pub figures: Vec<(String, String)>,
}

impl<E: Engine> Lab<'_, E> {
    /// Clone pairs per branch time: the flag, or the experiment's default.
    pub fn pairs(&self) -> u64 {
        self.pairs
            .unwrap_or(if self.quick { 2_000 } else { 10_000 })
    }

    /// Runs study `S` on `cfg` with this lab's engine; refuses a result that stopped early.
    fn study<S: Study>(&self, cfg: Config) -> Result<S::Output> {
        cfg.validate()?;
        // The long (not --quick) runs show each study's progress with rate and ETA.
        let inputs = Inputs::new(S::KIND, cfg, self.quiet || self.quick)?;
        let (output, session) = measure_on::<S, E>(&inputs, self.engine)?;
        interrupted(session.stopped)?;
        Ok(output)
    }

    pub fn note(&self, what: &str) {
        if !self.quiet {
            crate::note!("  {what}");
        }
    }

    pub fn speciation(&self, cfg: Config) -> Result<Speciation> {
        self.study::<SpeciationStudy>(cfg)
    }

    pub fn collapse(&self, cfg: Config) -> Result<Collapse> {
        self.study::<CollapseStudy>(cfg)
    }

    pub fn theory(&self, cfg: Config) -> Result<TheoryOutput> {
        self.study::<TheoryStudy>(cfg)
    }

    /// Prints the expected wall time of `work` particle-steps × d, from a short timed run of
    /// this engine (two classes, d = 64, 4096 particles, 50 steps).
    pub fn announce(&self, work: f64) -> Result<()> {
        if self.quiet {
            return Ok(());
        }
        // The probe runs the scheme the studies will run (`auto` resolved).
        let cfg = crate::study::scheme::resolve(
            Config {
                dim: 64,
                ..self.base.clone()
            },
            crate::study::Kind::Run,
        )?;
        let built = crate::config::build::build(&cfg)?;
        let plan = Plan::new(
            &built.mixture_model(),
            Grid::new(1.0, 50)?,
            cfg.scheme,
            cfg.start,
        )?;
        let spec = RunSpec {
            seed: 1,
            particles: 4096,
            keep_samples: false,
            batch: None,
        };
        let record = crate::engine::Recorder::none(&plan);
        let started = Instant::now();
        run_particles(self.engine, &plan, spec, record, &mut |_| {})?;
        let per_unit = started.elapsed().as_secs_f64() / (4096.0 * 50.0 * 64.0);
        let seconds = work * per_unit;
        crate::note!(
            "  expected time: about {} ({:.2e} particle-steps × d at the engine's measured rate)",
            crate::report::duration(seconds),
            work
        );
        Ok(())
    }

    pub fn check(&mut self, check: Check) {
        if !self.quiet {
            crate::note!(
                "  {} {}: {:.5} (s.e. {}) {} {:.5}, tolerance {:.5}",
                if check.pass { "pass" } else { "FAIL" },
                check.name,
                check.value,
                check.stderr_text(),
                check.relation,
                check.expected,
                check.tolerance,
            );
        }
        self.checks.push(check);
    }

    /// Writes `stem.svg` and `stem.png` (at the base config's size and dpi, the legend in the
    /// corner that hides the fewest points) and lists the figure in the report.
    pub fn figure(&mut self, stem: &str, caption: &str, figure: Figure) -> Result<()> {
        let render = Render {
            legend_outside: false,
            ..Render::sized(self.base.figure_size, Some(self.base.dpi))
        };
        write_figure(self.out, stem, &figure, &render)?;
        self.figures.push((stem.to_string(), caption.to_string()));
        Ok(())
    }
}

/// A study's stop as an error: typed when interrupted, so the report's "stopped early (…)"
/// says the reason once.
fn interrupted(stopped: Option<crate::measure::Stop>) -> Result<()> {
    match stopped {
        Some(crate::measure::Stop::Interrupted | crate::measure::Stop::Requested) => {
            Err(crate::measure::Interrupted.into())
        }
        Some(crate::measure::Stop::Failed(e)) => anyhow::bail!("{e}"),
        None => Ok(()),
    }
}

/// (t, φ, s.e.) of each branch time of a cloning study.
pub fn phi_points(r: &Speciation) -> Vec<(f64, f64, f64)> {
    r.phi
        .iter()
        .filter_map(|p| Some((p.t, p.phi?, p.stderr?)))
        .collect()
}

/// Checks a measured t_S against theory within 4.5 of its errors (φ's noise and the
/// interpolation), plus the step's Euler–Maruyama bias (one Δt).
pub fn t_s_check(name: &str, measured: Option<(f64, f64)>, theory: Option<f64>, dt: f64) -> Check {
    match (measured, theory) {
        (Some((t, sigma)), Some(th)) => {
            Check::near(name, t, th, 4.5 * sigma + dt).with_stderr(sigma)
        }
        _ => Check::near(name, f64::NAN, theory.unwrap_or(f64::NAN), 0.0),
    }
}

/// A series of measured points with ± error bars.
pub fn measured(label: impl Into<String>, points: &[(f64, f64, f64)]) -> Series {
    Series::points(label, points.iter().map(|p| (p.0, p.1)).collect())
        .with_error(points.iter().map(|p| p.2).collect())
}

#[derive(Serialize)]
struct Summary<'a> {
    experiment: &'static str,
    title: &'static str,
    command: String,
    machine: String,
    engine: String,
    version: &'static str,
    quick: bool,
    seed: u64,
    wall_seconds: f64,
    passed: bool,
    /// Why the experiment stopped before its last check (a signal); the checks are those done.
    stopped_early: Option<String>,
    checks: &'a [Check],
    data: serde_json::Value,
}

pub fn main(args: ReproduceArgs) -> Result<()> {
    let name = args.name.name();
    anyhow::ensure!(
        args.pairs != Some(0),
        "pairs: must be positive (clone pairs per branch time)"
    );
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("reproduce").join(name));
    let base = Config {
        backend: args.backend.unwrap_or_default(),
        threads: args.threads,
        seed: args.seed.unwrap_or(1),
        scheme: args.scheme.unwrap_or(crate::plan::Scheme::Auto),
        figure_size: args.figure_size,
        dpi: args.dpi.unwrap_or(Config::default().dpi),
        ..Config::default()
    };
    base.validate()?;
    // The --pairs a run can hold, before anything is written.
    Config {
        pairs: args.pairs,
        ..base.clone()
    }
    .validate()
    .map_err(|e| e.context(format!("--pairs {}", args.pairs.unwrap_or(0))))?;
    // The shared path (`study::guard`): disk where the report goes, the directory owned and
    // locked (a second run into it is refused, naming the lock).
    let out = Guard {
        command: "reproduce",
        needs: Needs::new(0, "--pairs"),
        out: Some((&path, args.force)),
    }
    .open()?
    .expect("an output directory was asked for");
    let quiet = args.quiet;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    if !quiet {
        crate::note!(
            "reproduce {name}{}: {}",
            if args.quick { " (quick)" } else { "" },
            args.name.title()
        );
    }
    let started = Instant::now();
    let outcome = match select_engine(&base, quiet)? {
        Selected::Cpu(e) => run(args.name, &e, &out, &base, &args),
        Selected::Gpu(e) => run(args.name, e.as_ref(), &out, &base, &args),
    }?;
    let (lab_checks, figures, data, engine, stopped, failure) = outcome;
    let wall = started.elapsed().as_secs_f64();
    let stopped_early = stopped
        .clone()
        .or_else(|| failure.as_ref().map(|e| format!("failed: {e:#}")));
    let passed = stopped_early.is_none() && lab_checks.iter().all(|c| c.pass);
    let summary = Summary {
        experiment: name,
        title: args.name.title(),
        command: command.clone(),
        machine: machine(),
        engine,
        version: env!("CARGO_PKG_VERSION"),
        quick: args.quick,
        seed: base.seed,
        wall_seconds: wall,
        passed,
        stopped_early: stopped_early.clone(),
        checks: &lab_checks,
        data,
    };
    // A file that cannot be written at the end (a full disk, a directory in the way) loses no
    // result: the summary goes to stdout instead.
    let written = out
        .write_json("summary.json", &summary)
        .and_then(|_| out.write_text("report.md", &report(&summary, &figures, &out.files())))
        .and_then(|_| out.finish());
    if let Err(e) = written {
        crate::out!("{}", serde_json::to_string_pretty(&summary)?)?;
        return Err(e.context(
            "not every file could be written to the output directory; the summary above holds \
             the result",
        ));
    }
    let failed: Vec<&str> = lab_checks
        .iter()
        .filter(|c| !c.pass)
        .map(|c| c.name.as_str())
        .collect();
    crate::out!(
        "{name}: {} of {} checks pass in {wall:.1} s{}; wrote {}",
        lab_checks.len() - failed.len(),
        lab_checks.len(),
        if stopped_early.is_some() {
            " before it stopped"
        } else {
            ""
        },
        path.join("report.md").display()
    )?;
    if let Some(e) = failure {
        return Err(e.context(format!(
            "{name} failed after {} checks; report.md holds the checks done",
            lab_checks.len()
        )));
    }
    if let Some(reason) = stopped {
        anyhow::bail!("stopped early ({reason}); report.md holds the checks done so far");
    }
    anyhow::ensure!(failed.is_empty(), "checks failed: {}", failed.join(", "));
    Ok(())
}

/// (checks, figures, data, engine, why it stopped early, the error it failed with).
type Outcome = (
    Vec<Check>,
    Vec<(String, String)>,
    serde_json::Value,
    String,
    Option<String>,
    Option<anyhow::Error>,
);

fn run<E: Engine>(
    experiment: Experiment,
    engine: &E,
    out: &OutDir,
    base: &Config,
    args: &ReproduceArgs,
) -> Result<Outcome> {
    let mut lab = Lab {
        engine,
        quick: args.quick,
        out,
        base: base.clone(),
        pairs: args.pairs,
        steps: args.steps,
        quiet: args.quiet,
        checks: vec![],
        figures: vec![],
    };
    let data = match experiment {
        Experiment::SpeciationGmm => speciation_gmm::run(&mut lab),
        Experiment::CollapseGmm => collapse_gmm::run(&mut lab),
        Experiment::Gap => gap::run(&mut lab),
        Experiment::Steering => steering::run(&mut lab),
        Experiment::Multimodal => multimodal::run(&mut lab),
        Experiment::Discretisation => discretisation::run(&mut lab),
    };
    // Interrupted, or failed (a file it could not write): keep the checks done so far (the
    // report says where it stopped).
    let (data, stopped, failure) = match data {
        Ok(data) => (data, None, None),
        Err(e) if crate::measure::stop_reason().is_some() => {
            (serde_json::Value::Null, Some(format!("{e:#}")), None)
        }
        Err(e) => (serde_json::Value::Null, None, Some(e)),
    };
    Ok((
        lab.checks,
        lab.figures,
        data,
        engine.describe(),
        stopped,
        failure,
    ))
}

/// The CPU model and core count, for the report.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

fn report(s: &Summary, figures: &[(String, String)], files: &[String]) -> String {
    let mut md = format!(
        "# {}\n\n`{}`\n\n| | |\n| --- | --- |\n| machine | {} |\n| engine | {} |\n| regimes | {} |\n\
         | wall time | {:.1} s |\n| checks | {} of {} pass |\n\n",
        s.title,
        s.command,
        s.machine,
        s.engine,
        s.version,
        s.wall_seconds,
        s.checks.iter().filter(|c| c.pass).count(),
        s.checks.len()
    );
    if let Some(reason) = &s.stopped_early {
        md += &format!(
            "**Stopped early** ({reason}): the checks below are those done before the stop.\n\n"
        );
    }
    md += "## Checks\n\nThe value is what the check names; the tolerance is what it may differ \
           from the expected value by (`=`) or pass the bound by (`<=`, `>=`), e.g. 4.5 standard \
           errors.\n\n| check | value | s.e. | expected | tolerance | pass |\n\
           | --- | ---: | ---: | ---: | ---: | :---: |\n";
    for c in s.checks {
        md += &format!(
            "| {} | {:.5} | {} | {} {:.5} | {:.5} | {} |\n",
            c.name.replace('|', "\\|"),
            c.value,
            c.stderr_text(),
            c.relation,
            c.expected,
            c.tolerance,
            if c.pass { "✓" } else { "✗" }
        );
    }
    md += "\n## Figures\n\n";
    for (stem, caption) in figures {
        md += &format!("![{caption}]({stem}.png)\n\n{caption} ([SVG]({stem}.svg))\n\n");
    }
    md += "## Files\n\n";
    for f in files {
        md += &format!("* `{f}`\n");
    }
    md
}
