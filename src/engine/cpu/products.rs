//! The register-blocked products of the lane kernels: `L x` for a matrix in its form, `M x` row by
//! row and `Wᵀ e` column by column, over blocks of [`LANES`] particles. Each lane sums in the
//! scalar reference's order ([`super::step`]), each term fused (`mul_add`), whatever the block
//! size RB, so every target and block gives the same bits.

#[cfg(target_arch = "x86_64")]
use super::avx512;
use super::{LANES, Lanes};
use crate::linalg::Form;

/// `out = L x` for a matrix stored in `form`, lane by lane ([`super::step::apply`]).
#[inline(always)]
pub fn apply<const RB: usize>(form: Form, coeffs: &[f32], x: &[Lanes], out: &mut [Lanes]) {
    match form {
        // Flat loops over contiguous lanes: written row by row, LLVM's AVX-512 vectoriser
        // would vectorise across rows with gathers and scatters.
        Form::Scalar => {
            let c = coeffs[0];
            for (o, v) in out.as_flattened_mut().iter_mut().zip(x.as_flattened()) {
                *o = c * v;
            }
        }
        Form::Diagonal => {
            let rows = out.as_flattened_mut().iter_mut().zip(x.as_flattened());
            for (i, (o, v)) in rows.enumerate() {
                *o = coeffs[i / LANES] * v;
            }
        }
        Form::Dense => {
            out.iter_mut().for_each(|o| *o = [0.0; LANES]);
            rows_dot::<RB>(coeffs, x.len(), x, out);
        }
    }
}

/// `out[r] += Σ_c mat[r][c] · x[c]` for every row r of the row-major `mat` (rows × d), summed in
/// ascending c, each term fused; RB rows at a time share each load of x, and the rows left over
/// go through blocks of 4 and then 1 (every row's sum has the same order whatever its block).
#[inline(always)]
pub fn rows_dot<const RB: usize>(mat: &[f32], d: usize, x: &[Lanes], out: &mut [Lanes]) {
    #[cfg(target_arch = "x86_64")]
    let mut done = if RB == avx512::RB && avx512::available() {
        // SAFETY: the CPU has AVX-512F.
        unsafe { avx512::rows_block(mat, d, x, out) }
    } else {
        rows_block::<RB>(mat, d, x, out)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let mut done = rows_block::<RB>(mat, d, x, out);
    if RB > 4 {
        done += rows_block::<4>(&mat[done * d..], d, x, &mut out[done..]);
    }
    if RB > 1 {
        rows_block::<1>(&mat[done * d..], d, x, &mut out[done..]);
    }
}

/// [`rows_dot`] for the rows of `out` that fill whole blocks of RB; returns how many it did.
#[inline(always)]
fn rows_block<const RB: usize>(mat: &[f32], d: usize, x: &[Lanes], out: &mut [Lanes]) -> usize {
    let x = &x[..d];
    let mut rows = mat.chunks_exact(d);
    let outs = out.chunks_exact_mut(RB);
    let whole = outs.len() * RB;
    for acc in outs {
        let m: [&[f32]; RB] = std::array::from_fn(|_| rows.next().expect("a row per output"));
        let mut a: [Lanes; RB] = std::array::from_fn(|q| acc[q]);
        for (c, xc) in x.iter().enumerate() {
            for q in 0..RB {
                let w = m[q][c];
                for l in 0..LANES {
                    a[q][l] = w.mul_add(xc[l], a[q][l]);
                }
            }
        }
        acc.copy_from_slice(&a);
    }
    whole
}

/// `out[i] += Σ_r e[r] · mat[r][i]` for every column i of the row-major `mat` (rows × d), summed
/// in ascending r, each term fused; RB columns at a time share each load of e, the columns left
/// over go through blocks of 4 and then 1.
#[inline(always)]
pub fn cols_dot<const RB: usize>(mat: &[f32], d: usize, e: &[Lanes], out: &mut [Lanes]) {
    #[cfg(target_arch = "x86_64")]
    let mut done = if RB == avx512::RB && avx512::available() {
        // SAFETY: the CPU has AVX-512F.
        unsafe { avx512::cols_block(mat, d, e, out, 0) }
    } else {
        cols_block::<RB>(mat, d, e, out, 0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let mut done = cols_block::<RB>(mat, d, e, out, 0);
    if RB > 4 {
        done = cols_block::<4>(mat, d, e, out, done);
    }
    if RB > 1 {
        cols_block::<1>(mat, d, e, out, done);
    }
}

/// [`cols_dot`] for the columns from `first` on that fill whole blocks of RB; returns the first
/// column it left.
#[inline(always)]
fn cols_block<const RB: usize>(
    mat: &[f32],
    d: usize,
    e: &[Lanes],
    out: &mut [Lanes],
    first: usize,
) -> usize {
    let blocks = out[first..d].chunks_exact_mut(RB);
    let end = first + blocks.len() * RB;
    for (k, acc) in blocks.enumerate() {
        let i0 = first + k * RB;
        let mut a: [Lanes; RB] = std::array::from_fn(|q| acc[q]);
        for (er, row) in e.iter().zip(mat.chunks_exact(d)) {
            let w: [f32; RB] = std::array::from_fn(|q| row[i0 + q]);
            for q in 0..RB {
                for l in 0..LANES {
                    a[q][l] = er[l].mul_add(w[q], a[q][l]);
                }
            }
        }
        acc.copy_from_slice(&a);
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::HostRng;

    fn lanes(r: &mut HostRng, n: usize) -> Vec<Lanes> {
        (0..n)
            .map(|_| std::array::from_fn(|_| r.normal() as f32))
            .collect()
    }

    /// The register-blocked products against plain loops, bit for bit, for sizes around the
    /// register block (remainders of rows and columns included).
    #[test]
    fn blocked_products_equal_plain_loops() {
        let mut r = HostRng::new(1, "lanes test");
        for (rows, d) in [(1, 1), (3, 5), (4, 4), (9, 7), (13, 21), (64, 13)] {
            check::<1>(&mut r, rows, d);
            check::<2>(&mut r, rows, d);
            check::<4>(&mut r, rows, d);
            check::<8>(&mut r, rows, d);
        }
    }

    fn check<const RB: usize>(r: &mut HostRng, rows: usize, d: usize) {
        let mat: Vec<f32> = (0..rows * d).map(|_| r.normal() as f32).collect();
        let x = lanes(r, d);
        let init = lanes(r, rows);
        let mut got = init.clone();
        rows_dot::<RB>(&mat, d, &x, &mut got);
        for (i, want) in init.iter().enumerate() {
            for l in 0..LANES {
                let mut acc = want[l];
                for c in 0..d {
                    acc = mat[i * d + c].mul_add(x[c][l], acc);
                }
                assert_eq!(got[i][l].to_bits(), acc.to_bits(), "rows_dot {rows}×{d}");
            }
        }
        let e = lanes(r, rows);
        let init = lanes(r, d);
        let mut got = init.clone();
        cols_dot::<RB>(&mat, d, &e, &mut got);
        for (i, want) in init.iter().enumerate() {
            for l in 0..LANES {
                let mut acc = want[l];
                for k in 0..rows {
                    acc = e[k][l].mul_add(mat[k * d + i], acc);
                }
                assert_eq!(got[i][l].to_bits(), acc.to_bits(), "cols_dot {rows}×{d}");
            }
        }
    }
}
