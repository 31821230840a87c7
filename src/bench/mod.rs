//! Throughput of the engines on the standard workloads ([`Workload::ALL`]) (`regimes bench`, `cargo bench`): how
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
//!   the N training points per step dominates;
//! * `coupled`: two modalities of d/2 coupled additively — a dense K ⊗ I per step.
//!
//! Building the model and plan is timed apart (`setup_seconds`), so is the GPU's shader compile;
//! a short warm-up precedes the timed run, which records nothing, so only the stepping is timed.

pub mod args;
pub mod cost;
pub mod export;
pub mod memory;
pub mod peak;
pub mod run;
mod workload;

use std::time::Instant;

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::Backend;
use crate::engine::gpu::{GpuEngine, is_software};
use crate::engine::{Engine, Recorder};
use crate::measure::run::{RunSpec, run};
use crate::report::{Progress, si};

use cost::{Cost, GpuKernels, GpuPeak, KernelCost};
use peak::Peak;

pub use workload::{COUPLING, SIGMA, Spec, T_MAX, Workload};

/// Particles of the warm-up run (one CPU tile, four GPU workgroups), over [`WARM_STEPS`] steps.
const WARM_PARTICLES: u64 = crate::engine::cpu::TILE as u64;
const WARM_STEPS: usize = 2;

/// Fewer particles than this leave a hardware GPU partly idle (a large GPU keeps ~10⁵ threads
/// in flight).
const GPU_FILL: u64 = 1 << 18;

/// What a record needs to know about its engine beyond the [`Engine`] trait.
#[derive(Clone, Debug)]
pub struct Setting {
    /// The engine measured: [`Backend::Cpu`] or [`Backend::Gpu`], never `auto`.
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
        let software = is_software(engine.adapter_info());
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
                spread: None,
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
    /// Empirical workload on the CPU: the fraction of (block of 16 particles) × (tile of 64
    /// training points) products the exact pruning skipped in the timed run.
    pub pruned_tiles_fraction: Option<f64>,
    /// GPU only: the step-kernel variant the run used and how it was chosen (probe timings).
    pub gpu_variant: Option<String>,
    /// GPU only: ops per step dispatch of the run (2 per time step) at most.
    pub gpu_dispatch_ops: Option<usize>,
    /// GPU only: the length of the step dispatches and how it was chosen (given by
    /// `--steps-per-dispatch`, or measured: timestamp queries, the probe's or the first
    /// dispatches' wall time; cut by a loop budget).
    pub gpu_dispatch: Option<String>,
    /// Why the numbers may mislead, if they may.
    pub note: Option<String>,
    /// Why the machine looked busy ([`busy`]), if it did: `peak_fraction` then compares a run
    /// and a peak that shared the machine with other work (the table marks it *).
    pub busy: Option<String>,
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
    engine.take_pruning();

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
    let [pruned, tiles] = engine
        .take_pruning()
        .iter()
        .fold([0, 0], |a, c| [a[0] + c[0], a[1] + c[1]]);
    let pruned_tiles_fraction = (tiles > 0).then(|| pruned as f64 / tiles as f64);
    if let Some(why) = out.stopped {
        bail!("{label}: {why}");
    }

    let c: Cost = cost::cost(&plan.shape(), cost::share(setting.backend));
    let kernel_cost = (setting.backend == Backend::Gpu)
        .then(|| cost::kernel_cost(&plan.shape(), GpuKernels::Blocked, setting.native_int64));
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
        pruned_tiles_fraction,
        gpu_variant: None,
        gpu_dispatch_ops: None,
        gpu_dispatch: None,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        busy: None,
    })
}

/// The 1-minute load average (/proc/loadavg), where the system reports one.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A peak probe whose two runs differ by more than this looks shared with other work.
pub const BUSY_SPREAD: f64 = 0.10;

/// Why the machine looks busy, if it does: a load average (read before the bench starts its own
/// threads) above half of `cores`, or arithmetic peak probes that differed by more than
/// [`BUSY_SPREAD`]. Either way the peak and the runs share the cores with other work, so "% of
/// peak" may mislead.
pub fn busy(load: Option<f64>, cores: usize, peaks: &[&Peak]) -> Option<String> {
    let mut why = vec![];
    if let Some(l) = load
        && l > 0.5 * cores as f64
    {
        why.push(format!("load average {l:.2} on {cores} cores"));
    }
    for p in peaks {
        if let Some(s) = p.spread
            && s > BUSY_SPREAD
        {
            why.push(format!(
                "the peak probe on {} threads varied by {:.0} %",
                p.threads,
                100.0 * s
            ));
        }
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// A GPU record's step-kernel variant: its name and choice, and the cost model and roofline of
/// that variant in place of the blocked kernels'.
pub fn record_gpu_variant(
    r: &mut Record,
    setting: &Setting,
    shape: &crate::plan::Shape,
    choice: &crate::engine::gpu::Choice,
) {
    let k = cost::kernel_cost(shape, GpuKernels::of(choice.variant), setting.native_int64);
    r.kernel_cost = Some(k);
    if let Some(p) = &setting.gpu_peak {
        r.roofline_particle_steps_per_s = Some(k.bound(p));
    }
    r.gpu_variant = Some(choice.describe());
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
        let mark = if r.busy.is_some() { "*" } else { "" };
        let percent = r
            .peak_fraction
            .map_or("—".into(), |f| format!("{:.1}{mark}", 100.0 * f));
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
        if let Some(f) = r.pruned_tiles_fraction {
            notes.push(format!(
                "{} {}: {:.1} % of the tiles of training points pruned (exact)",
                r.workload.name(),
                r.backend.name(),
                100.0 * f
            ));
        }
        if let Some(k) = &r.kernel_cost {
            let bound = match (&r.roofline_class, r.roofline_particle_steps_per_s) {
                (Some(class), Some(b)) => format!("; {class} roofline {} particle-steps/s", si(b)),
                _ => String::new(),
            };
            let variant = r.gpu_variant.as_deref().unwrap_or("blocked");
            notes.push(format!(
                "{} gpu kernels ({variant}): {} flops, {} Philox int ops, {:.0} bytes of global memory per \
                 particle-step{bound}",
                r.workload.name(),
                k.flops,
                k.int_ops,
                k.bytes
            ));
        }
        if let Some(how) = &r.gpu_dispatch {
            notes.push(format!("{} gpu dispatches: {how}", r.workload.name()));
        }
    }
    if let Some(why) = records.iter().find_map(|r| r.busy.as_ref()) {
        notes.push(format!(
            "* the machine was busy ({why}): the peak and the runs shared it with other work, so \
             % peak may mislead; rerun on an idle machine"
        ));
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
        "peak: {:.1} GFLOP/s f32 FMA{read}{normals} ({})",
        p.gflops, p.source
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loaded_or_unsteady_machine_is_busy() {
        let steady = Peak {
            threads: 2,
            gflops: 100.0,
            bytes_per_s: None,
            normals_per_s: None,
            source: String::new(),
            spread: Some(0.02),
        };
        let unsteady = Peak {
            spread: Some(0.3),
            ..steady.clone()
        };
        assert_eq!(busy(Some(0.9), 2, &[&steady]), None);
        assert_eq!(busy(None, 2, &[&steady]), None);
        let loaded = busy(Some(1.5), 2, &[&steady]).unwrap();
        assert!(loaded.contains("load average 1.50 on 2 cores"), "{loaded}");
        let varied = busy(Some(0.1), 2, &[&unsteady]).unwrap();
        assert!(varied.contains("varied by 30 %"), "{varied}");
    }

    #[test]
    fn the_bound_is_the_resource_nearest_its_peak() {
        let peak = Peak {
            threads: 1,
            gflops: 100.0,
            bytes_per_s: Some(10e9),
            normals_per_s: Some(1e9),
            source: String::new(),
            spread: None,
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
}
