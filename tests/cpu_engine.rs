//! The CPU engine against exact results: discrete Euler–Maruyama moments, determinism across
//! threads and batch sizes, replay of single particles.

use nalgebra::{DMatrix, DVector};
use regimes::engine::cpu::CpuEngine;
use regimes::engine::{Engine, Recorder};
use regimes::linalg::Linear;
use regimes::measure::run::{RunSpec, run};
use regimes::model::{Mixture, Model, Process, Target};
use regimes::plan::{Grid, Plan, Scheme, Start};
use regimes::rng::rng_id;

fn spec(seed: u64, particles: u64, keep_samples: bool, batch: Option<usize>) -> RunSpec {
    RunSpec {
        seed,
        particles,
        keep_samples,
        batch,
    }
}

fn dense_model(weights: Vec<f64>, means: Vec<DVector<f64>>) -> Model {
    let u = Linear::Dense(DMatrix::from_row_slice(
        3,
        3,
        &[2.0, 0.3, 0.0, 0.3, 1.0, 0.2, 0.0, 0.2, 0.5],
    ));
    let q = Linear::Dense(DMatrix::from_row_slice(
        3,
        3,
        &[0.0, 0.8, -0.3, -0.8, 0.0, 0.5, 0.3, -0.5, 0.0],
    ));
    let cov = Linear::Dense(DMatrix::from_row_slice(
        3,
        3,
        &[0.5, 0.1, 0.0, 0.1, 0.4, 0.0, 0.0, 0.0, 0.3],
    ));
    Model {
        process: Process::new(u, q).unwrap(),
        target: Target::Mixture(Mixture {
            weights,
            means,
            cov,
        }),
    }
}

/// With one Gaussian component the Euler–Maruyama step is affine, so mean and covariance follow
/// `μ' = Mμ + P g`, `S' = M S Mᵀ + 2Δt I` exactly; the simulated moments must match within
/// their standard errors.
#[test]
fn euler_maruyama_moments_equal_exact_discrete_moments() {
    let mu = DVector::from_vec(vec![1.0, -0.5, 2.0]);
    let model = dense_model(vec![1.0], vec![mu.clone()]);
    let grid = Grid::new(2.0, 50).unwrap();
    let plan = Plan::new(&model, grid, Scheme::EulerMaruyama, Start::Exact).unwrap();
    let n = 40_000u64;
    let rec = Recorder::new(&plan, vec![0, grid.steps], vec![]);
    let out = run(
        &CpuEngine::new(),
        &plan,
        spec(11, n, false, None),
        rec,
        &mut |_| {},
    )
    .unwrap();

    // Exact discrete recursion in f64 from the exact start N(E_T μ, Γ(T)).
    let p = &model.process;
    let Target::Mixture(mix) = &model.target else {
        unreachable!()
    };
    let e_t = p.propagator(grid.t_max);
    let mut mean = e_t.apply(&mu);
    let mut cov = p.gamma_with(&e_t, &mix.cov).to_dense();
    let dt = grid.dt();
    for j in 0..grid.steps {
        let e = p.propagator(grid.time(j));
        let gi = p.gamma_with(&e, &mix.cov).inverse_spd().unwrap();
        let m =
            p.a.sub(&gi.scale(2.0))
                .scale(dt)
                .add_identity(1.0)
                .to_dense();
        let g = gi.apply(&e.apply(&mu));
        mean = &m * mean + g * (2.0 * dt);
        cov = &m * cov * m.transpose() + DMatrix::identity(3, 3) * (2.0 * dt);
    }
    let end = &out.recorder.stats[1];
    assert_eq!(end.coords.count, n);
    for i in 0..3 {
        let se_mean = (cov[(i, i)] / n as f64).sqrt();
        let se_var = cov[(i, i)] * (2.0 / n as f64).sqrt();
        let (m, v) = (end.coords.mean[i], end.coords.variance(i));
        assert!(
            (m - mean[i]).abs() < 4.0 * se_mean,
            "coord {i}: mean {m} vs exact {}",
            mean[i]
        );
        assert!(
            (v - cov[(i, i)]).abs() < 4.0 * se_var,
            "coord {i}: var {v} vs exact {}",
            cov[(i, i)]
        );
    }
    // At t = 0 the exact law is the target itself, N(μ, C); EM at Δt = 0.04 is close to it.
    for i in 0..3 {
        assert!(
            (mean[i] - mu[i]).abs() < 0.1,
            "discrete mean drifted from the target"
        );
    }
}

#[test]
fn results_are_identical_for_any_thread_count_and_batch_size() {
    let m = DVector::from_vec(vec![1.0, 1.0, -1.0]);
    let model = dense_model(vec![0.3, 0.7], vec![m.clone(), -m]);
    let grid = Grid::new(3.0, 60).unwrap();
    let plan = Plan::new(&model, grid, Scheme::EulerMaruyama, Start::Exact).unwrap();
    let go = |threads: usize, batch: usize| {
        let engine = CpuEngine::with_threads(threads).unwrap();
        let rec = Recorder::new(&plan, vec![0, 30, 60], vec![0.6, 0.0, 0.8]);
        run(
            &engine,
            &plan,
            spec(5, 5000, true, Some(batch)),
            rec,
            &mut |_| {},
        )
        .unwrap()
    };
    let a = go(1, 1024);
    let b = go(2, 4096);
    let c = go(2, 2048);
    for other in [&b, &c] {
        assert_eq!(a.samples, other.samples);
        assert_eq!(a.tally, other.tally);
        assert_eq!(a.recorder.stats, other.recorder.stats);
    }
    // A chunked plan computes the same coefficients.
    let chunked = Plan::new(&model, grid, Scheme::EulerMaruyama, Start::Exact)
        .unwrap()
        .with_chunk_len(7);
    let rec = Recorder::new(&chunked, vec![0, 30, 60], vec![0.6, 0.0, 0.8]);
    let d = run(
        &CpuEngine::new(),
        &chunked,
        spec(5, 5000, true, Some(2048)),
        rec,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(a.samples, d.samples);
    assert_eq!(a.recorder.stats, d.recorder.stats);
}

#[test]
fn any_particle_replays_alone() {
    let m = DVector::from_vec(vec![0.5, -1.0, 1.0]);
    let model = dense_model(vec![0.5, 0.5], vec![m.clone(), -m]);
    let plan = Plan::new(
        &model,
        Grid::new(2.0, 40).unwrap(),
        Scheme::EulerMaruyama,
        Start::Exact,
    )
    .unwrap();
    let engine = CpuEngine::new();
    let ids: Vec<u64> = (0..3000).map(|i| rng_id(i, 0)).collect();
    let mut all = engine.start(&plan, 9, &ids).unwrap();
    engine
        .advance(&plan, &mut all, 0, 40, &mut Recorder::none(&plan))
        .unwrap();
    let mut one = engine.start(&plan, 9, &[ids[2021]]).unwrap();
    engine
        .advance(&plan, &mut one, 0, 17, &mut Recorder::none(&plan))
        .unwrap();
    engine
        .advance(&plan, &mut one, 17, 40, &mut Recorder::none(&plan))
        .unwrap();
    let (all, one) = (engine.read(&all).unwrap(), engine.read(&one).unwrap());
    assert_eq!(&all.x[2021 * 3..2022 * 3], &one.x[..]);
    assert_eq!(all.label[2021], one.label[0]);
    assert_eq!(all.changed[2021], one.changed[0]);
}
