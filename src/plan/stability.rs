//! Whether an explicit scheme stays on the scale of the marginals over the whole run
//! (docs/mathematics.md §4.3).
//!
//! One explicit step multiplies a mode μ = a + iω of the linear part `L_t = A(t) − cΠ_t` (the
//! drift plus the score's linear part, what the plan integrates) by `|1 + hμ|`, where the exact
//! flow multiplies by `e^{ha}`. A rotating mode gains `½ ln((1 + ha)² + (hω)²) − ha ≈ ½h²(ω² − a²)`
//! per step, about `e^{(ω²h/2)T}` over a run, however mild one step's gain looks. So each mode's
//! variance is followed through the actual grid twice, under the scheme (`|1 + hμ|² V + 2h`) and
//! under the exact flow of the same linear SDE (`e^{2ha} V + 2hφ₁(2ha)`); the probability flow has
//! no noise, so its ratio is the product of the per-step ratios. A run is refused where some
//! mode's scale √V exceeds the exact one by [`SCALE_LIMIT`] or more at any node. Heun's step
//! multiplies by `|1 + hμ + (hμ)²/2|` instead (a rotating mode gains `(ωh)⁴/8` per step).
//!
//! The eigenvalues are those of `L_t` at a fixed ladder of times (uniform and geometric, so the
//! stiff end near t = 0 is resolved); a step uses the ladder's first time at or below its own.
//! Modes are matched across times by their order (|ω| descending, then a). The posterior's
//! nonlinear part of the score is left out: it is bounded and shared with the exact dynamics.

use anyhow::Result;
use nalgebra::Complex;

use anyhow::bail;

use super::{Grid, Plan, Scheme, Stability};
use crate::linalg::Linear;
use crate::model::{Process, Target};

/// The largest factor by which the scheme may grow some mode's scale beyond what the exact
/// dynamics do (variance × 100) before a run is refused.
pub const SCALE_LIMIT: f64 = 10.0;

/// The factor `--steps auto` keeps every *rotating* mode's scale within (|ω| > |a|, where the
/// explicit step's excess `½h²(ω² − a²)` is positive), and above which a run is warned about.
/// The real modes are left to the refusal: their stationary excess `2/(2 − h|a|)` stays below 2
/// unless h|a| nears 2, and the stiff end of the grid (t → 0, where the precision grows like
/// 1/t) puts every grid's last steps near h|a| ≈ 1 whatever the step count.
pub const AUTO_SCALE: f64 = 1.1;

/// Ladder times on each of the uniform and geometric rungs.
const RUNGS: usize = 200;

/// The eigenvalues of the linear part at the ladder's times (descending).
pub struct Modes {
    times: Vec<f64>,
    eig: Vec<Vec<Complex<f64>>>,
}

/// The worst scale ratio of a run and where it happens.
#[derive(Clone, Copy, Debug)]
pub struct Verdict {
    /// `max √(V_scheme / V_exact)` over modes and nodes (inf or NaN: overflow).
    pub scale: f64,
    /// The same over the rotating modes (|ω| > |a|) only.
    pub rotating: f64,
    /// The first node where it reaches [`SCALE_LIMIT`], or where it is largest.
    pub time: f64,
}

impl Verdict {
    /// Whether the run stays below the refusal's [`SCALE_LIMIT`] (NaN never does).
    pub fn passes(&self) -> bool {
        self.scale < SCALE_LIMIT
    }

    /// Whether it passes with every rotating mode within [`AUTO_SCALE`] (what `--steps auto`
    /// picks and what is not warned about).
    pub fn accurate(&self) -> bool {
        self.passes() && self.rotating < AUTO_SCALE
    }
}

impl Modes {
    /// The eigenvalues of `linear(t)` on a ladder from `t_max` down to `t_min > 0`. `dim` sets how
    /// many rungs a dense L affords (an eigen-decomposition costs O(d³)): the ladder thins out
    /// above d ≈ 60, so large dense models are judged on few times.
    pub fn new(
        t_max: f64,
        t_min: f64,
        dim: usize,
        linear: impl Fn(f64) -> Result<Linear>,
    ) -> Result<Modes> {
        // About 5·10⁷·25 flops of Schur iterations in all: 200 rungs to d ≈ 60, 50 at d = 100, 2
        // at d = 256, one (T and t_min only) beyond.
        let rungs = (5e7 / (dim as f64).powi(3)).clamp(1.0, RUNGS as f64) as usize;
        let t_min = t_min.clamp(f64::MIN_POSITIVE, t_max);
        let ratio = (t_min / t_max).powf(1.0 / rungs as f64);
        let mut times: Vec<f64> = (0..=rungs)
            .map(|k| t_max * (1.0 - k as f64 / rungs as f64))
            .chain((0..=rungs).map(|k| t_max * ratio.powi(k as i32)))
            .filter(|&t| t >= t_min * (1.0 - 1e-12))
            .collect();
        times.sort_by(|a, b| b.total_cmp(a));
        times.dedup_by(|a, b| (*b - *a).abs() <= 1e-12 * b.abs());
        let mut eig: Vec<Vec<Complex<f64>>> = Vec::with_capacity(times.len());
        for &t in &times {
            let l = linear(t)?;
            if !matches!(l, Linear::Dense(_)) {
                // Real modes: the most negative is the worst (and a > 0 never outgrows the
                // exact flow), so a scalar or diagonal L of any d keeps two.
                let d = l.diagonal();
                let (lo, hi) = (d.min(), d.max());
                eig.push(vec![Complex::new(lo, 0.0), Complex::new(hi, 0.0)]);
                continue;
            }
            let mut e = match crate::theory::relaxation::eigenvalues(&l) {
                Some(e) => e,
                // The Schur iteration did not converge: keep the neighbour's modes.
                None => match eig.last() {
                    Some(prev) => prev.clone(),
                    None => continue,
                },
            };
            e.sort_by(|x, y| {
                y.im.abs()
                    .total_cmp(&x.im.abs())
                    .then(y.re.total_cmp(&x.re))
            });
            eig.push(e);
        }
        times.truncate(eig.len());
        if eig.is_empty() {
            times.push(t_max);
            eig.push(vec![]);
        }
        Ok(Modes { times, eig })
    }

    /// The ladder for `grid`: from its first to its last positive node.
    pub fn for_grid(
        grid: &Grid,
        dim: usize,
        linear: impl Fn(f64) -> Result<Linear>,
    ) -> Result<Modes> {
        Modes::new(grid.t_max, grid.time(grid.steps - 1), dim, linear)
    }

    /// The scheme's worst scale ratio on `grid` with every step split into `refine` equal
    /// sub-steps (1: the grid as it is; real values scale the step count continuously).
    pub fn judge(&self, grid: &Grid, scheme: Scheme, refine: f64) -> Verdict {
        let stochastic = scheme.stochastic();
        let d = self.eig[0].len();
        // Start from the exact law of each mode: its stationary variance 1/|a| (SDE).
        let start = |mu: &Complex<f64>| 1.0 / (-mu.re).clamp(1e-6, 1e6);
        let mut vs: Vec<f64> = self.eig[0].iter().map(start).collect();
        let mut ve = vs.clone();
        // The ODE: log of the variance ratio.
        let mut lr = vec![0.0; d];
        let mut worst = Verdict {
            scale: 1.0,
            rotating: 1.0,
            time: grid.t_max,
        };
        let worse = |ratio: f64, than: f64| ratio.is_nan() || ratio > than; // NaN sticks
        let mut s = 0;
        let scope = crate::stop::scope();
        for j in 0..grid.steps {
            // A judgement of 10⁶ steps takes seconds: a stop ends it (the caller reports it).
            if j % 4096 == 0 && scope.reason().is_some() {
                break;
            }
            let t = grid.time(j);
            while s + 1 < self.times.len() && self.times[s] > t * (1.0 + 1e-12) {
                s += 1;
            }
            let h = grid.dt_at(j) / refine;
            let (mut step_worst, mut step_rotating) = (0.0, 0.0);
            for (k, mu) in self.eig[s].iter().enumerate().take(d) {
                let z = mu * h;
                let gain = if scheme.corrects() {
                    Complex::new(1.0, 0.0) + z + z * z * 0.5
                } else {
                    Complex::new(1.0, 0.0) + z
                };
                let gs = gain.norm_sqr();
                let ge_ln = 2.0 * h * mu.re;
                let ratio = if stochastic {
                    vs[k] = geometric(gs.ln(), refine, vs[k], 2.0 * h);
                    ve[k] = geometric(ge_ln, refine, ve[k], 2.0 * h * phi1(ge_ln));
                    vs[k] / ve[k]
                } else {
                    lr[k] += refine * (gs.ln() - ge_ln);
                    lr[k].exp()
                };
                if worse(ratio, step_worst) {
                    step_worst = ratio;
                }
                if mu.im.abs() > mu.re.abs() && worse(ratio, step_rotating) {
                    step_rotating = ratio;
                }
            }
            // The time: where the limit is first crossed, else where the worst ratio is.
            if worse(step_worst.sqrt(), worst.scale) {
                if worst.passes() {
                    worst.time = grid.time(j + 1);
                }
                worst.scale = step_worst.sqrt();
            }
            if worse(step_rotating.sqrt(), worst.rotating) {
                worst.rotating = step_rotating.sqrt();
            }
        }
        worst
    }

    /// The least factor (≥ 1) by which to refine every step of `grid` so that its verdict
    /// satisfies `ok` ([`Verdict::passes`] or [`Verdict::accurate`]); None if even 10⁸ does not.
    pub fn refinement(
        &self,
        grid: &Grid,
        scheme: Scheme,
        ok: impl Fn(&Verdict) -> bool,
    ) -> Option<f64> {
        let stopped = || crate::stop::stop_reason().is_some();
        let passes = |r: f64| stopped() || ok(&self.judge(grid, scheme, r));
        if passes(1.0) {
            return Some(1.0);
        }
        let mut hi = 2.0;
        while !passes(hi) {
            hi *= 2.0;
            if hi > 1e8 {
                return None;
            }
        }
        let mut lo = hi / 2.0;
        while hi / lo > 1.001 {
            let mid = (lo * hi).sqrt();
            if passes(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

/// The linear part `L_t = A(t) − cΠ_t` of the reverse drift at t (docs/mathematics.md §4.2): Π_t
/// is Γ_t⁻¹ for a mixture of within-class covariance `cov`, Σ_t⁻¹ for training points (`None`).
pub fn linear_part(
    process: &Process,
    cov: Option<&Linear>,
    scheme: Scheme,
    t: f64,
) -> Result<Linear> {
    let e = process.propagator(t);
    let c = match cov {
        Some(c) => process.gamma_with(t, &e, c),
        None => process.sigma_with(t, &e),
    };
    let precision = c.inverse_spd().map_err(|_| {
        anyhow::anyhow!(
            "plan: the covariance at t = {t} is singular (use fewer steps or a larger t-max)"
        )
    })?;
    Ok(process
        .drift(t)
        .sub(&precision.scale(scheme.score_weight())))
}

impl Plan {
    /// Refuses a grid on which the explicit scheme would grow some mode's scale by
    /// [`SCALE_LIMIT`]× or more beyond the exact dynamics over the run (see
    /// [`stability`]), naming the step count that would pass; keeps the verdict otherwise.
    pub(super) fn check_stability(&mut self) -> Result<()> {
        if !self.scheme.explicit() {
            return Ok(()); // the linear part is integrated exactly
        }
        let cov = match &self.target {
            Target::Mixture(mix) => Some(&mix.cov),
            Target::Empirical(_) => None,
        };
        let (process, scheme) = (&self.process, self.scheme);
        let modes = Modes::for_grid(&self.grid, self.dim, |t| {
            linear_part(process, cov, scheme, t)
        })?;
        let verdict = modes.judge(&self.grid, scheme, 1.0);
        crate::stop::unless_stopped()?;
        let n = self.grid.steps;
        let steps_for = |ok: fn(&Verdict) -> bool| {
            modes
                .refinement(&self.grid, scheme, ok)
                .map(|r| (n as f64 * r).ceil() as usize)
        };
        if verdict.accurate() {
            self.stability = Some(Stability {
                verdict,
                steps_within_auto: n,
            });
            return Ok(());
        }
        let auto = steps_for(Verdict::accurate);
        crate::stop::unless_stopped()?;
        let name = clap::ValueEnum::to_possible_value(&scheme)
            .map_or(String::new(), |v| v.get_name().to_string());
        if verdict.passes() {
            self.stability = Some(Stability {
                verdict,
                steps_within_auto: auto.unwrap_or(usize::MAX),
            });
            return Ok(());
        }
        let growth = if verdict.scale.is_finite() {
            format!("{:.3e}×", verdict.scale)
        } else {
            "more than 1e300×".into()
        };
        let needed = match (steps_for(Verdict::passes), auto) {
            (Some(pass), Some(auto)) => format!(
                "use --steps {pass} or more on this spacing (--steps auto aims at {auto}, which \
                 keep the rotating modes within {AUTO_SCALE}×)"
            ),
            _ => "no step count up to 10⁸× as many passes".into(),
        };
        crate::stop::unless_stopped()?;
        bail!(
            "steps: {n} steps of --scheme {name} are unstable for this model: some mode of the \
             reverse drift would grow to {growth} its exact scale (past {SCALE_LIMIT}× from t = \
             {:.4} on; a mode a ± iω gains √((1 + aΔt)² + (ωΔt)²)·e^(−aΔt) per step over the \
             exact flow), so the particles would leave the marginal's scale; {needed}, or \
             --scheme exact or exponential (no step limit)",
            verdict.time
        )
    }

    /// A warning when the explicit scheme passes but grows some rotating mode's scale by
    /// [`AUTO_SCALE`]× or more beyond the exact dynamics, naming the steps that would not.
    pub fn stability_warning(&self) -> Option<String> {
        let s = self.stability.as_ref()?;
        (!s.verdict.accurate()).then(|| {
            format!(
                "steps: the explicit scheme grows a rotating mode of the reverse drift by {:.2}× \
                 beyond the exact dynamics (refused from {SCALE_LIMIT}×, --steps auto keeps it \
                 within {AUTO_SCALE}×): use --steps {} or more, or --scheme exact",
                s.verdict.rotating, s.steps_within_auto
            )
        })
    }

    /// A bound on `E|x_t|²` over the forward marginals: `tr U⁻¹ + κ(U)(tr C + max_k ‖μ_k‖²)`
    /// (Σ_t ≤ U⁻¹, and E_t contracts in the U-norm, so `‖E_t v‖² ≤ κ(U)‖v‖²`), with the
    /// training points for μ_k and C = 0 on an empirical target. What the run-time guard
    /// measures the particles against.
    pub fn marginal_scale(&self) -> f64 {
        let p = &self.process;
        let u = p.u.symmetric_eigenvalues();
        let kappa = u.last().copied().unwrap_or(1.0) / u.first().copied().unwrap_or(1.0);
        let (spread, far) = match &self.target {
            Target::Mixture(mix) => (
                mix.cov.diagonal().sum(),
                mix.means
                    .iter()
                    .map(|m| m.norm_squared())
                    .fold(0.0, f64::max),
            ),
            Target::Empirical(e) => (
                0.0,
                e.points
                    .row_iter()
                    .map(|a| a.norm_squared())
                    .fold(0.0, f64::max),
            ),
        };
        p.u_inv.diagonal().sum() + kappa * (spread + far)
    }
}

/// `V` after r steps of `V ← gV + q` with `ln g = ln_g`: `gʳV + q(gʳ − 1)/(g − 1)`.
fn geometric(ln_g: f64, r: f64, v: f64, q: f64) -> f64 {
    let gr = (r * ln_g).exp();
    let sum = if ln_g.abs() < 1e-12 {
        r
    } else {
        (r * ln_g).exp_m1() / ln_g.exp_m1()
    };
    gr * v + q * sum
}

/// `φ₁(x) = (eˣ − 1)/x`, continuous at 0.
fn phi1(x: f64) -> f64 {
    if x == 0.0 { 1.0 } else { x.exp_m1() / x }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    /// A fixed rotating mode a ± iω: the SDE's variance ratio tends to the stationary
    /// `(2h/(1 − |1 + hμ|²)) / (1/|a|)`, and diverges where |1 + hμ| ≥ 1.
    #[test]
    fn a_rotating_mode_matches_its_closed_form() {
        let (a, w) = (-1.0, 30.0);
        let l = Linear::Dense(DMatrix::from_row_slice(2, 2, &[a, w, -w, a]));
        let modes = Modes::new(10.0, 0.01, 2, |_| Ok(l.clone())).unwrap();
        // h(a² + ω²) = 0.901·h·1000: stable at h = 1e-3 (gain² = 1 − 0.002 + 0.000901).
        let grid = Grid::new(10.0, 10_000).unwrap();
        let v = modes.judge(&grid, Scheme::EulerMaruyama, 1.0);
        let h = 1e-3;
        let gs = (1.0 + h * a).powi(2) + (h * w).powi(2);
        let want = ((2.0 * h / (1.0 - gs)) * -a).sqrt();
        assert!(
            (v.scale - want).abs() < 1e-3 * want,
            "{} vs {want}",
            v.scale
        );
        assert!(v.passes());
        // h = 2.5e-3: h(a² + ω²) = 2.25 > 2|a|: unstable, growth e^{~0.0003·4000}...
        let coarse = Grid::new(10.0, 4_000).unwrap();
        let bad = modes.judge(&coarse, Scheme::EulerMaruyama, 1.0);
        assert!(!bad.passes(), "{bad:?}");
        // The refinement that passes lands near the boundary and passes the refined grid.
        let r = modes
            .refinement(&coarse, Scheme::EulerMaruyama, Verdict::passes)
            .unwrap();
        let n = (4_000.0 * r).ceil() as usize;
        assert!(
            modes
                .judge(&Grid::new(10.0, n).unwrap(), Scheme::EulerMaruyama, 1.0)
                .passes()
        );
        assert!(
            !modes
                .judge(
                    &Grid::new(10.0, n * 99 / 100).unwrap(),
                    Scheme::EulerMaruyama,
                    1.0
                )
                .passes()
        );
        // The ODE: the pure rotation (a = 0) grows by (1 + h²ω²)^{n/2} over n steps.
        let rot = Linear::Dense(DMatrix::from_row_slice(2, 2, &[0.0, w, -w, 0.0]));
        let modes = Modes::new(10.0, 0.01, 2, |_| Ok(rot.clone())).unwrap();
        let v = modes.judge(&grid, Scheme::ProbabilityFlow, 1.0);
        let want = (1.0 + (h * w).powi(2)).powf(10_000.0 / 2.0);
        assert!((v.scale / want - 1.0).abs() < 1e-9, "{} vs {want}", v.scale);
    }

    /// A stop request ends a long judgement at once with the typed stop, never a verdict.
    #[test]
    fn a_stop_ends_the_judgement_with_the_typed_stop() {
        let p = Process::new(Linear::identity(3), Linear::Scalar(0.0, 3)).unwrap();
        let m = nalgebra::DVector::from_element(3, 1.0);
        let target = Target::Mixture(crate::model::Mixture::two_class(m, 1.0));
        let model = crate::model::Model { process: p, target };
        let token = crate::stop::Token::new();
        token.request();
        let grid = Grid::new(10.0, 5_000_000).unwrap();
        let clock = std::time::Instant::now();
        let built = token.scoped(|| {
            Plan::new(
                &model,
                grid,
                Scheme::EulerMaruyama,
                crate::plan::Start::Exact,
            )
        });
        let Err(e) = built else {
            panic!("a plan built after a stop request")
        };
        assert!(e.is::<crate::stop::Interrupted>(), "{e:#}");
        assert!(clock.elapsed().as_secs_f64() < 0.5, "{:?}", clock.elapsed());
    }

    /// The stiff end of a training set (Σ_t ≈ 2t, so the last steps have h|a| ≈ 1 on any grid)
    /// neither is refused nor counts against `--steps auto`: only rotating modes do.
    #[test]
    fn the_stiff_end_of_a_training_set_passes() {
        let p = Process::new(Linear::identity(3), Linear::Scalar(0.0, 3)).unwrap();
        for n in [100, 1000] {
            let grid = Grid::new(5.0, n).unwrap();
            let modes = Modes::for_grid(&grid, 3, |t| {
                linear_part(&p, None, Scheme::EulerMaruyama, t)
            })
            .unwrap();
            let v = modes.judge(&grid, Scheme::EulerMaruyama, 1.0);
            assert!(v.accurate() && v.scale > 1.2, "{n}: {v:?}");
        }
    }
}
