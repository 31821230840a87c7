//! Throughput and memory of the engines: `cargo bench --bench throughput` (add `-- --quick` for a
//! short run). Measures the standard workloads of `regimes bench` (gmm, dense, empirical at
//! d = 100) on the CPU engine and, when wgpu finds an adapter, the GPU engine, then checks that
//! peak memory does not grow with the particle count.

use regimes::bench::{self, Setting, Spec, Workload, memory};
use regimes::engine::cpu::CpuEngine;
use regimes::engine::gpu::GpuEngine;
use regimes::engine::{Engine, Recorder};
use regimes::measure::run::{RunSpec, run};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = CpuEngine::with_threads(threads).expect("cpu engine");
    let cpu_setting = Setting::cpu(threads).expect("peak");
    if let Some(p) = &cpu_setting.peak {
        println!("{}", bench::peak_line(p));
    }
    let gpu = match GpuEngine::new() {
        Ok(g) => {
            println!(
                "{} (shader compile {:.2} s)",
                g.describe(),
                g.compile_seconds()
            );
            let setting = Setting::gpu(&g, None).expect("gpu setting");
            Some((g, setting))
        }
        Err(e) => {
            println!("gpu: none ({e:#})");
            None
        }
    };

    let mut records = vec![];
    for workload in Workload::ALL {
        let particles = if quick {
            (workload.default_particles() / 16).max(1024)
        } else {
            workload.default_particles()
        };
        let spec = Spec {
            workload,
            dim: 100,
            particles,
            steps: if quick { 20 } else { 100 },
            n_train: 1000,
            seed: 1,
        };
        records.push(bench::measure(&cpu, &cpu_setting, &spec, false).expect("cpu run"));
        if let Some((g, setting)) = &gpu {
            // Software adapters cap loop lengths, so a workload may be refused there: report it.
            match bench::measure(g, setting, &spec, false) {
                Ok(r) => records.push(r),
                Err(e) => println!("gpu {}: {e:#}", workload.name()),
            }
        }
    }
    bench::compare_backends(&mut records);
    println!("\n{}", bench::table(&records));

    // Memory stays flat: particles stream through in batches unless samples are kept.
    let spec = Spec {
        workload: Workload::Gmm,
        dim: 16,
        particles: 1,
        steps: 5,
        n_train: 0,
        seed: 1,
    };
    let (plan, _) = spec.plan().expect("plan");
    let mut line = String::from("cpu peak memory (MiB) by particles:");
    let mut peaks = vec![];
    for n in [1u64 << 18, 1 << 21, 1 << 23] {
        memory::reset_peak();
        let run_spec = RunSpec {
            seed: 1,
            particles: n,
            keep_samples: false,
            batch: None,
        };
        let recorder = Recorder::new(&plan, vec![0, 5], vec![]);
        run(&cpu, &plan, run_spec, recorder, &mut |_| {}).expect("run");
        let mib = memory::peak_bytes().map_or(f64::NAN, |b| b as f64 / (1 << 20) as f64);
        peaks.push(mib);
        line += &format!("  {n}: {mib:.0}");
    }
    println!("{line}");
    let flat = peaks[2] <= 1.25 * peaks[1];
    println!(
        "memory {} from 2^21 to 2^23 particles",
        if flat { "flat" } else { "GROWS" }
    );
}
