//! What `bench` is asked for ([`Options`], read by the CLI's flags and the Python package's
//! keyword arguments) and the measurement of it ([`run`]): every workload checked first, the
//! engines and their peaks, one record per workload and engine.

use std::path::PathBuf;

use anyhow::{Result, ensure};
use serde::Deserialize;

use super::{Record, Setting, Spec, Workload, export};
use crate::engine::Engine;
use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};
use crate::study::guard::{Guard, unless_stopped};
use crate::study::resources::{self, Needs};

/// Which engines to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BenchBackend {
    /// The CPU engine.
    Cpu,
    /// The GPU engine (fails if no adapter is found).
    Gpu,
    /// The CPU engine, and the GPU engine if wgpu finds an adapter.
    All,
}

/// What to measure (the CLI's `bench` flags; the defaults are theirs).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// Workloads; empty: all.
    pub workload: Vec<Workload>,
    pub dim: usize,
    /// Particles per workload; None: each workload's default.
    pub particles: Option<u64>,
    pub steps: usize,
    pub n_train: usize,
    pub backend: BenchBackend,
    pub adapter: Option<String>,
    pub threads: Option<usize>,
    pub seed: u64,
    pub gpu_peak_gflops: Option<f64>,
    pub gpu_variant: Option<String>,
    pub steps_per_dispatch: Option<usize>,
    /// Write each workload's model as .npy files under this directory instead of measuring.
    pub export_model: Option<PathBuf>,
    /// Replace the files an earlier export wrote into that directory (other files stay).
    pub force: bool,
    /// Progress notes on stderr.
    pub progress: bool,
    /// No warnings on stderr either.
    pub quiet: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            workload: vec![],
            dim: 100,
            particles: None,
            steps: 100,
            n_train: 1000,
            backend: BenchBackend::Cpu,
            adapter: None,
            threads: None,
            seed: 1,
            gpu_peak_gflops: None,
            gpu_variant: None,
            steps_per_dispatch: None,
            export_model: None,
            force: false,
            progress: true,
            quiet: false,
        }
    }
}

/// What `regimes bench` measured: the header lines (settings, engines, peaks) and one record
/// per workload and engine; or, with `--export-model`, the files it wrote.
pub struct Report {
    pub header: Vec<String>,
    pub records: Vec<Record>,
    pub exported: Vec<String>,
    /// Why it stopped before measuring every workload (a signal); the records are those
    /// measured before.
    pub stopped: Option<String>,
}

impl Options {
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
pub fn run(args: &Options) -> Result<Report> {
    // Read before the bench's own threads add to it.
    let load = super::load_average();
    args.validate()?;
    let specs = args.specs();
    let progress = args.progress && !args.quiet;
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
        return Ok(Report {
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
        super::T_MAX,
        args.seed
    )];
    let cpu = if want_cpu {
        say(&format!("measuring the peak on {threads} threads..."));
        let setting = Setting::cpu(threads)?;
        let engine = CpuEngine::with_threads(threads)?;
        let peak = setting
            .peak
            .as_ref()
            .map(super::peak_line)
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
            line += &format!("; {}", super::peak_line(p));
        }
        header.push(line);
        Some((engine, setting))
    } else {
        None
    };

    let peaks: Vec<&super::peak::Peak> = cpu
        .iter()
        .map(|c| &c.1)
        .chain(gpu.iter().map(|g| &g.1))
        .filter_map(|s| s.peak.as_ref())
        .collect();
    let busy = super::busy(load, cores, &peaks);
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
            match stop(super::measure(engine, setting, spec, progress))? {
                Some(r) => records.push(r),
                None => break,
            }
        }
        if let Some((engine, setting)) = &gpu {
            // A software adapter refuses some workloads (loop limits): report and go on.
            let before = engine.step_choices();
            match super::measure(engine, setting, spec, progress) {
                Ok(mut r) => {
                    let chosen = engine
                        .step_choices()
                        .into_iter()
                        .find(|c| !before.contains(c));
                    if let Some((shape, choice)) = chosen {
                        super::record_gpu_variant(&mut r, setting, &shape, &choice);
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
    super::compare_backends(&mut records);
    for r in &mut records {
        r.busy = busy.clone();
    }
    Ok(Report {
        header,
        records,
        exported: vec![],
        stopped: crate::stop::stop_reason().map(|s| s.to_string()),
    })
}
