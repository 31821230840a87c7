//! Symmetric positive definite helpers in the cheapest form of each matrix: quadratic forms of
//! the inverse, log-determinants and the smallest eigenvalue after a rank-one downdate.

use nalgebra::DVector;

use crate::linalg::Linear;

/// `vᵀ G⁻¹ v` for a symmetric positive definite G; `+∞` if G is not positive definite.
pub(crate) fn quad_inv(g: &Linear, v: &DVector<f64>) -> f64 {
    match g {
        Linear::Scalar(c, _) => {
            if *c > 0.0 {
                v.norm_squared() / c
            } else {
                f64::INFINITY
            }
        }
        Linear::Diagonal(diag) => {
            if diag.iter().all(|&x| x > 0.0) {
                v.iter().zip(diag.iter()).map(|(x, g)| x * x / g).sum()
            } else {
                f64::INFINITY
            }
        }
        Linear::Dense(m) => match ((m + m.transpose()) * 0.5).cholesky() {
            Some(ch) => {
                let mut w = v.clone();
                ch.l_dirty().solve_lower_triangular_mut(&mut w);
                // l_dirty's upper part is garbage; solve_lower_triangular only reads the lower.
                w.norm_squared()
            }
            None => f64::INFINITY,
        },
    }
}

/// `log det G` of a symmetric positive definite G; `None` if G is not positive definite.
pub(crate) fn log_det_spd(g: &Linear) -> Option<f64> {
    match g {
        Linear::Scalar(c, d) => (*c > 0.0).then(|| *d as f64 * c.ln()),
        Linear::Diagonal(v) => v
            .iter()
            .all(|&x| x > 0.0)
            .then(|| v.iter().map(|x| x.ln()).sum()),
        Linear::Dense(m) => ((m + m.transpose()) * 0.5)
            .cholesky()
            .map(|ch| 2.0 * ch.l_dirty().diagonal().iter().map(|x| x.ln()).sum::<f64>()),
    }
}

/// `λ_min(G − m mᵀ)` for a symmetric G: closed form (scalar), secular equation (diagonal) or a
/// dense symmetric eigensolve (O(d³)).
pub(crate) fn lambda_min_rank_one_down(g: &Linear, m: &DVector<f64>) -> f64 {
    match g {
        Linear::Scalar(c, d) => {
            let n2 = m.norm_squared();
            if *d >= 2 { (c - n2).min(*c) } else { c - n2 }
        }
        Linear::Diagonal(diag) => {
            let dmin_all = diag.iter().copied().fold(f64::INFINITY, f64::min);
            let pairs: Vec<(f64, f64)> = diag
                .iter()
                .zip(m.iter())
                .filter(|(_, mi)| **mi != 0.0)
                .map(|(di, mi)| (*di, mi * mi))
                .collect();
            if pairs.is_empty() {
                return dmin_all;
            }
            let dmin = pairs.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let n2: f64 = pairs.iter().map(|p| p.1).sum();
            // Secular equation f(λ) = Σ m_i²/(d_i − λ) = 1 on (dmin − ‖m‖², dmin): f increases
            // from ≤ 1 to +∞, so the smallest eigenvalue of the coupled block is its root.
            let f = |l: f64| pairs.iter().map(|(di, mi2)| mi2 / (di - l)).sum::<f64>();
            let (mut lo, mut hi) = (dmin - n2, dmin);
            for _ in 0..300 {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                if f(mid) > 1.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            lo.min(dmin_all)
        }
        Linear::Dense(mat) => {
            let mut a = (mat + mat.transpose()) * 0.5;
            a.ger(-1.0, m, m, 1.0);
            a.symmetric_eigenvalues()
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min)
        }
    }
}
