//! Exact pruning of the empirical softmax: certified upper bounds on the logits of whole tiles of
//! training points, so that a tile whose every weight exp(ℓ − max ℓ) is exactly zero in f32 can be
//! skipped without changing a bit.
//!
//! With G = E_tᵀΣ_t⁻¹E_t, y = B_t x and the hint ν (a training point, in practice the particle's
//! last argmax), the logits ℓ_μ = a_μ·y − ½ a_μᵀG a_μ satisfy, for δ = a_μ − a_ν,
//!
//! ```text
//! ℓ_μ − ℓ_ν = −½ δᵀGδ + δ·r,   r = y − G a_ν,
//!           ≤ −½ λ |δ|² + |δ| |r|        (λ the least eigenvalue of G)
//! ```
//!
//! which decreases in |δ| beyond |r|/λ. [`Tiles`] holds, for every pair of tiles, a lower bound on
//! the distance between their points, so one number per tile bounds all its logits. The max of all
//! logits is at least ℓ_ν (ν's own tile is never pruned), so a tile whose bound, widened by the
//! rounding of the f32 logits, lies more than [`GAP`] below ℓ_ν has only zero weights. Only
//! diagonal G is used (its least entry is λ; dense G would need an eigenvalue per time point).

use rayon::prelude::*;

use super::{Kind, Plan, SOFTMAX_ROWS};

/// How far below the max a logit must be for its weight to be exactly 0: `fmath::exp` returns 0
/// below −87.33; one more unit absorbs the rounding of ℓ − m.
pub const GAP: f32 = 88.5;

/// Plans whose tile table would cost more than this many multiply-adds (N²d/2) are not pruned:
/// the table would then cost more than it could save in a typical study.
pub const MAX_TABLE_WORK: f64 = 1.5e11;

/// Tiles of [`SOFTMAX_ROWS`] training points: norms and pairwise minimum distances.
#[derive(Debug)]
pub struct Tiles {
    pub count: usize,
    /// `dmin[s * count + t]`: a lower bound on |a_μ − a_ν| over μ in tile t, ν in tile s.
    pub dmin: Vec<f32>,
    /// |a_μ| per training point (rounded up).
    pub norms: Vec<f32>,
    /// The largest |a_μ| of each tile.
    pub norm_max: Vec<f32>,
}

impl Tiles {
    /// The table of an empirical plan with at least two tiles and a table within
    /// [`MAX_TABLE_WORK`]; None otherwise.
    pub fn build(plan: &Plan) -> Option<Tiles> {
        let (n, d) = (plan.centers_count, plan.dim);
        let count = n.div_ceil(SOFTMAX_ROWS);
        let work = (n as f64).powi(2) * d as f64 / 2.0;
        if plan.kind != Kind::Empirical || count < 2 || work > MAX_TABLE_WORK {
            return None;
        }
        let points = &plan.centers;
        let row = |i: usize| &points[i * d..(i + 1) * d];
        let up = 1.0 + 2f32.powi(-20);
        let norms: Vec<f32> = (0..n).map(|i| dist2(row(i), None).sqrt() * up).collect();
        let norm_max = norms
            .chunks(SOFTMAX_ROWS)
            .map(|c| c.iter().copied().fold(0.0, f32::max))
            .collect();
        // The bound is rounded down; below, `eps` (n_i + n_j) covers the rounding of
        // n_i + n_j − 2 a_i·a_j in f32 (a dot of length d: γ_d |a_i||a_j| ≤ γ_d (n_i + n_j)/2,
        // each of the norms γ_d, and three more roundings), generously.
        let down = 1.0 - (d as f32 + 8.0) * 2f32.powi(-23);
        let eps = (d as f32 + 8.0) * 2f32.powi(-23);
        let sq: Vec<f32> = (0..n).map(|i| dist2(row(i), None)).collect();
        let tile = |t: usize| t * SOFTMAX_ROWS..n.min((t + 1) * SOFTMAX_ROWS);
        // The points as columns (d × N, the row-major table's own layout): a tile's dot products
        // with every later point are one matrix product (N²d/2 multiply-adds in a blocked GEMM;
        // pairwise differences took 20 s at N = 20 000, d = 256 on 2 cores). A stop request
        // leaves the table unbuilt (pruning is exact: results never depend on it) so the study
        // stops promptly. Polled on rayon's threads: the scope carries the stop request to them.
        let columns = nalgebra::DMatrix::from_column_slice(d, n, points);
        let scope = crate::stop::scope();
        let stop = || scope.reason().is_some();
        let upper: Vec<Vec<f32>> = (0..count)
            .into_par_iter()
            .map(|s| {
                if stop() {
                    return vec![];
                }
                let rows = tile(s);
                let first = rows.start;
                let block = nalgebra::DMatrix::from_row_slice(
                    rows.len(),
                    d,
                    &points[first * d..rows.end * d],
                );
                // dots[(i, j − first)] = a_i · a_j for j ≥ first.
                let dots = block * columns.columns_range(first..n);
                (s..count)
                    .map(|t| {
                        let mut best = f32::INFINITY;
                        for (a, i) in rows.clone().enumerate() {
                            for j in tile(t) {
                                let norms = sq[i] + sq[j];
                                let d2 = norms - 2.0 * dots[(a, j - first)] - eps * norms;
                                best = best.min(d2);
                            }
                        }
                        (best.max(0.0) * down).sqrt() * down
                    })
                    .collect()
            })
            .collect();
        if upper
            .iter()
            .enumerate()
            .any(|(s, row)| row.len() != count - s)
        {
            return None;
        }
        let mut dmin = vec![0.0f32; count * count];
        for (s, row) in upper.iter().enumerate() {
            for (k, &v) in row.iter().enumerate() {
                dmin[s * count + s + k] = v;
                dmin[(s + k) * count + s] = v;
            }
        }
        Some(Tiles {
            count,
            dmin,
            norms,
            norm_max,
        })
    }
}

/// |a − b|² (or |a|² without b) in f32, in 16 partial sums so that it vectorises.
fn dist2(a: &[f32], b: Option<&[f32]>) -> f32 {
    let mut acc = [0.0f32; 16];
    let diff = |i: usize| a[i] - b.map_or(0.0, |b| b[i]);
    let full = a.len() - a.len() % 16;
    for c in (0..full).step_by(16) {
        for (l, s) in acc.iter_mut().enumerate() {
            let v = diff(c + l);
            *s += v * v;
        }
    }
    let mut total: f32 = acc.iter().sum();
    for i in full..a.len() {
        total += diff(i) * diff(i);
    }
    total
}

/// What one particle contributes to the tile bounds at one time point.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// The hint's tile.
    tile: usize,
    /// λ and an upper bound on |r|.
    lambda: f32,
    rho: f32,
    /// |y|, and the rounding allowance of ℓ_ν: γ (|bias_ν| + |a_ν||y|).
    y_norm: f32,
    slack_hint: f32,
    /// γ: the relative error bound of one f32 logit (a fused dot of length d plus its bias).
    gamma: f32,
}

impl Bound {
    /// The bound for a particle with y = B x (`y`), hint ν, at a time point with the diagonal of
    /// G `gram` and logit biases `bias`; None where nothing can be pruned (no hint, G not
    /// positive, or no table).
    pub fn new(
        tiles: &Tiles,
        points: &[f32],
        gram: &[f32],
        bias: &[f32],
        y: &[f32],
        hint: u32,
    ) -> Option<Bound> {
        let d = y.len();
        let nu = hint as usize;
        if nu >= bias.len() || gram.len() != d {
            return None;
        }
        let lambda = gram.iter().copied().fold(f32::INFINITY, f32::min) * (1.0 - 1e-6);
        let g_max = gram.iter().copied().fold(0.0, f32::max);
        if lambda.is_nan() || lambda <= 0.0 {
            return None;
        }
        let a = &points[nu * d..(nu + 1) * d];
        let (mut r2, mut y2) = (0.0f32, 0.0f32);
        for ((&yi, &ai), &gi) in y.iter().zip(a).zip(gram) {
            let ri = yi - gi * ai;
            // Unfused: outside the engines' multiversioned loops `mul_add` is a library call,
            // and the (1 + 10⁻⁵) slack below covers either rounding.
            r2 += ri * ri;
            y2 += yi * yi;
        }
        let a_norm = tiles.norms[nu];
        // G in f32 differs from the f64 G of the biases by a relative 2⁻²⁴: that enters as a
        // term of |δ| times 10⁻⁶ g_max |a_ν|, folded into ρ.
        let rho = r2.sqrt() * (1.0 + 1e-5) + 1e-6 * g_max * a_norm + f32::MIN_POSITIVE;
        let y_norm = y2.sqrt() * (1.0 + 1e-5);
        let gamma = (d as f32 + 4.0) * 2f32.powi(-23);
        Some(Bound {
            tile: nu / SOFTMAX_ROWS,
            lambda,
            rho,
            y_norm,
            slack_hint: gamma * (bias[nu].abs() + a_norm * y_norm),
            gamma,
        })
    }

    /// Whether every logit of tile t is certainly more than [`GAP`] below the max, given the
    /// tile's largest |bias| (`bias_max`).
    pub fn prunes(&self, tiles: &Tiles, t: usize, bias_max: f32) -> bool {
        let dist = tiles.dmin[self.tile * tiles.count + t];
        if dist * self.lambda <= self.rho {
            return false;
        }
        let rise = dist * (0.5 * self.lambda * dist - self.rho);
        let slack = self.slack_hint
            + self.gamma * (bias_max + tiles.norm_max[t] * self.y_norm)
            + 1e-5 * (0.5 * self.lambda * dist * dist + dist * self.rho);
        slack - rise < -GAP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Empirical, Model, Process, Target};
    use crate::plan::{Grid, Scheme, Start};
    use crate::rng::HostRng;
    use nalgebra::DMatrix;

    fn plan(points: DMatrix<f64>, t_max: f64, steps: usize) -> Plan {
        let d = points.ncols();
        let model = Model {
            process: Process::new(
                crate::linalg::Linear::identity(d),
                crate::linalg::Linear::Scalar(0.0, d),
            )
            .unwrap(),
            target: Target::Empirical(Empirical { points }),
        };
        Plan::new(
            &model,
            Grid::new(t_max, steps).unwrap(),
            Scheme::EulerMaruyama,
            Start::Stationary,
        )
        .unwrap()
    }

    /// The table's distances are lower bounds of the true ones (checked in f64 on every pair)
    /// and within 0.1 % of them.
    #[test]
    fn tile_distances_are_tight_lower_bounds() {
        let mut r = HostRng::new(3, "prune test");
        let (n, d) = (150, 7);
        let points = DMatrix::from_fn(n, d, |_, _| r.normal() * 3.0);
        let p = plan(points.clone(), 1.0, 4);
        let tiles = p.tiles().expect("three tiles");
        assert_eq!(tiles.count, 3);
        for s in 0..3 {
            for t in 0..3 {
                let mut best = f64::INFINITY;
                for i in s * 64..n.min(s * 64 + 64) {
                    for j in t * 64..n.min(t * 64 + 64) {
                        best = best.min((points.row(i) - points.row(j)).norm());
                    }
                }
                let got = f64::from(tiles.dmin[s * 3 + t]);
                assert!(
                    got <= best && got >= best * 0.999,
                    "tiles {s},{t}: {got} vs {best}"
                );
            }
        }
    }

    /// Every tile a bound prunes has every logit more than GAP below the hint's, computed in f64
    /// from the plan's own f32 coefficients, at every time point of a run to t ≈ 0.
    #[test]
    fn pruned_tiles_are_far_below_the_hint() {
        let mut r = HostRng::new(5, "prune test");
        // Ten tight clusters, one per tile: tiles far apart, as pruning needs.
        let (n, d) = (640, 5);
        let centres = DMatrix::from_fn(10, d, |_, _| r.normal() * 10.0);
        let points = DMatrix::from_fn(n, d, |i, k| centres[(i / 64, k)] + 0.3 * r.normal());
        let p = plan(points, 2.0, 50);
        let tiles = p.tiles().expect("ten tiles");
        let chunk = p.chunk(0).unwrap();
        let mut pruned = 0;
        for j in 0..=p.grid.steps {
            let pt = p.view(&chunk, j);
            let b = pt.b[0];
            for nu in (0..n).step_by(37) {
                // A particle near its hint: x = E a_ν + noise, y = B x.
                let y: Vec<f32> = (0..d)
                    .map(|i| {
                        b * (p.centers[nu * d + i] * (pt.gram[i] / b) + 0.3 * r.normal() as f32)
                    })
                    .collect();
                let Some(bound) = Bound::new(tiles, &p.centers, pt.gram, pt.bias, &y, nu as u32)
                else {
                    continue;
                };
                let logit = |m: usize| {
                    let a = &p.centers[m * d..(m + 1) * d];
                    f64::from(pt.bias[m])
                        + a.iter()
                            .zip(&y)
                            .map(|(&a, &y)| f64::from(a) * f64::from(y))
                            .sum::<f64>()
                };
                for t in 0..tiles.count {
                    let rows = t * 64..n.min(t * 64 + 64);
                    let bias_max = pt.bias[rows.clone()]
                        .iter()
                        .fold(0.0f32, |m, b| m.max(b.abs()));
                    if bound.prunes(tiles, t, bias_max) {
                        pruned += 1;
                        for m in rows {
                            assert!(
                                logit(m) - logit(nu) < -f64::from(GAP) + 1.0,
                                "j={j} ν={nu} μ={m}"
                            );
                        }
                    }
                }
            }
        }
        assert!(pruned > 100, "the late time points prune: {pruned}");
    }
}
