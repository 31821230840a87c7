//! The flags of `regimes bench` and their help, the workloads listed from [`Workload::ALL`]:
//! declared here, beside the options they set ([`Options`]), so that every front end (the
//! command line, the Python package's docstring) documents the same ones.

use std::path::PathBuf;

use clap::{Args, Command};

use super::Workload;
use super::run::{BenchBackend, Options};
use crate::config::keys::Doc;

/// The long help of `regimes bench`, its workloads listed from [`Workload::ALL`].
pub fn long_about() -> String {
    let count = Workload::ALL.len();
    let workloads: String = Workload::ALL
        .iter()
        .map(|w| {
            let head = format!("  {:<10} ", w.name());
            format!("{}\n", crate::report::hanging(&head, w.describe(), 98))
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
fn workload_help() -> String {
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    format!(
        "Workloads: {} (repeat the flag or give a comma list; default all {})",
        names.join(", "),
        names.len()
    )
}

/// `--particles`' help: each workload's default.
fn particles_help() -> String {
    let defaults: Vec<String> = Workload::ALL
        .iter()
        .map(|w| format!("{} {}", w.name(), w.default_particles()))
        .collect();
    format!("Particles per workload [default: {}]", defaults.join(", "))
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, value_delimiter = ',', help = workload_help())]
    workload: Vec<Workload>,
    /// Dimension d.
    #[arg(long, default_value_t = 100)]
    dim: usize,
    #[arg(long, help = particles_help())]
    particles: Option<u64>,
    /// Euler–Maruyama steps from T = 10 to 0.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Training points N of the empirical workload.
    #[arg(long, default_value_t = 1000, value_parser = crate::config::flag::count::<usize>)]
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
    /// Time steps fused into one GPU dispatch [default: measured per plan shape, so that a
    /// dispatch stays well under the OS watchdogs' ~1 s; the record says which and how].
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
    pub json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
}

impl BenchArgs {
    /// What the flags ask for.
    pub fn options(&self) -> Options {
        Options {
            workload: self.workload.clone(),
            dim: self.dim,
            particles: self.particles,
            steps: self.steps,
            n_train: self.n_train,
            backend: self.backend,
            adapter: self.adapter.clone(),
            threads: self.threads,
            seed: self.seed,
            gpu_peak_gflops: self.gpu_peak_gflops,
            gpu_variant: self.gpu_variant.clone(),
            steps_per_dispatch: self.steps_per_dispatch,
            export_model: self.export_model.clone(),
            force: self.force,
            progress: !self.json,
            quiet: self.quiet,
        }
    }
}

/// Every flag of `regimes bench`, documented (for front ends other than the command line).
pub fn documented() -> Vec<Doc> {
    BenchArgs::augment_args(Command::new("bench"))
        .get_arguments()
        .map(|a| Doc::of(a, "Options"))
        .collect()
}
