//! The CPU kernels and the plan builder in isolation: `cargo bench --bench kernels` (add
//! `-- --quick` for fewer repeats). For each standard workload at d = 100 (100 steps, T = 10):
//! one `advance` of a single tile of 256 particles over 20 steps on one thread, and building the
//! plan (`Plan::new` and every chunk of coefficients), each the median of several repeats.

use std::time::Instant;

use regimes::bench::cost;
use regimes::bench::{Spec, T_MAX, Workload};
use regimes::config::Backend;
use regimes::engine::cpu::{self, CpuEngine};
use regimes::engine::{Engine, Recorder};
use regimes::plan::{Grid, Plan, Scheme, Start};

/// Particles in the timed tile (the CPU engine's unit of parallel work).
const TILE: u64 = cpu::TILE as u64;
/// Steps per timed advance.
const STEPS: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 3 } else { 11 };
    let engine = CpuEngine::with_threads(1).expect("engine");
    println!(
        "d = 100, 100 steps, T = {T_MAX}; median of {repeats}; advance = {TILE} particles × {STEPS} steps on 1 thread\n"
    );
    println!(
        "{:<10} {:>12} {:>16} {:>10} {:>12} {:>12}",
        "workload", "advance", "ns/particle-step", "GFLOP/s", "model", "plan"
    );
    for workload in Workload::ALL {
        let spec = Spec {
            workload,
            dim: 100,
            particles: TILE,
            steps: 100,
            n_train: 1000,
            seed: 1,
        };
        let grid = Grid::new(T_MAX, spec.steps).expect("grid");
        let mut model_s = vec![];
        let mut plan_s = vec![];
        let mut plan = None;
        for _ in 0..repeats {
            let t = Instant::now();
            let model = spec.model().expect("model");
            model_s.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            let p =
                Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).expect("plan");
            for c in 0..p.chunk_count() {
                p.chunk(c).expect("chunk");
            }
            plan_s.push(t.elapsed().as_secs_f64());
            plan = Some(p);
        }
        let plan = plan.expect("at least one repeat");
        let ids: Vec<u64> = (0..TILE).collect();
        let mut advance_s = vec![];
        // One extra, untimed, to warm caches.
        for r in 0..=repeats {
            let mut batch = engine.start(&plan, spec.seed, &ids).expect("start");
            let t = Instant::now();
            engine
                .advance(&plan, &mut batch, 0, STEPS, &mut Recorder::none(&plan))
                .expect("advance");
            if r > 0 {
                advance_s.push(t.elapsed().as_secs_f64());
            }
        }
        let advance = median(advance_s);
        let per_step = advance / (TILE as usize * STEPS) as f64;
        let flops = cost::cost(&plan.shape(), cost::share(Backend::Cpu)).flops as f64;
        println!(
            "{:<10} {:>9.3} ms {:>16.1} {:>10.2} {:>9.3} ms {:>9.3} ms",
            workload.name(),
            advance * 1e3,
            per_step * 1e9,
            flops / per_step / 1e9,
            median(model_s) * 1e3,
            median(plan_s) * 1e3
        );
    }
}
