//! The per-particle arithmetic of one plan step, in f32, one particle at a time: the scalar twin
//! of `shaders/step_mixture.wgsl` and `shaders/step_empirical.wgsl`, and the reference that the
//! lane kernels of [`super::lanes`] equal bit for bit. Sums run in a fixed order (coordinates, classes and training points
//! ascending) and every transcendental is a [`fmath`] polynomial, so a SIMD lane computes exactly
//! this sequence.

use crate::engine::{NO_LABEL, SOFTMAX_ROWS};
use crate::fmath;
use crate::linalg::Form;
use crate::plan::{Kind, Plan, PointView};
use crate::rng;

/// Per-particle scratch space, sized once.
pub struct Scratch {
    y: Vec<f32>,
    logits: Vec<f32>,
    /// `Wᵀ r`, the responsibility-weighted center (or the drawn row `V_k`), filled by
    /// [`evaluate`].
    pub v: Vec<f32>,
    pub(super) z: Vec<f32>,
    mx: Vec<f32>,
    lz: Vec<f32>,
    /// Heun: x at the step's start, kept through the predictor.
    x0: Vec<f32>,
}

/// The largest f32 below 1: a conditional uniform that rounds up to 1 is kept inside [0, 1).
pub const BELOW_ONE: f32 = 1.0 - f32::EPSILON / 2.0;

/// The uniforms in [0, 1) that draw the component of particle `id` at time point j (the exact
/// scheme), from the block the start's component pick uses at step j: the first decides the class
/// or the tile of training points ([`draw_tile`]), the second the point inside the tile.
pub fn draw_uniforms(key: [u32; 2], id: u64, j: usize) -> [f32; 2] {
    let w = rng::words(key, id, j as u32, rng::PICK_BLOCK);
    [rng::uniform(w[0]), rng::uniform(w[1])]
}

/// The first index whose running sum of `e` exceeds `target` (the last one if rounding leaves
/// the sum at or below it): inverse-CDF sampling in the order the sums run.
pub fn pick(e: impl Iterator<Item = f32>, target: f32, last: usize) -> usize {
    let mut cum = 0.0f32;
    for (r, e) in e.enumerate() {
        cum += e;
        if cum > target {
            return r;
        }
    }
    last
}

/// One tile of the streaming draw: with `tile` the tile's Σe and `total` the running Σe that
/// includes it, the draw falls in the tile with probability p = tile/total. Returns whether it
/// does and updates the conditional uniform `u` (u/p inside, (u − p)/(1 − p) outside), so one
/// uniform decides the tile over the whole pass. The point inside the chosen tile takes a second,
/// independent uniform: `u/p` also decides the later tiles, so picking with it would make a low
/// point of an early tile likelier to be replaced (the draw leant to the ends of the tiles).
pub fn draw_tile(u: &mut f32, tile: f32, total: f32) -> bool {
    if tile == 0.0 {
        // p = 0 leaves u as it is; so does skipping it, and 0/0 cannot arise (total may be 0
        // before the tile that holds the max).
        return false;
    }
    let p = tile / total;
    let inside = *u < p;
    *u = if inside { *u / p } else { (*u - p) / (1.0 - p) }.min(BELOW_ONE);
    inside
}

impl Scratch {
    pub fn new(plan: &Plan) -> Self {
        let d = plan.dim;
        Scratch {
            y: vec![0.0; d],
            logits: vec![0.0; plan.centers_count],
            v: vec![0.0; d],
            z: vec![0.0; d.div_ceil(4) * 4],
            mx: vec![0.0; d],
            lz: vec![0.0; d],
            x0: vec![0.0; d],
        }
    }
}

/// `out = L x` for a matrix stored in `form` (scalar, diagonal, or dense row-major).
#[inline(always)]
pub fn apply(form: Form, coeffs: &[f32], x: &[f32], out: &mut [f32]) {
    let d = x.len();
    match form {
        Form::Scalar => out
            .iter_mut()
            .zip(x)
            .for_each(|(o, xi)| *o = coeffs[0] * xi),
        Form::Diagonal => out
            .iter_mut()
            .zip(x)
            .zip(coeffs)
            .for_each(|((o, xi), c)| *o = c * xi),
        Form::Dense => {
            for (o, row) in out.iter_mut().zip(coeffs.chunks_exact(d)) {
                *o = dot(0.0, row, x);
            }
        }
    }
}

/// `init + Σ a_i b_i`, summed in ascending i, each term fused into the sum (`mul_add`: one
/// rounding per term, the FMA instruction where the target has one, a correctly rounded
/// software fma otherwise, so every target gives the same bits).
#[inline(always)]
fn dot(init: f32, a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(init, |acc, (a, b)| a.mul_add(*b, acc))
}

/// Logits at one time point: returns (argmax label, purity Σ r²) and leaves `Wᵀ r` in `s.v`, or,
/// when the plan draws a component, the row `V_k` drawn from r with the uniform `u`
/// ([`draw_uniforms`]; ignored otherwise). `drawn` is the particle's held training point on a plan
/// that draws once ([`crate::plan::Draws::Once`]): drawn here if it is [`NO_LABEL`], else held;
/// a held evaluation computes only the label (purity NaN) unless the point is `recorded`, where
/// the recorder reads the posterior's purity.
pub fn evaluate(
    plan: &Plan,
    pt: &PointView,
    x: &[f32],
    (u, drawn, recorded): ([f32; 2], &mut u32, bool),
    s: &mut Scratch,
) -> (u32, f32) {
    apply(plan.b_form, pt.b, x, &mut s.y);
    let draw = plan.scheme.draws_component().then_some(u);
    let held = plan.holds_draws() && *drawn != NO_LABEL;
    match plan.kind {
        Kind::Mixture => evaluate_mixture(plan.dim, pt, draw, s),
        Kind::Empirical if held => {
            let k = *drawn as usize;
            let found = if recorded {
                let (label, purity, _) = evaluate_empirical(plan.dim, pt, None, s);
                (label, purity)
            } else {
                (logits_empirical(plan.dim, pt, s).1 as u32, f32::NAN)
            };
            s.v.copy_from_slice(&pt.offsets[k * plan.dim..(k + 1) * plan.dim]);
            found
        }
        Kind::Empirical => {
            let (label, purity, picked) = evaluate_empirical(plan.dim, pt, draw, s);
            if plan.holds_draws() {
                *drawn = picked;
            }
            (label, purity)
        }
    }
}

/// Every logit over training points into `s.logits`, with their max and argmax: the first pass
/// of [`evaluate_empirical`], and all a held draw's label needs.
fn logits_empirical(d: usize, pt: &PointView, s: &mut Scratch) -> (f32, usize) {
    let (mut m, mut best) = (f32::NEG_INFINITY, 0usize);
    for (r, l) in s.logits[..pt.bias.len()].iter_mut().enumerate() {
        *l = dot(pt.bias[r], &pt.w[r * d..(r + 1) * d], &s.y);
        if *l > m {
            m = *l;
            best = r;
        }
    }
    (m, best)
}

/// Few classes: all logits, then a two-pass softmax.
fn evaluate_mixture(
    d: usize,
    pt: &PointView,
    draw: Option<[f32; 2]>,
    s: &mut Scratch,
) -> (u32, f32) {
    let mut best = 0usize;
    let mut max = 0.0f32;
    for (k, l) in s.logits.iter_mut().enumerate() {
        *l = dot(pt.bias[k], &pt.w[k * d..(k + 1) * d], &s.y);
        if k == 0 || *l > max {
            max = *l;
            best = k;
        }
    }
    let mut total = 0.0f32;
    for l in s.logits.iter_mut() {
        *l = fmath::exp(*l - max);
        total += *l;
    }
    let inv = 1.0 / total;
    let mut purity = 0.0f32;
    for l in s.logits.iter_mut() {
        *l *= inv;
        purity += *l * *l;
    }
    if let Some([u, _]) = draw {
        let k = pick(s.logits.iter().copied(), u, s.logits.len() - 1);
        s.v.copy_from_slice(&pt.offsets[k * d..(k + 1) * d]);
        return (best as u32, purity);
    }
    for (i, v) in s.v.iter_mut().enumerate() {
        *v = s
            .logits
            .iter()
            .enumerate()
            .fold(0.0, |acc, (k, r)| r.mul_add(pt.w[k * d + i], acc));
    }
    (best as u32, purity)
}

/// Many training points, in two passes: every logit with its max m and argmax, then the weights
/// e = exp(ℓ − m) with Σ e, Σ e² and `Wᵀ e` in ascending order (or, drawing, the streaming draw
/// over tiles of [`SOFTMAX_ROWS`]). Against the max of all logits, a tile whose weights are all
/// exactly zero adds exactly nothing, which is what lets the lanes skip (prune) such tiles and
/// still equal this reference bit for bit. Returns (label, purity, the drawn point or 0).
fn evaluate_empirical(
    d: usize,
    pt: &PointView,
    mut draw: Option<[f32; 2]>,
    s: &mut Scratch,
) -> (u32, f32, u32) {
    let n = pt.bias.len();
    let (m, best) = logits_empirical(d, pt, s);
    let (mut sum, mut sq, mut picked) = (0.0f32, 0.0f32, 0usize);
    s.v.iter_mut().for_each(|v| *v = 0.0);
    for t0 in (0..n).step_by(SOFTMAX_ROWS) {
        let e = &mut s.logits[t0..n.min(t0 + SOFTMAX_ROWS)];
        for l in e.iter_mut() {
            *l = fmath::exp(*l - m);
            sum += *l;
            sq += *l * *l;
        }
        if let Some([u, within]) = draw.as_mut() {
            let tile = e.iter().fold(0.0f32, |acc, e| acc + e);
            if draw_tile(u, tile, sum) {
                picked = t0 + pick(e.iter().copied(), *within * tile, e.len() - 1);
            }
            continue;
        }
        for (i, v) in s.v.iter_mut().enumerate() {
            *v = e
                .iter()
                .enumerate()
                .fold(*v, |acc, (r, e)| e.mul_add(pt.w[(t0 + r) * d + i], acc));
        }
    }
    let inv = 1.0 / sum;
    if draw.is_some() {
        s.v.copy_from_slice(&pt.offsets[picked * d..(picked + 1) * d]);
    } else {
        s.v.iter_mut().for_each(|v| *v *= inv);
    }
    (best as u32, sq * inv * inv, picked as u32)
}

/// One step from time point j: `x ← (M x + P v) + L ξ`, with v from [`evaluate`]; for Heun
/// that is the predictor x̃, then `x ← (M' x̃ + P' v') + ½x` with v' evaluated at x̃ on the
/// corrector's logits ([`PointView::corrector`]).
pub fn update(
    plan: &Plan,
    pt: &PointView,
    key: [u32; 2],
    id: u64,
    j: usize,
    x: &mut [f32],
    s: &mut Scratch,
) {
    let corrector = pt.corrector();
    if corrector.is_some() {
        s.x0.copy_from_slice(x);
    }
    predict(plan, pt, key, id, j, x, s);
    if let Some(c) = corrector {
        let mut none = NO_LABEL;
        evaluate(plan, &c, x, ([0.0; 2], &mut none, false), s);
        apply(plan.m_form, c.m, x, &mut s.mx);
        apply(plan.p_form, c.p, &s.v, &mut s.y);
        for (((xi, mx), pv), x0) in x.iter_mut().zip(&s.mx).zip(&s.y).zip(&s.x0) {
            *xi = (mx + pv) + 0.5 * x0;
        }
    }
}

/// `x ← (M x + P v) + L ξ`.
fn predict(
    plan: &Plan,
    pt: &PointView,
    key: [u32; 2],
    id: u64,
    j: usize,
    x: &mut [f32],
    s: &mut Scratch,
) {
    let d = plan.dim;
    apply(plan.m_form, pt.m, x, &mut s.mx);
    apply(plan.p_form, pt.p, &s.v, &mut s.y);
    if plan.scheme.stochastic() {
        rng::fill_normals(key, id, j as u32, &mut s.z[..d]);
    } else {
        s.z.iter_mut().for_each(|z| *z = 0.0);
    }
    apply(plan.noise_form, pt.noise, &s.z[..d], &mut s.lz);
    for (((xi, mx), pv), lz) in x.iter_mut().zip(&s.mx).zip(&s.y).zip(&s.lz) {
        *xi = (mx + pv) + lz;
    }
}
