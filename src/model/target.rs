//! Target distributions p_0 (docs/mathematics.md §3).

use std::path::Path;

use anyhow::{Result, anyhow, ensure};
use nalgebra::{DMatrix, DVector};

use super::MeanSpec;
use super::rotation::eigen_sorted;
use crate::io::{read_matrix, read_vector};
use crate::linalg::Linear;
use crate::rng::HostRng;

/// Gaussian mixture with shared covariance: `Σ_k w_k N(μ_k, C)`.
#[derive(Clone, Debug)]
pub struct Mixture {
    /// Weights, summing to one.
    pub weights: Vec<f64>,
    /// Component means μ_k.
    pub means: Vec<DVector<f64>>,
    /// Shared within-class covariance C (symmetric positive definite).
    pub cov: Linear,
}

/// The empirical distribution of N training points (rows of `points`, N×d).
#[derive(Clone, Debug)]
pub struct Empirical {
    pub points: DMatrix<f64>,
}

#[derive(Clone, Debug)]
pub enum Target {
    Mixture(Mixture),
    Empirical(Empirical),
}

impl Mixture {
    /// Two symmetric classes ±m with covariance σ²I.
    pub fn two_class(m: DVector<f64>, sigma: f64) -> Self {
        let d = m.len();
        Mixture {
            weights: vec![0.5, 0.5],
            means: vec![m.clone(), -m],
            cov: Linear::Scalar(sigma * sigma, d),
        }
    }

    pub fn dim(&self) -> usize {
        self.cov.dim()
    }

    /// Read a K×(1+d) matrix: column 0 the weights (≥ 0, normalised here, sum > 0), columns
    /// 1..=d the means. `cov` (d×d) is the shared covariance and fixes d.
    pub fn from_file(path: &Path, cov: Linear) -> Result<Mixture> {
        let m = read_matrix(path).map_err(|e| anyhow!("mixture: {e:#}"))?;
        let d = cov.dim();
        ensure!(
            m.ncols() == d + 1,
            "mixture: {} has {} columns, expected 1 + d = {} (weight, then the mean)",
            path.display(),
            m.ncols(),
            d + 1
        );
        let weights: Vec<f64> = m.column(0).iter().copied().collect();
        for (k, &w) in weights.iter().enumerate() {
            ensure!(
                w >= 0.0,
                "mixture: {}: weight of component {} (row {}) is {w}; weights must be ≥ 0",
                path.display(),
                k,
                k + 1
            );
        }
        // Normalise by the largest weight first: 1e308 + 1e308 overflows to inf (and w / inf
        // to 0), while every w / max lies in [0, 1].
        let max = weights.iter().copied().fold(0.0, f64::max);
        ensure!(
            max > 0.0,
            "mixture: {}: every weight is zero; at least one component needs a positive weight",
            path.display()
        );
        let weights: Vec<f64> = weights.iter().map(|w| w / max).collect();
        let total: f64 = weights.iter().sum();
        let means = m
            .row_iter()
            .map(|r| DVector::from_iterator(d, r.iter().skip(1).copied()))
            .collect();
        Ok(Mixture {
            weights: weights.iter().map(|w| w / total).collect(),
            means,
            cov,
        })
    }

    /// Draw `n` points (rows of an n×d matrix): a component by its cumulative weight, then
    /// `x = μ_k + chol(C) ξ`. Reproducible from `seed` (HostRng purpose "training-set").
    ///
    /// Panics if the covariance is not positive semi-definite (a `Mixture` must hold a valid C).
    pub fn sample_training_set(&self, n: usize, seed: u64) -> DMatrix<f64> {
        let d = self.dim();
        let chol = self
            .cov
            .cholesky()
            .expect("mixture covariance must be positive semi-definite");
        let mut rng = HostRng::new(seed, "training-set");
        let total: f64 = self.weights.iter().sum();
        let mut out = DMatrix::zeros(n, d);
        for i in 0..n {
            let r = rng.uniform() * total;
            let mut acc = 0.0;
            // Fall back to the last component with positive weight if round-off leaves r ≥ acc.
            let mut k = self.weights.iter().rposition(|&w| w > 0.0).unwrap_or(0);
            for (j, &w) in self.weights.iter().enumerate() {
                acc += w;
                if r < acc {
                    k = j;
                    break;
                }
            }
            let xi = DVector::from_fn(d, |_, _| rng.normal());
            let x = &self.means[k] + chol.apply(&xi);
            out.row_mut(i).copy_from(&x.transpose());
        }
        out
    }
}

impl Empirical {
    /// Read N×d training points (N ≥ 1, all finite); `dim`, when given, must equal d.
    pub fn from_file(path: &Path, dim: Option<usize>) -> Result<Empirical> {
        let points = read_matrix(path).map_err(|e| anyhow!("training set: {e:#}"))?;
        if let Some(d) = dim {
            ensure!(
                points.ncols() == d,
                "training set: {} has {} columns, expected d = {d}",
                path.display(),
                points.ncols()
            );
        }
        ensure!(
            points.nrows() >= 1,
            "training set: {} holds no points",
            path.display()
        );
        Ok(Empirical { points })
    }
}

/// The class mean m of the two-class target: a unit direction from `spec`, scaled so that
/// ‖m‖² = `norm2`. Stiff/Soft take U's eigenvector of largest/smallest eigenvalue (for U ∝ I:
/// the last/first axis), with the sign fixed so that its largest-magnitude entry is positive.
pub fn class_mean(
    spec: &MeanSpec,
    u: &Linear,
    dim: usize,
    norm2: f64,
    seed: u64,
) -> Result<DVector<f64>> {
    ensure!(
        dim > 0 && u.dim() == dim,
        "mean: dimension {dim} does not match U's dimension {}",
        u.dim()
    );
    ensure!(
        norm2.is_finite() && norm2 >= 0.0,
        "mean: ‖m‖² must be finite and ≥ 0, got {norm2}"
    );
    let dir: DVector<f64> = match spec {
        MeanSpec::Ones => DVector::from_element(dim, 1.0),
        MeanSpec::Stiff | MeanSpec::Soft => {
            let (_, vecs) = eigen_sorted(u);
            let col = if *spec == MeanSpec::Soft { 0 } else { dim - 1 };
            let v = vecs.column(col).into_owned();
            let imax = v.iamax();
            if v[imax] < 0.0 { -v } else { v }
        }
        MeanSpec::Random => {
            let mut rng = HostRng::new(seed, "mean-direction");
            DVector::from_fn(dim, |_, _| rng.normal())
        }
        MeanSpec::File(path) => {
            let v = read_vector(path).map_err(|e| anyhow!("mean: {e:#}"))?;
            ensure!(
                v.len() == dim,
                "mean: {} has {} entries, expected d = {dim}",
                path.display(),
                v.len()
            );
            ensure!(
                v.amax() > 0.0,
                "mean: {} is the zero vector (no direction)",
                path.display()
            );
            v
        }
    };
    // Scale by the largest entry first, so that a vector of huge entries (‖v‖² overflowing f64)
    // still gives its direction.
    let scaled = &dir / dir.amax();
    Ok(scaled.normalize() * norm2.sqrt())
}

impl Target {
    pub fn dim(&self) -> usize {
        match self {
            Target::Mixture(m) => m.dim(),
            Target::Empirical(e) => e.points.ncols(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Scratch;
    use crate::model::USpec;
    use crate::model::precision::build_u;

    #[test]
    fn class_mean_directions_and_norm() {
        let d = 4;
        let u = build_u(&USpec::Diag(vec![2.0, 0.5, 3.0, 1.0]), d, 0).unwrap();
        let m = class_mean(&MeanSpec::Ones, &u, d, 9.0, 0).unwrap();
        assert!((m.norm_squared() - 9.0).abs() < 1e-12 && (m[0] - 1.5).abs() < 1e-12);
        let m = class_mean(&MeanSpec::Stiff, &u, d, 4.0, 0).unwrap();
        assert_eq!(m, DVector::from_vec(vec![0.0, 0.0, 2.0, 0.0]));
        let m = class_mean(&MeanSpec::Soft, &u, d, 4.0, 0).unwrap();
        assert_eq!(m, DVector::from_vec(vec![0.0, 2.0, 0.0, 0.0]));
        // Dense U: the soft mean is an eigenvector of the smallest eigenvalue.
        let u = build_u(&USpec::Rotated(0.1, 10.0), 6, 3).unwrap();
        let m = class_mean(&MeanSpec::Soft, &u, 6, 1.0, 0).unwrap();
        assert!((u.apply(&m) - &m * 0.1).amax() < 1e-12);
        let r1 = class_mean(&MeanSpec::Random, &u, 6, 2.0, 5).unwrap();
        assert!((r1.norm_squared() - 2.0).abs() < 1e-12);
        assert_eq!(r1, class_mean(&MeanSpec::Random, &u, 6, 2.0, 5).unwrap());
        assert_ne!(r1, class_mean(&MeanSpec::Random, &u, 6, 2.0, 6).unwrap());
        assert_eq!(
            class_mean(&MeanSpec::Ones, &u, 6, 0.0, 0).unwrap(),
            DVector::zeros(6)
        );

        let s = Scratch::new("target-mean");
        let p = s.file("m.csv", "3\n4\n0\n0\n0\n0\n");
        let m = class_mean(&MeanSpec::File(p.clone()), &u, 6, 25.0, 0).unwrap();
        assert!((m[0] - 3.0).abs() < 1e-12 && (m[1] - 4.0).abs() < 1e-12);
        let err = class_mean(&MeanSpec::File(p), &u, 5, 1.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("mean:"), "{err}");
        let u5 = Linear::identity(5);
        let p = s.file("m5.csv", "1 2 3 4 5\n");
        assert!(class_mean(&MeanSpec::File(p), &u5, 5, 1.0, 0).is_ok());
        let p = s.file("short.csv", "1 2 3\n");
        let err = class_mean(&MeanSpec::File(p), &u5, 5, 1.0, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mean:") && err.contains("3 entries"),
            "{err}"
        );
        let p = s.file("zero.csv", "0 0 0 0 0\n");
        let err = class_mean(&MeanSpec::File(p), &u5, 5, 1.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("zero vector"), "{err}");
        let err = class_mean(&MeanSpec::Ones, &u5, 5, -1.0, 0)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("mean:"), "{err}");
    }

    #[test]
    fn mixture_from_file_and_sampling() {
        let s = Scratch::new("target-mixture");
        let p = s.file("mix.csv", "w,x,y\n1,5,0\n3,-5,0\n0,0,100\n");
        let mix = Mixture::from_file(&p, Linear::Scalar(0.25, 2)).unwrap();
        assert_eq!(mix.weights, vec![0.25, 0.75, 0.0]);
        assert_eq!(mix.means[1], DVector::from_vec(vec![-5.0, 0.0]));

        let n = 40_000;
        let x = mix.sample_training_set(n, 1);
        assert_eq!((x.nrows(), x.ncols()), (n, 2));
        assert_eq!(x, mix.sample_training_set(n, 1));
        // Component 0 (x > 0) has weight 1/4: binomial sd √(n·3/16) ≈ 87.
        let n0 = x.column(0).iter().filter(|&&v| v > 0.0).count() as f64;
        assert!((n0 - n as f64 * 0.25).abs() < 5.0 * 87.0, "{n0}");
        // The zero-weight component is never drawn; the within-class sd is 0.5.
        assert!(x.column(1).iter().all(|&v| v.abs() < 4.0));
        let var = x.column(1).iter().map(|v| v * v).sum::<f64>() / n as f64;
        assert!((var - 0.25).abs() < 0.02, "{var}");

        // Dense covariance: the sample covariance matches.
        let c = DMatrix::from_row_slice(2, 2, &[1.0, 0.6, 0.6, 0.5]);
        let mix = Mixture {
            weights: vec![1.0],
            means: vec![DVector::from_vec(vec![1.0, -1.0])],
            cov: Linear::Dense(c.clone()),
        };
        let x = mix.sample_training_set(n, 2);
        let mean = x.row_mean();
        assert!((mean[0] - 1.0).abs() < 0.03 && (mean[1] + 1.0).abs() < 0.03);
        let centered = DMatrix::from_fn(n, 2, |i, j| x[(i, j)] - mean[j]);
        let cov = centered.transpose() * &centered / n as f64;
        assert!((cov - c).amax() < 0.03);

        let err = Mixture::from_file(&p, Linear::Scalar(1.0, 3))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("mixture:") && err.contains("columns"),
            "{err}"
        );
        let p = s.file("neg.csv", "1,0\n-1,1\n");
        let err = Mixture::from_file(&p, Linear::Scalar(1.0, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights must be ≥ 0"), "{err}");
        let p = s.file("zero.csv", "0,0\n0,1\n");
        let err = Mixture::from_file(&p, Linear::Scalar(1.0, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("every weight is zero"), "{err}");
    }

    #[test]
    fn empirical_from_file() {
        let s = Scratch::new("target-empirical");
        let p = s.file("pts.txt", "1 2 3\n4 5 6\n");
        let e = Empirical::from_file(&p, Some(3)).unwrap();
        assert_eq!(e.points.nrows(), 2);
        assert_eq!(Empirical::from_file(&p, None).unwrap().points[(1, 2)], 6.0);
        let err = Empirical::from_file(&p, Some(2)).unwrap_err().to_string();
        assert!(
            err.starts_with("training set:") && err.contains("expected d = 2"),
            "{err}"
        );
        let p = s.file("nan.txt", "1 2\n3 inf\n");
        let err = Empirical::from_file(&p, None).unwrap_err().to_string();
        assert!(
            err.starts_with("training set:") && err.contains("not finite"),
            "{err}"
        );
    }
}
