//! Steering speciation with Q (docs/mathematics.md §6.4): the antisymmetric Q of Frobenius norm
//! at most B that makes speciation happen earliest in generation (the largest t_S), optionally
//! holding t_C within a relative tolerance of its Q = 0 value, from the closed-form theory.
//!
//! Derivative-free: every simple strategy (a family Q = c·D, D given at strength 1) is scanned
//! along c up to the budget, the best point starts a (1+1) evolution strategy over the upper
//! triangle of Q (Gaussian steps, projection back onto the ball ‖Q‖_F ≤ B, the 1/5 success
//! rule for the step size), and the best Q found is returned. Deterministic for a seed.

use anyhow::{Result, ensure};
use nalgebra::DMatrix;
use serde::Serialize;

use super::{symmetric_two_class, t_collapse, t_speciation, t_speciation_mixture};
use crate::linalg::Linear;
use crate::model::{Mixture, Process};
use crate::rng::HostRng;

/// The search's settings.
#[derive(Clone, Debug)]
pub struct SteerOptions {
    /// The budget B on ‖Q‖_F.
    pub budget: f64,
    /// Keep |t_C(Q) − t_C(0)| ≤ tol · t_C(0) (needs `n_train`).
    pub tc_tolerance: Option<f64>,
    /// N for t_C.
    pub n_train: usize,
    /// Evolution-strategy steps after the scan.
    pub iterations: usize,
    pub t_max: f64,
    pub seed: u64,
}

/// One Q and what the theory says of it.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// The strategy (`zero`, `optimal`, `toward-soft:0.93`, `steered`).
    pub name: String,
    pub norm: f64,
    pub t_s: Option<f64>,
    pub t_c: Option<f64>,
    #[serde(skip)]
    pub q: DMatrix<f64>,
}

/// The search's outcome: the steered Q beside Q = 0, the gap-optimal Q and the best member of
/// each simple strategy within the budget.
#[derive(Clone, Debug, Serialize)]
pub struct Steering {
    pub method: &'static str,
    pub budget: f64,
    pub tc_tolerance: Option<f64>,
    /// Theory evaluations made.
    pub evaluations: usize,
    pub zero: Candidate,
    /// The gap-optimal Q at full strength (whatever its norm).
    pub gap_optimal: Option<Candidate>,
    /// Each simple strategy at its best strength within the budget.
    pub simple: Vec<Candidate>,
    pub steered: Candidate,
}

/// Strengths scanned per strategy, as fractions of the budget.
const SCAN: usize = 24;

/// Searches Q (see the module docs). `families` are `(name, D)` with D the strategy at strength
/// 1 (`optimal:1`, `toward-soft:1`); `gap_optimal` is reported only.
pub fn steer(
    u: &Linear,
    mixture: &Mixture,
    families: &[(String, Linear)],
    gap_optimal: Option<&Linear>,
    opts: &SteerOptions,
) -> Result<Steering> {
    let d = u.dim();
    ensure!(
        opts.budget.is_finite() && opts.budget >= 0.0,
        "budget: ‖Q‖_F ≤ B needs a finite B ≥ 0 (got {})",
        opts.budget
    );
    if let Some(tol) = opts.tc_tolerance {
        ensure!(
            tol.is_finite() && tol >= 0.0,
            "tc-tolerance: must be a finite fraction ≥ 0 (got {tol})"
        );
    }
    let mut evaluations = 0;
    let mut eval = |name: &str, q: DMatrix<f64>| -> Result<Candidate> {
        evaluations += 1;
        let p = Process::new(u.clone(), Linear::from_dense(q.clone()))?;
        let t_s = match symmetric_two_class(mixture) {
            Some(m) => t_speciation(&p, m, &mixture.cov, opts.t_max),
            None => t_speciation_mixture(&p, mixture, opts.t_max),
        };
        Ok(Candidate {
            name: name.to_string(),
            norm: q.norm(),
            t_s,
            t_c: t_collapse(&p, &mixture.cov, opts.n_train, opts.t_max),
            q,
        })
    };
    let zero = eval("zero", DMatrix::zeros(d, d))?;
    let tc0 = zero.t_c;
    let feasible = |c: &Candidate| match (opts.tc_tolerance, tc0, c.t_c) {
        (None, ..) => true,
        (Some(tol), Some(a), Some(b)) => (b - a).abs() <= tol * a,
        _ => false,
    };
    let score = |c: &Candidate| {
        if feasible(c) {
            c.t_s.unwrap_or(f64::NEG_INFINITY)
        } else {
            f64::NEG_INFINITY
        }
    };
    let gap_optimal = gap_optimal
        .map(|q| eval("optimal", q.to_dense()))
        .transpose()?;
    let mut simple = vec![];
    for (name, dir) in families {
        let dir = dir.to_dense();
        let n1 = dir.norm();
        if n1 == 0.0 {
            continue;
        }
        let mut best: Option<Candidate> = None;
        for k in 1..=SCAN {
            let c = opts.budget / n1 * k as f64 / SCAN as f64;
            let cand = eval(&format!("{name}:{c:.4}"), &dir * c)?;
            if best.as_ref().is_none_or(|b| score(&cand) > score(b)) {
                best = Some(cand);
            }
        }
        simple.extend(best);
    }
    let mut best = simple
        .iter()
        .chain(std::iter::once(&zero))
        .max_by(|a, b| score(a).total_cmp(&score(b)))
        .cloned()
        .unwrap_or_else(|| zero.clone());
    // (1+1)-ES on the upper triangle; Q = X − Xᵀ keeps it antisymmetric.
    let mut rng = HostRng::new(opts.seed, "steer");
    let pairs = d * (d - 1) / 2;
    let mut step = 0.2 * opts.budget.max(1e-12) / (2.0 * pairs.max(1) as f64).sqrt();
    for _ in 0..opts.iterations {
        if pairs == 0 || opts.budget == 0.0 {
            break;
        }
        let mut q = best.q.clone();
        for i in 0..d {
            for j in i + 1..d {
                let z = step * rng.normal();
                q[(i, j)] += z;
                q[(j, i)] -= z;
            }
        }
        let norm = q.norm();
        if norm > opts.budget {
            q *= opts.budget / norm;
        }
        let cand = eval("steered", q)?;
        if score(&cand) > score(&best) {
            best = cand;
            step *= 1.5;
        } else {
            step *= 1.5f64.powf(-0.25);
        }
    }
    best.name = "steered".into();
    Ok(Steering {
        method: "scan of each simple strategy's strength up to the budget, then a (1+1) \
                 evolution strategy on the upper triangle of Q projected onto ‖Q‖_F ≤ B",
        budget: opts.budget,
        tc_tolerance: opts.tc_tolerance,
        evaluations,
        zero,
        gap_optimal,
        simple,
        steered: best,
    })
}

/// [`steer`] over the simple strategies `optimal` and (with a class direction) `toward-soft`,
/// built for precision `u` as `--q` builds them, with the gap-optimal Q reported beside.
pub fn steer_strategies(
    u: &Linear,
    mixture: &Mixture,
    class_dir: Option<&nalgebra::DVector<f64>>,
    lambdas: Option<&[f64]>,
    opts: &SteerOptions,
) -> Result<Steering> {
    use crate::model::QSpec;
    use crate::model::rotation::build_q;
    let optimal = build_q(&QSpec::Optimal(1.0), u, class_dir, lambdas, opts.seed)?;
    let mut families = vec![("optimal".to_string(), optimal.clone())];
    if class_dir.is_some() {
        let soft = build_q(&QSpec::TowardSoft(1.0), u, class_dir, lambdas, opts.seed)?;
        families.push(("toward-soft".to_string(), soft));
    }
    steer(u, mixture, &families, Some(&optimal), opts)
}

/// Q as a row-major d×d f64 `.npy` (what `--q file:PATH` reads).
pub fn q_npy(q: &DMatrix<f64>) -> Result<Vec<u8>> {
    let d = q.nrows();
    let rows: Vec<f64> = (0..d * d).map(|k| q[(k / d, k % d)]).collect();
    crate::io::encode_npy("q", &[d, d], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DVector;

    /// U = I: Q is a rotation and cannot move t_S; the search keeps t_S(0) and the budget.
    #[test]
    fn isotropic_u_cannot_be_steered_and_the_budget_holds() {
        let d = 4;
        let u = Linear::Diagonal(DVector::from_vec(vec![0.3, 0.8, 2.0, 4.0]));
        let mix = Mixture::two_class(DVector::from_vec(vec![0.0, 0.0, 0.0, 2.5]), 1.0);
        let opts = SteerOptions {
            budget: 1.0,
            tc_tolerance: None,
            n_train: 100,
            iterations: 60,
            t_max: 8.0,
            seed: 1,
        };
        let s = steer(&u, &mix, &[], None, &opts).unwrap();
        assert!(s.steered.norm <= 1.0 + 1e-12);
        // The mean sits on the stiffest axis: rotating it toward softer ones delays its decay.
        assert!(s.steered.t_s.unwrap() > s.zero.t_s.unwrap() + 0.05, "{s:?}");
        let iso = steer(&Linear::identity(d), &mix, &[], None, &opts).unwrap();
        let (a, b) = (iso.steered.t_s.unwrap(), iso.zero.t_s.unwrap());
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}
