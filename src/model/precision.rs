//! Builders of the stationary precision U (docs/mathematics.md §1.1), and of any other symmetric
//! positive definite matrix given in U's forms (the within-class covariance shape W): stored in
//! its cheapest exact form. Every error message starts with the matrix's name ("U:").

use anyhow::{Result, anyhow, bail, ensure};
use nalgebra::{DMatrix, DVector};

use super::USpec;
use crate::io::read_matrix;
use crate::linalg::Linear;
use crate::rng::HostRng;

/// Build U of dimension `dim` from its spec; `seed` drives the random basis of `Rotated`.
pub fn build_u(spec: &USpec, dim: usize, seed: u64) -> Result<Linear> {
    build_spd("U", spec, dim, seed)
}

/// Build the symmetric positive definite matrix `name` from a spec in U's forms; its errors
/// start with `name`.
pub fn build_spd(name: &str, spec: &USpec, dim: usize, seed: u64) -> Result<Linear> {
    ensure!(dim > 0, "{name}: dimension must be positive");
    match spec {
        USpec::Identity => Ok(Linear::Scalar(1.0, dim)),
        USpec::Diag(v) => {
            ensure!(
                v.len() == dim,
                "{name}: diag has {} values but the dimension is {dim}",
                v.len()
            );
            for (i, &x) in v.iter().enumerate() {
                ensure!(
                    x.is_finite() && x > 0.0,
                    "{name}: diag entry {i} is {x}; {name} must be positive definite (entries > 0)"
                );
            }
            Ok(Linear::from_dense(DMatrix::from_diagonal(
                &DVector::from_column_slice(v),
            )))
        }
        USpec::Linspace(lo, hi) => {
            check_range(name, *lo, *hi, "linspace")?;
            let v = DVector::from_fn(dim, |i, _| {
                if dim == 1 {
                    *lo
                } else {
                    lo + (hi - lo) * i as f64 / (dim - 1) as f64
                }
            });
            Ok(Linear::from_dense(DMatrix::from_diagonal(&v)))
        }
        USpec::Geomspace(lo, hi) => {
            check_range(name, *lo, *hi, "geomspace")?;
            Ok(Linear::from_dense(DMatrix::from_diagonal(&geomspace(
                *lo, *hi, dim,
            ))))
        }
        USpec::Rotated(lo, hi) => {
            check_range(name, *lo, *hi, "rotated")?;
            let o = haar_orthogonal(dim, &mut HostRng::new(seed, "u-rotation"));
            let u = &o * DMatrix::from_diagonal(&geomspace(*lo, *hi, dim)) * o.transpose();
            // Symmetrise exactly: round-off in the product leaves |U − Uᵀ| ~ 1e-16.
            let u = (&u + u.transpose()) * 0.5;
            Ok(Linear::from_dense(u))
        }
        USpec::File(path) => {
            let m = read_matrix(path).map_err(|e| anyhow!("{name}: {e:#}"))?;
            ensure!(
                m.nrows() == dim && m.ncols() == dim,
                "{name}: {} is {}×{}, expected {dim}×{dim}",
                path.display(),
                m.nrows(),
                m.ncols()
            );
            let scale = m.amax().max(f64::MIN_POSITIVE);
            let asym = (&m - m.transpose()).amax();
            ensure!(
                asym <= 1e-10 * scale,
                "{name}: {} is not symmetric (max |{name} − {name}ᵀ| = {asym:.3e})",
                path.display()
            );
            let m = (&m + m.transpose()) * 0.5;
            let lmin = m.clone().symmetric_eigenvalues().min();
            if lmin <= 0.0 {
                bail!(
                    "{name}: {} is not positive definite (smallest eigenvalue {lmin:.6e})",
                    path.display()
                );
            }
            Ok(Linear::from_dense(m))
        }
    }
}

fn check_range(name: &str, lo: f64, hi: f64, what: &str) -> Result<()> {
    ensure!(
        lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > 0.0 && lo <= hi,
        "{name}: {what}({lo}, {hi}) needs 0 < lo <= hi (finite)"
    );
    Ok(())
}

/// `n` values geometrically spaced from `lo` to `hi` (just `lo` when n = 1).
pub fn geomspace(lo: f64, hi: f64, n: usize) -> DVector<f64> {
    DVector::from_fn(n, |i, _| {
        if n == 1 {
            lo
        } else if i == n - 1 {
            hi
        } else {
            lo * (hi / lo).powf(i as f64 / (n - 1) as f64)
        }
    })
}

/// A Haar-distributed random orthogonal matrix: QR of a Gaussian matrix, with the signs of R's
/// diagonal moved into Q (without that fix the distribution is not uniform).
pub fn haar_orthogonal(d: usize, rng: &mut HostRng) -> DMatrix<f64> {
    let g = DMatrix::from_fn(d, d, |_, _| rng.normal());
    let qr = g.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for j in 0..d {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Scratch, write_npy_f64};

    #[test]
    fn simple_forms() {
        assert_eq!(
            build_u(&USpec::Identity, 4, 0).unwrap(),
            Linear::Scalar(1.0, 4)
        );
        let u = build_u(&USpec::Geomspace(0.1, 10.0), 3, 0).unwrap();
        let Linear::Diagonal(v) = u else { panic!() };
        assert!((v[0] - 0.1).abs() < 1e-15 && (v[1] - 1.0).abs() < 1e-14 && v[2] == 10.0);
        let u = build_u(&USpec::Linspace(1.0, 3.0), 3, 0).unwrap();
        assert_eq!(u.diagonal(), DVector::from_vec(vec![1.0, 2.0, 3.0]));
        assert_eq!(
            build_u(&USpec::Linspace(2.0, 5.0), 1, 0).unwrap(),
            Linear::Scalar(2.0, 1)
        );
        assert_eq!(
            build_u(&USpec::Geomspace(2.0, 2.0), 3, 0).unwrap(),
            Linear::Scalar(2.0, 3)
        );
        let u = build_u(&USpec::Diag(vec![1.0, 4.0]), 2, 0).unwrap();
        assert_eq!(u.form(), crate::linalg::Form::Diagonal);
    }

    #[test]
    fn rotated_is_spd_with_the_requested_spectrum() {
        let d = 16;
        let u = build_u(&USpec::Rotated(0.1, 10.0), d, 3).unwrap();
        let Linear::Dense(m) = &u else {
            panic!("rotated U should be dense")
        };
        assert_eq!(m, &m.transpose());
        let ev = u.symmetric_eigenvalues();
        let want = geomspace(0.1, 10.0, d);
        for (a, b) in ev.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12 * b.max(1.0), "{a} vs {b}");
        }
        // Reproducible from the seed, different across seeds.
        assert_eq!(u, build_u(&USpec::Rotated(0.1, 10.0), d, 3).unwrap());
        assert_ne!(u, build_u(&USpec::Rotated(0.1, 10.0), d, 4).unwrap());
        let o = haar_orthogonal(d, &mut HostRng::new(1, "t"));
        assert!((o.transpose() * &o - DMatrix::identity(d, d)).amax() < 1e-13);
    }

    #[test]
    fn errors_name_u() {
        let err = build_u(&USpec::Diag(vec![1.0, 2.0]), 3, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("U:") && err.contains("diag") && err.contains('3'),
            "{err}"
        );
        let err = build_u(&USpec::Diag(vec![1.0, -2.0]), 2, 0)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("U:") && err.contains("positive"), "{err}");
        for bad in [
            USpec::Linspace(0.0, 1.0),
            USpec::Geomspace(2.0, 1.0),
            USpec::Rotated(-1.0, 1.0),
        ] {
            let err = build_u(&bad, 3, 0).unwrap_err().to_string();
            assert!(err.starts_with("U:") && err.contains("lo <= hi"), "{err}");
        }
    }

    #[test]
    fn file_checks() {
        let s = Scratch::new("precision-file");
        let p = s.file("u.csv", "2,0.5\n0.5,1\n");
        let u = build_u(&USpec::File(p.clone()), 2, 0).unwrap();
        assert_eq!(
            u.to_dense(),
            DMatrix::from_row_slice(2, 2, &[2., 0.5, 0.5, 1.])
        );
        let err = build_u(&USpec::File(p), 3, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("U:") && err.contains("2×2") && err.contains("3×3"),
            "{err}"
        );

        let p = s.file("diag.csv", "2,0\n0,3\n");
        let u = build_u(&USpec::File(p), 2, 0).unwrap();
        assert_eq!(u.form(), crate::linalg::Form::Diagonal);

        let p = s.file("asym.csv", "2,0.5\n0.4,1\n");
        let err = build_u(&USpec::File(p), 2, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("U:") && err.contains("not symmetric"),
            "{err}"
        );

        // Eigenvalues of [[1,2],[2,1]] are 3 and −1.
        let p = s.0.join("indef.npy");
        write_npy_f64(&p, &[2, 2], &[1.0, 2.0, 2.0, 1.0]).unwrap();
        let err = build_u(&USpec::File(p), 2, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("U:") && err.contains("smallest eigenvalue -1.000000e0"),
            "{err}"
        );

        let p = s.file("nan.csv", "1,0\n0,nan\n");
        let err = build_u(&USpec::File(p), 2, 0).unwrap_err().to_string();
        assert!(err.starts_with("U:") && err.contains("not finite"), "{err}");
    }
}
