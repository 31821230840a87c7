//! The plan step for a block of [`LANES`] particles at once, in structure-of-arrays form: SIMD
//! lanes hold different particles and each lane performs exactly the operation sequence of the
//! scalar reference [`super::step`], so results are bit-identical to it (and therefore
//! independent of threads and batch sizes).
//!
//! Products are register-blocked ([`super::products`]: a few matrix rows or columns × the block of
//! particles), so every load of a coefficient or training point is shared by all lanes. The hot loop, [`run_group`], is
//! compiled for several instruction sets and picked at run time (multiversion); plain Rust loops
//! over the lanes let the compiler emit AVX2, AVX-512 or NEON. Every multiply-add of a product is
//! an explicit `mul_add` (one rounding, as in the scalar reference): the FMA instruction where the
//! target has one, a correctly rounded software fma where it does not, so every target gives the
//! same bits. Elsewhere Rust never contracts a·b + c, so nothing else depends on the target.

use std::ops::Range;

use multiversion::multiversion;
use multiversion::target::target_cfg_f;

pub use super::products::apply;
use super::products::{cols_dot, rows_dot};
use super::step::{draw_tile, pick};
use crate::engine::{NO_LABEL, SOFTMAX_ROWS};
use crate::fmath;
use crate::linalg::Form;
use crate::plan::prune::{Bound, Tiles};
use crate::plan::{Chunk, Kind, Plan, PointView};
use crate::rng;

// The block width lives in the folder's root, so that the intrinsics of `avx512` need nothing
// of this file.
pub use super::{LANES, Lanes};

/// A block of particles, coordinate-major, with its scratch space.
pub struct Block {
    /// Positions: `x[i][l]` is coordinate i of lane l.
    pub x: Vec<Lanes>,
    id_lo: [u32; LANES],
    id_hi: [u32; LANES],
    /// B x, then M x.
    y: Vec<Lanes>,
    /// `Wᵀ r`, the responsibility-weighted center.
    v: Vec<Lanes>,
    /// P v.
    pv: Vec<Lanes>,
    /// The normals ξ and L ξ of a step with a diagonal or dense noise factor.
    z: Vec<Lanes>,
    lz: Vec<Lanes>,
    /// Heun: x at the step's start, kept through the predictor (empty for the other schemes).
    x0: Vec<Lanes>,
    /// Logits, then softmax weights: all K classes or all N training points.
    logits: Vec<Lanes>,
    /// One lane's y, for its pruning bound.
    lane_y: Vec<f32>,
    /// Per tile of training points: whether this block computes it (pruning).
    live: Vec<bool>,
    /// Per tile: each lane's largest logit (NaN as +∞), from the softmax's first pass.
    tile_max: Vec<Lanes>,
}

/// What an evaluation of the logits gives per lane, and for the block the tiles of training
/// points its softmax had and how many of them it pruned ([`crate::plan::prune`]).
pub struct Evaluation {
    pub label: [u32; LANES],
    /// NaN in the lanes that hold their draw ([`crate::plan::Draws::Once`]), but at recorded
    /// points.
    pub purity: Lanes,
    /// The training point each lane drew (0 where it drew none).
    pub picked: [u32; LANES],
    pub tiles: u32,
    pub pruned: u32,
}

impl Block {
    pub fn new(plan: &Plan) -> Self {
        let d = plan.dim;
        // All K classes, or every training point's logit (the softmax's two passes).
        let logits = plan.centers_count;
        Block {
            x: vec![[0.0; LANES]; d],
            id_lo: [0; LANES],
            id_hi: [0; LANES],
            y: vec![[0.0; LANES]; d],
            v: vec![[0.0; LANES]; d],
            pv: vec![[0.0; LANES]; d],
            z: vec![[0.0; LANES]; d],
            lz: vec![[0.0; LANES]; d],
            x0: vec![[0.0; LANES]; if plan.scheme.corrects() { d } else { 0 }],
            logits: vec![[0.0; LANES]; logits],
            lane_y: vec![0.0; d],
            live: vec![],
            tile_max: vec![],
        }
    }

    /// Loads up to [`LANES`] particles (row-major `xs`, one id each); missing lanes get x = 0
    /// and id 0 and are computed but never stored.
    pub fn load(&mut self, xs: &[f32], ids: &[u64]) {
        let d = self.x.len();
        for (i, xi) in self.x.iter_mut().enumerate() {
            *xi = std::array::from_fn(|l| if l < ids.len() { xs[l * d + i] } else { 0.0 });
        }
        self.id_lo = std::array::from_fn(|l| ids.get(l).map_or(0, |&id| id as u32));
        self.id_hi = std::array::from_fn(|l| ids.get(l).map_or(0, |&id| (id >> 32) as u32));
    }

    /// Writes lanes back into row-major `xs` (as many as it holds particles).
    pub fn store(&self, xs: &mut [f32]) {
        let d = self.x.len();
        for (l, row) in xs.chunks_exact_mut(d).enumerate() {
            self.row(l, row);
        }
    }

    /// The position of lane l.
    pub fn row(&self, l: usize, out: &mut [f32]) {
        for (o, xi) in out.iter_mut().zip(&self.x) {
            *o = xi[l];
        }
    }
}

/// Rows (or columns) per register block of a product, on a target with AVX-512 or without:
/// enough independent FMA chains to cover the FMA latency on two pipes. On AVX-512, 8 rows × two
/// registers (sixteen chains) through the intrinsics of `avx512` (as plain loops LLVM vectorises
/// more than 4 rows across the rows, with gathers); elsewhere 2 rows × four AVX2 registers
/// (eight; more spill). The order of every sum is the same for any RB.
pub const fn block_rows(avx512: bool) -> usize {
    if avx512 { 8 } else { 2 }
}

/// Blocks moved in lock-step by [`run_group`]: each tile of training points is loaded into cache
/// once per step and used by all of them (the tile × blocks working set stays within L2).
pub const GROUP: usize = 2;

/// Moves up to [`GROUP`] blocks through the time points `lo..=hi` of one chunk, the twin of the
/// scalar loop: evaluate the logits at every point (labels and last-change times of the valid
/// lanes, `labels`, `changed` and `drawn` holding the blocks' particles in order), call `record`
/// for each block in order, and step to j + 1 while j < `to`. With `prune`, the empirical softmax
/// skips tiles of training points that certainly weigh exactly zero in every lane (the labels are
/// the hints), which changes no bit. On a plan that draws once, a block whose particles all hold
/// their draw computes only the logits' argmax, except at the `recorded` points (ascending).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
#[allow(clippy::too_many_arguments)]
pub fn run_group(
    plan: &Plan,
    chunk: &Chunk,
    key: [u32; 2],
    (lo, hi, to): (usize, usize, usize),
    blocks: &mut [Block],
    labels: &mut [u32],
    changed: &mut [u32],
    drawn: &mut [u32],
    (prune, recorded): (bool, &[usize]),
    record: &mut dyn FnMut(usize, &Block, &Evaluation),
) {
    debug_assert!(blocks.len() <= GROUP);
    const RB: usize = block_rows(target_cfg_f!(target_feature = "avx512f"));
    for j in lo..=hi {
        let pt = plan.view(chunk, j);
        let hints = prune.then_some(&*labels);
        let draws = Some((&mut *drawn, recorded.binary_search(&j).is_ok()));
        let evaluations = evaluate::<RB>(plan, &pt, key, j, blocks, hints, draws);
        let lanes = labels.chunks_mut(LANES).zip(changed.chunks_mut(LANES));
        for ((b, ev), (labels, changed)) in blocks.iter().zip(&evaluations).zip(lanes) {
            for ((label, changed), &new) in labels.iter_mut().zip(changed).zip(&ev.label) {
                if *label != new {
                    *label = new;
                    *changed = j as u32;
                }
            }
            record(j, b, ev);
        }
        if j < to {
            let corrector = pt.corrector();
            for b in blocks.iter_mut() {
                if corrector.is_some() {
                    b.x0.copy_from_slice(&b.x);
                }
                update::<RB>(plan, &pt, key, j, b);
            }
            if let Some(c) = corrector {
                correct::<RB>(plan, &c, key, j, blocks);
            }
        }
    }
}

/// Logits at one time point ([`super::step::evaluate`] per lane); leaves `Wᵀ r` (or the drawn
/// row) in each `b.v`.
#[inline(always)]
fn evaluate<const RB: usize>(
    plan: &Plan,
    pt: &PointView,
    key: [u32; 2],
    j: usize,
    blocks: &mut [Block],
    hints: Option<&[u32]>,
    draws: Option<(&mut [u32], bool)>,
) -> Vec<Evaluation> {
    let (drawn, recorded) = match draws {
        Some((drawn, recorded)) => (Some(drawn), recorded),
        None => (None, false),
    };
    // Per block, the points its lanes hold where every one of them holds its draw and only the
    // labels are wanted.
    let held: Vec<Option<[u32; LANES]>> = match drawn.as_deref() {
        Some(drawn) if plan.holds_draws() && !recorded => drawn
            .chunks(LANES)
            .map(|d| {
                let all = d.iter().all(|&k| k != NO_LABEL);
                all.then(|| std::array::from_fn(|l| d.get(l).copied().unwrap_or(0)))
            })
            .collect(),
        _ => vec![None; blocks.len()],
    };
    let draws = plan.scheme.draws_component();
    let mut uniforms = Vec::with_capacity(blocks.len());
    for (b, held) in blocks.iter_mut().zip(&held) {
        apply::<RB>(plan.b_form, pt.b, &b.x, &mut b.y);
        uniforms.push((draws && held.is_none()).then(|| b.draw_uniforms(key, j)));
    }
    match plan.kind {
        Kind::Mixture => {
            // A loop, not `map(…).collect()`: the closure would be inlined into core's
            // `Map::fold`, compiled without this clone's target features (every `mul_add` then a
            // call to the software fma).
            let mut evaluations = Vec::with_capacity(blocks.len());
            for (b, u) in blocks.iter_mut().zip(uniforms) {
                evaluations.push(evaluate_mixture::<RB>(plan.dim, pt, u, b));
            }
            evaluations
        }
        Kind::Empirical => {
            let tiles = hints.and_then(|_| plan.tiles());
            if let (Some(tiles), Some(hints)) = (tiles, hints) {
                mark_live(tiles, &plan.centers, pt, hints, blocks);
            } else {
                let count = pt.bias.len().div_ceil(SOFTMAX_ROWS);
                blocks.iter_mut().for_each(|b| b.live = vec![true; count]);
            }
            let mut evaluations = evaluate_empirical::<RB>(plan.dim, pt, uniforms, &held, blocks);
            if let Some(drawn) = drawn.filter(|_| plan.holds_draws()) {
                hold_draws(pt, (&held, &mut evaluations), blocks, (drawn, recorded));
            }
            evaluations
        }
    }
}

/// After the evaluations of a plan that draws once: a lane that drew keeps its point; a lane that
/// already held one, in a block that drew for others or at a `recorded` point, steps towards its
/// own point instead (its purity NaN, as [`super::step::evaluate`]'s label-only evaluation,
/// unless recorded).
#[inline(always)]
fn hold_draws(
    pt: &PointView,
    (held, evaluations): (&[Option<[u32; LANES]>], &mut [Evaluation]),
    blocks: &mut [Block],
    (drawn, recorded): (&mut [u32], bool),
) {
    let lanes = held.iter().zip(evaluations).zip(blocks);
    for (((held, ev), b), drawn) in lanes.zip(drawn.chunks_mut(LANES)) {
        if held.is_some() {
            continue;
        }
        let d = b.x.len();
        for (l, k) in drawn.iter_mut().enumerate() {
            if *k == NO_LABEL {
                *k = ev.picked[l];
                continue;
            }
            let row = &pt.offsets[*k as usize * d..(*k as usize + 1) * d];
            for (vi, &a) in b.v.iter_mut().zip(row) {
                vi[l] = a;
            }
            if !recorded {
                ev.purity[l] = f32::NAN;
            }
        }
    }
}

impl Block {
    /// Each lane's [`super::step::draw_uniforms`].
    #[inline(always)]
    fn draw_uniforms(&self, key: [u32; 2], j: usize) -> [Lanes; 2] {
        let counter = [
            self.id_lo,
            self.id_hi,
            [j as u32; LANES],
            [rng::PICK_BLOCK; LANES],
        ];
        let w = rng::philox_lanes(counter, key);
        [w[0].map(rng::uniform), w[1].map(rng::uniform)]
    }

    /// `v[i][l] = rows[k_l][i]`: each lane's drawn row.
    #[inline(always)]
    fn take_rows(&mut self, rows: &[f32], k: &[u32; LANES]) {
        let d = self.v.len();
        for (i, vi) in self.v.iter_mut().enumerate() {
            *vi = std::array::from_fn(|l| rows[k[l] as usize * d + i]);
        }
    }
}

#[inline(always)]
fn evaluate_mixture<const RB: usize>(
    d: usize,
    pt: &PointView,
    draw: Option<[Lanes; 2]>,
    b: &mut Block,
) -> Evaluation {
    let kk = b.logits.len();
    for (l, &bias) in b.logits.iter_mut().zip(pt.bias) {
        *l = [bias; LANES];
    }
    rows_dot::<RB>(&pt.w[..kk * d], d, &b.y, &mut b.logits);
    let mut max = [0.0f32; LANES];
    let mut label = [0u32; LANES];
    for (k, lk) in b.logits.iter().enumerate() {
        for l in 0..LANES {
            if k == 0 || lk[l] > max[l] {
                max[l] = lk[l];
                label[l] = k as u32;
            }
        }
    }
    let mut total = [0.0f32; LANES];
    for lk in b.logits.iter_mut() {
        for l in 0..LANES {
            lk[l] = fmath::exp(lk[l] - max[l]);
            total[l] += lk[l];
        }
    }
    let inv = total.map(|t| 1.0 / t);
    let mut purity = [0.0f32; LANES];
    for lk in b.logits.iter_mut() {
        for l in 0..LANES {
            lk[l] *= inv[l];
            purity[l] += lk[l] * lk[l];
        }
    }
    if let Some([u, _]) = draw {
        let k: [u32; LANES] =
            std::array::from_fn(|l| pick(b.logits.iter().map(|r| r[l]), u[l], kk - 1) as u32);
        b.take_rows(&pt.offsets[..kk * d], &k);
        return Evaluation::whole(label, purity);
    }
    b.v.iter_mut().for_each(|v| *v = [0.0; LANES]);
    cols_dot::<RB>(&pt.w[..kk * d], d, &b.logits, &mut b.v);
    Evaluation::whole(label, purity)
}

impl Evaluation {
    /// An evaluation over all classes (nothing to prune).
    fn whole(label: [u32; LANES], purity: Lanes) -> Self {
        Evaluation {
            label,
            purity,
            picked: [0; LANES],
            tiles: 0,
            pruned: 0,
        }
    }
}

/// Sets each block's `live` tiles: a tile is skipped when the bound of every valid lane (the
/// lanes of `hints`, the labels of the group's particles in order) prunes it. Lanes past the
/// last particle are never stored, so they do not hold a tile back.
#[inline(always)]
fn mark_live(tiles: &Tiles, points: &[f32], pt: &PointView, hints: &[u32], blocks: &mut [Block]) {
    let bias_max: Vec<f32> = pt
        .bias
        .chunks(SOFTMAX_ROWS)
        .map(|c| c.iter().fold(0.0f32, |m, b| m.max(b.abs())))
        .collect();
    for (b, hints) in blocks.iter_mut().zip(hints.chunks(LANES)) {
        b.live.clear();
        b.live.resize(tiles.count, true);
        // The tiles every lane so far prunes; a lane that prunes none ends the search, so a
        // block far from collapse costs one bound, not one per lane.
        let mut candidates: Vec<usize> = (0..tiles.count).collect();
        for (l, &hint) in hints.iter().enumerate() {
            for (yi, y) in b.lane_y.iter_mut().zip(&b.y) {
                *yi = y[l];
            }
            match Bound::new(tiles, points, pt.gram, pt.bias, &b.lane_y, hint) {
                Some(bound) => candidates.retain(|&t| bound.prunes(tiles, t, bias_max[t])),
                None => candidates.clear(),
            }
            if candidates.is_empty() {
                break;
            }
        }
        for t in candidates {
            b.live[t] = false;
        }
    }
}

/// The softmax over training points in the two passes of [`super::step`] (every logit, then the
/// weights against their max), tile by tile, every block of the group using each tile while it is
/// in cache. A tile whose weights are exactly zero in every lane of a block (every logit too far
/// below its lane's max for exp) is neither exponentiated nor multiplied.
#[inline(always)]
fn evaluate_empirical<const RB: usize>(
    d: usize,
    pt: &PointView,
    uniforms: Vec<Option<[Lanes; 2]>>,
    held: &[Option<[u32; LANES]>],
    blocks: &mut [Block],
) -> Vec<Evaluation> {
    let n = pt.bias.len();
    let tiles = || {
        (0..n)
            .step_by(SOFTMAX_ROWS)
            .map(move |t0| t0..n.min(t0 + SOFTMAX_ROWS))
    };
    let mut state: Vec<Softmax> = uniforms
        .into_iter()
        .map(|u| Softmax {
            m: [f32::NEG_INFINITY; LANES],
            draw: u,
            ..Softmax::default()
        })
        .collect();
    let count = n.div_ceil(SOFTMAX_ROWS);
    blocks
        .iter_mut()
        .for_each(|b| b.tile_max.resize(count, [f32::NEG_INFINITY; LANES]));
    for (t, rows) in tiles().enumerate() {
        let w = &pt.w[rows.start * d..rows.end * d];
        for (b, s) in blocks.iter_mut().zip(&mut state) {
            if b.live[t] {
                s.logits::<RB>(d, rows.clone(), w, &pt.bias[rows.clone()], b);
            }
        }
    }
    for b in blocks.iter_mut() {
        b.v.iter_mut().for_each(|v| *v = [0.0; LANES]);
    }
    // Blocks that hold their draws need no weights: their label is the first pass's argmax.
    for (t, rows) in tiles().enumerate() {
        let w = &pt.w[rows.start * d..rows.end * d];
        for ((b, s), held) in blocks.iter_mut().zip(&mut state).zip(held) {
            if b.live[t] && held.is_none() {
                s.weights::<RB>(d, rows.clone(), w, b);
            }
        }
    }
    // A loop for the reason in `evaluate`.
    let mut evaluations = Vec::with_capacity(blocks.len());
    for ((b, s), held) in blocks.iter_mut().zip(state).zip(held) {
        evaluations.push(match held {
            Some(points) => s.finish_held(pt.offsets, points, b),
            None => s.finish(pt.offsets, b),
        });
    }
    evaluations
}

/// The softmax of one block: max and argmax, then Σ e, Σ e², per lane; for a drawing scheme, the
/// conditional uniform of the tile, the uniform inside it and the drawn training point instead of
/// `Wᵀ e`.
#[derive(Default)]
struct Softmax {
    m: Lanes,
    sum: Lanes,
    sq: Lanes,
    best: [u32; LANES],
    draw: Option<[Lanes; 2]>,
    picked: [u32; LANES],
}

impl Softmax {
    /// Pass 1 over the training points `rows` (rows of `w`, biases `bias`): their logits into
    /// `b.logits`, folding them into the running max and argmax.
    #[inline(always)]
    fn logits<const RB: usize>(
        &mut self,
        d: usize,
        rows: Range<usize>,
        w: &[f32],
        bias: &[f32],
        b: &mut Block,
    ) {
        let t = rows.start / SOFTMAX_ROWS;
        let e = &mut b.logits[rows.clone()];
        spread(bias, e);
        rows_dot::<RB>(w, d, &b.y, e);
        // The running max and argmax in locals (registers), not through `self` in memory.
        let (mut m, mut best) = (self.m, self.best);
        let mut top = [f32::NEG_INFINITY; LANES];
        for (r, er) in rows.zip(e.iter()) {
            for l in 0..LANES {
                let v = er[l];
                if v > m[l] {
                    m[l] = v;
                    best[l] = r as u32;
                }
                top[l] = if v.is_nan() {
                    f32::INFINITY
                } else {
                    top[l].max(v)
                };
            }
        }
        (self.m, self.best) = (m, best);
        b.tile_max[t] = top;
    }

    /// Pass 2 over `rows`: the weights e = exp(ℓ − m) in place, their sums, and `Wᵀ e` into `b.v`
    /// (or the streaming draw).
    #[inline(always)]
    fn weights<const RB: usize>(&mut self, d: usize, rows: Range<usize>, w: &[f32], b: &mut Block) {
        let t0 = rows.start;
        // Every weight of the tile is exactly 0 in every lane (ℓ − m rounds monotonically in ℓ,
        // and exp is 0 below EXP_ZERO_BELOW): adding 0 to the sums and drawing from a tile of
        // weight 0 change nothing, so the tile is skipped, exps and all.
        let highest = &b.tile_max[t0 / SOFTMAX_ROWS];
        if (0..LANES).all(|l| highest[l] - self.m[l] < fmath::EXP_ZERO_BELOW) {
            return;
        }
        let e = &mut b.logits[rows];
        // The sums in locals (registers): through `self` each row waited on a store.
        let (m, mut sum, mut sq) = (self.m, self.sum, self.sq);
        for er in e.iter_mut() {
            for l in 0..LANES {
                let v = fmath::exp(er[l] - m[l]);
                er[l] = v;
                sum[l] += v;
                sq[l] += v * v;
            }
        }
        (self.sum, self.sq) = (sum, sq);
        if let Some([u, within]) = self.draw.as_mut() {
            let mut tile = [0.0f32; LANES];
            for er in e.iter() {
                for l in 0..LANES {
                    tile[l] += er[l];
                }
            }
            for l in 0..LANES {
                if draw_tile(&mut u[l], tile[l], self.sum[l]) {
                    let r = pick(e.iter().map(|er| er[l]), within[l] * tile[l], e.len() - 1);
                    self.picked[l] = (t0 + r) as u32;
                }
            }
        } else {
            cols_dot::<RB>(w, d, e, &mut b.v);
        }
    }

    /// Normalises `b.v` (or puts the drawn training points of `rows` there); the label and the
    /// purity Σ r².
    #[inline(always)]
    fn finish(self, rows: &[f32], b: &mut Block) -> Evaluation {
        let inv = self.sum.map(|s| 1.0 / s);
        if self.draw.is_some() {
            b.take_rows(rows, &self.picked);
        } else {
            for vi in b.v.iter_mut() {
                for l in 0..LANES {
                    vi[l] *= inv[l];
                }
            }
        }
        Evaluation {
            label: self.best,
            purity: std::array::from_fn(|l| self.sq[l] * inv[l] * inv[l]),
            picked: self.picked,
            tiles: b.live.len() as u32,
            pruned: b.live.iter().filter(|&&live| !live).count() as u32,
        }
    }

    /// The label alone, with the held `points`' rows in `b.v` ([`super::step::evaluate`]).
    #[inline(always)]
    fn finish_held(self, rows: &[f32], points: &[u32; LANES], b: &mut Block) -> Evaluation {
        b.take_rows(rows, points);
        Evaluation {
            label: self.best,
            purity: [f32::NAN; LANES],
            picked: [0; LANES],
            tiles: b.live.len() as u32,
            pruned: b.live.iter().filter(|&&live| !live).count() as u32,
        }
    }
}

/// One step from time point j ([`super::step::update`] per lane): `x ← (M x + P v) + L ξ`.
#[inline(always)]
fn update<const RB: usize>(plan: &Plan, pt: &PointView, key: [u32; 2], j: usize, b: &mut Block) {
    apply::<RB>(plan.m_form, pt.m, &b.x, &mut b.y);
    apply::<RB>(plan.p_form, pt.p, &b.v, &mut b.pv);
    let noisy = plan.scheme.stochastic();
    if noisy && plan.noise_form != Form::Scalar {
        // A correlated factor needs all of ξ first (an ODE's zero factor needs none).
        for (blk, z4) in b.z.chunks_mut(4).enumerate() {
            let z = rng::normal4_lanes(key, &b.id_lo, &b.id_hi, j as u32, blk as u32);
            z4.copy_from_slice(&z[..z4.len()]);
        }
        apply::<RB>(plan.noise_form, pt.noise, &b.z, &mut b.lz);
        let terms = b.y.iter().zip(&b.pv).zip(&b.lz);
        for (x, ((mx, pv), lz)) in b.x.iter_mut().zip(terms) {
            for l in 0..LANES {
                x[l] = (mx[l] + pv[l]) + lz[l];
            }
        }
        return;
    }
    let noise = pt.noise[0];
    let blocks = b.x.chunks_mut(4).zip(b.y.chunks(4)).zip(b.pv.chunks(4));
    for (blk, ((x4, mx4), pv4)) in blocks.enumerate() {
        let z = if noisy {
            rng::normal4_lanes(key, &b.id_lo, &b.id_hi, j as u32, blk as u32)
        } else {
            [[0.0; LANES]; 4]
        };
        let flat = x4.as_flattened_mut().iter_mut();
        let terms = mx4
            .as_flattened()
            .iter()
            .zip(pv4.as_flattened())
            .zip(z.as_flattened());
        for (x, ((mx, pv), z)) in flat.zip(terms) {
            *x = (mx + pv) + noise * z;
        }
    }
}

/// Heun's corrector ([`super::step::update`] per lane): with the predictor x̃ in `b.x` and the
/// step's start in `b.x0`, `x ← (M' x̃ + P' v') + ½x₀`, v' evaluated at x̃ on the corrector's
/// logits (their labels are not recorded).
#[inline(always)]
fn correct<const RB: usize>(
    plan: &Plan,
    c: &PointView,
    key: [u32; 2],
    j: usize,
    blocks: &mut [Block],
) {
    evaluate::<RB>(plan, c, key, j, blocks, None, None);
    for b in blocks.iter_mut() {
        apply::<RB>(plan.m_form, c.m, &b.x, &mut b.y);
        apply::<RB>(plan.p_form, c.p, &b.v, &mut b.pv);
        let terms = b.y.iter().zip(&b.pv).zip(&b.x0);
        for (x, ((mx, pv), x0)) in b.x.iter_mut().zip(terms) {
            for l in 0..LANES {
                x[l] = (mx[l] + pv[l]) + 0.5 * x0[l];
            }
        }
    }
}

/// Row r of `out` = `values[r]` in every lane (one broadcast store per row).
#[inline(always)]
fn spread(values: &[f32], out: &mut [Lanes]) {
    for (o, &v) in out.iter_mut().zip(values) {
        *o = [v; LANES];
    }
}
