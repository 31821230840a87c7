//! Two coupled modalities (docs/mathematics.md §9): per-mode theory against closed forms, and
//! the per-mode cloning experiment against that theory, through the binary as users run it.
//!
//! The preset: U = I, m_x ⟂ m_y with ‖m_x‖² = ‖m_y‖² = d, σ = 1, so each mode has ‖m_k‖² = d and
//! relaxes at K's eigenvalue κ_k.

use crate::common;

use crate::common::{regimes, summary};
use serde_json::Value;

const D: f64 = 16.0;

/// `s_k(t) = M e^{−2Λ}/(e^{−2Λ} + v)` for U = I, σ = 1, with κ = κ₁ before t₁ and κ₂ after:
/// Λ and v in closed form, t_S by bisection of s = 1 (s decreases in t).
fn step_t_s(norm2: f64, k1: f64, t1: f64, k2: f64) -> f64 {
    let s = |t: f64| {
        let (lam, v) = if t <= t1 {
            (k1 * t, -(-2.0 * k1 * t).exp_m1() / k1)
        } else {
            let v1 = -(-2.0 * k1 * t1).exp_m1() / k1;
            let tau = t - t1;
            (
                k1 * t1 + k2 * tau,
                v1 * (-2.0 * k2 * tau).exp() - (-2.0 * k2 * tau).exp_m1() / k2,
            )
        };
        let e = (-2.0 * lam).exp();
        norm2 * e / (e + v)
    };
    let (mut lo, mut hi) = (1e-9, 20.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if s(mid) >= 1.0 { lo = mid } else { hi = mid }
    }
    lo
}

/// The mode's marginal decodability time s_k(t) = 1 (its t_S with per-mode pairing).
fn mode_t_s(v: &Value, mode: usize) -> f64 {
    v["modes"][mode]["t_decodable"].as_f64().unwrap()
}

/// Each mode is an OU process at rate κ ∈ {1 − γ, 1 + γ} (additive) or {1, 1 + 2γ} (diffusive)
/// with ‖m_k‖² = d, so t_S(mode) = ln(κ(d − 1) + 1) / (2κ); γ = 0 gives the single-modality
/// ½ ln d for both. A step schedule has the closed form of [`step_t_s`].
#[test]
fn mode_theory_has_its_closed_forms() {
    let kappas = |spec: &str, g: f64| -> [f64; 2] {
        if spec == "additive" {
            [1.0 - g, 1.0 + g]
        } else {
            [1.0, 1.0 + 2.0 * g]
        }
    };
    for (kind, gamma) in [
        ("additive", 0.0),
        ("additive", 0.2),
        ("additive", 0.5),
        ("diffusive", 0.3),
        ("diffusive", -0.4),
    ] {
        let coupling = format!("{kind}:{gamma}");
        let v = summary(&[
            "theory",
            "--preset",
            "coupled",
            "--coupling",
            &coupling,
            "--json",
        ]);
        for (m, kappa) in kappas(kind, gamma).into_iter().enumerate() {
            let want = (kappa * (D - 1.0) + 1.0).ln() / (2.0 * kappa);
            let got = mode_t_s(&v, m);
            assert!(
                (got - want).abs() < 1e-8,
                "{coupling} mode {m}: {got} vs {want}"
            );
            let rate = v["modes"][m]["rate"].as_f64().unwrap();
            assert!((rate - kappa).abs() < 1e-12, "{coupling}: rate {rate}");
        }
        // The preset's one shared label commits once, at the joint t_S: no per-mode t_S and
        // no synchronization gap, only the marginal decodability times and their gap.
        assert!(
            v["modes"][0]["t_s"].is_null() && v.get("sync_gap").is_none(),
            "{v}"
        );
        let gap = v["decodability_gap"].as_f64().unwrap();
        assert!((gap - (mode_t_s(&v, 0) - mode_t_s(&v, 1))).abs() < 1e-15);
        if gamma == 0.0 {
            assert!(gap.abs() < 1e-10);
            assert!((mode_t_s(&v, 0) - 0.5 * D.ln()).abs() < 1e-10);
        } else if kind == "additive" {
            assert!(gap > 0.0, "the common mode resolves first: {gap}");
        }
    }
    // A step schedule: γ = 0.5 until t = 1.5, then −0.5. It reaches the common mode (t_S > 1.5)
    // and leaves the difference mode (t_S < 1.5) alone.
    let v = summary(&[
        "theory",
        "--preset",
        "coupled",
        "--coupling",
        "additive:step:0.5,1.5,-0.5",
        "--json",
    ]);
    let common = step_t_s(D, 0.5, 1.5, 1.5);
    let difference = step_t_s(D, 1.5, 1.5, 0.5);
    assert!(
        (mode_t_s(&v, 0) - common).abs() < 1e-8,
        "{} vs {common}",
        mode_t_s(&v, 0)
    );
    assert!((mode_t_s(&v, 1) - difference).abs() < 1e-8);
    assert!((difference - (15.0 * 1.5 + 1.0f64).ln() / 3.0).abs() < 1e-9);
    // Stability bounds are enforced, at every value a schedule takes.
    for (spec, bound) in [
        ("additive:1.2", "|γ| < 1"),
        ("diffusive:-0.7", "γ > −½"),
        ("additive:ramp:0,2,1.5", "|γ| < 1"),
    ] {
        let out = regimes(&["theory", "--coupling", spec]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(bound),
            "{spec}: {err}"
        );
    }
}

/// One shared label (the `coupled` preset): speciation reports the joint commitment time
/// s_c + s_d = 1 (t_S of the theory, 2.174) and measures it within its error; no per-mode φ. Under
/// a step schedule each mode's rate is the one in force at its decodability time.
#[test]
fn shared_label_speciation_is_the_joint_commitment() {
    let v = summary(&[
        "speciation",
        "--preset",
        "coupled",
        "--pairs",
        "6000",
        "--backend",
        "cpu",
        "--json",
    ]);
    let th = summary(&["theory", "--preset", "coupled", "--json"]);
    let t_s = th["t_s"].as_f64().unwrap();
    assert!((t_s - 2.1739).abs() < 1e-3, "{t_s}");
    assert_eq!(v["t_s_theory"], th["t_s"]);
    let (t, se) = (
        v["t_s_measured"].as_f64().unwrap(),
        v["t_s_measured_stderr"].as_f64().unwrap(),
    );
    assert!(
        (t - t_s).abs() < 3.0 * se + 0.01,
        "{t} ± {se} against {t_s}"
    );
    assert!(v.get("modes").is_none() && v.get("sync_gap_theory").is_none());
    let v = summary(&[
        "theory",
        "--preset",
        "coupled",
        "--pairing",
        "per-mode",
        "--coupling",
        "additive:step:0.5,1.5,-0.5",
        "--json",
    ]);
    // The common mode decodes after the switch (γ = −0.5: κ = 1.5), the difference mode
    // before it (γ = 0.5: κ = 1.5); at the final γ the latter would read 0.5.
    for m in 0..2 {
        let rate = v["modes"][m]["rate"].as_f64().unwrap();
        assert!((rate - 1.5).abs() < 1e-12, "mode {m}: rate {rate}");
    }
}

/// The per-mode cloning experiment: φ on each mode at each branch time within 4.5 standard
/// errors of the mode's F(s_k(t)), and the measured t_S within 4.5 of its error (the standard
/// error of φ at the crossing over the theory's slope there).
fn check_modes_against_theory(what: &str, v: &Value) -> Vec<(f64, f64)> {
    let mut out = vec![];
    for mode in v["modes"].as_array().unwrap() {
        let name = mode["name"].as_str().unwrap();
        let points = mode["phi"].as_array().unwrap();
        for p in points {
            let (phi, se, th) = (
                p["phi"].as_f64().unwrap(),
                p["stderr"].as_f64().unwrap(),
                p["phi_theory"].as_f64().unwrap(),
            );
            // Half a percent for the Euler–Maruyama bias at Δt = 0.01.
            assert!(
                (phi - th).abs() < 4.5 * se.max(0.002) + 0.005,
                "{what} {name} t = {}: φ {phi} ± {se} vs {th}",
                p["t"]
            );
        }
        let t_th = mode["t_s_theory"].as_f64().unwrap();
        let t_meas = mode["t_s_measured"].as_f64().unwrap();
        // The theory's slope dφ/dt and the s.e. of φ at the branch points around t_S.
        let near: Vec<&Value> = {
            let mut sorted: Vec<&Value> = points.iter().collect();
            sorted.sort_by(|a, b| {
                let da = (a["t"].as_f64().unwrap() - t_th).abs();
                let db = (b["t"].as_f64().unwrap() - t_th).abs();
                da.total_cmp(&db)
            });
            sorted.into_iter().take(2).collect()
        };
        let (t0, t1) = (
            near[0]["t"].as_f64().unwrap(),
            near[1]["t"].as_f64().unwrap(),
        );
        let slope = (near[1]["phi_theory"].as_f64().unwrap()
            - near[0]["phi_theory"].as_f64().unwrap())
            / (t1 - t0);
        let sigma_t = near[0]["stderr"].as_f64().unwrap() / slope.abs();
        assert!(
            (t_meas - t_th).abs() < 4.5 * sigma_t + 0.01,
            "{what} {name}: t_S measured {t_meas} vs theory {t_th} (σ ≈ {sigma_t:.4})"
        );
        out.push((t_meas, sigma_t));
    }
    out
}

fn speciation(coupling: &str, pairs: &str) -> Value {
    summary(&[
        "speciation",
        "--preset",
        "coupled",
        "--pairing",
        "per-mode",
        "--coupling",
        coupling,
        "--pairs",
        pairs,
        "--backend",
        "cpu",
        "--json",
    ])
}

/// γ ∈ {0.2, 0.5}: each mode speciates at its own t_S; the measured synchronization gap agrees
/// with the theory's within its error.
#[test]
fn per_mode_speciation_times_match_the_theory() {
    for gamma in ["0.2", "0.5"] {
        let coupling = format!("additive:{gamma}");
        let v = speciation(&coupling, "6000");
        let t = check_modes_against_theory(&coupling, &v);
        let gap_th = v["sync_gap_theory"].as_f64().unwrap();
        let gap = v["sync_gap_measured"].as_f64().unwrap();
        let sigma = (t[0].1.powi(2) + t[1].1.powi(2)).sqrt();
        assert!(
            (gap - gap_th).abs() < 4.5 * sigma + 0.02,
            "{coupling}: gap {gap} vs {gap_th}"
        );
        assert!(
            gap_th > 4.5 * sigma,
            "{coupling}: the gap {gap_th} is resolved (σ {sigma})"
        );
    }
}

/// γ = 0: the modes are two uncoupled copies of the single-modality problem, so each mode's φ
/// equals that of `--preset biroli` at the same d within the two runs' errors.
#[test]
fn uncoupled_modes_reproduce_one_modality() {
    let times = "0.8,1.2,1.4,1.6,2.0";
    let coupled = summary(&[
        "speciation",
        "--preset",
        "coupled",
        "--pairing",
        "per-mode",
        "--coupling",
        "additive:0",
        "--pairs",
        "6000",
        "--branch-times",
        times,
        "--backend",
        "cpu",
        "--json",
    ]);
    let single = summary(&[
        "speciation",
        "--preset",
        "biroli",
        "--pairs",
        "6000",
        "--branch-times",
        times,
        "--seed",
        "7",
        "--backend",
        "cpu",
        "--json",
    ]);
    let reference = single["phi"].as_array().unwrap();
    for mode in coupled["modes"].as_array().unwrap() {
        for (p, q) in mode["phi"].as_array().unwrap().iter().zip(reference) {
            assert_eq!(p["t"], q["t"]);
            let diff = p["phi"].as_f64().unwrap() - q["phi"].as_f64().unwrap();
            let se = p["stderr"]
                .as_f64()
                .unwrap()
                .hypot(q["stderr"].as_f64().unwrap());
            assert!(
                diff.abs() < 4.5 * se.max(0.002),
                "{} t = {}: {diff} (s.e. {se})",
                mode["name"],
                p["t"]
            );
        }
    }
}

/// Switching γ from 0.5 to −0.5 at t = 1.5 moves the common mode's t_S (from 2.140 to 1.935)
/// and leaves the difference mode's (1.052): the simulation follows the schedule's theory.
#[test]
fn a_coupling_schedule_shifts_the_mode_it_reaches() {
    let v = speciation("additive:step:0.5,1.5,-0.5", "6000");
    let t = check_modes_against_theory("step schedule", &v);
    let constant = (0.5 * 15.0 + 1.0f64).ln();
    let scheduled = v["modes"][0]["t_s_theory"].as_f64().unwrap();
    assert!(
        constant - scheduled > 4.5 * t[0].1,
        "the shift {} is resolved (σ {})",
        constant - scheduled,
        t[0].1
    );
    assert!((v["modes"][1]["t_s_theory"].as_f64().unwrap() - (23.5f64).ln() / 3.0).abs() < 1e-8);
}

/// Paired files hold the joint vector (x, y): d is half their columns, an odd count is refused,
/// and both a paired training set and a paired mixture run.
#[test]
fn paired_files_hold_both_modalities() {
    let dir = common::scratch("paired-files");
    // Four training pairs in d = 2 per modality.
    let train = dir.join("pairs.csv");
    std::fs::write(&train, "3,0,0,3\n-3,0,0,-3\n0,3,3,0\n0,-3,-3,0\n").unwrap();
    let train = train.to_str().unwrap();
    let v = summary(&[
        "collapse",
        "--coupling",
        "additive:0.3",
        "--train-file",
        train,
        "--particles",
        "200",
        "--pairs",
        "50",
        "--entropy-samples",
        "50",
        "--steps",
        "200",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(v["config"]["dim"], 2);
    assert_eq!(v["n_train"], 4);
    // Clones branched late end on the same training pair.
    let last = v["clone_collapse"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last["phi"].as_f64().unwrap() > 0.9, "{last}");
    // Three classes of (x, y) pairs, weights first.
    let mix = dir.join("mixture.csv");
    std::fs::write(&mix, "0.5,4,0,0,4\n0.25,-4,0,0,-4\n0.25,0,4,4,0\n").unwrap();
    let v = summary(&[
        "speciation",
        "--coupling",
        "diffusive:0.2",
        "--mixture-file",
        mix.to_str().unwrap(),
        "--pairs",
        "500",
        "--steps",
        "200",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert_eq!(v["config"]["dim"], 2);
    assert_eq!(v["modes"].as_array().unwrap().len(), 2);
    let odd = dir.join("odd.csv");
    std::fs::write(&odd, "1,2,3\n4,5,6\n").unwrap();
    let out = regimes(&[
        "theory",
        "--coupling",
        "additive:0.3",
        "--train-file",
        odd.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("3 columns"), "{err}");
}

/// γ = 0 with per-mode labels: each mode's marginal is the single-modality target (two classes,
/// ‖m‖² = d, σ = 1), so its REM t_C is the single-modality one to 1e-10 and its excess entropy,
/// from exact samples over its own training coordinates, agrees with `--preset biroli`'s within
/// the two runs' errors.
#[test]
fn uncoupled_modes_collapse_like_one_modality() {
    let common = [
        "--particles",
        "100",
        "--pairs",
        "10",
        "--entropy-times",
        "0.2,0.3,0.4,0.6,1.0",
        "--backend",
        "cpu",
        "--json",
    ];
    let single = summary(
        &[
            &["collapse", "--preset", "biroli", "--seed", "3"],
            &common[..],
        ]
        .concat(),
    );
    let coupled = summary(
        &[
            &[
                "collapse",
                "--preset",
                "coupled",
                "--coupling",
                "additive:0",
                "--pairing",
                "per-mode",
            ],
            &common[..],
        ]
        .concat(),
    );
    let t_c = single["t_c_theory"].as_f64().unwrap();
    let reference = single["excess_entropy"].as_array().unwrap();
    let modes = coupled["modes"].as_array().unwrap();
    assert_eq!(modes.len(), 2);
    for mode in modes {
        assert!((mode["t_c_theory"].as_f64().unwrap() - t_c).abs() < 1e-10);
        for (p, q) in mode["excess_entropy"]
            .as_array()
            .unwrap()
            .iter()
            .zip(reference)
        {
            let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
            assert!((f(p, "f_over_alpha_theory") - f(q, "f_over_alpha_theory")).abs() < 1e-10);
            let se = f(p, "stderr").hypot(f(q, "stderr"));
            let diff = f(p, "f_over_alpha") - f(q, "f_over_alpha");
            assert!(
                diff.abs() < 4.5 * se,
                "{} t = {}: {diff} (s.e. {se})",
                mode["name"],
                p["t"]
            );
        }
    }
}

/// Samples leave in the (x, y) frame: with classes ±(m_x, m_y), m_x = (1, …, 1) and m_y ⟂ m_x,
/// each sample's x-part averages ±1 over its coordinates and its y-part 0 (in the mode frame the
/// first half would average ±1/√2).
#[test]
fn saved_samples_are_pairs_x_then_y() {
    let out = common::scratch("coupled-samples").join("out");
    let out = out.to_str().unwrap();
    summary(&[
        "run",
        "--preset",
        "coupled",
        "--particles",
        "2000",
        "--steps",
        "200",
        "--save-samples",
        "--out",
        out,
        "--backend",
        "cpu",
        "--json",
    ]);
    let x = regimes::io::read_matrix(&std::path::Path::new(out).join("samples.npy")).unwrap();
    let d = 16;
    assert_eq!(x.shape(), (2000, 2 * d));
    let (mut abs_x, mut signed_y) = (0.0, 0.0);
    for row in x.row_iter() {
        let mx = row.columns(0, d).mean();
        abs_x += mx.abs() / 2000.0;
        signed_y += row.columns(d, d).mean() * mx.signum() / 2000.0;
    }
    // Each row mean has noise σ/√d = 0.25; over 2000 rows the averages are within 0.01.
    assert!((abs_x - 1.0).abs() < 0.05, "x-part |mean| {abs_x}");
    assert!(signed_y.abs() < 0.05, "y-part mean {signed_y}");
}
