//! Throughput of the engines on three standard workloads (`regimes bench`, `cargo bench`): how
//! many particle-steps per second an engine runs, and what that means in flops, bytes and normal
//! draws per second ([`cost`]) against what the machine can do ([`peak`]).
//!
//! Every workload has two classes ±m, m along (1, …, 1) with ‖m‖² = d, σ = 1, T = [`T_MAX`] and
//! Δt = T/steps; they differ in the shape of the plan, which is what sets the cost of a step:
//!
//! * `gmm`: U = I, Q = 0 — every matrix of the plan is a scalar;
//! * `dense`: U = `rotated:0.2:5` (geometric spectrum in a random basis) with the optimal Q — a
//!   dense d×d M per step, the matrix-vector product dominates;
//! * `empirical`: U = I, Q = 0, target = n-train points drawn from the mixture — a softmax over
//!   the N training points per step dominates.
//!
//! Building the model and plan is timed apart (`setup_seconds`), so is the GPU's shader compile;
//! a short warm-up precedes the timed run, which records nothing, so only the stepping is timed.

pub mod cost;
pub mod export;
pub mod memory;
pub mod peak;

use std::time::Instant;

use anyhow::{Result, bail, ensure};
use nalgebra::DVector;
use serde::Serialize;

use crate::engine::gpu::GpuEngine;
use crate::engine::{Engine, Recorder};
use crate::linalg::Linear;
use crate::measure::run::{RunSpec, run};
use crate::model::coupling::{Coupling, paired_mean};
use crate::model::precision::build_u;
use crate::model::rotation::optimal_q;
use crate::model::{Empirical, Mixture, Model, Process, Target, USpec};
use crate::plan::{Grid, Plan, Scheme, Start};
use crate::report::{Progress, si};

use cost::{Cost, GpuKernels, GpuPeak, KernelCost, Shape};
use peak::Peak;

/// The coupling of the `coupled` workload.
pub const COUPLING: f64 = 0.5;

/// The horizon T of every workload.
pub const T_MAX: f64 = 10.0;

/// Within-class standard deviation σ (C = σ²I) of every workload.
pub const SIGMA: f64 = 1.0;

/// Particles of the warm-up run (one CPU tile, four GPU workgroups), over [`WARM_STEPS`] steps.
const WARM_PARTICLES: u64 = 256;
const WARM_STEPS: usize = 2;

/// Fewer particles than this leave a hardware GPU partly idle (a large GPU keeps ~10⁵ threads
/// in flight).
const GPU_FILL: u64 = 1 << 18;

/// The standard workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Two-class Gaussian mixture, U = I, Q = 0: every plan matrix is a scalar.
    Gmm,
    /// Two-class mixture, U = rotated:0.2:5 with the optimal Q: a dense d×d M per step.
    Dense,
    /// The empirical target of --n-train points, U = I, Q = 0: a softmax over N per step.
    Empirical,
    /// Two modalities of dimension d/2 coupled additively (γ = 0.5): a dense K ⊗ I per step.
    Coupled,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Gmm,
        Workload::Dense,
        Workload::Empirical,
        Workload::Coupled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Gmm => "gmm",
            Workload::Dense => "dense",
            Workload::Empirical => "empirical",
            Workload::Coupled => "coupled",
        }
    }

    /// Particles when none are asked for: a few seconds each on two cores at d = 100.
    pub fn default_particles(self) -> u64 {
        match self {
            Workload::Gmm => 65_536,
            Workload::Dense => 65_536,
            Workload::Empirical => 8_192,
            Workload::Coupled => 65_536,
        }
    }
}

/// One measurement to make.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub workload: Workload,
    pub dim: usize,
    pub particles: u64,
    pub steps: usize,
    /// Training points of the empirical workload (ignored by the others).
    pub n_train: usize,
    pub seed: u64,
}

impl Spec {
    /// Refuses values no workload can run, naming the flag.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.dim > 0, "--dim: must be positive (got 0)");
        ensure!(self.particles > 0, "--particles: must be positive (got 0)");
        ensure!(self.steps > 0, "--steps: must be positive (got 0)");
        if self.workload == Workload::Coupled {
            ensure!(
                self.dim >= 4 && self.dim.is_multiple_of(2),
                "--dim: the coupled workload needs an even d ≥ 4 (two modalities of d/2; got {})",
                self.dim
            );
        }
        if self.workload == Workload::Empirical {
            ensure!(
                self.n_train >= 2,
                "--n-train: the empirical workload needs at least 2 training points (got {})",
                self.n_train
            );
            // The training set in f64 and the plan's f32 copy, before anything is allocated.
            let need = (self.n_train as u64)
                .saturating_mul(self.dim as u64)
                .saturating_mul(8 + 4);
            if let Some(avail) = crate::cli::resources::available_memory() {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                ensure!(
                    need <= avail,
                    "--n-train: {} training points in d = {} need about {:.1} GiB of memory, the \
                     system has {:.1} GiB available; lower --n-train or --dim",
                    self.n_train,
                    self.dim,
                    gib(need),
                    gib(avail)
                );
            }
        }
        Grid::new(T_MAX, self.steps).map_err(|e| anyhow::anyhow!("--{e:#}"))?;
        Ok(())
    }

    /// Training points, for the empirical workload only.
    pub fn n_train(&self) -> Option<usize> {
        (self.workload == Workload::Empirical).then_some(self.n_train)
    }

    /// The class mean m: along (1, …, 1) with ‖m‖² = d.
    pub fn mean(&self) -> DVector<f64> {
        match self.workload {
            // (m_x, m_y) with m_x along ones, m_y ⟂ m_x: ‖m‖² = d as for the other workloads.
            Workload::Coupled => paired_mean(&DVector::from_element(self.dim / 2, 1.0), 90.0)
                .unwrap_or_else(|_| DVector::from_element(self.dim, 1.0)),
            _ => DVector::from_element(self.dim, 1.0),
        }
    }

    /// The model of the workload (random parts drawn with the seed).
    pub fn model(&self) -> Result<Model> {
        let d = self.dim;
        let mixture = Mixture::two_class(self.mean(), SIGMA);
        let identity = || Process::new(Linear::identity(d), Linear::Scalar(0.0, d));
        Ok(match self.workload {
            Workload::Gmm => Model {
                process: identity()?,
                target: Target::Mixture(mixture),
            },
            Workload::Dense => {
                let u = build_u(&USpec::Rotated(0.2, 5.0), d, self.seed)?;
                let q = optimal_q(&u, None)?;
                Model {
                    process: Process::new(u, q)?,
                    target: Target::Mixture(mixture),
                }
            }
            Workload::Coupled => Model {
                process: Process::new(
                    Coupling::additive(COUPLING).joint_precision(&Linear::identity(d / 2))?,
                    Linear::Scalar(0.0, d),
                )?,
                target: Target::Mixture(mixture),
            },
            Workload::Empirical => Model {
                process: identity()?,
                target: Target::Empirical(Empirical {
                    points: mixture.sample_training_set(self.n_train, self.seed),
                }),
            },
        })
    }

    /// The model and its plan with every chunk of coefficients built, and the seconds it took.
    pub fn plan(&self) -> Result<(Plan, f64)> {
        self.validate()?;
        let started = Instant::now();
        let grid = Grid::new(T_MAX, self.steps)?;
        let plan = Plan::new(&self.model()?, grid, Scheme::EulerMaruyama, Start::Exact)?;
        for c in 0..plan.chunk_count() {
            plan.chunk(c)?;
        }
        Ok((plan, started.elapsed().as_secs_f64()))
    }
}

/// Which engine a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }

    /// Particles sharing each coefficient load in the cost model.
    pub fn share(self) -> usize {
        match self {
            Backend::Cpu => cost::CPU_SHARE,
            Backend::Gpu => cost::GPU_SHARE,
        }
    }
}

/// What a record needs to know about its engine beyond the [`Engine`] trait.
#[derive(Clone, Debug)]
pub struct Setting {
    pub backend: Backend,
    /// CPU threads (None for the GPU).
    pub threads: Option<usize>,
    pub shader_compile_seconds: Option<f64>,
    /// The ceiling to compare against, if known.
    pub peak: Option<Peak>,
    /// A software GPU adapter (lavapipe, llvmpipe, SwiftShader), which runs on the host CPU.
    pub software: bool,
    /// The stated peaks of the GPU's class, where known ([`cost::GPU_PEAKS`]).
    pub gpu_peak: Option<GpuPeak>,
    /// Whether the GPU's Philox runs on native 64-bit integers.
    pub native_int64: bool,
}

impl Setting {
    /// The CPU engine on `threads` threads, against the peak measured on as many.
    pub fn cpu(threads: usize) -> Result<Self> {
        Ok(Setting {
            backend: Backend::Cpu,
            threads: Some(threads),
            shader_compile_seconds: None,
            peak: Some(peak::measure(threads)?),
            software: false,
            gpu_peak: None,
            native_int64: false,
        })
    }

    /// A GPU engine. A software adapter runs on every host core, so the host's measured peak is
    /// its ceiling; a hardware GPU has the peak its vendor states, if given.
    pub fn gpu(engine: &GpuEngine, stated_gflops: Option<f64>) -> Result<Self> {
        let software = software_adapter(engine.adapter_info());
        let peak = if software {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut p = peak::measure(cores)?;
            p.source += " (the host CPU, which runs the software adapter)";
            // The WGSL generator compiled by the adapter is not the CPU engine's.
            p.normals_per_s = None;
            Some(p)
        } else {
            stated_gflops.map(|gflops| Peak {
                threads: 0,
                gflops,
                bytes_per_s: None,
                normals_per_s: None,
                source: "stated (--gpu-peak-gflops)".into(),
            })
        };
        Ok(Setting {
            backend: Backend::Gpu,
            threads: None,
            shader_compile_seconds: Some(engine.compile_seconds()),
            peak,
            software,
            gpu_peak: cost::gpu_peak(&engine.adapter_info().name),
            native_int64: engine.native_int64(),
        })
    }
}

/// Whether an adapter is a CPU implementation of the GPU API (lavapipe/llvmpipe, SwiftShader).
pub fn software_adapter(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader"]
            .iter()
            .any(|s| name.contains(s))
}

/// One measurement, under stable keys (`regimes bench --json` prints a list of these).
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub workload: Workload,
    pub backend: Backend,
    /// The engine's own description (adapter, threads).
    pub adapter: String,
    pub dim: usize,
    pub particles: u64,
    pub steps: usize,
    /// Training points (empirical workload only).
    pub n_train: Option<usize>,
    pub threads: Option<usize>,
    pub particle_steps_per_s: f64,
    /// Cost model ([`cost`]) times the measured rate.
    pub gflops: f64,
    pub bytes_per_s: f64,
    pub normals_per_s: f64,
    /// The cost model's counts per particle-step.
    pub flops_per_particle_step: u64,
    pub bytes_per_particle_step: f64,
    pub normals_per_particle_step: u64,
    pub peak_gflops: Option<f64>,
    pub peak_bytes_per_s: Option<f64>,
    pub peak_source: Option<String>,
    pub peak_normals_per_s: Option<f64>,
    /// gflops / peak_gflops.
    pub peak_fraction: Option<f64>,
    /// The resource closest to its peak: `flops`, `bytes` or `normals` (where peaks are known).
    pub bound: Option<String>,
    /// That resource's rate over its peak: the fraction of the machine's limit reached.
    pub bound_fraction: Option<f64>,
    /// Building the model and the plan (every chunk of coefficients).
    pub setup_seconds: f64,
    /// GPU shader compilation and JIT warm-up, before any run.
    pub shader_compile_seconds: Option<f64>,
    /// The timed run: start, every step, final tally.
    pub run_seconds: f64,
    /// Peak resident memory of the process during setup and run (VmHWM), where available.
    pub peak_memory_bytes: Option<u64>,
    /// GPU only: what the kernels in use execute and move per particle-step
    /// ([`cost::kernel_cost`]).
    pub kernel_cost: Option<KernelCost>,
    /// GPU only: the class whose stated peaks give `roofline_particle_steps_per_s`.
    pub roofline_class: Option<String>,
    /// GPU only: the roofline bound of the kernels on the adapter's class, where known.
    pub roofline_particle_steps_per_s: Option<f64>,
    /// Why the numbers may mislead, if they may.
    pub note: Option<String>,
}

/// Measures one workload on an engine: setup, warm-up, then the timed run. `progress` draws a
/// progress bar (or one summary line) on stderr.
pub fn measure<E: Engine>(
    engine: &E,
    setting: &Setting,
    spec: &Spec,
    progress: bool,
) -> Result<Record> {
    memory::reset_peak();
    let (plan, setup_seconds) = spec.plan()?;

    // Warm-up: caches, page faults, the GPU's first dispatches.
    let ids: Vec<u64> = (0..WARM_PARTICLES.min(spec.particles)).collect();
    let mut batch = engine.start(&plan, spec.seed, &ids)?;
    let warm_to = WARM_STEPS.min(plan.grid.steps);
    engine.advance(&plan, &mut batch, 0, warm_to, &mut Recorder::none(&plan))?;
    drop(batch);

    let total = spec.particles * spec.steps as u64;
    let label = format!("{} {}", spec.workload.name(), setting.backend.name());
    let bar = Progress::new(total, &label, !progress);
    let run_spec = RunSpec {
        seed: spec.seed,
        particles: spec.particles,
        keep_samples: false,
        batch: None,
    };
    let started = Instant::now();
    let out = run(engine, &plan, run_spec, Recorder::none(&plan), &mut |n| {
        bar.inc(n)
    })?;
    let run_seconds = started.elapsed().as_secs_f64();
    bar.finish();
    if let Some(why) = out.stopped {
        bail!("{label}: {why}");
    }

    let c: Cost = cost::cost(&Shape::of(&plan), setting.backend.share());
    let kernel_cost = (setting.backend == Backend::Gpu)
        .then(|| cost::kernel_cost(&Shape::of(&plan), GpuKernels::Blocked, setting.native_int64));
    let roofline = kernel_cost
        .as_ref()
        .zip(setting.gpu_peak.as_ref())
        .map(|(k, p)| (p.class.to_string(), k.bound(p)));
    let rate = total as f64 / run_seconds;
    let gflops = rate * c.flops as f64 / 1e9;
    let (bound, bound_fraction) = setting
        .peak
        .as_ref()
        .and_then(|p| binding_resource(p, rate, &c))
        .unzip();
    let mut notes = vec![];
    if setting.software {
        notes.push("software adapter: the GPU kernels are emulated on the host CPU".to_string());
    } else if setting.backend == Backend::Gpu && spec.particles < GPU_FILL {
        notes.push(format!(
            "{} particles may be too few to fill the device (try ≥ {GPU_FILL})",
            spec.particles
        ));
    }
    Ok(Record {
        workload: spec.workload,
        backend: setting.backend,
        adapter: engine.describe(),
        dim: spec.dim,
        particles: spec.particles,
        steps: spec.steps,
        n_train: spec.n_train(),
        threads: setting.threads,
        particle_steps_per_s: rate,
        gflops,
        bytes_per_s: rate * c.bytes,
        normals_per_s: rate * c.normals as f64,
        flops_per_particle_step: c.flops,
        bytes_per_particle_step: c.bytes,
        normals_per_particle_step: c.normals,
        peak_gflops: setting.peak.as_ref().map(|p| p.gflops),
        peak_bytes_per_s: setting.peak.as_ref().and_then(|p| p.bytes_per_s),
        peak_source: setting.peak.as_ref().map(|p| p.source.clone()),
        peak_normals_per_s: setting.peak.as_ref().and_then(|p| p.normals_per_s),
        peak_fraction: setting.peak.as_ref().map(|p| gflops / p.gflops),
        bound: bound.map(str::to_string),
        bound_fraction,
        setup_seconds,
        shader_compile_seconds: setting.shader_compile_seconds,
        run_seconds,
        peak_memory_bytes: memory::peak_bytes(),
        kernel_cost,
        roofline_class: roofline.as_ref().map(|r| r.0.clone()),
        roofline_particle_steps_per_s: roofline.map(|r| r.1),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// Of the resources whose peak is known, the one a run at `rate` particle-steps/s uses the largest
/// fraction of, and that fraction: what limits the workload on this machine.
pub fn binding_resource(peak: &Peak, rate: f64, c: &Cost) -> Option<(&'static str, f64)> {
    [
        ("flops", Some(rate * c.flops as f64 / (peak.gflops * 1e9))),
        ("bytes", peak.bytes_per_s.map(|b| rate * c.bytes / b)),
        (
            "normals",
            peak.normals_per_s.map(|n| rate * c.normals as f64 / n),
        ),
    ]
    .into_iter()
    .filter_map(|(name, f)| f.map(|f| (name, f)))
    .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Adds a note to every GPU record slower than the CPU record of the same workload.
pub fn compare_backends(records: &mut [Record]) {
    let cpu: Vec<(Workload, f64)> = records
        .iter()
        .filter(|r| r.backend == Backend::Cpu)
        .map(|r| (r.workload, r.particle_steps_per_s))
        .collect();
    for r in records.iter_mut().filter(|r| r.backend == Backend::Gpu) {
        if let Some(&(_, c)) = cpu.iter().find(|(w, _)| *w == r.workload)
            && r.particle_steps_per_s < c
        {
            let why = r.note.take().unwrap_or_else(|| "reason unknown".into());
            r.note = Some(format!(
                "{:.1}× slower than the CPU engine: {why}",
                c / r.particle_steps_per_s
            ));
        }
    }
}

/// The human table: one line per record, then the notes.
pub fn table(records: &[Record]) -> String {
    let mut s = format!(
        "{:<10} {:<4} {:>16} {:>9} {:>7} {:>8} {:>13} {:>8} {:>8}\n",
        "workload",
        "",
        "particle-steps/s",
        "GFLOP/s",
        "% peak",
        "GB/s",
        "bound",
        "setup",
        "compile"
    );
    let mut notes = vec![];
    for r in records {
        let percent = r
            .peak_fraction
            .map_or("—".into(), |f| format!("{:.1}", 100.0 * f));
        let compile = r
            .shader_compile_seconds
            .map_or("—".into(), |c| format!("{c:.2} s"));
        let bound = match (&r.bound, r.bound_fraction) {
            (Some(b), Some(f)) => format!("{b} {:.0}%", 100.0 * f),
            _ => "—".into(),
        };
        s += &format!(
            "{:<10} {:<4} {:>16} {:>9.2} {:>7} {:>8.2} {:>13} {:>8} {:>8}\n",
            r.workload.name(),
            r.backend.name(),
            si(r.particle_steps_per_s),
            r.gflops,
            percent,
            r.bytes_per_s / 1e9,
            bound,
            format!("{:.2} s", r.setup_seconds),
            compile
        );
        if let Some(n) = &r.note {
            notes.push(format!("{} {}: {n}", r.workload.name(), r.backend.name()));
        }
        if let Some(k) = &r.kernel_cost {
            let bound = match (&r.roofline_class, r.roofline_particle_steps_per_s) {
                (Some(class), Some(b)) => format!("; {class} roofline {} particle-steps/s", si(b)),
                _ => String::new(),
            };
            notes.push(format!(
                "{} gpu kernels: {} flops, {} Philox int ops, {:.0} bytes of global memory per \
                 particle-step{bound}",
                r.workload.name(),
                k.flops,
                k.int_ops,
                k.bytes
            ));
        }
    }
    for n in notes {
        s += &format!("note: {n}\n");
    }
    s
}

/// The header line of a peak.
pub fn peak_line(p: &Peak) -> String {
    let read = p
        .bytes_per_s
        .map_or(String::new(), |b| format!(", {:.1} GB/s read", b / 1e9));
    let normals = p
        .normals_per_s
        .map_or(String::new(), |n| format!(", {} normals/s", si(n)));
    format!(
        "peak: {:.1} GFLOP/s f32 mul+add{read}{normals} ({})",
        p.gflops, p.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Form;
    use crate::plan::Kind;

    fn spec(workload: Workload, dim: usize) -> Spec {
        Spec {
            workload,
            dim,
            particles: 16,
            steps: 40,
            n_train: 5,
            seed: 1,
        }
    }

    #[test]
    fn workloads_have_the_plan_shapes_they_claim() {
        let shape = |w, d| Shape::of(&spec(w, d).plan().unwrap().0);
        let g = shape(Workload::Gmm, 2);
        assert_eq!((g.kind, g.centers), (Kind::Mixture, 2));
        assert_eq!([g.m_form, g.b_form, g.p_form], [Form::Scalar; 3]);
        // The cost model's hand count (cost::tests) applies to the real plan.
        assert_eq!(cost::cost(&g, 16).flops, 34);
        let dense = shape(Workload::Dense, 3);
        assert_eq!(dense.m_form, Form::Dense);
        assert_eq!([dense.b_form, dense.p_form], [Form::Scalar; 2]);
        assert_eq!(cost::cost(&dense, 16).flops, 63);
        let c = shape(Workload::Coupled, 4);
        assert_eq!(
            (c.kind, c.centers, c.m_form),
            (Kind::Mixture, 2, Form::Dense)
        );
        assert!(spec(Workload::Coupled, 3).validate().is_err(), "odd d");
        let e = shape(Workload::Empirical, 2);
        assert_eq!((e.kind, e.centers), (Kind::Empirical, 5));
        assert_eq!(cost::cost(&e, 16).flops, 67);
    }

    #[test]
    fn the_bound_is_the_resource_nearest_its_peak() {
        let peak = Peak {
            threads: 1,
            gflops: 100.0,
            bytes_per_s: Some(10e9),
            normals_per_s: Some(1e9),
            source: String::new(),
        };
        let c = Cost {
            flops: 1000,
            normals: 100,
            bytes: 100.0,
        };
        // 1e6 particle-steps/s: 1 GFLOP/s (1%), 0.1 GB/s (1%), 1e8 normals/s (10%).
        assert_eq!(binding_resource(&peak, 1e6, &c), Some(("normals", 0.1)));
        // Unknown peaks are left out.
        let flops_only = Peak {
            bytes_per_s: None,
            normals_per_s: None,
            ..peak
        };
        assert_eq!(
            binding_resource(&flops_only, 1e6, &c),
            Some(("flops", 0.01))
        );
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = |s: Spec| format!("{:#}", s.validate().unwrap_err());
        assert!(
            err(Spec {
                dim: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--dim")
        );
        assert!(
            err(Spec {
                particles: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--particles")
        );
        assert!(
            err(Spec {
                steps: 0,
                ..spec(Workload::Gmm, 2)
            })
            .contains("--steps")
        );
        assert!(
            err(Spec {
                n_train: 1,
                ..spec(Workload::Empirical, 2)
            })
            .contains("--n-train")
        );
        // n-train only matters to the empirical workload.
        assert!(
            Spec {
                n_train: 1,
                ..spec(Workload::Gmm, 2)
            }
            .validate()
            .is_ok()
        );
    }
}
