//! `regimes bench`: engine throughput on the standard workloads of [`crate::bench`], as a table or
//! JSON records.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use clap::{Args, ValueEnum};

use crate::bench::{self, Record, Setting, Spec, Workload, export};
use crate::engine::Engine;
use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};
use crate::study::guard::{Guard, unless_stopped};
use crate::study::resources::{self, Needs};

/// The long help of `regimes bench`, its workloads listed from [`Workload::ALL`].
pub fn long_about() -> String {
    let count = Workload::ALL.len();
    let workloads: String = Workload::ALL
        .iter()
        .map(|w| {
            let head = format!("  {:<10} ", w.name());
            format!("{}\n", super::hanging(&head, w.describe(), 98))
        })
        .collect();
    format!(
        "Measure engine throughput on {count} standard workloads, against the machine's measured \
peak.

Every workload samples two classes ±m (m along ones, ‖m‖² = d, σ = 1) from T = 10 down to 0 in \
--steps Euler–Maruyama steps; they differ in what dominates a step:
{workloads}
What the numbers mean:
  particle-steps/s  particles × steps / run time (the timed run records nothing; setup and the
                    GPU's shader compile are timed apart, after a short warm-up)
  GFLOP/s, GB/s     particle-steps/s × the cost model's flops and bytes per particle-step
                    (multiply and add counted apart, exp as one flop; bytes = state read and
                    written once per step + coefficients shared by a block of 32 particles on
                    the CPU, a workgroup of 64 on the GPU) — see docs/performance.md
  % peak            GFLOP/s over the measured peak: an f32 fused multiply-add loop on every
                    thread (the engines' products are fused multiply-adds); marked * when the
                    machine was busy (load average above half its cores, or a peak probe that
                    varied), as the peak and the run then share the machine with other work
  bound             of flops, bytes and normal draws, the one nearest its measured peak (the
                    normals peak is the engine's own Philox + Box–Muller in a tight loop), and
                    the fraction of it reached
  setup             building the model and every chunk of the per-step plan
  compile           GPU shader compilation and JIT, once per engine

Every workload's settings are checked (e.g. a --steps too coarse for the dense workload's stiff
directions) before any is measured.

Examples:
  regimes bench                                   all {count} workloads, CPU, d = 100
  regimes bench --workload dense --dim 256 --particles 4096
  regimes bench --backend all --json > bench.json"
    )
}

/// `--workload`'s help: the names of [`Workload::ALL`].
pub fn workload_help() -> String {
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    format!(
        "Workloads: {} (repeat the flag or give a comma list; default all {})",
        names.join(", "),
        names.len()
    )
}

/// `--particles`' help: each workload's default.
pub fn particles_help() -> String {
    let defaults: Vec<String> = Workload::ALL
        .iter()
        .map(|w| format!("{} {}", w.name(), w.default_particles()))
        .collect();
    format!("Particles per workload [default: {}]", defaults.join(", "))
}

/// Which engines to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// The CPU engine.
    Cpu,
    /// The GPU engine (fails if no adapter is found).
    Gpu,
    /// The CPU engine, and the GPU engine if wgpu finds an adapter.
    All,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Workloads (the help lists them from `Workload::ALL`).
    #[arg(long, value_enum, value_delimiter = ',')]
    workload: Vec<Workload>,
    /// Dimension d.
    #[arg(long, default_value_t = 100)]
    dim: usize,
    /// Particles per workload (the help lists each workload's default).
    #[arg(long)]
    particles: Option<u64>,
    /// Euler–Maruyama steps from T = 10 to 0.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Training points N of the empirical workload.
    #[arg(long, default_value_t = 1000, value_parser = crate::cli::args::count::<usize>)]
    n_train: usize,
    /// Engines to measure.
    #[arg(long, value_enum, default_value_t = BenchBackend::Cpu)]
    backend: BenchBackend,
    /// GPU adapter whose name contains this (case-insensitive).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// CPU threads for the engine and the peak [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the noise, the random basis of `dense` and the training points of `empirical`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The GPU's peak f32 GFLOP/s as stated by its vendor, for % of peak on a hardware GPU (a
    /// software adapter is compared against the measured host peak).
    #[arg(long, value_name = "GFLOPS")]
    gpu_peak_gflops: Option<f64>,
    /// GPU step-kernel variant: auto (each applicable variant timed on a probe at the first use
    /// of a plan shape, the fastest kept), blocked, onchip (small d) or wide (mixture plans of
    /// d > 128) [default: $REGIMES_GPU_VARIANT, else auto].
    #[arg(long, value_name = "auto|blocked|onchip|wide")]
    gpu_variant: Option<String>,
    /// Time steps fused into one GPU dispatch (the help states the measured default's target
    /// length).
    #[arg(long, value_name = "N")]
    steps_per_dispatch: Option<usize>,
    /// Write each workload's model (U, Q, A = (I+Q)U, m, training points, meta.json) as .npy
    /// files under `DIR/<workload>/` for the NumPy reference (benches/reference/), and exit.
    #[arg(long, value_name = "DIR")]
    export_model: Option<PathBuf>,
    /// Replace the files an earlier --export-model wrote into DIR (other files stay).
    #[arg(long)]
    force: bool,
    /// Print a JSON list of records on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// What `regimes bench` measured: the header lines (settings, engines, peaks) and one record
/// per workload and engine; or, with `--export-model`, the files it wrote.
pub struct BenchReport {
    pub header: Vec<String>,
    pub records: Vec<Record>,
    pub exported: Vec<String>,
    /// Why it stopped before measuring every workload (a signal); the records are those
    /// measured before.
    pub stopped: Option<String>,
}

pub fn main(args: BenchArgs) -> Result<()> {
    let report = run(&args)?;
    if !report.exported.is_empty() {
        crate::out!("wrote {}", report.exported.join(", "))?;
    } else if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&report.records)?)?;
    } else {
        crate::out!(
            "{}\n\n{}",
            report.header.join("\n"),
            bench::table(&report.records)
        )?;
    }
    if let Some(reason) = report.stopped {
        anyhow::bail!(
            "stopped early ({reason}); the records above are the workloads measured before the \
             stop"
        );
    }
    Ok(())
}

impl BenchArgs {
    /// Refuses bad values before any work.
    pub fn validate(&self) -> Result<()> {
        for s in self.specs() {
            s.validate()?;
        }
        self.needs().check(None)?;
        ensure!(
            self.threads != Some(0),
            "--threads: must be positive (got 0)"
        );
        if let Some(g) = self.gpu_peak_gflops {
            ensure!(
                g.is_finite() && g > 0.0,
                "--gpu-peak-gflops: must be positive (got {g})"
            );
        }
        Ok(())
    }

    /// What the workloads hold at once (the largest; the dense workload's d×d matrices) and,
    /// with --export-model, write: checked by the shared path every command takes.
    fn needs(&self) -> Needs {
        let dense = |s: &Spec| {
            resources::model_bytes(&crate::config::Config {
                dim: s.dim,
                q: crate::model::QSpec::Optimal(1.0),
                ..crate::config::Config::default()
            })
        };
        let mut all = Needs::new(0, "--dim");
        for s in self.specs() {
            let mut n = Needs::new(0, "--dim");
            if s.workload == Workload::Dense || self.export_model.is_some() {
                n.memory = dense(&s);
            }
            if self.export_model.is_some() {
                // U, Q and A as d×d f64, the training points.
                n.disk = (3 * s.dim as u64)
                    .saturating_mul(s.dim as u64 * 8)
                    .saturating_add(s.n_train().unwrap_or(0) as u64 * s.dim as u64 * 8);
            }
            all = all.then(n);
        }
        all
    }

    /// The workloads asked for (all by default), each once, in order.
    fn specs(&self) -> Vec<Spec> {
        let mut workloads: Vec<Workload> = vec![];
        for w in if self.workload.is_empty() {
            Workload::ALL.to_vec()
        } else {
            self.workload.clone()
        } {
            if !workloads.contains(&w) {
                workloads.push(w);
            }
        }
        workloads
            .iter()
            .map(|&workload| Spec {
                workload,
                dim: self.dim,
                particles: self.particles.unwrap_or(workload.default_particles()),
                steps: self.steps,
                n_train: self.n_train,
                seed: self.seed,
            })
            .collect()
    }
}

/// Measures what `args` ask for, printing nothing but progress notes on stderr.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    // Read before the bench's own threads add to it.
    let load = bench::load_average();
    args.validate()?;
    let specs = args.specs();
    let progress = !(args.quiet || args.json);
    let say = |msg: &str| {
        if progress {
            crate::note!("{msg}");
        }
    };
    if let Some(dir) = &args.export_model {
        let out = Guard {
            command: "bench",
            needs: args.needs(),
            out: Some((dir, args.force)),
        }
        .open()?
        .expect("an output directory was asked for");
        let mut exported = vec![];
        for s in &specs {
            unless_stopped()?;
            let files = export::export(s, &out)?;
            exported.extend(files.iter().map(|f| f.display().to_string()));
        }
        out.finish()?;
        return Ok(BenchReport {
            header: vec![],
            records: vec![],
            exported,
            stopped: None,
        });
    }

    // Every workload's model and plan (the step's stability) before any is measured: a setting
    // one of them cannot run fails here, not after the others have run.
    for s in &specs {
        s.check()?;
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores);
    let want_cpu = args.backend != BenchBackend::Gpu;
    let want_gpu = match args.backend {
        BenchBackend::Cpu => {
            if args.adapter.is_some() {
                say("note: --adapter is ignored with --backend cpu");
            }
            false
        }
        BenchBackend::Gpu => true,
        BenchBackend::All => {
            let found = !list_adapters().is_empty();
            if !found {
                say("note: no GPU adapter found, measuring the CPU engine only");
            }
            found
        }
    };

    let mut header = vec![format!(
        "regimes bench: d = {}, {} steps, T = {}, seed {}",
        args.dim,
        args.steps,
        bench::T_MAX,
        args.seed
    )];
    let cpu = if want_cpu {
        say(&format!("measuring the peak on {threads} threads..."));
        let setting = Setting::cpu(threads)?;
        let engine = CpuEngine::with_threads(threads)?;
        let peak = setting
            .peak
            .as_ref()
            .map(bench::peak_line)
            .unwrap_or_default();
        header.push(format!("cpu: {}; {peak}", engine.describe()));
        Some((engine, setting))
    } else {
        None
    };
    let gpu = if want_gpu {
        let variant = match &args.gpu_variant {
            Some(v) => crate::engine::gpu::parse_variant(v)?,
            None => None,
        };
        let engine = GpuEngine::with_options(GpuOptions {
            adapter: args.adapter.clone(),
            variant,
            steps_per_dispatch: args.steps_per_dispatch,
            ..GpuOptions::default()
        })?;
        let setting = Setting::gpu(&engine, args.gpu_peak_gflops)?;
        let mut line = format!(
            "gpu: {}; shaders compiled in {:.2} s",
            engine.describe(),
            engine.compile_seconds()
        );
        if let Some(p) = &setting.peak {
            line += &format!("; {}", bench::peak_line(p));
        }
        header.push(line);
        Some((engine, setting))
    } else {
        None
    };

    let peaks: Vec<&bench::peak::Peak> = cpu
        .iter()
        .map(|c| &c.1)
        .chain(gpu.iter().map(|g| &g.1))
        .filter_map(|s| s.peak.as_ref())
        .collect();
    let busy = bench::busy(load, cores, &peaks);
    // In the table's header (and each JSON record's `busy`).
    if let Some(why) = &busy {
        header.push(format!(
            "warning: the machine is busy ({why}): the peak and the runs share it with other \
             work, so % peak (marked *) may mislead"
        ));
    }

    let mut records: Vec<Record> = vec![];
    // A stop (SIGINT, SIGTERM) ends the measurement in flight at its next batch; the workloads
    // measured before it are reported.
    let stop = |r: Result<Record>| -> Result<Option<Record>> {
        match r {
            Err(_) if crate::stop::stop_reason().is_some() => Ok(None),
            r => r.map(Some),
        }
    };
    for spec in &specs {
        if crate::stop::stop_reason().is_some() {
            break;
        }
        if let Some((engine, setting)) = &cpu {
            match stop(bench::measure(engine, setting, spec, progress))? {
                Some(r) => records.push(r),
                None => break,
            }
        }
        if let Some((engine, setting)) = &gpu {
            // A software adapter refuses some workloads (loop limits): report and go on.
            let before = engine.step_choices();
            match bench::measure(engine, setting, spec, progress) {
                Ok(mut r) => {
                    let chosen = engine
                        .step_choices()
                        .into_iter()
                        .find(|c| !before.contains(c));
                    if let Some((shape, choice)) = chosen {
                        bench::record_gpu_variant(&mut r, setting, &shape, &choice);
                    }
                    if let Some(l) = engine.last_dispatch_length() {
                        r.gpu_dispatch_ops = Some(l.ops);
                        r.gpu_dispatch = Some(l.describe());
                    }
                    records.push(r)
                }
                Err(_) if crate::stop::stop_reason().is_some() => break,
                Err(e) if cpu.is_some() => {
                    if !args.quiet {
                        crate::note!("warning: {} on the gpu: {e:#}", spec.workload.name())
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
    bench::compare_backends(&mut records);
    for r in &mut records {
        r.busy = busy.clone();
    }
    Ok(BenchReport {
        header,
        records,
        exported: vec![],
        stopped: crate::stop::stop_reason().map(|s| s.to_string()),
    })
}
