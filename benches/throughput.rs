//! Throughput and memory of the engines: `cargo bench --bench throughput` (add `-- --quick` for a
//! short run). Prints particle-steps per second for the CPU engine and, when wgpu finds an
//! adapter, the GPU engine (shader compile time apart), on the plan shapes that matter: scalar,
//! dense and empirical. Then checks that peak memory does not grow with the particle count.

use std::time::Instant;

use nalgebra::DVector;
use regimes::engine::cpu::CpuEngine;
use regimes::engine::gpu::GpuEngine;
use regimes::engine::{Engine, Recorder};
use regimes::linalg::Linear;
use regimes::measure::run::{RunSpec, run};
use regimes::model::precision::build_u;
use regimes::model::rotation::optimal_q;
use regimes::model::{Empirical, Mixture, Model, Process, Target, USpec};
use regimes::plan::{Grid, Plan, Scheme, Start};

struct Case {
    name: &'static str,
    model: Model,
}

fn two_class(process: Process) -> Model {
    let d = process.dim();
    Model {
        process,
        target: Target::Mixture(Mixture::two_class(DVector::from_element(d, 1.0), 1.0)),
    }
}

fn cases() -> Vec<Case> {
    let identity = |d| Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap();
    let u = build_u(&USpec::Rotated(0.2, 5.0), 64, 1).unwrap();
    let dense = Process::new(u.clone(), optimal_q(&u, None).unwrap()).unwrap();
    let mixture16 = Mixture::two_class(DVector::from_element(16, 1.0), 1.0);
    let training = Empirical {
        points: mixture16.sample_training_set(1000, 1),
    };
    vec![
        Case {
            name: "mixture d=16 scalar",
            model: two_class(identity(16)),
        },
        Case {
            name: "mixture d=64 dense (rotated U, optimal Q)",
            model: two_class(dense),
        },
        Case {
            name: "empirical d=16 N=1000",
            model: Model {
                process: identity(16),
                target: Target::Empirical(training),
            },
        },
    ]
}

/// Particle-steps per second of one run (after a short warm-up run), or why it could not run.
fn rate<E: Engine>(engine: &E, plan: &Plan, particles: u64) -> Result<f64, String> {
    let spec = RunSpec {
        seed: 1,
        particles,
        keep_samples: false,
        batch: None,
    };
    let warm = RunSpec {
        particles: particles.min(4096),
        ..spec
    };
    let go = |spec| {
        let out = run(engine, plan, spec, Recorder::none(plan), &mut |_| {})
            .map_err(|e| format!("{e:#}"))?;
        out.stopped.map_or(Ok(()), Err)
    };
    go(warm)?;
    let started = Instant::now();
    go(spec)?;
    Ok((particles * plan.grid.steps as u64) as f64 / started.elapsed().as_secs_f64())
}

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (particles, steps) = if quick { (8_192, 10) } else { (65_536, 50) };
    let grid = Grid::new(1.0, steps).unwrap();
    let cpu = CpuEngine::new();
    let gpu = match GpuEngine::new() {
        Ok(g) => {
            println!(
                "{} (shader compile {:.2} s)",
                g.describe(),
                g.compile_seconds()
            );
            Some(g)
        }
        Err(e) => {
            println!("gpu: none ({e:#})");
            None
        }
    };
    println!("{particles} particles × {steps} steps per case\n");
    println!("{:<44} {:>16} {:>16}", "case", "cpu steps/s", "gpu steps/s");
    for case in cases() {
        let plan = Plan::new(&case.model, grid, Scheme::EulerMaruyama, Start::Exact).unwrap();
        let show = |r: Option<Result<f64, String>>| match r {
            Some(Ok(r)) => format!("{r:>16.3e}"),
            Some(Err(e)) => {
                eprintln!("{}: {e}", case.name);
                format!("{:>16}", "failed")
            }
            None => format!("{:>16}", "—"),
        };
        let c = show(Some(rate(&cpu, &plan, particles)));
        // Software adapters cap loop lengths, so a case may be refused there: report it.
        let g = show(gpu.as_ref().map(|g| rate(g, &plan, particles)));
        println!("{:<44} {c} {g}", case.name);
    }

    // Memory stays flat: particles stream through in batches unless samples are kept.
    let plan = Plan::new(
        &cases().remove(0).model,
        Grid::new(1.0, 5).unwrap(),
        Scheme::EulerMaruyama,
        Start::Exact,
    )
    .unwrap();
    let mut line = String::from("\ncpu peak memory (MiB) by particles:");
    for n in [1u64 << 18, 1 << 21, 1 << 23] {
        let spec = RunSpec {
            seed: 1,
            particles: n,
            keep_samples: false,
            batch: None,
        };
        run(
            &cpu,
            &plan,
            spec,
            Recorder::new(&plan, vec![0, 5], vec![]),
            &mut |_| {},
        )
        .unwrap();
        line += &format!("  {n}: {:.0}", peak_mib());
    }
    println!("{line}");
}
