//! The two products of the empirical softmax ([`super::products::rows_dot`] and
//! [`super::products::cols_dot`]) as AVX-512 micro-kernels of 8 rows (or columns) × the 32 lanes of
//! a block: sixteen accumulator registers, twice the FMA chains Sapphire Rapids needs to hide the
//! FMA latency on its two ports. Written in plain Rust, a block of more than 4 rows is vectorised
//! by LLVM across the rows, with gathers (ten times slower), so these are intrinsics. Every sum
//! has the order of the plain loops (ascending c, or ascending r, each term one fused
//! multiply-add), so they give the same bits (`blocked_products_equal_plain_loops`).

use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_storeu_ps,
};

use super::{LANES, Lanes};

/// Rows (or columns) per micro-kernel.
pub const RB: usize = 8;

/// Whether this CPU runs these kernels (detected once, then a relaxed load).
#[inline(always)]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// The two 16-lane halves of a block's row.
#[inline(always)]
unsafe fn load(v: &Lanes) -> [__m512; 2] {
    let p = v.as_ptr();
    // SAFETY: a Lanes holds 32 f32, so both 16-float loads are in bounds.
    unsafe { [_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(LANES / 2))] }
}

#[inline(always)]
unsafe fn store(v: &mut Lanes, a: [__m512; 2]) {
    let p = v.as_mut_ptr();
    // SAFETY: as in `load`.
    unsafe {
        _mm512_storeu_ps(p, a[0]);
        _mm512_storeu_ps(p.add(LANES / 2), a[1]);
    }
}

/// `out[r] += Σ_c mat[r][c] · x[c]` for the rows of `out` that fill whole blocks of [`RB`];
/// returns how many rows it did.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn rows_block(mat: &[f32], d: usize, x: &[Lanes], out: &mut [Lanes]) -> usize {
    let x = &x[..d];
    let outs = out.chunks_exact_mut(RB);
    let whole = outs.len() * RB;
    for (acc, m) in outs.zip(mat.chunks_exact(RB * d)) {
        let rows: [*const f32; RB] = std::array::from_fn(|q| m[q * d..(q + 1) * d].as_ptr());
        // SAFETY: every load and store is of a whole Lanes; rows[q].add(c) for c < d stays in
        // row q of this block (no bounds checks in the inner loop, which had them spill).
        unsafe {
            let mut a: [[__m512; 2]; RB] = std::array::from_fn(|q| load(&acc[q]));
            for (c, xc) in x.iter().enumerate() {
                let xv = load(xc);
                for q in 0..RB {
                    let w = _mm512_set1_ps(*rows[q].add(c));
                    a[q][0] = _mm512_fmadd_ps(w, xv[0], a[q][0]);
                    a[q][1] = _mm512_fmadd_ps(w, xv[1], a[q][1]);
                }
            }
            for (o, a) in acc.iter_mut().zip(a) {
                store(o, a);
            }
        }
    }
    whole
}

/// `out[i] += Σ_r e[r] · mat[r][i]` for the columns from `first` on that fill whole blocks of
/// [`RB`]; returns the first column it left.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn cols_block(
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
        // SAFETY: every load and store is of a whole Lanes.
        unsafe {
            let mut a: [[__m512; 2]; RB] = std::array::from_fn(|q| load(&acc[q]));
            for (er, row) in e.iter().zip(mat.chunks_exact(d)) {
                let ev = load(er);
                let w = row[i0..i0 + RB].as_ptr();
                for (q, aq) in a.iter_mut().enumerate() {
                    let wq = _mm512_set1_ps(*w.add(q));
                    aq[0] = _mm512_fmadd_ps(ev[0], wq, aq[0]);
                    aq[1] = _mm512_fmadd_ps(ev[1], wq, aq[1]);
                }
            }
            for (o, a) in acc.iter_mut().zip(a) {
                store(o, a);
            }
        }
    }
    end
}
