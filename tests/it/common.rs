//! Shared by the integration tests: the GPU engine (or a skip), and checks that run on any
//! engine so that CPU and GPU pass exactly the same statistical tests.
#![allow(dead_code)] // helpers some modules use and others do not

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nalgebra::{DMatrix, DVector};
use regimes::engine::gpu::GpuEngine;
use regimes::engine::{Engine, Recorder};
use regimes::linalg::Linear;
use regimes::measure::cloning::clone_pairs;
use regimes::measure::run::{RunSpec, run};
use regimes::model::target::class_mean;
use regimes::model::{Empirical, MeanSpec, Mixture, Model, Process, Target};
use regimes::plan::{Grid, Plan, Scheme, Start};
use regimes::rng::{self, HostRng};
use regimes::theory::{f_at_speciation, snr, t_speciation};

/// The shared engine (compiled once), or None (with a notice) where no adapter exists.
/// The bit patterns of f32 values, to compare positions bit for bit (NaN included).
pub fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

pub fn gpu() -> Option<&'static GpuEngine> {
    static ENGINE: OnceLock<Option<GpuEngine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| match GpuEngine::new() {
            Ok(e) => {
                eprintln!(
                    "{} (compile + JIT {:.2} s)",
                    e.describe(),
                    e.compile_seconds()
                );
                Some(e)
            }
            Err(err) => {
                if std::env::var_os("CI").is_some() {
                    panic!("no GPU adapter on CI: {err:#}");
                }
                eprintln!("skipping GPU tests: {err:#}");
                None
            }
        })
        .as_ref()
}

/// A 3-d model with dense U, Q and C.
pub fn dense_model(weights: Vec<f64>, means: Vec<DVector<f64>>) -> Model {
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
pub fn check_em_moments<E: Engine>(engine: &E) {
    let mu = DVector::from_vec(vec![1.0, -0.5, 2.0]);
    let model = dense_model(vec![1.0], vec![mu.clone()]);
    let grid = Grid::new(2.0, 50).unwrap();
    let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
    let n = 40_000u64;
    let rec = Recorder::new(&plan, vec![0, grid.steps], vec![]);
    let out = run(
        engine,
        &plan,
        RunSpec {
            seed: 11,
            particles: n,
            keep_samples: false,
            batch: None,
        },
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
    let mut cov = p.gamma_with(grid.t_max, &e_t, &mix.cov).to_dense();
    let dt = grid.dt_at(0);
    for j in 0..grid.steps {
        let t = grid.time(j);
        let e = p.propagator(t);
        let gi = p.gamma_with(t, &e, &mix.cov).inverse_spd().unwrap();
        let m = p
            .drift(t)
            .sub(&gi.scale(2.0))
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

/// With one Gaussian component the exact scheme samples the exact marginal N(E_t μ, Γ_t) at
/// every grid time, however coarse the grid: means and variances within 4 standard errors at
/// every recorded point, for Δt = 0.5, 0.1 and 0.01 (d = 3, dense U, Q and C).
pub fn check_exact_marginals<E: Engine>(engine: &E, particles: u64) {
    let mu = DVector::from_vec(vec![1.0, -0.5, 2.0]);
    let model = dense_model(vec![1.0], vec![mu.clone()]);
    let p = &model.process;
    let Target::Mixture(mix) = &model.target else {
        unreachable!()
    };
    for steps in [4usize, 20, 200] {
        let grid = Grid::new(2.0, steps).unwrap();
        let plan = Plan::new(&model, grid.clone(), Scheme::Exact, Start::Exact).unwrap();
        let points: Vec<usize> = (0..=steps).step_by((steps / 10).max(1)).collect();
        let rec = Recorder::new(&plan, points.clone(), vec![]);
        let spec = RunSpec {
            seed: 21,
            particles,
            keep_samples: false,
            batch: None,
        };
        let out = run(engine, &plan, spec, rec, &mut |_| {}).unwrap();
        for (stats, &j) in out.recorder.stats.iter().zip(&points) {
            let t = grid.time(j);
            let e = p.propagator(t);
            let (mean, cov) = (e.apply(&mu), p.gamma_with(t, &e, &mix.cov).to_dense());
            let n = stats.coords.count as f64;
            for i in 0..3 {
                let (m, v) = (stats.coords.mean[i], stats.coords.variance(i));
                let (se_m, se_v) = ((cov[(i, i)] / n).sqrt(), cov[(i, i)] * (2.0 / n).sqrt());
                assert!(
                    (m - mean[i]).abs() < 4.0 * se_m && (v - cov[(i, i)]).abs() < 4.0 * se_v,
                    "Δt = {}, t = {t}, coord {i}: mean {m} var {v}, exact {} {}",
                    grid.dt_at(0),
                    mean[i],
                    cov[(i, i)]
                );
            }
        }
    }
}

/// Branches clone pairs at the grid point nearest the theoretical t_S and compares φ with F(s)
/// at that grid time, within 3 binomial standard errors; also the posterior estimator.
pub fn check_phi_at_speciation<E: Engine>(
    engine: &E,
    process: Process,
    mean: MeanSpec,
    norm2: f64,
    t_max: f64,
    steps: usize,
    pairs: u64,
) {
    let d = process.dim();
    let m = class_mean(&mean, &process.u, d, norm2, 3).unwrap();
    let mixture = Mixture::two_class(m.clone(), 1.0);
    let ts = t_speciation(&process, &m, &mixture.cov, t_max).expect("t_S exists");
    let model = Model {
        process: process.clone(),
        target: Target::Mixture(mixture.clone()),
    };
    let grid = Grid::new(t_max, steps).unwrap();
    let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
    let j = grid.index_of(ts);
    let branch = &clone_pairs(engine, &plan, 17, pairs, &[j], None, &mut |_| {})
        .unwrap()
        .branches[0];
    let expected = regimes::theory::cloning_probability(snr(&process, &m, &mixture.cov, branch.t));
    assert!(
        (expected - f_at_speciation()).abs() < 0.01,
        "grid time {} is far from t_S = {ts}",
        branch.t
    );
    let (phi, se) = (branch.phi(), branch.stderr());
    eprintln!(
        "t_S = {ts:.4}: φ = {phi:.4} ± {se:.4}, posterior {:.4}, theory {expected:.4}",
        branch.purity.mean[0]
    );
    assert!(
        (phi - expected).abs() < 3.0 * se,
        "φ = {phi} ± {se}, theory F(s) = {expected}"
    );
    let post_se = branch.purity.stderr(0);
    assert!(
        (branch.purity.mean[0] - expected).abs() < 3.0 * post_se.max(se),
        "posterior off"
    );
}

/// A trajectory advanced in segments is recorded once at every point, segment ends included,
/// and gives the same statistics as one advance; clone experiments count each pair once.
pub fn check_segments_record_once<E: Engine>(engine: &E) {
    let m = DVector::from_vec(vec![0.5, -1.0, 1.0]);
    let model = dense_model(vec![0.5, 0.5], vec![m.clone(), -m]);
    let grid = Grid::new(2.0, 40).unwrap();
    let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
    let ids: Vec<u64> = (0..2048).collect();
    let points = vec![0, 10, 25, 40];
    let mut whole = Recorder::new(&plan, points.clone(), vec![]);
    let mut b = engine.start(&plan, 3, &ids).unwrap();
    engine.advance(&plan, &mut b, 0, 40, &mut whole).unwrap();
    let mut split = Recorder::new(&plan, points, vec![]);
    let mut b = engine.start(&plan, 3, &ids).unwrap();
    for (from, to) in [(0, 10), (10, 17), (17, 25), (25, 40)] {
        engine.advance(&plan, &mut b, from, to, &mut split).unwrap();
    }
    for (a, s) in whole.stats.iter().zip(&split.stats) {
        assert_eq!(s.coords.count, 2048);
        assert_eq!(a.coords.count, s.coords.count);
        assert_eq!(a.classes, s.classes);
        for (x, y) in a.coords.mean.iter().zip(&s.coords.mean) {
            assert!((x - y).abs() < 1e-6, "{x} vs {y}");
        }
    }
    let cloning = clone_pairs(engine, &plan, 3, 1500, &[10, 25], None, &mut |_| {}).unwrap();
    for b in &cloning.branches {
        assert_eq!(b.pairs, 1500);
        assert_eq!(
            b.purity.count, 1500,
            "purity at t = {} counted {} times",
            b.t, b.purity.count
        );
    }
}

/// Plan shapes that exercise every form: scalar, diagonal and dense M, B, P.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// U = I, Q = 0.
    Scalar,
    /// U diagonal, Q = 0.
    Diagonal,
    /// U diagonal, Q ≠ 0 (dense A).
    Rotated,
    /// U dense.
    DenseU,
}

pub fn process(d: usize, shape: Shape, seed: u64) -> Process {
    let mut r = HostRng::new(seed, "test process");
    let spread = |i: usize| 0.6 + 1.2 * i as f64 / d.max(2) as f64;
    let diag = Linear::Diagonal(DVector::from_fn(d, |i, _| spread(i)));
    let zero = Linear::Scalar(0.0, d);
    match shape {
        Shape::Scalar => Process::new(Linear::identity(d), zero),
        Shape::Diagonal => Process::new(diag, zero),
        Shape::Rotated => {
            let g = DMatrix::from_fn(d, d, |_, _| r.normal());
            let q = (&g - g.transpose()) * (0.5 / (d as f64).sqrt());
            Process::new(diag, Linear::Dense(q))
        }
        Shape::DenseU => {
            let g = DMatrix::from_fn(d, d, |_, _| r.normal() / (d as f64).sqrt());
            let u = &g * g.transpose() * 0.3 + DMatrix::identity(d, d) * 0.8;
            Process::new(Linear::Dense(u), zero)
        }
    }
    .expect("valid process")
}

pub fn mixture(d: usize, seed: u64) -> Target {
    let mut r = HostRng::new(seed, "test mixture");
    let means = (0..3)
        .map(|_| DVector::from_fn(d, |_, _| 1.5 * r.normal() / (d as f64).sqrt() * 2.0))
        .collect();
    Target::Mixture(Mixture {
        weights: vec![0.5, 0.3, 0.2],
        means,
        cov: Linear::Scalar(0.25, d),
    })
}

pub fn empirical(d: usize, points: usize, seed: u64) -> Target {
    let mut r = HostRng::new(seed, "test training set");
    Target::Empirical(Empirical {
        points: DMatrix::from_fn(points, d, |_, _| r.normal()),
    })
}

pub fn plan(process: Process, target: Target, grid: Grid) -> Plan {
    plan_with(process, target, grid, Scheme::EulerMaruyama)
}

pub fn plan_with(process: Process, target: Target, grid: Grid, scheme: Scheme) -> Plan {
    Plan::new(&Model { process, target }, grid, scheme, Start::Exact).expect("plan")
}

/// Every scheme.
pub const ALL_SCHEMES: [Scheme; 6] = [
    Scheme::EulerMaruyama,
    Scheme::ProbabilityFlow,
    Scheme::Exact,
    Scheme::Exponential,
    Scheme::ExponentialFlow,
    Scheme::Heun,
];

/// Whether `scheme` runs on `target` (Heun refuses training sets).
pub fn runs_on(scheme: Scheme, target: &Target) -> bool {
    !scheme.corrects() || matches!(target, Target::Mixture(_))
}

pub fn ids(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| rng::rng_id(i * 7 + 3, 0)).collect()
}

/// Runs the `regimes` binary (Vulkan only, so a software adapter is lavapipe, never GL).
pub fn regimes(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .expect("binary runs")
}

/// Waits for `child` at most `secs` seconds; kills it and fails the test when it takes longer.
pub fn wait_within(mut child: Child, secs: u64, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {secs} s (hung): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh, empty directory for one test (named by the test process and `name`).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("regimes-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON summary of a successful command.
pub fn summary(args: &[&str]) -> serde_json::Value {
    let out = regimes(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}
