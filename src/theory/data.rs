//! Theory from the training points themselves (docs/mathematics.md §7.6), for `--train-file`:
//! the data's top-eigenvalue speciation time (Biroli's ½ ln Λ), the between-class criterion of
//! labelled data, each split time, and the REM t_C on the sample covariance.

use anyhow::{Result, ensure};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

use super::isotropic::{Spectral, reduced};
use super::speciation::{between_class_deviations, between_eigenvalues_with};
use super::{crossing_from_grid, for_each_on_grid, last_crossing, t_collapse};
use crate::linalg::Linear;
use crate::model::labels::Labels;
use crate::model::{Mixture, Process};

/// Grid intervals of the downward scans.
const SCAN_INTERVALS: usize = 400;

/// What the data give, and from what.
#[derive(Clone, Debug, Serialize)]
pub struct DataTheory {
    /// Training points N.
    pub n: usize,
    /// Classes K of the labels (null without labels).
    pub classes: Option<usize>,
    /// Λ, the top eigenvalue of the centred sample covariance C (divisor N − 1).
    pub lambda_max: f64,
    /// The last t with λ_max(U^{1/2} E_t C E_tᵀ U^{1/2}) ≥ 1: the top direction's signal variance
    /// against the stationary noise U⁻¹; exactly ½ ln Λ for U = I.
    pub t_s_top_eigenvalue: Option<f64>,
    /// ½ ln Λ itself (Biroli et al.'s formula, for U = I).
    pub half_ln_lambda: f64,
    /// With labels: the between-class criterion λ_max(Γ_t⁻¹ E_t B E_tᵀ) = 1 of the class means
    /// (weights the class fractions) and the pooled within-class covariance W.
    pub t_s_between: Option<f64>,
    /// With labels, K > 2: each split time, where the k-th eigenvalue of that criterion crosses
    /// 1 (k = 1..K−1, descending times; the first is `t_s_between`); null where the k-th
    /// eigenvalue is below 1 at every t > 0.
    pub t_s_splits: Vec<Option<f64>>,
    /// The REM collapse time on the sample covariance C, α = ln N / d.
    pub t_c: Option<f64>,
    /// What each number is computed from.
    pub basis: &'static str,
}

/// Centred sample covariance of the rows of `x` (N×d, divisor N − 1), dense.
pub fn sample_covariance(x: &DMatrix<f64>) -> Linear {
    let n = x.nrows() as f64;
    let mean = x.row_mean();
    let centred = x - DMatrix::from_fn(x.nrows(), x.ncols(), |_, j| mean[j]);
    Linear::Dense(centred.transpose() * centred / (n - 1.0).max(1.0))
}

/// The labelled data as a Gaussian mixture: class fractions, class means and the pooled
/// within-class covariance W = Σ_k Σ_{i∈k} (x_i − μ_k)(x_i − μ_k)ᵀ / (N − K).
pub fn labelled_mixture(x: &DMatrix<f64>, labels: &Labels) -> Result<Mixture> {
    let (n, d) = (x.nrows(), x.ncols());
    let k = labels.classes();
    ensure!(
        labels.class.len() == n,
        "train-labels: {} labels for {n} points",
        labels.class.len()
    );
    ensure!(
        n > k,
        "train-labels: {n} points in {k} classes leave no within-class spread"
    );
    let counts = labels.counts();
    let mut means = vec![DVector::zeros(d); k];
    for (i, &c) in labels.class.iter().enumerate() {
        means[c as usize] += x.row(i).transpose();
    }
    for (m, &c) in means.iter_mut().zip(&counts) {
        *m /= c as f64;
    }
    let mut centred = x.clone();
    for (i, &c) in labels.class.iter().enumerate() {
        let mut row = centred.row_mut(i);
        row -= means[c as usize].transpose();
    }
    let within = centred.transpose() * &centred / (n - k) as f64;
    Ok(Mixture {
        weights: counts.iter().map(|&c| c as f64 / n as f64).collect(),
        means,
        cov: Linear::Dense(within),
    })
}

/// λ_max(Lᵀ E_t C E_tᵀ L), U = L Lᵀ: equal to λ_max(U^{1/2} E_t C E_tᵀ U^{1/2}). Diagonal
/// forms (the [`Spectral`] pair) take the largest entry, without an eigen-solve.
fn top_signal(l: &Linear, e: &Linear, c: &Linear) -> f64 {
    let w = l.transpose().mul(&e.mul(c).mul(&e.transpose())).mul(l);
    if w.form() != crate::linalg::Form::Dense {
        return w.diagonal().max();
    }
    let w = w.to_dense();
    ((&w + w.transpose()) * 0.5).symmetric_eigenvalues().max()
}

/// The between-class eigenvalues at the scan times `t_max·j/n`, j = 0..=n (n =
/// [`SCAN_INTERVALS`]), as [`last_crossing`] scans them: grid propagators below t_max, the
/// exact one at t_max. Empty rows after a stop request.
fn eigenvalue_grid(
    p: &Process,
    t_max: f64,
    eigen: &impl Fn(f64, &Linear) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    let n = SCAN_INTERVALS;
    if !(t_max.is_finite() && t_max > 0.0) {
        return vec![];
    }
    let mut grid = vec![vec![]; n + 1];
    grid[n] = eigen(t_max, &p.propagator(t_max));
    for_each_on_grid(p, t_max, n, |j, t, e| {
        if j < n {
            grid[j] = eigen(t, e);
        }
    });
    grid
}

/// All the data theory of points `x` (N×d) with optional labels, on process `p`.
pub fn data_theory(
    p: &Process,
    x: &DMatrix<f64>,
    labels: Option<&Labels>,
    t_max: f64,
) -> Result<DataTheory> {
    let (n, d) = (x.nrows(), x.ncols());
    ensure!(
        d == p.dim(),
        "train-file: {d} columns, but the process has d = {}",
        p.dim()
    );
    ensure!(
        n >= 2,
        "train-file: {n} point(s); a covariance needs at least 2"
    );
    let sample = sample_covariance(x);
    // An isotropic process needs C's spectrum only: one eigen-solve, not one per scan time.
    let spectral = Spectral::of(p, &sample);
    let (pc, c) = reduced(&spectral, p, &sample);
    let lambda_max = match c {
        Linear::Dense(m) => m.symmetric_eigenvalues().max(),
        c => c.diagonal().max(),
    };
    let l = pc.u.cholesky().map_err(|e| anyhow::anyhow!("u: {e:#}"))?;
    let t_s_top_eigenvalue =
        last_crossing(pc, |_, e| top_signal(&l, e, c) - 1.0, t_max, SCAN_INTERVALS);
    let (t_s_between, t_s_splits) = match labels {
        Some(labels) => {
            let mix = labelled_mixture(x, labels)?;
            let within = Spectral::of(p, &mix.cov);
            let (p, cov) = reduced(&within, p, &mix.cov);
            let dev: Vec<_> = between_class_deviations(&mix)
                .iter()
                .map(|d| within.as_ref().map_or_else(|| d.clone(), |s| s.rotate(d)))
                .collect();
            // Every split scans the same times: one eigen-solve per time serves them all (at
            // d = 784 each costs about a second where the process is not isotropic), and the
            // scan runs once, not once per split (1000 classes made that 1000 scans).
            let eigen = |t: f64, e: &Linear| between_eigenvalues_with(p, t, e, &dev, cov);
            let grid = eigenvalue_grid(p, t_max, &eigen);
            let memo = std::cell::RefCell::new(std::collections::HashMap::new());
            let splits: Vec<Option<f64>> = (0..labels.classes() - 1)
                .map(|k| {
                    let values: Vec<f64> = grid
                        .iter()
                        .map(|row| row.get(k).copied().unwrap_or(0.0) - 1.0)
                        .collect();
                    // The bisections evaluate new times; splits in one bracket share them.
                    crossing_from_grid(&values, t_max, |t| {
                        let mut memo = memo.borrow_mut();
                        let row = memo
                            .entry(t.to_bits())
                            .or_insert_with(|| eigen(t, &p.propagator(t)));
                        row.get(k).copied().unwrap_or(0.0) - 1.0
                    })
                    // Held only at t = 0, where a singular W (pixels that never vary) makes
                    // every ratio infinite: no split at any positive time.
                    .filter(|&t| t > 1e-9)
                })
                .collect();
            (splits[0], splits)
        }
        None => (None, vec![]),
    };
    Ok(DataTheory {
        n,
        classes: labels.map(Labels::classes),
        lambda_max,
        t_s_top_eigenvalue,
        half_ln_lambda: 0.5 * lambda_max.ln(),
        t_s_between,
        t_s_splits,
        t_c: t_collapse(pc, c, n, t_max),
        basis: "lambda_max, t_s_top_eigenvalue, t_c: the centred sample covariance of the \
                train-file; t_s_between, t_s_splits: its labels' class fractions, class means \
                and pooled within-class covariance",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Mixture;

    /// Two labelled Gaussian classes ±m (U = I): the data's Λ criterion is ½ ln Λ exactly, the
    /// between-class t_S is near Biroli's ½ ln(1 + ‖m‖² − σ²), t_C near the target's REM t_C.
    #[test]
    fn labelled_two_class_data() {
        let d = 8;
        let mix = Mixture::two_class(DVector::from_element(d, 2.0), 1.0);
        let n = 4000;
        let x = mix.sample_training_set(n, 3);
        // The class of a point is the sign of its projection, which is the drawn class except
        // for points beyond the midplane (rare at ‖m‖ = 5.7).
        let labels = Labels::from_values(
            &(0..n)
                .map(|i| f64::from(x.row(i).sum() > 0.0))
                .collect::<Vec<_>>(),
            n,
        )
        .unwrap();
        let p = Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap();
        let th = data_theory(&p, &x, Some(&labels), 10.0).unwrap();
        let ts = th.t_s_top_eigenvalue.unwrap();
        assert!(
            (ts - th.half_ln_lambda).abs() < 1e-9,
            "{ts} vs {}",
            th.half_ln_lambda
        );
        // Λ ≈ ‖m‖² + σ² = 33 up to sampling error O(Λ √(2/N)) ≈ 0.7.
        assert!((th.lambda_max - 33.0).abs() < 2.5, "Λ = {}", th.lambda_max);
        let want = super::super::biroli_t_speciation(32.0, 1.0);
        let tb = th.t_s_between.unwrap();
        assert!((tb - want).abs() < 0.05, "{tb} vs {want}");
        assert_eq!(th.t_s_splits, vec![th.t_s_between]);
        let tc = th.t_c.unwrap();
        let want = super::super::biroli_t_collapse(n, d, 1.0);
        assert!(tc > 0.0 && (tc - want).abs() < 0.2, "{tc} vs {want}");
    }

    /// An isotropic U with a strong rotation Q: the spectral reduction gives the dense path's
    /// numbers (top-eigenvalue time, every split, t_C), on three unequal labelled classes.
    #[test]
    fn isotropic_reduction_changes_no_number() {
        let (d, n) = (6, 300);
        let mut r = crate::rng::HostRng::new(5, "data reduction test");
        let labels: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
        let x = DMatrix::from_fn(n, d, |i, k| {
            let class = i % 3;
            r.normal() * (0.5 + 0.2 * k as f64) + if k == class { 2.0 + class as f64 } else { 0.0 }
        });
        let labels = Labels::from_values(&labels, n).unwrap();
        let q = super::super::test_util::antisym(d, 1.5);
        let p = Process::new(Linear::Scalar(1.3, d), q).unwrap();
        assert!(Spectral::of(&p, &sample_covariance(&x)).is_some());
        let th = data_theory(&p, &x, Some(&labels), 10.0).unwrap();
        // The dense path, as before the reduction.
        let c = sample_covariance(&x);
        let l = Linear::Dense(p.u.cholesky().unwrap().to_dense());
        let top = last_crossing(&p, |_, e| top_signal(&l, e, &c) - 1.0, 10.0, SCAN_INTERVALS);
        let mix = labelled_mixture(&x, &labels).unwrap();
        let dev = between_class_deviations(&mix);
        let split = |k: usize| {
            last_crossing(
                &p,
                |t, e| between_eigenvalues_with(&p, t, e, &dev, &mix.cov)[k] - 1.0,
                10.0,
                SCAN_INTERVALS,
            )
        };
        let close = |a: Option<f64>, b: Option<f64>| (a.unwrap() - b.unwrap()).abs() < 1e-9;
        assert!(close(th.t_s_top_eigenvalue, top), "{th:?} vs {top:?}");
        assert!(close(th.t_s_splits[0], split(0)), "{th:?}");
        assert!(close(th.t_s_splits[1], split(1)), "{th:?}");
        assert!(close(th.t_c, t_collapse(&p, &c, n, 10.0)), "{th:?}");
        let lambda = c.to_dense().symmetric_eigenvalues().max();
        assert!((th.lambda_max - lambda).abs() < 1e-12 * lambda);
    }
}
