//! Host-side matrices that keep the cheapest exact form: a multiple of the identity, a diagonal,
//! or dense. Every per-step coefficient of the plan is one of these, so a run with U = I and Q = 0
//! never touches a d×d matrix, and the engines can pick the matching kernel.

use anyhow::{Result, bail};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

/// The storage form of a [`Linear`]; ordered from cheapest to most general.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Form {
    Scalar,
    Diagonal,
    Dense,
}

/// A d×d real matrix in its cheapest exact form (f64).
#[derive(Clone, Debug, PartialEq)]
pub enum Linear {
    Scalar(f64, usize),
    Diagonal(DVector<f64>),
    Dense(DMatrix<f64>),
}

impl Linear {
    pub fn identity(d: usize) -> Self {
        Linear::Scalar(1.0, d)
    }

    /// Classify a dense matrix into its cheapest exact form.
    pub fn from_dense(m: DMatrix<f64>) -> Self {
        let d = m.nrows();
        let off_diagonal_zero = (0..d).all(|i| (0..d).all(|j| i == j || m[(i, j)] == 0.0));
        if !off_diagonal_zero {
            return Linear::Dense(m);
        }
        let diag = m.diagonal();
        if d > 0 && diag.iter().all(|&v| v == diag[0]) {
            Linear::Scalar(diag[0], d)
        } else {
            Linear::Diagonal(diag)
        }
    }

    pub fn dim(&self) -> usize {
        match self {
            Linear::Scalar(_, d) => *d,
            Linear::Diagonal(v) => v.len(),
            Linear::Dense(m) => m.nrows(),
        }
    }

    pub fn form(&self) -> Form {
        match self {
            Linear::Scalar(..) => Form::Scalar,
            Linear::Diagonal(_) => Form::Diagonal,
            Linear::Dense(_) => Form::Dense,
        }
    }

    /// The same matrix stored in form `form` (which must be at least as general).
    pub fn in_form(&self, form: Form) -> Self {
        match (self, form) {
            (_, f) if f == self.form() => self.clone(),
            (Linear::Scalar(c, d), Form::Diagonal) => {
                Linear::Diagonal(DVector::from_element(*d, *c))
            }
            (_, Form::Dense) => Linear::Dense(self.to_dense()),
            _ => panic!("cannot store a {:?} matrix as {:?}", self.form(), form),
        }
    }

    pub fn to_dense(&self) -> DMatrix<f64> {
        match self {
            Linear::Scalar(c, d) => DMatrix::identity(*d, *d) * *c,
            Linear::Diagonal(v) => DMatrix::from_diagonal(v),
            Linear::Dense(m) => m.clone(),
        }
    }

    pub fn diagonal(&self) -> DVector<f64> {
        match self {
            Linear::Scalar(c, d) => DVector::from_element(*d, *c),
            Linear::Diagonal(v) => v.clone(),
            Linear::Dense(m) => m.diagonal(),
        }
    }

    pub fn scale(&self, s: f64) -> Self {
        match self {
            Linear::Scalar(c, d) => Linear::Scalar(c * s, *d),
            Linear::Diagonal(v) => Linear::Diagonal(v * s),
            Linear::Dense(m) => Linear::Dense(m * s),
        }
    }

    pub fn add(&self, other: &Linear) -> Self {
        self.zip(other, |a, b| a + b)
    }

    pub fn sub(&self, other: &Linear) -> Self {
        self.zip(other, |a, b| a - b)
    }

    /// The block-diagonal matrix diag(a, b), in the cheapest form that holds it.
    pub fn block_diag(a: &Linear, b: &Linear) -> Self {
        match (a, b) {
            (Linear::Scalar(x, m), Linear::Scalar(y, n)) if x == y => Linear::Scalar(*x, m + n),
            (Linear::Dense(_), _) | (_, Linear::Dense(_)) => {
                let (m, n) = (a.dim(), b.dim());
                let mut out = DMatrix::zeros(m + n, m + n);
                out.view_mut((0, 0), (m, m)).copy_from(&a.to_dense());
                out.view_mut((m, m), (n, n)).copy_from(&b.to_dense());
                Linear::Dense(out)
            }
            _ => Linear::Diagonal(DVector::from_iterator(
                a.dim() + b.dim(),
                a.diagonal().iter().chain(b.diagonal().iter()).copied(),
            )),
        }
    }

    /// The square block of `len` rows and columns starting at `start`.
    pub fn block(&self, start: usize, len: usize) -> Self {
        match self {
            Linear::Scalar(c, _) => Linear::Scalar(*c, len),
            Linear::Diagonal(v) => Linear::Diagonal(v.rows(start, len).into_owned()),
            Linear::Dense(m) => Linear::Dense(m.view((start, start), (len, len)).into_owned()),
        }
    }

    /// `self + c·I`.
    pub fn add_identity(&self, c: f64) -> Self {
        self.add(&Linear::Scalar(c, self.dim()))
    }

    fn zip(&self, other: &Linear, f: impl Fn(f64, f64) -> f64) -> Self {
        assert_eq!(self.dim(), other.dim(), "matrix dimensions differ");
        match (self, other) {
            (Linear::Scalar(a, d), Linear::Scalar(b, _)) => Linear::Scalar(f(*a, *b), *d),
            (Linear::Dense(_), _) | (_, Linear::Dense(_)) => {
                Linear::Dense(self.to_dense().zip_map(&other.to_dense(), f))
            }
            _ => Linear::Diagonal(self.diagonal().zip_map(&other.diagonal(), f)),
        }
    }

    /// The matrix product `self · other`.
    pub fn mul(&self, other: &Linear) -> Self {
        assert_eq!(self.dim(), other.dim(), "matrix dimensions differ");
        match (self, other) {
            (Linear::Scalar(a, _), o) => o.scale(*a),
            (s, Linear::Scalar(b, _)) => s.scale(*b),
            (Linear::Diagonal(a), Linear::Diagonal(b)) => Linear::Diagonal(a.component_mul(b)),
            (Linear::Diagonal(a), Linear::Dense(m)) => {
                let mut r = m.clone();
                for (i, mut row) in r.row_iter_mut().enumerate() {
                    row *= a[i];
                }
                Linear::Dense(r)
            }
            (Linear::Dense(m), Linear::Diagonal(b)) => {
                let mut r = m.clone();
                for (j, mut col) in r.column_iter_mut().enumerate() {
                    col *= b[j];
                }
                Linear::Dense(r)
            }
            (Linear::Dense(a), Linear::Dense(b)) => Linear::Dense(a * b),
        }
    }

    pub fn transpose(&self) -> Self {
        match self {
            Linear::Dense(m) => Linear::Dense(m.transpose()),
            other => other.clone(),
        }
    }

    /// `self · v`.
    pub fn apply(&self, v: &DVector<f64>) -> DVector<f64> {
        match self {
            Linear::Scalar(c, _) => v * *c,
            Linear::Diagonal(d) => d.component_mul(v),
            Linear::Dense(m) => m * v,
        }
    }

    /// `vᵀ · self · v`.
    pub fn quad(&self, v: &DVector<f64>) -> f64 {
        v.dot(&self.apply(v))
    }

    /// `aᵀ · self · a` for every row a of `rows` (N×d), the empirical plan's N biases at each
    /// time point. Accumulated column by column: the matrix is column-major, so every pass is
    /// contiguous (row by row would stride through all of it for each point).
    pub fn quad_rows(&self, rows: &DMatrix<f64>) -> Vec<f64> {
        let mut q = vec![0.0; rows.nrows()];
        let mut add = |weighted: &mut dyn Iterator<Item = f64>, col: &[f64]| {
            for ((q, w), a) in q.iter_mut().zip(weighted).zip(col) {
                *q += w * a;
            }
        };
        let n = rows.nrows().max(1);
        let columns = rows.as_slice().chunks_exact(n);
        match self {
            Linear::Scalar(c, _) => columns.for_each(|a| add(&mut a.iter().map(|x| c * x), a)),
            Linear::Diagonal(g) => columns
                .zip(g.iter())
                .for_each(|(a, g)| add(&mut a.iter().map(|x| g * x), a)),
            Linear::Dense(m) => {
                let lifted = rows * m;
                for (l, a) in lifted.as_slice().chunks_exact(n).zip(columns) {
                    add(&mut l.iter().copied(), a);
                }
            }
        }
        q
    }

    /// Inverse of a symmetric positive definite matrix (Cholesky), or an error.
    pub fn inverse_spd(&self) -> Result<Self> {
        Ok(match self {
            Linear::Scalar(c, d) if *c > 0.0 => Linear::Scalar(1.0 / c, *d),
            Linear::Diagonal(v) if v.iter().all(|&x| x > 0.0) => {
                Linear::Diagonal(v.map(|x| 1.0 / x))
            }
            Linear::Dense(m) => match m.clone().cholesky() {
                Some(ch) => Linear::Dense(ch.inverse()),
                None => bail!("matrix is not positive definite"),
            },
            _ => bail!("matrix is not positive definite"),
        })
    }

    /// Lower Cholesky factor L with `self = L Lᵀ` of a symmetric positive semi-definite matrix.
    /// Tiny negative round-off on the diagonal is clipped to zero.
    pub fn cholesky(&self) -> Result<Self> {
        Ok(match self {
            Linear::Scalar(c, d) => Linear::Scalar(c.max(0.0).sqrt(), *d),
            Linear::Diagonal(v) => Linear::Diagonal(v.map(|x| x.max(0.0).sqrt())),
            Linear::Dense(m) => {
                let sym = (m + m.transpose()) * 0.5;
                // Jitter relative to the scale keeps semi-definite covariances factorisable.
                let scale = sym.diagonal().amax().max(f64::MIN_POSITIVE);
                let d = m.nrows();
                for jitter in [0.0, 1e-14, 1e-12, 1e-10] {
                    let shifted = &sym + DMatrix::identity(d, d) * (jitter * scale);
                    if let Some(ch) = shifted.cholesky() {
                        return Ok(Linear::Dense(ch.l()));
                    }
                }
                bail!("matrix is not positive semi-definite")
            }
        })
    }

    /// `exp(s · self)`.
    pub fn exp_scaled(&self, s: f64) -> Self {
        match self {
            Linear::Scalar(c, d) => Linear::Scalar((c * s).exp(), *d),
            Linear::Diagonal(v) => Linear::Diagonal(v.map(|x| (x * s).exp())),
            Linear::Dense(m) => Linear::Dense((m * s).exp()),
        }
    }

    /// Symmetric eigenvalues in ascending order.
    pub fn symmetric_eigenvalues(&self) -> Vec<f64> {
        let mut e: Vec<f64> = match self {
            Linear::Scalar(c, d) => vec![*c; *d],
            Linear::Diagonal(v) => v.iter().copied().collect(),
            Linear::Dense(m) => ((m + m.transpose()) * 0.5)
                .symmetric_eigenvalues()
                .iter()
                .copied()
                .collect(),
        };
        e.sort_by(f64::total_cmp);
        e
    }

    /// Largest absolute row sum (the ∞-norm), a cheap bound on the spectral norm's scale.
    /// Spectral radius max |λ|: exact for scalar and diagonal forms; for a dense matrix the
    /// growth rate ‖Mᵏv‖^(1/k) of a fixed start vector over 200 products (the dominant
    /// eigenvalue's modulus, complex pairs included; O(d²) per product).
    pub fn spectral_radius(&self) -> f64 {
        match self {
            Linear::Scalar(c, _) => c.abs(),
            Linear::Diagonal(v) => v.amax(),
            Linear::Dense(m) => {
                let d = m.nrows();
                // Weyl sequence: deterministic, never orthogonal to a structured eigenvector.
                let mut v = DVector::from_fn(d, |i, _| {
                    ((i as f64 + 1.0) * 0.618_033_988_75).fract() - 0.5
                });
                let mut log_growth = 0.0;
                let (burn, count) = (100, 100);
                for k in 0..burn + count {
                    v = m * &v;
                    let norm = v.norm();
                    if !(norm.is_finite() && norm > 0.0) {
                        return if norm == 0.0 { 0.0 } else { f64::INFINITY };
                    }
                    v /= norm;
                    if k >= burn {
                        log_growth += norm.ln();
                    }
                }
                (log_growth / count as f64).exp()
            }
        }
    }

    /// Whether every entry is finite (without forming a dense matrix).
    pub fn all_finite(&self) -> bool {
        match self {
            Linear::Scalar(c, _) => c.is_finite(),
            Linear::Diagonal(v) => v.iter().all(|x| x.is_finite()),
            Linear::Dense(m) => m.iter().all(|x| x.is_finite()),
        }
    }

    /// Largest absolute entry.
    pub fn amax(&self) -> f64 {
        match self {
            Linear::Scalar(c, _) => c.abs(),
            Linear::Diagonal(v) => v.amax(),
            Linear::Dense(m) => m.amax(),
        }
    }

    /// `max |M − s·Mᵀ|` for s = 1 (asymmetry) or s = −1 (the residual of antisymmetry), in the
    /// matrix's own form.
    pub fn transpose_residual(&self, s: f64) -> f64 {
        match self {
            Linear::Scalar(c, _) => (c - s * c).abs(),
            Linear::Diagonal(v) => v.iter().map(|x| (x - s * x).abs()).fold(0.0, f64::max),
            Linear::Dense(m) => (m - m.transpose() * s).amax(),
        }
    }

    /// The Frobenius norm.
    pub fn frobenius(&self) -> f64 {
        match self {
            Linear::Scalar(c, d) => c.abs() * (*d as f64).sqrt(),
            Linear::Diagonal(v) => v.norm(),
            Linear::Dense(m) => m.norm(),
        }
    }

    pub fn norm_inf(&self) -> f64 {
        match self {
            Linear::Scalar(c, _) => c.abs(),
            Linear::Diagonal(v) => v.amax(),
            Linear::Dense(m) => m
                .row_iter()
                .map(|r| r.iter().map(|x| x.abs()).sum::<f64>())
                .fold(0.0, f64::max),
        }
    }

    /// Coefficients in f32 as the engines store them: 1 value (scalar), d (diagonal) or d² row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Linear::Scalar(c, _) => vec![*c as f32],
            Linear::Diagonal(v) => v.iter().map(|&x| x as f32).collect(),
            Linear::Dense(m) => m.transpose().iter().map(|&x| x as f32).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_compose_like_dense() {
        let d = 3;
        let s = Linear::Scalar(2.0, d);
        let g = Linear::Diagonal(DVector::from_vec(vec![1.0, 2.0, 3.0]));
        let m = Linear::Dense(DMatrix::from_row_slice(
            3,
            3,
            &[1., 2., 0., -1., 3., 1., 0., 1., 2.],
        ));
        for a in [&s, &g, &m] {
            for b in [&s, &g, &m] {
                let want = a.to_dense() * b.to_dense();
                assert!((a.mul(b).to_dense() - want).amax() < 1e-12);
                assert!((a.add(b).to_dense() - (a.to_dense() + b.to_dense())).amax() < 1e-12);
            }
            assert_eq!(a.mul(&s).form(), a.form());
        }
        assert_eq!(Linear::from_dense(s.to_dense()), s);
        assert_eq!(Linear::from_dense(g.to_dense()), g);
        let e = m.exp_scaled(-0.3).to_dense();
        assert!((e - (m.to_dense() * -0.3).exp()).amax() < 1e-14);
        let f = m.to_f32();
        assert_eq!(f[1], 2.0); // row-major
        let rows = DMatrix::from_row_slice(2, 3, &[1., -2., 0.5, 3., 0., -1.]);
        for a in [&s, &g, &m] {
            for (q, row) in a.quad_rows(&rows).iter().zip(rows.row_iter()) {
                assert!((q - a.quad(&row.transpose())).abs() < 1e-12);
            }
        }
    }
}
