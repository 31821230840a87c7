//! Steering speciation with Q (docs/mathematics.md §6.4): the antisymmetric Q of Frobenius norm
//! at most B that makes speciation happen earliest in generation (the largest t_S), optionally
//! holding t_C within a relative tolerance of its Q = 0 value, from the closed-form theory.
//!
//! Every simple strategy (a family Q = c·D, D given at strength 1) is scanned along c up to the
//! budget; the best point starts a (1+1) evolution strategy over the upper triangle of Q. Then a
//! spectral projected-gradient ascent on the ball ‖Q‖_F ≤ B, with the exact ∂t_S/∂Q of
//! [`super::gradient`], runs from several deterministic starts: each strategy's best point,
//! Q = 0, the evolution strategy's result and a few seeded random Q. The best end point is
//! returned with the norm of its projected gradient (zero at a stationary point of the ball
//! problem). Deterministic for a seed.

use anyhow::{Result, ensure};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use super::gradient::t_speciation_gradient;
use super::{
    between_class_deviations, symmetric_two_class, t_collapse, t_speciation, t_speciation_mixture,
};
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
    /// Evolution-strategy steps after the scan (its result is one start of the ascent).
    pub iterations: usize,
    pub t_max: f64,
    pub seed: u64,
}

/// One Q and what the theory says of it.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// The strategy (`zero`, `optimal`, `toward-soft:1.060`, `steered`): a `name:c` label is
    /// the Q evaluated, exactly, when read back with `--q name:c`.
    pub name: String,
    pub norm: f64,
    pub t_s: Option<f64>,
    pub t_c: Option<f64>,
    #[serde(skip)]
    pub q: DMatrix<f64>,
}

/// One projected-gradient ascent: where it started and where it ended.
#[derive(Clone, Debug, Serialize)]
pub struct Ascent {
    /// The start (`optimal:0.09621`, `zero`, `evolution`, `random:1`, …).
    pub start: String,
    pub t_s_start: Option<f64>,
    pub t_s: Option<f64>,
    pub norm: f64,
    pub iterations: usize,
    /// ‖∂t_S/∂Q‖_F projected onto the ball's tangent cone at the end point (see
    /// [`Steering::projected_gradient`]); `None` where no gradient exists.
    pub projected_gradient: Option<f64>,
}

/// The search's outcome: the steered Q beside Q = 0, the gap-optimal Q and the best member of
/// each simple strategy within the budget.
#[derive(Clone, Debug, Serialize)]
pub struct Steering {
    pub method: &'static str,
    pub budget: f64,
    pub tc_tolerance: Option<f64>,
    /// Theory evaluations (t_S) made.
    pub evaluations: usize,
    /// Gradients ∂t_S/∂Q computed.
    pub gradient_evaluations: usize,
    pub zero: Candidate,
    /// The gap-optimal Q at full strength (whatever its norm).
    pub gap_optimal: Option<Candidate>,
    /// Each simple strategy at its best strength within the budget.
    pub simple: Vec<Candidate>,
    /// The ascents, one per start.
    pub ascents: Vec<Ascent>,
    pub steered: Candidate,
    /// ‖P(∂t_S/∂Q)‖_F at the steered Q, P the projection onto the tangent cone of the ball
    /// ‖Q‖_F ≤ B (on the sphere with an outward gradient, its radial part removed): zero at a
    /// first-order stationary point. The t_C constraint, when given, is not counted in it.
    pub projected_gradient: Option<f64>,
}

/// Strengths scanned per strategy, as fractions of the budget.
const SCAN: usize = 24;
/// Seeded random starts (at half the budget) beside the strategies, Q = 0 and the evolution
/// strategy's result.
const RANDOM_STARTS: usize = 3;
/// Ascent steps per start at most.
const ASCENT_STEPS: usize = 150;
/// Stop an ascent once its projected gradient is this small: t_S is bisected to 1e-11, so
/// steps that small no longer change it measurably.
const GRADIENT_TOLERANCE: f64 = 1e-6;
/// … or once the best t_S has risen by less than this over the last [`MEMORY`] steps.
const STALL: f64 = 1e-10;
/// Halvings of a step before the line search gives up.
const BACKTRACKS: usize = 20;
/// The nonmonotone line search compares against the best of the last this many values.
const MEMORY: usize = 8;
/// Armijo's sufficient-increase fraction.
const ARMIJO: f64 = 1e-4;
/// Bounds on the Barzilai–Borwein step.
const STEP_BOUNDS: (f64, f64) = (1e-10, 1e10);
/// Significant digits of a printed strength.
const LABEL_DIGITS: i32 = 4;

/// `x > 0` rounded *down* to [`LABEL_DIGITS`] significant digits, with its text: the value is
/// what the text parses to, and never above `x` (a label never reads back over the budget).
fn round_down(x: f64) -> (f64, String) {
    if !(x > 0.0 && x.is_finite()) {
        return (0.0, "0".to_string());
    }
    let decimals = (LABEL_DIGITS - 1 - x.log10().floor() as i32).max(0);
    let scale = 10f64.powi(decimals);
    let mut k = (x * scale).floor();
    // x·scale may round up onto the next integer.
    if k / scale > x {
        k -= 1.0;
    }
    let c = k / scale;
    (c, format!("{c:.*}", decimals as usize))
}

/// The projection onto the ball ‖Q‖_F ≤ b (scaling, then a hair more if rounding overshoots).
fn project(mut q: DMatrix<f64>, b: f64) -> DMatrix<f64> {
    let n = q.norm();
    if n > b {
        q *= b / n;
        if q.norm() > b {
            q *= 1.0 - f64::EPSILON;
        }
    }
    q
}

/// The gradient `g` projected onto the tangent cone of the ball ‖Q‖_F ≤ b at `q`: `g` inside,
/// `g` less its outward radial part on the sphere.
fn projected_gradient(q: &DMatrix<f64>, g: &DMatrix<f64>, b: f64) -> DMatrix<f64> {
    if b == 0.0 {
        // The ball is a point: no direction is feasible.
        return g * 0.0;
    }
    let n2 = q.norm_squared();
    let radial = g.dot(q);
    if n2 > 0.0 && q.norm() >= b * (1.0 - 1e-9) && radial > 0.0 {
        g - q * (radial / n2)
    } else {
        g.clone()
    }
}

/// The evaluations of one search and their counts.
struct Search<'a> {
    u: &'a Linear,
    mixture: &'a Mixture,
    deviations: Vec<DVector<f64>>,
    opts: &'a SteerOptions,
    tc0: Option<f64>,
    evaluations: usize,
    gradient_evaluations: usize,
}

impl Search<'_> {
    fn process(&self, q: &DMatrix<f64>) -> Result<Process> {
        Process::new(self.u.clone(), Linear::from_dense(q.clone()))
    }

    /// t_S of Q, and t_C when the search is held to a t_C tolerance (else left for
    /// [`Search::with_tc`]).
    fn eval(&mut self, name: &str, q: DMatrix<f64>) -> Result<Candidate> {
        self.evaluations += 1;
        let p = self.process(&q)?;
        let t_s = match symmetric_two_class(self.mixture) {
            Some(m) => t_speciation(&p, m, &self.mixture.cov, self.opts.t_max),
            None => t_speciation_mixture(&p, self.mixture, self.opts.t_max),
        };
        let mut c = Candidate {
            name: name.to_string(),
            norm: q.norm(),
            t_s,
            t_c: None,
            q,
        };
        if self.opts.tc_tolerance.is_some() {
            c = self.with_tc(c)?;
        }
        Ok(c)
    }

    fn with_tc(&self, mut c: Candidate) -> Result<Candidate> {
        if c.t_c.is_none() {
            let p = self.process(&c.q)?;
            c.t_c = t_collapse(&p, &self.mixture.cov, self.opts.n_train, self.opts.t_max);
        }
        Ok(c)
    }

    /// The objective: t_S where feasible, −∞ else.
    fn score(&self, c: &Candidate) -> f64 {
        let feasible = match (self.opts.tc_tolerance, self.tc0, c.t_c) {
            (None, ..) => true,
            (Some(tol), Some(a), Some(b)) => (b - a).abs() <= tol * a,
            _ => false,
        };
        match (feasible, c.t_s) {
            (true, Some(t)) => t,
            _ => f64::NEG_INFINITY,
        }
    }

    fn gradient(&mut self, c: &Candidate) -> Result<Option<DMatrix<f64>>> {
        let Some(t_s) = c.t_s else {
            return Ok(None);
        };
        self.gradient_evaluations += 1;
        let p = self.process(&c.q)?;
        Ok(t_speciation_gradient(
            &p,
            &self.deviations,
            &self.mixture.cov,
            t_s,
            self.opts.t_max,
        ))
    }

    /// Spectral projected gradient (Birgin, Martínez & Raydan 2000): the Barzilai–Borwein step
    /// along the projected direction, a nonmonotone Armijo backtracking, projection onto the
    /// ball. Returns the best point met (the nonmonotone search may pass it) and the record.
    fn ascend(&mut self, start: &str, from: &Candidate) -> Result<(Candidate, Ascent)> {
        let b = self.opts.budget;
        let mut record = Ascent {
            start: start.to_string(),
            t_s_start: from.t_s,
            t_s: from.t_s,
            norm: from.norm,
            iterations: 0,
            projected_gradient: None,
        };
        let f0 = self.score(from);
        let Some(g0) = self.gradient(from)?.filter(|_| f0.is_finite()) else {
            return Ok((from.clone(), record));
        };
        let pg0 = projected_gradient(&from.q, &g0, b).norm();
        let mut best = (from.clone(), f0, pg0);
        let (mut x, mut g, mut pg) = (from.clone(), g0, pg0);
        let mut step = 0.1 * b / g.norm().max(1e-300);
        let mut recent = vec![f0];
        let mut bests = vec![f0];
        while record.iterations < ASCENT_STEPS && pg > GRADIENT_TOLERANCE {
            let dir = project(&x.q + &g * step, b) - &x.q;
            let slope = g.dot(&dir);
            if slope.is_nan() || slope <= 0.0 {
                break;
            }
            let reference = recent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut next = None;
            let mut lambda = 1.0;
            for _ in 0..BACKTRACKS {
                let c = self.eval("steered", project(&x.q + &dir * lambda, b))?;
                let fc = self.score(&c);
                if fc >= reference + ARMIJO * lambda * slope {
                    next = Some((c, fc));
                    break;
                }
                lambda *= 0.5;
            }
            let Some((c, fc)) = next else { break };
            let Some(gc) = self.gradient(&c)? else { break };
            let s = &c.q - &x.q;
            let sy = s.dot(&(&gc - &g));
            // Ascent: the curvature along s is −sy; the BB step |s|²/(−sy) where it is positive.
            step = if sy < 0.0 {
                (s.norm_squared() / -sy).clamp(STEP_BOUNDS.0, STEP_BOUNDS.1)
            } else {
                STEP_BOUNDS.1
            };
            record.iterations += 1;
            recent.push(fc);
            if recent.len() > MEMORY {
                recent.remove(0);
            }
            pg = projected_gradient(&c.q, &gc, b).norm();
            if fc > best.1 {
                best = (c.clone(), fc, pg);
            }
            (x, g) = (c, gc);
            bests.push(best.1);
            if bests.len() > MEMORY && best.1 - bests[bests.len() - 1 - MEMORY] < STALL {
                break;
            }
        }
        record.t_s = best.0.t_s;
        record.norm = best.0.norm;
        record.projected_gradient = Some(best.2);
        Ok((best.0, record))
    }
}

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
    let mut search = Search {
        u,
        mixture,
        deviations: between_class_deviations(mixture),
        opts,
        tc0: None,
        evaluations: 0,
        gradient_evaluations: 0,
    };
    let zero = search.eval("zero", DMatrix::zeros(d, d))?;
    let zero = search.with_tc(zero)?;
    search.tc0 = zero.t_c;
    let gap_optimal = gap_optimal
        .map(|q| search.eval("optimal", q.to_dense()))
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
            // Rounded down, so that the label is this Q and within the budget when read back.
            let (mut c, mut label) = round_down(opts.budget / n1 * k as f64 / SCAN as f64);
            while c > 0.0 && (&dir * c).norm() > opts.budget {
                (c, label) = round_down(c * (1.0 - 1e-12));
            }
            let cand = search.eval(&format!("{name}:{label}"), &dir * c)?;
            if best
                .as_ref()
                .is_none_or(|b| search.score(&cand) > search.score(b))
            {
                best = Some(cand);
            }
        }
        simple.extend(best);
    }
    let mut best = simple
        .iter()
        .chain(std::iter::once(&zero))
        .max_by(|a, b| search.score(a).total_cmp(&search.score(b)))
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
        let cand = search.eval("steered", project(q, opts.budget))?;
        if search.score(&cand) > search.score(&best) {
            best = cand;
            step *= 1.5;
        } else {
            step *= 1.5f64.powf(-0.25);
        }
    }
    // The ascent's starts: each strategy's best, Q = 0, the ES's result, seeded random Q.
    let mut starts: Vec<(String, Candidate)> = simple
        .iter()
        .map(|c| (c.name.clone(), c.clone()))
        .chain([("zero".to_string(), zero.clone())])
        .collect();
    if opts.iterations > 0 {
        starts.push(("evolution".to_string(), best.clone()));
    }
    let mut rng = HostRng::new(opts.seed, "steer-starts");
    for k in 1..=RANDOM_STARTS {
        if pairs == 0 || opts.budget == 0.0 {
            break;
        }
        let x = DMatrix::from_fn(d, d, |_, _| rng.normal());
        let q = &x - x.transpose();
        let q = &q * (0.5 * opts.budget / q.norm());
        starts.push((format!("random:{k}"), search.eval("steered", q)?));
    }
    // Every start is an ascent's start and an ascent never ends below it: the best end wins.
    let mut ascents = vec![];
    let mut projected = None;
    let mut best_score = f64::NEG_INFINITY;
    for (name, from) in &starts {
        let (end, record) = search.ascend(name, from)?;
        if search.score(&end) > best_score || ascents.is_empty() {
            best_score = search.score(&end);
            projected = record.projected_gradient;
            best = end;
        }
        ascents.push(record);
    }
    best.name = "steered".into();
    let best = search.with_tc(best)?;
    let gap_optimal = gap_optimal.map(|c| search.with_tc(c)).transpose()?;
    let simple = simple
        .into_iter()
        .map(|c| search.with_tc(c))
        .collect::<Result<Vec<_>>>()?;
    Ok(Steering {
        method: "scan of each simple strategy's strength up to the budget, a (1+1) evolution \
                 strategy on the upper triangle of Q, then spectral projected-gradient ascent \
                 with the exact ∂t_S/∂Q on ‖Q‖_F ≤ B from each strategy's best, Q = 0, the \
                 evolution strategy's result and seeded random Q",
        budget: opts.budget,
        tc_tolerance: opts.tc_tolerance,
        evaluations: search.evaluations,
        gradient_evaluations: search.gradient_evaluations,
        zero,
        gap_optimal,
        simple,
        ascents,
        steered: best,
        projected_gradient: projected,
    })
}

/// [`steer`] over the simple strategies `optimal` and (with a class direction) `toward-soft`,
/// built for precision `u` as `--q` builds them, with the gap-optimal Q reported beside.
pub fn steer_strategies(
    u: &Linear,
    mixture: &Mixture,
    class_dir: Option<&DVector<f64>>,
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

    /// Labels round down to 4 significant digits and parse back to the value used.
    #[test]
    fn labels_round_down_and_read_back() {
        for (x, text) in [
            (0.09627, "0.09627"),
            (0.096279, "0.09627"),
            (1.06066, "1.060"),
            (2.0, "2.000"),
            (1234.56, "1234"),
            (123456.0, "123456"),
            (3e-7, "0.0000003000"),
            (0.0, "0"),
        ] {
            let (c, label) = round_down(x);
            assert_eq!(label, text);
            assert!(c <= x);
            assert_eq!(label.parse::<f64>().unwrap(), c);
        }
    }

    /// A two-class target in d = 4 with an anisotropic U: the ascent ends above every start,
    /// inside the ball, at a point whose projected gradient is small; each strategy's label
    /// names a Q within the budget.
    #[test]
    fn ascent_reaches_a_stationary_point_within_the_budget() {
        let u = Linear::Diagonal(DVector::from_vec(vec![0.2, 0.6, 1.7, 5.0]));
        let m = DVector::from_vec(vec![1.5, 1.5, 1.5, 1.5]);
        let mix = Mixture::two_class(m.clone(), 0.05);
        let opts = SteerOptions {
            budget: 1.5,
            tc_tolerance: None,
            n_train: 100,
            iterations: 0,
            t_max: 8.0,
            seed: 2,
        };
        let s = steer_strategies(&u, &mix, Some(&m), None, &opts).unwrap();
        let t = s.steered.t_s.unwrap();
        assert!(s.steered.norm <= 1.5, "{}", s.steered.norm);
        for a in &s.ascents {
            assert!(a.t_s.unwrap() >= a.t_s_start.unwrap(), "{a:?}");
            assert!(t >= a.t_s.unwrap());
        }
        assert!(t > s.simple.iter().map(|c| c.t_s.unwrap()).fold(0.0, f64::max));
        let pg = s.projected_gradient.unwrap();
        assert!(pg < 1e-5, "projected gradient {pg:.3e}");
        for c in &s.simple {
            let (name, strength) = c.name.split_once(':').unwrap();
            let spec = match name {
                "optimal" => crate::model::QSpec::Optimal(strength.parse().unwrap()),
                _ => crate::model::QSpec::TowardSoft(strength.parse().unwrap()),
            };
            let q = crate::model::rotation::build_q(&spec, &u, Some(&m), None, 2).unwrap();
            assert_eq!(q.to_dense(), c.q, "{}", c.name);
            assert!(q.to_dense().norm() <= opts.budget, "{}", c.name);
        }
    }
}
