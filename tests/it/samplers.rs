//! The samplers against the exact law: the exact reverse transition has no discretisation bias at
//! any Δt, the exponential integrator removes most of Euler–Maruyama's, and Euler–Maruyama keeps
//! the bias a practitioner's sampler has (the tool reproduces it, it does not hide it).

use regimes::engine::cpu::CpuEngine;

use crate::common;
use crate::common::{check_exact_marginals, summary};

#[test]
fn exact_scheme_samples_the_gaussian_marginal_at_any_step() {
    check_exact_marginals(&CpuEngine::new(), 100_000);
}

/// Branch times around lu-tang's t_S = 1.09.
const TIMES: &str = "0.9,1.1,1.3";

/// φ − F(s) and its s.e. at the branch times of `lu-tang` (optimal Q), and the summary.
fn phi_bias(
    scheme: &str,
    steps: &str,
    times: &str,
    pairs: &str,
) -> (Vec<(f64, f64)>, serde_json::Value) {
    let s = summary(&[
        "speciation",
        "--preset",
        "lu-tang",
        "--scheme",
        scheme,
        "--steps",
        steps,
        "--branch-times",
        times,
        "--pairs",
        pairs,
        "--quiet",
        "--json",
    ]);
    let bias = s["phi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (phi, theory) = (
                r["phi"].as_f64().unwrap(),
                r["phi_theory"].as_f64().unwrap(),
            );
            (phi - theory, r["stderr"].as_f64().unwrap())
        })
        .collect();
    (bias, s)
}

/// At Δt = 0.1 (Δt‖QU‖₂ = 1.96) the exact scheme's φ is within 2 standard errors of F(s(t)) at
/// every branch time, and its measured t_S within its standard error of theory; Euler–Maruyama
/// is biased by +0.05 (as an independent float64 simulator measured), and the exponential
/// integrator cuts that bias at least 4×.
#[test]
fn exact_is_unbiased_and_exponential_cuts_the_bias_at_coarse_steps() {
    let (exact, s) = phi_bias("exact", "50", TIMES, "100000");
    for (bias, se) in &exact {
        assert!(bias.abs() < 2.0 * se, "exact: φ − F(s) = {bias} ± {se}");
    }
    let (ts, se, theory) = (
        s["t_s_measured"].as_f64().expect("t_S measured"),
        s["t_s_measured_stderr"].as_f64().unwrap(),
        s["t_s_theory"].as_f64().unwrap(),
    );
    assert!(
        (ts - theory).abs() < se,
        "exact: t_S {ts} ± {se} vs theory {theory}"
    );
    let (em, _) = phi_bias("euler-maruyama", "50", TIMES, "100000");
    let (exponential, _) = phi_bias("exponential", "50", TIMES, "100000");
    let at = 1; // t = 1.1, F(s) = 0.7728
    let (b_em, se_em) = em[at];
    assert!(
        (b_em - 0.054).abs() < 3.0 * se_em,
        "Euler–Maruyama's bias {b_em} ± {se_em} is not the measured +0.054"
    );
    let (b_exp, se_exp) = exponential[at];
    assert!(
        4.0 * (b_exp.abs() + 2.0 * se_exp) < b_em,
        "exponential bias {b_exp} ± {se_exp} is not 4× below Euler–Maruyama's {b_em}"
    );
}

/// `--steps auto` picks, per scheme, a grid whose φ bias on lu-tang is within the target 0.005
/// (plus two standard errors), and says what it picked.
#[test]
fn steps_auto_reaches_its_target_bias() {
    for scheme in ["euler-maruyama", "exponential", "exact"] {
        let (bias, _) = phi_bias(scheme, "auto", "1.1", "40000");
        let (bias, se) = bias[0];
        assert!(
            bias.abs() <= 0.005 + 2.0 * se,
            "{scheme}: bias {bias} ± {se}"
        );
    }
    // T·(0.028‖QU‖₂ + 0.04)/0.005 with ‖QU‖₂ = 19.6 and T = 5, announced on stderr.
    let out = common::regimes(&[
        "run",
        "--preset",
        "lu-tang",
        "--scheme",
        "euler-maruyama",
        "--steps",
        "auto",
        "--particles",
        "32",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("steps auto: 590 steps"), "{err}");
}

/// The `--steps N or more` an up-front refusal names.
fn named_steps(err: &str) -> usize {
    let at = err.find("--steps ").expect("names --steps") + "--steps ".len();
    let digits: String = err[at..].chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no count in {err}"))
}

/// Runs `args` and returns (success, stderr).
fn outcome(args: &[&str]) -> (bool, String) {
    let out = common::regimes(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Euler–Maruyama under a strong rotation grows a mode a ± iω by √((1 + aΔt)² + (ωΔt)²)·e^(−aΔt)
/// per step beyond the exact flow: the cases of issue 33 (values to 1e36 with exit 0 before) are
/// refused before any work, naming a step count; that count passes and 3 % fewer do not.
#[test]
fn explicit_runs_that_would_diverge_are_refused_naming_the_steps_that_pass() {
    // (Explicit schemes: the default runs the exact transition, which has no step limit.)
    let em = ["--scheme", "euler-maruyama"];
    let lu_tang = [
        &["--preset", "lu-tang", "--dim", "4", "--q", "optimal:100"][..],
        &em,
    ]
    .concat();
    let times = ["--record-times", "5,4,2,1,0.25,0", "--quiet"];
    for study in ["run", "speciation"] {
        let extra = if study == "run" {
            &times[..]
        } else {
            &["--quiet"]
        };
        let args = [&[study][..], &lu_tang[..], extra, &["--steps", "1000"]].concat();
        let (ok, err) = outcome(&args);
        assert!(!ok && err.contains("unstable"), "{study}: {err}");
        // ω ≈ 798 and a ≈ −1.8: stable needs Δt ≲ 2|a|/ω², some 7·10⁵ steps over T = 5.
        let n = named_steps(&err);
        assert!((500_000..1_000_000).contains(&n), "{study}: {n}");
    }
    // `--steps auto` does not pick a diverging count: it refuses, pointing at the exact scheme.
    let (ok, err) = outcome(&[&["run"][..], &lu_tang[..], &times, &["--steps", "auto"]].concat());
    assert!(!ok && err.contains("--scheme exact"), "{err}");
    let d16 = [
        &["--preset", "lu-tang", "--dim", "16", "--q", "optimal:40"][..],
        &em,
    ]
    .concat();
    let (ok, err) = outcome(&[&["run"][..], &d16, &times, &["--steps", "1000"]].concat());
    assert!(!ok && err.contains("unstable"), "{err}");
    // The rotating coupling: the count named passes (and runs), 3 % fewer are refused.
    let coupled = [
        &["run", "--coupling", "rotating:0.5,100", "--dim", "4"][..],
        &em,
    ]
    .concat();
    let (ok, err) = outcome(&[&coupled[..], &times, &["--steps", "1000"]].concat());
    assert!(!ok && err.contains("unstable"), "{err}");
    let n = named_steps(&err);
    let (fewer, enough) = ((n * 97 / 100).to_string(), n.to_string());
    let small = ["--particles", "16"];
    let (ok, err) = outcome(&[&coupled[..], &times, &small, &["--steps", &fewer]].concat());
    assert!(!ok && err.contains("unstable"), "{fewer} steps: {err}");
    let (ok, err) = outcome(&[&coupled[..], &times, &small, &["--steps", &enough]].concat());
    assert!(ok, "{enough} steps: {err}");
}

/// `--steps auto`, the refusal and the warnings judge alike: what auto picks runs without a
/// warning (before, auto picked 1179 steps and the same run warned "use 3925"), and a coarser
/// grid is warned about with the rule auto uses.
#[test]
fn steps_auto_passes_the_judgement_and_is_not_warned_about() {
    let model = [
        "run",
        "--u",
        "geomspace:0.2:5",
        "--q",
        "optimal",
        "--mean",
        "soft",
        "--dim",
        "16",
        "--particles",
        "32",
        "--scheme",
        "euler-maruyama",
        "--json",
    ];
    let warnings = |steps: &str| -> Vec<String> {
        let s = summary(&[&model[..], &["--steps", steps]].concat());
        s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect()
    };
    let auto = warnings("auto");
    assert!(
        !auto
            .iter()
            .any(|w| w.contains("steps") || w.contains("stiff")),
        "{auto:?}"
    );
    let coarse = warnings("500");
    assert!(
        coarse
            .iter()
            .any(|w| w.contains("stiff rotation") && w.contains("--steps auto picks them")),
        "{coarse:?}"
    );
    // The rotating coupling: auto's count is judged on the run's own grid and passes unwarned.
    let s = summary(&[
        "run",
        "--coupling",
        "rotating:0.5,100",
        "--dim",
        "4",
        "--t-max",
        "2",
        "--particles",
        "8",
        "--steps",
        "auto",
        "--json",
    ]);
    let w = s["warnings"].as_array().unwrap();
    assert!(
        !w.iter()
            .any(|w| w.as_str().unwrap().contains("steps") || w.as_str().unwrap().contains("stiff")),
        "{w:?}"
    );
}

/// The run-time guard: a run forced past the up-front judgement (U = I, a rotation ω = 30 at
/// Δt = 0.005, which grows the rotating mode's scale some 500× while staying finite in f32)
/// stops with an error naming the marginal's scale, on the CPU and on the GPU where one exists.
#[test]
fn a_run_that_leaves_the_marginals_scale_is_stopped() {
    use nalgebra::{DMatrix, DVector};
    use regimes::engine::{Engine, Recorder};
    use regimes::linalg::Linear;
    use regimes::measure::run::{RunSpec, run};
    use regimes::model::{Mixture, Model, Process, Target};
    use regimes::plan::{Grid, Plan, Scheme, Start};

    let w = 30.0;
    let q = Linear::Dense(DMatrix::from_row_slice(2, 2, &[0.0, w, -w, 0.0]));
    let model = Model {
        process: Process::new(Linear::identity(2), q).unwrap(),
        target: Target::Mixture(Mixture::two_class(DVector::from_element(2, 1.0), 1.0)),
    };
    let grid = Grid::new(5.0, 1000).unwrap();
    let refused = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact);
    let err = format!("{:#}", refused.err().expect("refused up front"));
    assert!(err.contains("unstable"), "{err}");
    let plan =
        Plan::new_unjudged(&model, grid, Scheme::EulerMaruyama, Start::Exact).expect("forced");
    let spec = RunSpec {
        seed: 1,
        particles: 64,
        keep_samples: true,
        batch: None,
    };
    let check = |engine: &dyn Fn(Recorder) -> anyhow::Result<()>, name: &str| {
        let rec = Recorder::new(&plan, vec![0, 500, 1000], vec![]);
        let err = format!("{:#}", engine(rec).expect_err(name));
        assert!(
            err.contains("left the scale of the forward marginal"),
            "{name}: {err}"
        );
    };
    fn go<E: Engine>(e: &E, plan: &Plan, spec: RunSpec, rec: Recorder) -> anyhow::Result<()> {
        run(e, plan, spec, rec, &mut |_| {}).map(|_| ())
    }
    let cpu = CpuEngine::new();
    check(&|rec| go(&cpu, &plan, spec, rec), "cpu");
    if let Some(gpu) = common::gpu() {
        check(&|rec| go(gpu, &plan, spec, rec), "gpu");
    }
}

/// Heun is second order, the probability flow's Euler step first: on a two-class mixture under a
/// rotation (U = diag(1, 0.5), ω = 1, d = 2, T = 2), the same start particles are carried to
/// t = 0 on 16…128 steps and compared with the f64 RK4 solution of the same ODE (the library's
/// E_t, Γ_t and exact score, 4096 steps). The ODE is deterministic, so each particle's error is
/// all discretisation (plus f32 round-off, ~1e-6 against the smallest error here, ~1e-4): the
/// log-log slope of the RMS error against Δt is Heun's order.
#[test]
fn heun_is_second_order_and_euler_first() {
    use nalgebra::{DMatrix, DVector};
    use regimes::engine::{Engine, Recorder};
    use regimes::linalg::Linear;
    use regimes::model::{Mixture, Model, Process, Target};
    use regimes::plan::{Grid, Plan, Scheme, Start};

    let (d, t_max) = (2, 2.0);
    let u = Linear::Diagonal(DVector::from_vec(vec![1.0, 0.5]));
    let q = Linear::Dense(DMatrix::from_row_slice(2, 2, &[0.0, 1.0, -1.0, 0.0]));
    let mix = Mixture::two_class(DVector::from_vec(vec![1.5, 0.5]), 0.6);
    let model = Model {
        process: Process::new(u, q).unwrap(),
        target: Target::Mixture(mix.clone()),
    };
    let p = &model.process;
    // The reverse ODE dx/ds = A(t) x + ∇log p_t(x), t = T − s, in f64, its coefficients at the
    // RK4 nodes t = T − ih/2 computed once.
    let n = 4096;
    let h = t_max / n as f64;
    let nodes: Vec<(Linear, Linear, Vec<DVector<f64>>)> = (0..=2 * n)
        .map(|i| {
            let t = t_max - i as f64 * h / 2.0;
            let e = p.propagator(t);
            let prec = p.gamma_with(t, &e, &mix.cov).inverse_spd().unwrap();
            (
                p.drift(t),
                prec,
                mix.means.iter().map(|m| e.apply(m)).collect(),
            )
        })
        .collect();
    let field = |i: usize, x: &DVector<f64>| -> DVector<f64> {
        let (drift, prec, means) = &nodes[i];
        let centred: Vec<DVector<f64>> = means.iter().map(|m| m - x).collect();
        let logits: Vec<f64> = centred
            .iter()
            .zip(&mix.weights)
            .map(|(c, w)| w.ln() - 0.5 * prec.quad(c))
            .collect();
        let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let r: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
        let total: f64 = r.iter().sum();
        let pull = centred
            .iter()
            .zip(&r)
            .fold(DVector::zeros(d), |acc, (c, r)| acc + c * (r / total));
        drift.apply(x) + prec.apply(&pull)
    };
    let exact = |x: &[f32]| -> DVector<f64> {
        let mut x = DVector::from_iterator(d, x.iter().map(|&v| f64::from(v)));
        for j in 0..n {
            let k1 = field(2 * j, &x);
            let k2 = field(2 * j + 1, &(&x + &k1 * (h / 2.0)));
            let k3 = field(2 * j + 1, &(&x + &k2 * (h / 2.0)));
            let k4 = field(2 * j + 2, &(&x + &k3 * h));
            x += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        }
        x
    };
    let engine = CpuEngine::with_threads(2).unwrap();
    let ids = common::ids(256);
    let start = {
        let plan = Plan::new(
            &model,
            Grid::new(t_max, 8).unwrap(),
            Scheme::Heun,
            Start::Exact,
        )
        .unwrap();
        engine.read(&engine.start(&plan, 3, &ids).unwrap()).unwrap()
    };
    let want: Vec<DVector<f64>> = start.x.chunks(d).map(exact).collect();
    let steps = [16usize, 32, 64, 128];
    let slope = |scheme: Scheme| -> (f64, Vec<f64>) {
        let errors: Vec<f64> = steps
            .iter()
            .map(|&n| {
                let plan =
                    Plan::new(&model, Grid::new(t_max, n).unwrap(), scheme, Start::Exact).unwrap();
                let mut b = engine.start(&plan, 3, &ids).unwrap();
                assert_eq!(engine.read(&b).unwrap().x, start.x, "the same start");
                engine
                    .advance(&plan, &mut b, 0, n, &mut Recorder::none(&plan))
                    .unwrap();
                let got = engine.read(&b).unwrap();
                let sq: f64 = got
                    .x
                    .chunks(d)
                    .zip(&want)
                    .map(|(x, w)| {
                        let x = DVector::from_iterator(d, x.iter().map(|&v| f64::from(v)));
                        (x - w).norm_squared()
                    })
                    .sum();
                (sq / ids.len() as f64).sqrt()
            })
            .collect();
        // Least squares of ln error on ln Δt.
        let xs: Vec<f64> = steps.iter().map(|&n| (t_max / n as f64).ln()).collect();
        let ys: Vec<f64> = errors.iter().map(|e| e.ln()).collect();
        let (mx, my) = (xs.iter().sum::<f64>() / 4.0, ys.iter().sum::<f64>() / 4.0);
        let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        (cov / var, errors)
    };
    let (heun, heun_err) = slope(Scheme::Heun);
    let (euler, euler_err) = slope(Scheme::ProbabilityFlow);
    let show = |e: &[f64]| {
        e.iter()
            .map(|e| format!("{e:.2e}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    eprintln!(
        "steps {steps:?}: Heun RMS error {} (slope {heun:.3}), Euler {} (slope {euler:.3})",
        show(&heun_err),
        show(&euler_err)
    );
    assert!((1.8..=2.2).contains(&heun), "Heun's order {heun:.3}");
    assert!((0.85..=1.15).contains(&euler), "Euler's order {euler:.3}");
    assert!(
        heun_err[0] * 5.0 < euler_err[0],
        "Heun beats Euler already at 16 steps"
    );
}
