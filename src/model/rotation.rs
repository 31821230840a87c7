//! Strategies for the antisymmetric Q (docs/mathematics.md §6), including the exponentially optimal one of
//! Lelièvre, Nier & Pavliotis (2013). Every error message starts with "Q:".
//!
//! Why the optimal construction works (our notation). Write `J̃ = U^{1/2} Q U^{1/2}`
//! (antisymmetric). Then `U^{1/2} A U^{−1/2} = U + J̃`, so A has the spectrum of `U + J̃`. In an
//! orthonormal basis Ψ whose Rayleigh quotients all equal ū = Tr(U)/d, `ΨᵀUΨ = ūI + M` with M
//! symmetric and zero on the diagonal, and we need `K = M + J_Ψ` to have a purely imaginary
//! spectrum. With `J_Ψ = ΛX + XΛ`, `X_jk = M_jk/(λ_j − λ_k)`, i.e. `(J_Ψ)_jk = (λ_j+λ_k)/(λ_j−λ_k) M_jk`,
//! one checks entrywise that `Λ⁻¹K + KᵀΛ⁻¹ = 0` (the diagonal vanishes because M_jj = 0): K is
//! skew-adjoint for the inner product `⟨x, Λ⁻¹y⟩`, so `S = Λ^{−1/2} K Λ^{1/2}` is antisymmetric
//! and K's eigenvalues are purely imaginary. Hence `A − ūI = T S T⁻¹` with
//! `T = U^{−1/2} Ψ Λ^{1/2}`: every eigenvalue of A has real part ū, and A is diagonalisable with
//! an eigenvector condition number at most `κ(T) ≤ √(κ(U) · λ_max/λ_min)`.
//! (The opposite sign, `J_Ψ = −(ΛX + XΛ)`, also works, with Λ in place of Λ⁻¹.)
//!
//! (Over 500 lines: 289 of its 590 are the unit tests of the code above them.)

use anyhow::{Result, anyhow, ensure};
use nalgebra::{DMatrix, DVector};

use super::QSpec;
use crate::io::read_matrix;
use crate::linalg::Linear;
use crate::rng::HostRng;

/// Symmetric eigen-decomposition of U, eigenvalues ascending, eigenvectors as columns.
/// Scalar and diagonal U use the coordinate axes (ties keep the axis order).
pub(crate) fn eigen_sorted(u: &Linear) -> (DVector<f64>, DMatrix<f64>) {
    let d = u.dim();
    let (vals, vecs) = match u {
        Linear::Scalar(..) | Linear::Diagonal(_) => (u.diagonal(), DMatrix::identity(d, d)),
        Linear::Dense(m) => {
            let e = ((m + m.transpose()) * 0.5).symmetric_eigen();
            (e.eigenvalues, e.eigenvectors)
        }
    };
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
    let sorted_vals = DVector::from_fn(d, |i, _| vals[order[i]]);
    let sorted_vecs = DMatrix::from_fn(d, d, |r, c| vecs[(r, order[c])]);
    (sorted_vals, sorted_vecs)
}

/// The pieces of the Lelièvre–Nier–Pavliotis construction, kept for tests and diagnostics.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct OptimalParts {
    /// ū = Tr(U)/d.
    pub ubar: f64,
    /// The λ_k used.
    pub lambdas: Vec<f64>,
    /// Ψ in the original coordinates (columns ψ_k, orthonormal, ψ_kᵀUψ_k = ū).
    pub psi: DMatrix<f64>,
    /// `M = ΨᵀUΨ − ūI` (zero diagonal up to round-off).
    pub m: DMatrix<f64>,
    /// `J_Ψ = ΛX + XΛ`.
    pub j_psi: DMatrix<f64>,
    /// `Q_opt = U^{−1/2} Ψ J_Ψ Ψᵀ U^{−1/2}`, antisymmetrised.
    pub q: DMatrix<f64>,
}

fn check_lambdas(lambdas: Option<&[f64]>, d: usize) -> Result<Vec<f64>> {
    let Some(l) = lambdas else {
        return Ok((1..=d).map(|k| k as f64).collect());
    };
    ensure!(
        l.len() == d,
        "Q: lambdas (λ_k of the optimal Q) has {} values, expected one per dimension ({d})",
        l.len()
    );
    for (k, &x) in l.iter().enumerate() {
        ensure!(
            x.is_finite() && x > 0.0,
            "Q: lambdas (λ_k of the optimal Q) must be positive and finite; λ_{k} = {x}"
        );
    }
    let mut sorted = l.to_vec();
    sorted.sort_by(f64::total_cmp);
    for w in sorted.windows(2) {
        ensure!(
            w[0] != w[1],
            "Q: lambdas (λ_k of the optimal Q) must be distinct; {} appears twice",
            w[0]
        );
    }
    Ok(l.to_vec())
}

/// Step 1 of docs/mathematics.md §6.2 in U's eigen-coordinates: an orthonormal basis R (columns) with
/// `r_kᵀ diag(e) r_k = ū` for all k.
///
/// The recursion "take the extreme eigenvectors of U restricted to the current subspace" needs no
/// new eigen-decomposition: with ψ = √c w_max + √(1−c) w_min, the orthogonal complement of ψ in
/// span{w_max, w_min} is φ = √(1−c) w_max − √c w_min, and U restricted to the remaining subspace
/// is diagonal in {other eigenvectors, φ} (the others are U-eigenvectors orthogonal to both),
/// with φᵀUφ = (1−c) e_max + c e_min. So we keep a pool of (value, vector) pairs and replace the
/// two extremes by φ at each step: O(d²) work in all. The pool's mean stays ū, so ū always lies
/// in [e_min, e_max] and c ∈ [0, 1].
fn equal_quotient_basis(e: &DVector<f64>, ubar: f64) -> DMatrix<f64> {
    let d = e.len();
    let mut pool: Vec<(f64, DVector<f64>)> = (0..d)
        .map(|i| {
            let mut v = DVector::zeros(d);
            v[i] = 1.0;
            (e[i], v)
        })
        .collect();
    let mut r = DMatrix::zeros(d, d);
    let scale = e.amax().max(f64::MIN_POSITIVE);
    for k in 0..d {
        if pool.len() == 1 {
            r.set_column(k, &pool[0].1);
            break;
        }
        let (mut imin, mut imax) = (0, 0);
        for (i, (v, _)) in pool.iter().enumerate() {
            if *v < pool[imin].0 {
                imin = i;
            }
            if *v > pool[imax].0 {
                imax = i;
            }
        }
        let (emin, emax) = (pool[imin].0, pool[imax].0);
        if emax - emin <= 1e-15 * scale {
            // The rest of U is ū·I on this subspace: any vector has quotient ū.
            let (_, v) = pool.swap_remove(imin);
            r.set_column(k, &v);
            continue;
        }
        let c = ((ubar - emin) / (emax - emin)).clamp(0.0, 1.0);
        let (a, b) = (c.sqrt(), (1.0 - c).sqrt());
        let psi = &pool[imax].1 * a + &pool[imin].1 * b;
        let phi = &pool[imax].1 * b - &pool[imin].1 * a;
        r.set_column(k, &psi);
        let phi_val = (1.0 - c) * emax + c * emin;
        // Remove the larger index first so the smaller one stays valid.
        let (hi, lo) = (imax.max(imin), imax.min(imin));
        pool.swap_remove(hi);
        pool.swap_remove(lo);
        pool.push((phi_val, phi));
    }
    r
}

pub(crate) fn optimal_parts(u: &Linear, lambdas: Option<&[f64]>) -> Result<OptimalParts> {
    let d = u.dim();
    ensure!(d > 0, "Q: dimension must be positive");
    let lambdas = check_lambdas(lambdas, d)?;
    let (e, v) = eigen_sorted(u);
    ensure!(
        e[0] > 0.0,
        "Q: the optimal Q needs a positive definite U (smallest eigenvalue {:.6e})",
        e[0]
    );
    let ubar = e.sum() / d as f64;
    // Everything is computed in U's eigen-coordinates, where U = diag(e), then rotated by V.
    let r = equal_quotient_basis(&e, ubar);
    let m = r.transpose() * DMatrix::from_diagonal(&e) * &r - DMatrix::identity(d, d) * ubar;
    // J_Ψ = ΛX + XΛ with X_jk = M_jk/(λ_j − λ_k): (J_Ψ)_jk = (λ_j + λ_k) M_jk / (λ_j − λ_k).
    let j_psi = DMatrix::from_fn(d, d, |j, k| {
        if j == k {
            0.0
        } else {
            (lambdas[j] + lambdas[k]) * m[(j, k)] / (lambdas[j] - lambdas[k])
        }
    });
    // Q = U^{−1/2} Ψ J_Ψ Ψᵀ U^{−1/2}; in eigen-coordinates U^{−1/2} = diag(e^{−1/2}), Ψ = R.
    let inv_sqrt = DMatrix::from_diagonal(&e.map(|x| 1.0 / x.sqrt()));
    let q_eig = &inv_sqrt * &r * &j_psi * r.transpose() * &inv_sqrt;
    let q = &v * q_eig * v.transpose();
    let q = (&q - q.transpose()) * 0.5;
    Ok(OptimalParts {
        ubar,
        lambdas,
        psi: &v * r,
        m,
        j_psi,
        q,
    })
}

/// The Lelièvre–Nier–Pavliotis optimal Q for precision U: every eigenvalue of `(I + Q)U` has real
/// part ū = Tr(U)/d, the largest spectral gap any antisymmetric Q can give. `lambdas` are the
/// distinct positive λ_k (default 1..d); they do not change the gap, only the non-normal
/// transient. U ∝ I gives Q = 0 (the gap is already ū).
pub fn optimal_q(u: &Linear, lambdas: Option<&[f64]>) -> Result<Linear> {
    if let Linear::Scalar(c, d) = u {
        check_lambdas(lambdas, *d)?;
        ensure!(
            *c > 0.0,
            "Q: the optimal Q needs a positive definite U (U = {c}·I)"
        );
        return Ok(Linear::Scalar(0.0, *d));
    }
    Ok(Linear::from_dense(optimal_parts(u, lambdas)?.q))
}

/// Build Q from its spec. `class_dir` (the class mean direction) is needed by `TowardSoft`;
/// `lambdas` are passed to [`optimal_q`].
///
/// `Pair(i, j, q)` couples the coordinate axes e_i and e_j; these are U's eigen-directions when U
/// is scalar or diagonal (for a dense U they are just coordinate axes).
pub fn build_q(
    spec: &QSpec,
    u: &Linear,
    class_dir: Option<&DVector<f64>>,
    lambdas: Option<&[f64]>,
    seed: u64,
) -> Result<Linear> {
    let d = u.dim();
    ensure!(d > 0, "Q: dimension must be positive");
    let zero = Linear::Scalar(0.0, d);
    match spec {
        QSpec::Zero => Ok(zero),
        QSpec::Optimal(s) => {
            ensure!(s.is_finite(), "Q: optimal scale must be finite, got {s}");
            let q = optimal_q(u, lambdas)?;
            Ok(if *s == 0.0 { zero } else { q.scale(*s) })
        }
        QSpec::Pair(i, j, q) => {
            ensure!(
                *i < d && *j < d,
                "Q: pair indices ({i}, {j}) out of range for dimension {d} (0-based)"
            );
            ensure!(i != j, "Q: pair indices must differ, got ({i}, {j})");
            ensure!(q.is_finite(), "Q: pair strength must be finite, got {q}");
            let mut m = DMatrix::zeros(d, d);
            m[(*i, *j)] = *q;
            m[(*j, *i)] = -*q;
            Ok(Linear::from_dense(m))
        }
        QSpec::TowardSoft(q) => {
            ensure!(
                q.is_finite(),
                "Q: toward-soft strength must be finite, got {q}"
            );
            let m = class_dir.ok_or_else(|| {
                anyhow!("Q: toward-soft needs a class direction (a two-class target)")
            })?;
            ensure!(
                m.len() == d,
                "Q: class direction has dimension {}, expected {d}",
                m.len()
            );
            let norm = m.norm();
            ensure!(
                norm > 0.0 && norm.is_finite(),
                "Q: toward-soft needs a nonzero finite class direction"
            );
            let mhat = m / norm;
            let (_, vecs) = eigen_sorted(u);
            // The softest eigenvector with a usable component orthogonal to m̂ (if m̂ is itself
            // the softest direction, this is the next softest).
            let v = vecs
                .column_iter()
                .map(|w| {
                    let w = w.into_owned();
                    &w - &mhat * w.dot(&mhat)
                })
                .find(|v| v.norm() > 1e-6)
                .ok_or_else(|| anyhow!("Q: toward-soft needs d ≥ 2"))?;
            let v = v.normalize();
            let mat = (&mhat * v.transpose() - &v * mhat.transpose()) * *q;
            Ok(Linear::from_dense(mat))
        }
        QSpec::Random(f) => {
            ensure!(
                f.is_finite() && *f >= 0.0,
                "Q: random Frobenius norm must be finite and ≥ 0, got {f}"
            );
            if *f == 0.0 {
                return Ok(zero);
            }
            ensure!(d >= 2, "Q: a nonzero antisymmetric Q needs d ≥ 2");
            let mut rng = HostRng::new(seed, "q-random");
            let g = DMatrix::from_fn(d, d, |_, _| rng.normal());
            let a = (&g - g.transpose()) * 0.5;
            let scale = f / a.norm();
            Ok(Linear::Dense(a * scale))
        }
        QSpec::File(path) => {
            let m = read_matrix(path).map_err(|e| anyhow!("Q: {e:#}"))?;
            ensure!(
                m.nrows() == d && m.ncols() == d,
                "Q: {} is {}×{}, expected {d}×{d} (U's dimension)",
                path.display(),
                m.nrows(),
                m.ncols()
            );
            let residual = (&m + m.transpose()).amax();
            ensure!(
                residual <= 1e-10 * m.amax().max(1.0),
                "Q: {} is not antisymmetric (residual max |Q + Qᵀ| = {residual:.3e})",
                path.display()
            );
            Ok(Linear::from_dense((&m - m.transpose()) * 0.5))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Scratch, write_npy_f64};
    use crate::model::USpec;
    use crate::model::precision::build_u;
    use crate::theory::spectral_gap;

    fn drift(u: &Linear, q: &Linear) -> Linear {
        u.add(&q.mul(u))
    }

    fn max_antisym_residual(q: &Linear) -> f64 {
        let m = q.to_dense();
        (&m + m.transpose()).amax()
    }

    /// (max |Re λ − ū|, max |Im λ|) over the eigenvalues of A.
    fn real_part_spread(a: &Linear, ubar: f64) -> (f64, f64) {
        let ev = a.to_dense().complex_eigenvalues();
        let dev = ev.iter().map(|z| (z.re - ubar).abs()).fold(0.0, f64::max);
        let im = ev.iter().map(|z| z.im.abs()).fold(0.0, f64::max);
        (dev, im)
    }

    /// Eigenvalues drawn log-uniformly in [0.05, 20] (seeded).
    fn random_spectrum(d: usize) -> Vec<f64> {
        let mut rng = HostRng::new(5, "test-spectrum");
        (0..d).map(|_| 0.05 * 400f64.powf(rng.uniform())).collect()
    }

    #[test]
    fn optimal_q_reaches_the_mean_eigenvalue() {
        for d in [2usize, 3, 8, 32, 128] {
            for (name, spec) in [
                ("geomspace", USpec::Geomspace(0.1, 10.0)),
                ("rotated", USpec::Rotated(0.1, 10.0)),
                ("linspace", USpec::Linspace(0.5, 3.0)),
                ("random", USpec::Diag(random_spectrum(d))),
            ] {
                let u = build_u(&spec, d, 11).unwrap();
                let parts = optimal_parts(&u, None).unwrap();
                let ubar = parts.ubar;
                assert!((ubar - u.diagonal().sum() / d as f64).abs() < 1e-13);

                // Ψ orthonormal with Rayleigh quotients ū; M zero on the diagonal.
                let psi = &parts.psi;
                let ortho = (psi.transpose() * psi - DMatrix::identity(d, d)).amax();
                assert!(ortho < 1e-13, "{name} d={d}: ΨᵀΨ − I = {ortho:e}");
                let mdiag = parts.m.diagonal().amax();
                assert!(mdiag < 1e-13 * ubar, "{name} d={d}: diag M = {mdiag:e}");

                // K = M + J_Ψ is skew-adjoint for ⟨x, Λ⁻¹y⟩: Λ⁻¹K + KᵀΛ⁻¹ = 0.
                let k = &parts.m + &parts.j_psi;
                let linv = DMatrix::from_diagonal(&DVector::from_iterator(
                    d,
                    parts.lambdas.iter().map(|x| 1.0 / x),
                ));
                let lyap = (&linv * &k + k.transpose() * &linv).amax() / k.amax().max(1.0);
                assert!(lyap < 1e-13, "{name} d={d}: Λ⁻¹K + KᵀΛ⁻¹ = {lyap:e}");

                let q = optimal_q(&u, None).unwrap();
                assert_eq!(q.dim(), d);
                assert_eq!(max_antisym_residual(&q), 0.0);
                let a = drift(&u, &q);

                // Structural check, well conditioned: with T = U^{−1/2} Ψ Λ^{1/2},
                // T⁻¹ (A − ūI) T = Λ^{−1/2} Ψᵀ U^{1/2} (A − ūI) U^{−1/2} Ψ Λ^{1/2} is antisymmetric.
                let (e, v) = eigen_sorted(&u);
                let sqrt_u = &v * DMatrix::from_diagonal(&e.map(f64::sqrt)) * v.transpose();
                let isqrt_u =
                    &v * DMatrix::from_diagonal(&e.map(|x| 1.0 / x.sqrt())) * v.transpose();
                let l = DVector::from_vec(parts.lambdas.clone());
                let shifted = a.to_dense() - DMatrix::identity(d, d) * ubar;
                let s = DMatrix::from_diagonal(&l.map(|x| 1.0 / x.sqrt()))
                    * psi.transpose()
                    * &sqrt_u
                    * shifted
                    * &isqrt_u
                    * psi
                    * DMatrix::from_diagonal(&l.map(f64::sqrt));
                let skew = (&s + s.transpose()).amax() / s.amax().max(1.0);
                assert!(skew < 1e-11, "{name} d={d}: |S + Sᵀ|/|S| = {skew:e}");

                // The eigenvalues themselves (Schur of the non-normal A).
                let (dev, _) = real_part_spread(&a, ubar);
                let gap = spectral_gap(&a);
                println!(
                    "{name} d={d}: ū={ubar:.6} gap={gap:.12} max|Re λ − ū|={dev:.2e} \
                     |Q|_max={:.2e} skew={skew:.1e}",
                    q.to_dense().amax()
                );
                // Measured ≤ 1.3e-13 up to d = 128; A is diagonalisable with κ(T) ≤ √(κ(U)·d).
                assert!(dev < 1e-11, "{name} d={d}: max |Re λ − ū| = {dev:e}");
                assert!((gap - ubar).abs() < 1e-11);
                // Reversible gap is λ_min(U) < ū: the optimum is a strict improvement.
                assert!(gap > u.symmetric_eigenvalues()[0] + 1e-3);
            }
        }
    }

    #[test]
    fn optimal_q_with_custom_lambdas_and_scalar_u() {
        let u = build_u(&USpec::Rotated(0.2, 5.0), 6, 2).unwrap();
        let lambdas = [0.3, 7.0, 1.1, 2.5, 4.0, 0.9];
        let q = optimal_q(&u, Some(&lambdas)).unwrap();
        let q1 = optimal_q(&u, None).unwrap();
        assert!((q.to_dense() - q1.to_dense()).amax() > 1e-3); // λ_k change Q...
        let ubar = u.diagonal().sum() / 6.0;
        let (dev, _) = real_part_spread(&drift(&u, &q), ubar);
        assert!(dev < 1e-10, "{dev:e}"); // ...but not the gap.

        // The opposite sign J_Ψ = −(ΛX + XΛ) works too (skew-adjoint for ⟨x, Λy⟩ instead).
        let parts = optimal_parts(&u, Some(&lambdas)).unwrap();
        let k = &parts.m - &parts.j_psi;
        let l = DMatrix::from_diagonal(&DVector::from_column_slice(&lambdas));
        assert!((&l * &k + k.transpose() * &l).amax() < 1e-12);
        let re = k
            .complex_eigenvalues()
            .iter()
            .map(|z| z.re.abs())
            .fold(0.0, f64::max);
        assert!(re < 1e-12, "{re:e}");

        assert_eq!(
            optimal_q(&Linear::Scalar(2.0, 5), None).unwrap(),
            Linear::Scalar(0.0, 5)
        );
        // A dense U ∝ I also gives Q = 0 (M = 0).
        let q = optimal_q(&Linear::Dense(DMatrix::identity(4, 4) * 3.0), None).unwrap();
        assert!(q.to_dense().amax() < 1e-14);
    }

    #[test]
    fn bad_lambdas_are_rejected() {
        let u = build_u(&USpec::Geomspace(1.0, 4.0), 3, 0).unwrap();
        for bad in [
            &[1.0, 2.0][..],
            &[1.0, 2.0, 2.0],
            &[1.0, -2.0, 3.0],
            &[1.0, f64::NAN, 3.0],
        ] {
            let err = optimal_q(&u, Some(bad)).unwrap_err().to_string();
            assert!(err.starts_with("Q:") && err.contains("lambdas"), "{err}");
        }
        let err = build_q(&QSpec::Optimal(1.0), &u, None, Some(&[1.0, 1.0, 3.0]), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("distinct"), "{err}");
    }

    /// docs/mathematics.md §6.3: in 2-D, Q = q(e_1e_2ᵀ − e_2e_1ᵀ) saturates the gap at (u_1+u_2)/2 exactly when
    /// |q| ≥ |u_1 − u_2|/(2√(u_1u_2)); below, the gap is the smaller real eigenvalue.
    #[test]
    fn pair_rotation_saturates_in_2d() {
        let (u1, u2) = (0.5, 4.0);
        let u = build_u(&USpec::Diag(vec![u1, u2]), 2, 0).unwrap();
        let qc = (u1 - u2).abs() / (2.0 * (u1 * u2).sqrt());
        let mean = (u1 + u2) / 2.0;
        for factor in [0.0, 0.5, 0.9, 1.0, 1.1, 3.0, -1.5] {
            let qv = factor * qc;
            let q = build_q(&QSpec::Pair(0, 1, qv), &u, None, None, 0).unwrap();
            let gap = spectral_gap(&drift(&u, &q));
            // Closed form: eigenvalues m ± √(m² − u1u2(1+q²)).
            let disc = mean * mean - u1 * u2 * (1.0 + qv * qv);
            let want = mean - disc.max(0.0).sqrt();
            assert!((gap - want).abs() < 1e-7, "q={qv}: gap {gap} want {want}");
            if factor.abs() >= 1.0 {
                assert!((gap - mean).abs() < 1e-7, "q={qv}: gap {gap}");
            } else {
                assert!(gap < mean - 1e-3, "q={qv}: gap {gap}");
            }
        }
        // The optimal Q in 2-D reaches the same saturated gap.
        let q = optimal_q(&u, None).unwrap();
        assert!((spectral_gap(&drift(&u, &q)) - mean).abs() < 1e-12);
    }

    #[test]
    fn every_strategy_is_antisymmetric_with_the_right_dims() {
        let s = Scratch::new("rotation-strategies");
        let d = 5;
        let qfile = s.file(
            "q.csv",
            "0,1,0,0,0\n-1,0,2,0,0\n0,-2,0,0,0\n0,0,0,0,0.5\n0,0,0,-0.5,0\n",
        );
        let m = DVector::from_vec(vec![1.0, 2.0, 0.0, -1.0, 0.5]);
        for u in [
            build_u(&USpec::Identity, d, 0).unwrap(),
            build_u(&USpec::Geomspace(0.1, 10.0), d, 0).unwrap(),
            build_u(&USpec::Rotated(0.1, 10.0), d, 9).unwrap(),
        ] {
            for spec in [
                QSpec::Zero,
                QSpec::Optimal(1.0),
                QSpec::Optimal(0.3),
                QSpec::Pair(1, 3, -2.0),
                QSpec::TowardSoft(1.5),
                QSpec::Random(2.0),
                QSpec::File(qfile.clone()),
            ] {
                let q = build_q(&spec, &u, Some(&m), None, 7).unwrap();
                assert_eq!(q.dim(), d, "{spec:?}");
                assert!(max_antisym_residual(&q) < 1e-15, "{spec:?}");
                crate::model::Process::new(u.clone(), q).unwrap();
            }
        }
        let u = build_u(&USpec::Geomspace(0.1, 10.0), d, 0).unwrap();
        let q = build_q(&QSpec::Random(2.0), &u, None, None, 7).unwrap();
        assert!((q.to_dense().norm() - 2.0).abs() < 1e-12);
        assert_eq!(q, build_q(&QSpec::Random(2.0), &u, None, None, 7).unwrap());
        assert_ne!(q, build_q(&QSpec::Random(2.0), &u, None, None, 8).unwrap());
        let q = build_q(&QSpec::Pair(0, 2, 0.7), &u, None, None, 0).unwrap();
        assert_eq!(q.to_dense()[(0, 2)], 0.7);
        assert_eq!(q.to_dense()[(2, 0)], -0.7);
        assert_eq!(
            build_q(&QSpec::Zero, &u, None, None, 0).unwrap(),
            Linear::Scalar(0.0, d)
        );
    }

    #[test]
    fn toward_soft_couples_the_class_direction_to_the_softest_axis() {
        let u = build_u(&USpec::Diag(vec![3.0, 0.2, 1.0, 0.5]), 4, 0).unwrap();
        // m along e_0: v is the softest axis e_1.
        let m = DVector::from_vec(vec![2.0, 0.0, 0.0, 0.0]);
        let q = build_q(&QSpec::TowardSoft(1.5), &u, Some(&m), None, 0)
            .unwrap()
            .to_dense();
        assert_eq!(q[(0, 1)], 1.5);
        assert_eq!(q[(1, 0)], -1.5);
        assert_eq!(q.iter().filter(|x| **x != 0.0).count(), 2);
        // m along the softest axis itself: the next softest (e_3, u = 0.5) is used.
        let m = DVector::from_vec(vec![0.0, 1.0, 0.0, 0.0]);
        let q = build_q(&QSpec::TowardSoft(1.0), &u, Some(&m), None, 0)
            .unwrap()
            .to_dense();
        assert_eq!(q[(1, 3)], 1.0);
        let err = build_q(&QSpec::TowardSoft(1.0), &u, None, None, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Q:") && err.contains("class direction"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_q() {
        let d = 3;
        let u = build_u(&USpec::Geomspace(0.1, 10.0), d, 0).unwrap();
        let check = |spec: QSpec, needle: &str| {
            let err = build_q(&spec, &u, None, None, 0).unwrap_err().to_string();
            assert!(err.starts_with("Q:") && err.contains(needle), "{err}");
        };
        check(QSpec::Pair(0, 3, 1.0), "out of range");
        check(QSpec::Pair(1, 1, 1.0), "differ");
        check(QSpec::Random(-1.0), "Frobenius");
        let s = Scratch::new("rotation-errors");
        check(QSpec::File(s.file("q.csv", "0,1\n-1,0\n")), "2×2");
        check(
            QSpec::File(s.file("sym.csv", "0,1,0\n1,0,0\n0,0,0\n")),
            "residual max |Q + Qᵀ| = 2.000e0",
        );
        let p = s.0.join("nan.npy");
        write_npy_f64(&p, &[1, 3], &[0.0, f64::NAN, 0.0]).unwrap();
        check(QSpec::File(p), "NaN");
    }

    /// Cost at larger d (run with `--ignored --nocapture`); checks the structure, not the Schur.
    #[test]
    #[ignore]
    fn optimal_q_timing_large_d() {
        for d in [256usize, 512, 1024] {
            let u = build_u(&USpec::Rotated(0.1, 10.0), d, 1).unwrap();
            let t = std::time::Instant::now();
            let q = optimal_q(&u, None).unwrap();
            let secs = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let gap = spectral_gap(&drift(&u, &q));
            let ubar = u.diagonal().sum() / d as f64;
            println!(
                "d={d}: optimal_q {secs:.2}s, Schur {:.2}s, gap − ū = {:.2e}",
                t.elapsed().as_secs_f64(),
                gap - ubar
            );
        }
    }
}
