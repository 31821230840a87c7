//! The per-step plan (docs/mathematics.md §5): everything both engines execute, computed once on the host in
//! f64 and rounded once to f32, so CPU and GPU run exactly the same numbers.
//!
//! Every time point j (time `t_j = T − jΔt`, j = 0..=n) has *logit* coefficients and, for j < n,
//! *update* coefficients. With centers W (one row per class or training point):
//!
//! ```text
//! logits  ℓ = bias_j + W_j (B_j x)          r = softmax(ℓ), label = argmax ℓ
//! update  x' = M_j x + P_j (W_jᵀ r) + L_j ξ(seed, id, j)
//! ```
//!
//! (The exact scheme replaces the average `W_jᵀ r` by one row `V_k` drawn from r: see
//! [`integrator`] and below.)
//!
//! * Gaussian mixture (shared covariance): `W_j = [g_k(t_j)]`, `B = I`, `P = cΔt`,
//!   `M = I + Δt(A − cΓ_t⁻¹)`, with c = 2 for Euler–Maruyama and c = 1 for the probability-flow
//!   ODE (noise 0).
//! * Empirical target: `W = training points a_μ` (constant, resident), `B_t = E_tᵀΣ_t⁻¹`,
//!   `bias_μ = −½ a_μᵀ E_tᵀΣ_t⁻¹E_t a_μ`, `M = I + Δt(A − cΣ_t⁻¹)`, `P = cΔt Σ_t⁻¹E_t`.
//!   Σ_0 = 0, so the logits at t = 0 reuse those of the last positive time.
//! * Exponential schemes: `M = exp(ΔtL)`, `P = c·Δtφ₁(ΔtL)` (times Σ⁻¹E for the empirical
//!   target) with `L = A − c·precision`, and L_j the Cholesky factor of the exact noise
//!   covariance of the linear part (0 for the ODE).
//! * Exact reverse transition ([`integrator::Bridge`]): `M = G`, L_j the factor of the bridge
//!   covariance, and the drawn row is `V_k = c_k` (mixture offsets per step, `P = 1`) or the
//!   training point `a_k` (`P = E_s − G E_t`).
//!   On an empirical plan that draws once ([`Draws::Once`]) the training point is drawn at a
//!   particle's first evaluation and held: later evaluations compute only the label.
//! * Heun (mixtures): the probability flow's Euler step is the predictor x̃; a corrector with
//!   the logits of t_{j+1} (`W'_j`, `bias'_j`) gives `x' = (M'_j x̃ + P'_j W'_jᵀ r(x̃)) + ½x`,
//!   `M' = ½(I + Δt_j L_{t_{j+1}})`, `P' = ½cΔt_j`: the mean of the drifts at both ends.
//!
//! Each of M, B, P keeps one [`Form`] for the whole run (scalar, diagonal or dense). Coefficients
//! are produced in chunks of time points; they are cached while small and rebuilt on demand
//! otherwise, so a long dense plan never has to fit in memory at once.
//!
//! The chunks and the per-point views the engines read are in `chunk.rs`.

use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, bail, ensure};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use crate::linalg::{Form, Linear};
use crate::model::{Model, Process, Target};

mod chunk;
mod grid;
pub mod integrator;
pub mod prune;
mod shape;
pub mod stability;

pub use chunk::{Chunk, Corrector, PointView, form_len};
pub use grid::{Grid, Scheme, Spacing, Start, Steps};
pub use shape::Shape;

/// Training points per tile of the softmax over an empirical target, the same on both engines:
/// the unit of the exact scheme's streaming draw, of pruning ([`prune`]) and of the GPU's online
/// softmax, so both engines round alike.
pub const SOFTMAX_ROWS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Mixture,
    Empirical,
}

/// When the exact scheme draws the training point of an empirical plan.
///
/// Holding the first draw is exact in law: the forward process runs a_μ → x_s → x_t, so given x_s
/// the drawn point no longer depends on x_t, and a point drawn from the posterior at t and carried
/// through the exact step to s is distributed as the posterior at s. The particle then follows the
/// exact bridge to that point, and a later evaluation needs only the logits' argmax (the label),
/// not the softmax: no exponentials, no draw. The posterior's purity Σ r² is then evaluated only
/// at the points a recorder reads (NaN elsewhere), so studies that read labels gain most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Draws {
    /// Afresh from the posterior at every step.
    #[default]
    EveryStep,
    /// At the particle's first evaluation (its start, or its branch point), then held.
    Once,
}

/// The start distribution: a mixture of Gaussians with shared Cholesky factor,
/// `x = means[k] + L ξ`, k drawn by the cumulative weights.
#[derive(Clone, Debug)]
pub struct StartPlan {
    /// Component means, row-major (components × d).
    pub means: Vec<f32>,
    /// Cumulative weights; the last is exactly 1.
    pub cumulative: Vec<f32>,
    /// Cholesky factor L in its form ([`Linear::to_f32`] layout).
    pub chol: Vec<f32>,
    pub chol_form: Form,
}

/// Coefficients of one time point in f64, before rounding.
struct Point {
    m: Linear,
    b: Linear,
    p: Linear,
    w: Option<DMatrix<f64>>,
    bias: Vec<f64>,
    noise: Linear,
    offsets: Option<DMatrix<f64>>,
    gram: Option<Linear>,
    /// Heun: (M', P', W', bias').
    corrector: Option<(Linear, Linear, DMatrix<f64>, Vec<f64>)>,
}

/// The plan of a run: constant data plus a source of coefficient chunks.
pub struct Plan {
    pub kind: Kind,
    pub dim: usize,
    /// Number of classes K (mixture) or training points N (empirical).
    pub centers_count: usize,
    pub grid: Grid,
    pub scheme: Scheme,
    pub m_form: Form,
    pub b_form: Form,
    pub p_form: Form,
    pub noise_form: Form,
    pub start: StartPlan,
    /// Constant centers (empirical training points, N×d row-major); empty for mixtures.
    pub centers: Vec<f32>,
    /// Time points per chunk.
    pub chunk_len: usize,
    process: Process,
    target: Target,
    cache: Mutex<Vec<Option<Arc<Chunk>>>>,
    cache_enabled: bool,
    /// The training points' tile geometry, built at first use ([`prune::Tiles`]).
    /// Shared by the plans of one training set ([`Plan::sharing_tiles`]).
    tiles: Arc<OnceLock<Option<Arc<prune::Tiles>>>>,
    /// The explicit schemes' judged growth beyond the exact dynamics; None for the others.
    pub stability: Option<Stability>,
    /// When the exact scheme draws a training point ([`Plan::drawing_once`], which checks that
    /// the plan draws at all).
    draws: Draws,
}

/// What [`stability`] judged of an explicit scheme on this grid.
#[derive(Clone, Copy, Debug)]
pub struct Stability {
    pub verdict: stability::Verdict,
    /// The steps that would keep the rotating modes within [`stability::AUTO_SCALE`]× (this
    /// grid's own count where it already does).
    pub steps_within_auto: usize,
}

/// Plans whose coefficients take more than this are rebuilt chunk by chunk instead of cached.
pub const CACHE_BYTES: usize = 512 << 20;

impl Plan {
    /// The plan of `model` on `grid`; refuses an explicit scheme that would leave the
    /// marginals' scale ([`stability`]).
    pub fn new(model: &Model, grid: Grid, scheme: Scheme, start: Start) -> Result<Self> {
        Plan::build(model, grid, scheme, start, true)
    }

    /// [`Plan::new`] without the stability judgement: for tests of what happens at run time
    /// when a run diverges anyway.
    #[doc(hidden)]
    pub fn new_unjudged(model: &Model, grid: Grid, scheme: Scheme, start: Start) -> Result<Self> {
        Plan::build(model, grid, scheme, start, false)
    }

    fn build(model: &Model, grid: Grid, scheme: Scheme, start: Start, judge: bool) -> Result<Self> {
        let d = model.process.dim();
        ensure!(
            scheme != Scheme::Auto,
            "plan: the scheme `auto` is resolved before a plan is built (study::scheme::resolve)"
        );
        ensure!(
            model.target.dim() == d,
            "target: dimension {} does not match U's dimension {d}",
            model.target.dim()
        );
        let target = match &model.target {
            Target::Mixture(mix) => {
                ensure!(
                    !mix.means.is_empty(),
                    "target: the mixture has no components"
                );
                ensure!(
                    mix.weights.len() == mix.means.len(),
                    "target: weights and means differ in count"
                );
                ensure!(
                    mix.weights.iter().all(|w| w.is_finite() && *w >= 0.0),
                    "target: weights must be finite and ≥ 0"
                );
                ensure!(
                    mix.means.iter().all(|m| m.iter().all(|x| x.is_finite())),
                    "target: means contain NaN or inf"
                );
                // Components of weight zero never occur; dropping them keeps every bias finite.
                let mut kept = mix.clone();
                let total: f64 = mix.weights.iter().sum();
                ensure!(total > 0.0, "target: weights sum to zero");
                let (w, m): (Vec<f64>, Vec<DVector<f64>>) = mix
                    .weights
                    .iter()
                    .zip(&mix.means)
                    .filter(|(w, _)| **w > 0.0)
                    .map(|(w, m)| (w / total, m.clone()))
                    .unzip();
                kept.weights = w;
                kept.means = m;
                kept.cov.cholesky()?; // C must be positive semi-definite
                Target::Mixture(kept)
            }
            Target::Empirical(_) if scheme.corrects() => bail!(
                "scheme: heun runs on Gaussian-mixture targets only (a training set's score is \
                 singular at t = 0, where the last corrector would evaluate it); use --scheme \
                 probability-flow, exponential-flow or exact"
            ),
            Target::Empirical(e) => {
                ensure!(e.points.nrows() > 0, "training set: no points");
                ensure!(
                    e.points.iter().all(|x| x.is_finite()),
                    "training set: contains NaN or inf"
                );
                model.target.clone()
            }
        };
        let mut plan = Plan {
            kind: match target {
                Target::Mixture(_) => Kind::Mixture,
                Target::Empirical(_) => Kind::Empirical,
            },
            dim: d,
            centers_count: 0,
            grid,
            scheme,
            m_form: Form::Scalar,
            b_form: Form::Scalar,
            p_form: Form::Scalar,
            noise_form: Form::Scalar,
            start: StartPlan {
                means: vec![],
                cumulative: vec![],
                chol: vec![],
                chol_form: Form::Scalar,
            },
            centers: vec![],
            chunk_len: 0,
            process: model.process.clone(),
            target,
            cache: Mutex::new(vec![]),
            cache_enabled: true,
            tiles: Arc::new(OnceLock::new()),
            stability: None,
            draws: Draws::EveryStep,
        };
        if judge {
            plan.check_stability()?;
        }
        let first = plan.point(0)?;
        // A schedule can make t = T look isotropic (the same rate on both modes) when later
        // points are not: keep at least a diagonal then.
        let floor = if model.process.schedule.is_some() {
            Form::Diagonal
        } else {
            Form::Scalar
        };
        // Heun's corrector shares the forms of M and P.
        let (m2, p2) = first
            .corrector
            .as_ref()
            .map_or((Form::Scalar, Form::Scalar), |c| (c.0.form(), c.1.form()));
        plan.m_form = first.m.form().max(m2).max(floor);
        plan.b_form = first.b.form().max(floor);
        plan.p_form = first.p.form().max(p2).max(floor);
        plan.noise_form = first.noise.form().max(floor);
        plan.centers_count = first.bias.len();
        plan.start = plan.start_plan(start)?;
        if let Target::Empirical(e) = &plan.target {
            plan.centers = e.points.transpose().iter().map(|&x| x as f32).collect();
        }
        let per_point = plan.point_floats();
        // Chunks of about 16 MiB of coefficients, at least one point.
        let n = plan.grid.steps;
        plan.chunk_len = ((4 << 20) / per_point.max(1)).clamp(1, n + 1);
        plan.cache_enabled = per_point * (n + 1) * 4 <= CACHE_BYTES;
        *plan.cache.lock().expect("plan cache") = vec![None; plan.chunk_count()];
        Ok(plan)
    }

    /// This plan drawing each particle's training point once ([`Draws::Once`]): the exact scheme
    /// on a training set only (elsewhere nothing is drawn, or a class is cheap to draw).
    pub fn drawing_once(mut self) -> Result<Self> {
        ensure!(
            self.scheme.draws_component() && self.kind == Kind::Empirical,
            "a plan draws once only with the exact scheme on a training set"
        );
        self.draws = Draws::Once;
        Ok(self)
    }

    /// Whether the evaluations after a particle's first compute only its label.
    pub fn holds_draws(&self) -> bool {
        self.draws == Draws::Once
    }

    /// Force a chunk length (tests of chunking; long runs on small memory).
    pub fn with_chunk_len(mut self, len: usize) -> Self {
        self.chunk_len = len.clamp(1, self.grid.steps + 1);
        *self.cache.lock().expect("plan cache") = vec![None; self.chunk_count()];
        self
    }

    /// Floats of coefficients per time point.
    pub fn point_floats(&self) -> usize {
        let (d, k) = (self.dim, self.centers_count);
        let w = if self.kind == Kind::Mixture { k * d } else { 0 };
        let offsets = if self.mixture_offsets() { k * d } else { 0 };
        let gram = if self.kind == Kind::Empirical { d } else { 0 };
        let corrector = if self.scheme.corrects() {
            form_len(self.m_form, d) + form_len(self.p_form, d) + k * d + k
        } else {
            0
        };
        corrector
            + form_len(self.m_form, d)
            + form_len(self.b_form, d)
            + form_len(self.p_form, d)
            + form_len(self.noise_form, d)
            + w
            + offsets
            + gram
            + k
    }

    /// Whether the chunks carry per-step offsets (the exact scheme on a mixture).
    fn mixture_offsets(&self) -> bool {
        self.kind == Kind::Mixture && self.scheme.draws_component()
    }

    pub fn chunk_count(&self) -> usize {
        (self.grid.steps + 1).div_ceil(self.chunk_len)
    }

    /// The chunk holding time point j.
    pub fn chunk_of(&self, j: usize) -> usize {
        j / self.chunk_len
    }

    /// Coefficients at time point j, in f64.
    fn point(&self, j: usize) -> Result<Point> {
        let n = self.grid.steps;
        let p = &self.process;
        let d = p.dim();
        match &self.target {
            Target::Mixture(mix) => {
                // Γ_s of the data at any time s, given E_s.
                let cov = |s: f64, e: &Linear| p.gamma_with(s, e, &mix.cov);
                // Γ_t⁻¹, the centers Γ_t⁻¹E_tμ_k and the biases at time t.
                let logits = |t: f64| -> Result<(Linear, DMatrix<f64>, Vec<f64>)> {
                    let e = p.propagator(t);
                    let gamma_inv = self.precision(cov(t, &e), t)?;
                    let mut w = DMatrix::zeros(mix.means.len(), d);
                    let mut bias = Vec::with_capacity(mix.means.len());
                    for (k, (mu, wk)) in mix.means.iter().zip(&mix.weights).enumerate() {
                        let mt = e.apply(mu);
                        let g = gamma_inv.apply(&mt);
                        bias.push(wk.ln() - 0.5 * mt.dot(&g));
                        w.set_row(k, &g.transpose());
                    }
                    Ok((gamma_inv, w, bias))
                };
                let (gamma_inv, w, bias) = logits(self.grid.time(j))?;
                let corrector = if !self.scheme.corrects() {
                    None
                } else if j == n {
                    let k = mix.means.len();
                    let zero = Linear::Scalar(0.0, d);
                    Some((zero.clone(), zero, DMatrix::zeros(k, d), vec![0.0; k]))
                } else {
                    let (next, dt) = (self.grid.time(j + 1), self.grid.dt_at(j));
                    let (gamma_inv, w, bias) = logits(next)?;
                    let c = self.scheme.score_weight();
                    let linear = p.drift(next).sub(&gamma_inv.scale(c));
                    let m = linear.scale(dt).add_identity(1.0).scale(0.5);
                    Some((m, Linear::Scalar(0.5 * c * dt, d), w, bias))
                };
                let (m, p, noise, offsets) = if j == n {
                    let o = self
                        .mixture_offsets()
                        .then(|| DMatrix::zeros(mix.means.len(), d));
                    (
                        Linear::identity(d),
                        Linear::Scalar(0.0, d),
                        Linear::Scalar(0.0, d),
                        o,
                    )
                } else if self.scheme.draws_component() {
                    let b = self.bridge(j, &gamma_inv, cov)?;
                    let mut offsets = DMatrix::zeros(mix.means.len(), d);
                    for (k, mu) in mix.means.iter().enumerate() {
                        offsets.set_row(k, &b.offset.apply(mu).transpose());
                    }
                    (b.g, Linear::identity(d), b.noise, Some(offsets))
                } else {
                    let (m, forcing, noise) = self.integrate(j, &gamma_inv, cov)?;
                    (m, forcing, noise, None)
                };
                Ok(Point {
                    m,
                    b: Linear::identity(d),
                    p,
                    w: Some(w),
                    bias,
                    noise,
                    offsets,
                    gram: None,
                    corrector,
                })
            }
            Target::Empirical(emp) => {
                // Σ_0 = 0: the last positive time stands in for the logits at t = 0.
                // Σ_s of a training point at any time s, given E_s.
                let cov = |s: f64, e: &Linear| p.sigma_with(s, e);
                let t = self.grid.time(j.min(n - 1));
                let e = p.propagator(t);
                let sigma_inv = self.precision(cov(t, &e), t)?;
                let b = e.transpose().mul(&sigma_inv);
                let g = b.mul(&e);
                let bias = g.quad_rows(&emp.points).iter().map(|q| -0.5 * q).collect();
                let (m, pm, noise) = if j == n {
                    (
                        Linear::identity(d),
                        Linear::Scalar(0.0, d),
                        Linear::Scalar(0.0, d),
                    )
                } else if self.scheme.draws_component() {
                    let br = self.bridge(j, &sigma_inv, cov)?;
                    (br.g, br.offset, br.noise)
                } else {
                    let (m, forcing, noise) = self.integrate(j, &sigma_inv, cov)?;
                    (m, forcing.mul(&sigma_inv.mul(&e)), noise)
                };
                Ok(Point {
                    m,
                    b,
                    p: pm,
                    w: None,
                    bias,
                    noise,
                    offsets: None,
                    gram: Some(g),
                    corrector: None,
                })
            }
        }
    }

    /// The inverse of the covariance of x_t given the component (Γ_t or Σ_t): the score's
    /// linear part.
    fn precision(&self, cov: Linear, t: f64) -> Result<Linear> {
        cov.inverse_spd().map_err(|_| {
            anyhow::anyhow!(
                "plan: the covariance at t = {t} is singular (is the covariance C degenerate, or \
                 the grid too fine near t = 0? use fewer steps or a larger t-max)"
            )
        })
    }

    /// `(M, P, L)` of the step from t_j for the averaging schemes, with the reverse drift
    /// `A x + c(forcing − precision·x)`: P multiplies the forcing (the posterior-mean center,
    /// held at t_j). Euler: `M = I + Δt(A − c·precision_t)`, `P = cΔt`, `L = √(2Δt)`.
    /// Exponential: the linear part taken at the step's midpoint (`cov(s, E_s)` gives the
    /// covariance whose inverse is the precision there) and integrated exactly ([`integrator`]);
    /// the midpoint halved the φ bias of t_j's linear part on `lu-tang` at Δt = 0.1 (+0.0107 →
    /// −0.0054 ± 0.0009; Euler–Maruyama +0.054).
    fn integrate(
        &self,
        j: usize,
        precision: &Linear,
        cov: impl Fn(f64, &Linear) -> Linear,
    ) -> Result<(Linear, Linear, Linear)> {
        let (t, dt) = (self.grid.time(j), self.grid.dt_at(j));
        let c = self.scheme.score_weight();
        let d = self.dim;
        let noisy = self.scheme.stochastic();
        let linear_at = |t: f64, precision: &Linear| self.process.drift(t).sub(&precision.scale(c));
        Ok(if self.scheme.explicit() {
            let linear = linear_at(t, precision);
            let noise = if noisy { (2.0 * dt).sqrt() } else { 0.0 };
            (
                linear.scale(dt).add_identity(1.0),
                Linear::Scalar(c * dt, d),
                Linear::Scalar(noise, d),
            )
        } else {
            let mid = t - 0.5 * dt;
            let e = self.process.propagator(mid);
            let linear = linear_at(mid, &self.precision(cov(mid, &e), mid)?);
            let (m, phi) = integrator::exponential(&linear, dt);
            let noise = if noisy {
                integrator::noise_covariance(&linear, dt).cholesky()?
            } else {
                Linear::Scalar(0.0, d)
            };
            (m, phi.scale(c), noise)
        })
    }

    /// The exact reverse transition from t_j to t_{j+1}; `cov(s, E_s)` is the covariance of x_s
    /// given the component (Γ_s, or Σ_s for training points).
    fn bridge(
        &self,
        j: usize,
        precision_t: &Linear,
        cov: impl Fn(f64, &Linear) -> Linear,
    ) -> Result<integrator::Bridge> {
        let p = &self.process;
        let (t, s) = (self.grid.time(j), self.grid.time(j + 1));
        let (e_t, e_s) = (p.propagator(t), p.propagator(s));
        let e_ts = p.propagator_between(s, t, &e_s, &e_t)?;
        integrator::Bridge::new(&cov(s, &e_s), precision_t, &e_s, &e_t, &e_ts)
    }

    fn start_plan(&self, start: Start) -> Result<StartPlan> {
        let p = &self.process;
        let d = self.dim;
        let (means, weights, cov): (Vec<DVector<f64>>, Vec<f64>, Linear) =
            match (start, &self.target) {
                (Start::Stationary, _) => (vec![DVector::zeros(d)], vec![1.0], p.u_inv.clone()),
                (Start::Exact, Target::Mixture(mix)) => {
                    let e = p.propagator(self.grid.t_max);
                    (
                        mix.means.iter().map(|m| e.apply(m)).collect(),
                        mix.weights.clone(),
                        p.gamma_with(self.grid.t_max, &e, &mix.cov),
                    )
                }
                (Start::Exact, Target::Empirical(emp)) => {
                    let e = p.propagator(self.grid.t_max);
                    let n = emp.points.nrows();
                    (
                        emp.points
                            .row_iter()
                            .map(|a| e.apply(&a.transpose()))
                            .collect(),
                        vec![1.0 / n as f64; n],
                        p.sigma_with(self.grid.t_max, &e),
                    )
                }
            };
        let chol = cov.cholesky()?;
        let mut acc = 0.0;
        let mut cumulative: Vec<f32> = weights
            .iter()
            .map(|w| {
                acc += w;
                acc as f32
            })
            .collect();
        *cumulative.last_mut().expect("at least one component") = 1.0;
        Ok(StartPlan {
            means: means
                .iter()
                .flat_map(|m| m.iter().map(|&x| x as f32))
                .collect(),
            cumulative,
            chol_form: chol.form(),
            chol: chol.to_f32(),
        })
    }
}

impl Plan {
    /// The plan's [`Shape`].
    pub fn shape(&self) -> Shape {
        Shape {
            kind: self.kind,
            dim: self.dim,
            centers: self.centers_count,
            m_form: self.m_form,
            b_form: self.b_form,
            p_form: self.p_form,
            noise_form: self.noise_form,
            stochastic: self.scheme.stochastic(),
            draws: self.scheme.draws_component(),
            corrects: self.scheme.corrects(),
        }
    }

    /// This plan using `other`'s tile table (built at most once for both): the same training
    /// points on another grid. The table costs N²d/2 multiply-adds (1.1 s at N = 20 000, d = 256
    /// on 2 cores).
    pub fn sharing_tiles(mut self, other: &Plan) -> Result<Self> {
        ensure!(
            self.dim == other.dim && self.centers == other.centers,
            "plans share a tile table only on the same training points"
        );
        self.tiles = Arc::clone(&other.tiles);
        Ok(self)
    }

    /// The training points' tiles for pruning (empirical target with at least two tiles), built
    /// once at first use.
    pub fn tiles(&self) -> Option<&prune::Tiles> {
        self.tiles
            .get_or_init(|| prune::Tiles::build(self).map(Arc::new))
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Empirical, Mixture, Process};

    fn reversible_identity(d: usize) -> Process {
        Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap()
    }

    #[test]
    fn grid_times_and_nearest_points() {
        let g = Grid::new(10.0, 4).unwrap();
        let times: Vec<f64> = (0..=4).map(|j| g.time(j)).collect();
        assert_eq!(times, [10.0, 7.5, 5.0, 2.5, 0.0]);
        assert_eq!(g.index_of(7.4), 1);
        assert_eq!(g.index_of(1.0), 4);
        assert_eq!((g.index_of(99.0), g.index_of(-3.0)), (0, 4));
        assert!(Grid::new(0.0, 4).is_err() && Grid::new(1.0, 0).is_err());
        // Inserted times: an existing node stays one, a time asked twice is one node, and the
        // nodes as written stay aligned with the times.
        let h = g.with_times(&[3.0, 5.0, 3.0]).unwrap();
        let times: Vec<f64> = (0..=h.steps).map(|j| h.time(j)).collect();
        assert_eq!(times, [10.0, 7.5, 5.0, 3.0, 2.5, 0.0]);
        assert_eq!((h.node(3), h.index_of(3.1), h.dt_at(2)), (3.0, 3, 2.0));
    }

    /// U = I, Q = 0, ±m, C = σ²I: Γ_t = 1 + e^{−2t}(σ² − 1), so M_j = 1 + Δt(1 − 2/Γ), P = 2Δt,
    /// centers e^{−t}m/Γ and the noise √(2Δt) (0 at the last point).
    #[test]
    fn mixture_coefficients_have_their_closed_form() {
        let (d, sigma) = (3, 0.5);
        let m = DVector::from_element(d, 1.0);
        let model = Model {
            process: reversible_identity(d),
            target: Target::Mixture(Mixture::two_class(m, sigma)),
        };
        let grid = Grid::new(2.0, 16).unwrap();
        let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
        assert_eq!([plan.m_form, plan.p_form], [Form::Scalar; 2]);
        let dt = grid.dt_at(0);
        let chunk = plan.chunk(0).unwrap();
        for j in 0..grid.steps {
            let t = grid.time(j);
            let gamma = 1.0 + (-2.0 * t).exp() * (sigma * sigma - 1.0);
            let pt = plan.view(&chunk, j);
            let close = |a: f32, b: f64| (f64::from(a) - b).abs() <= 1e-6 * b.abs().max(1.0);
            assert!(
                close(pt.m[0], 1.0 + dt * (1.0 - 2.0 / gamma)),
                "M at j = {j}"
            );
            assert!(close(pt.p[0], 2.0 * dt));
            assert!(close(pt.w[0], (-t).exp() / gamma), "center at j = {j}");
            assert!(close(pt.noise[0], (2.0 * dt).sqrt()));
        }
        assert_eq!(plan.view(&chunk, grid.steps).noise, [0.0]);
    }

    /// Empirical target, U = I: the bias of training point a is −½ e^{−2t}‖a‖²/(1 − e^{−2t}), and
    /// the last point reuses the last positive time.
    #[test]
    fn empirical_biases_have_their_closed_form() {
        let d = 2;
        let points = DMatrix::from_row_slice(2, d, &[1.0, 2.0, -3.0, 0.5]);
        let model = Model {
            process: reversible_identity(d),
            target: Target::Empirical(Empirical { points }),
        };
        let grid = Grid::new(1.0, 4).unwrap();
        let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
        assert_eq!((plan.kind, plan.centers_count), (Kind::Empirical, 2));
        let chunk = plan.chunk(0).unwrap();
        for j in 0..=grid.steps {
            let t = grid.time(j.min(grid.steps - 1));
            let g = (-2.0 * t).exp() / (1.0 - (-2.0 * t).exp());
            let bias = plan.view(&chunk, j).bias;
            for (b, norm2) in bias.iter().zip([5.0, 9.25]) {
                let want = -0.5 * g * norm2;
                assert!((f64::from(*b) - want).abs() <= 1e-5 * want.abs(), "j = {j}");
            }
        }
    }
}
