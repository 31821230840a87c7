//! Collapse on the empirical target (docs/mathematics.md §8.4, §8.5): the excess entropy f^e(t) from exact samples of
//! p_t^e, and the per-trajectory collapse times from the last change of the nearest training point.

use anyhow::Result;
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::Serialize;

use crate::model::{Empirical, Process};
use crate::plan::Grid;
use crate::rng::HostRng;
use crate::stats::Tally;

/// Draws whose distances to every center are one matrix product in [`excess_entropy`].
const ENTROPY_BLOCK: usize = 64;

/// f^e/α at one time, with its standard error.
#[derive(Clone, Debug, Serialize)]
pub struct EntropyPoint {
    pub t: f64,
    pub f_over_alpha: f64,
    pub stderr: f64,
}

/// `f^e(t)/α` from `samples` exact draws x ∼ p_t^e: with q_ν = ‖x − E_t a_ν‖²_{Σ_t⁻¹},
/// `f^e = (1/d) E[logsumexp_ν(−q_ν/2)] + 1/2` (the normalisations cancel against α = ln N/d).
pub fn excess_entropy(
    p: &Process,
    data: &Empirical,
    t: f64,
    samples: u64,
    seed: u64,
) -> Result<EntropyPoint> {
    let (n, d) = (data.points.nrows(), data.points.ncols());
    let alpha = (n as f64).ln() / d as f64;
    if super::stop_reason().is_some() {
        return Err(super::Interrupted.into());
    }
    let e = p.propagator(t);
    let sigma = p.sigma_with(t, &e);
    let chol = sigma.cholesky()?.to_dense();
    // Whitened centers: with Σ = L Lᵀ, q_ν = ‖L⁻¹(x − E a_ν)‖².
    let l_inv = chol.clone().try_inverse().ok_or_else(|| {
        anyhow::anyhow!("entropy-times: Σ(t) is singular at t = {t}; use a larger time")
    })?;
    let centers: DMatrix<f64> = {
        let moved = data.points.clone() * e.to_dense().transpose(); // rows E a_ν
        moved * l_inv.transpose()
    };
    let mut rng = HostRng::new(seed, &format!("entropy-{t}"));
    let draws: Vec<(usize, DVector<f64>)> = (0..samples)
        .map(|_| {
            let mu = ((rng.uniform() * n as f64) as usize).min(n - 1);
            (mu, DVector::from_fn(d, |_, _| rng.normal()))
        })
        .collect();
    // x = E a_μ + L ξ, so L⁻¹x = c_μ + ξ in whitened coordinates, and
    // q_ν = ‖z‖² + ‖c_ν‖² − 2 z·c_ν: the dot products of a block of draws with every center are
    // one matrix product (blocked, cache-friendly), the blocks run in parallel.
    let center_norms: Vec<f64> = centers.row_iter().map(|c| c.norm_squared()).collect();
    let by_column = centers.transpose();
    // Polled on rayon's threads: the scope carries this run's stop request to them.
    let scope = crate::stop::scope();
    let values: Vec<f64> = draws
        .par_chunks(ENTROPY_BLOCK)
        .flat_map_iter(|block| {
            // A stop request skips the blocks not started (the point is then refused below).
            if scope.reason().is_some() {
                return vec![];
            }
            let z = DMatrix::from_fn(block.len(), d, |s, k| {
                let (mu, xi) = &block[s];
                centers[(*mu, k)] + xi[k]
            });
            let dots = &z * &by_column;
            (0..block.len())
                .map(|s| {
                    let z2 = z.row(s).norm_squared();
                    let q = (0..n).map(|nu| -0.5 * (z2 + center_norms[nu] - 2.0 * dots[(s, nu)]));
                    let max = q.clone().fold(f64::NEG_INFINITY, f64::max);
                    let lse = max + q.map(|v| (v - max).exp()).sum::<f64>().ln();
                    (lse / d as f64 + 0.5) / alpha
                })
                .collect::<Vec<f64>>()
        })
        .collect();
    if super::stop_reason().is_some() {
        return Err(super::Interrupted.into());
    }
    let m = values.len() as f64;
    let mean = values.iter().sum::<f64>() / m;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0).max(1.0);
    Ok(EntropyPoint {
        t,
        f_over_alpha: mean,
        stderr: (var / m).sqrt(),
    })
}

/// The excess entropy at one time, measured and in theory.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EntropyRow {
    pub t: f64,
    pub f_over_alpha: f64,
    pub stderr: f64,
    /// Gaussian REM prediction max(0, 1 − (1/2dα) Σ log(1 + ρ_k(t))).
    pub f_over_alpha_theory: f64,
}

/// f^e/α from exact samples of p_t^e at `times` on process `p`, beside the Gaussian REM `rem`;
/// a stop request ends it after the times done (and says so).
pub fn excess_entropy_series(
    p: &Process,
    data: &Empirical,
    rem: &crate::theory::collapse::Rem,
    times: &[f64],
    samples: u64,
    seed: u64,
) -> Result<(Vec<EntropyRow>, Option<super::Stop>)> {
    let alpha = (data.points.nrows() as f64).ln() / data.points.ncols() as f64;
    let mut rows = vec![];
    for &t in times {
        let point = match excess_entropy(p, data, t, samples, seed) {
            Ok(point) => point,
            Err(e) if e.is::<super::Interrupted>() => {
                return Ok((rows, Some(super::Stop::from_error(&e))));
            }
            Err(e) => return Err(e),
        };
        rows.push(EntropyRow {
            t,
            f_over_alpha: point.f_over_alpha,
            stderr: point.stderr,
            f_over_alpha_theory: (1.0 - rem.alpha_at(t) / alpha).max(0.0),
        });
    }
    Ok((rows, None))
}

/// Distribution of per-trajectory collapse times t̂_C (time of the last change of the nearest
/// training point). Every statistic is None over no trajectories (and the standard error over
/// fewer than two).
#[derive(Clone, Debug, Serialize)]
pub struct CollapseTimes {
    pub count: u64,
    pub mean: Option<f64>,
    pub stderr: Option<f64>,
    pub median: Option<f64>,
    /// A distribution-free ±1σ interval of the median: the order statistics at the ranks
    /// n/2 ∓ √n/2.
    pub median_interval: Option<[f64; 2]>,
    pub q10: Option<f64>,
    pub q90: Option<f64>,
    /// The grid's resolution at the median: the step that ends at it (a trajectory's t̂_C is a
    /// node, known to within the step before it); the longest step when there is no median.
    pub resolution: f64,
    /// The fraction of trajectories at every grid time that holds any.
    pub histogram: Vec<CollapseBin>,
}

/// One bar of the collapse-time histogram.
#[derive(Clone, Debug, Serialize)]
pub struct CollapseBin {
    pub t: f64,
    pub fraction: f64,
}

pub fn collapse_times(tally: &Tally, grid: &Grid) -> CollapseTimes {
    let count: u64 = tally.last_change.iter().sum();
    let total = count as f64;
    let (mut s, mut s2) = (0.0, 0.0);
    for (j, &c) in tally.last_change.iter().enumerate() {
        let t = grid.node(j);
        s += c as f64 * t;
        s2 += c as f64 * t * t;
    }
    let mean = s / total;
    let var = (s2 / total - mean * mean).max(0.0) * total / (total - 1.0);
    let quantile = |q: f64| {
        // Grid index ascends while t descends: walk from the smallest t up.
        let mut acc = 0u64;
        for (j, &c) in tally.last_change.iter().enumerate().rev() {
            acc += c;
            if acc as f64 >= q.clamp(0.0, 1.0) * total && acc > 0 {
                return grid.node(j);
            }
        }
        grid.t_max
    };
    let some = count > 0;
    let half = 0.5 / total.sqrt();
    let resolution = match some.then(|| quantile(0.5)) {
        Some(t) if grid.index_of(t) > 0 => grid.dt_at(grid.index_of(t) - 1),
        _ => grid.max_dt(),
    };
    CollapseTimes {
        count,
        mean: some.then_some(mean),
        stderr: (count > 1).then(|| (var / total).sqrt()),
        median: some.then(|| quantile(0.5)),
        median_interval: some.then(|| [quantile(0.5 - half), quantile(0.5 + half)]),
        q10: some.then(|| quantile(0.1)),
        q90: some.then(|| quantile(0.9)),
        resolution,
        histogram: tally
            .last_change
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(j, &c)| CollapseBin {
                t: grid.node(j),
                fraction: c as f64 / total,
            })
            .collect(),
    }
}
