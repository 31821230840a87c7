//! The CPU twin of `shaders/start.wgsl`: draw a particle from the start distribution.

use multiversion::multiversion;

use super::step::{Scratch, apply};
use crate::plan::StartPlan;
use crate::rng;

/// Index of the mixture component picked by uniform u (first cumulative weight above u).
pub fn pick(cumulative: &[f32], u: f32) -> usize {
    cumulative
        .iter()
        .position(|&c| u < c)
        .unwrap_or(cumulative.len() - 1)
}

/// Draws the particles `ids` into the rows of `xs`, compiled per instruction set like the step:
/// otherwise the `mul_add`s of a dense Cholesky factor are calls to the software fma.
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn start_rows(
    start_plan: &StartPlan,
    key: [u32; 2],
    ids: &[u64],
    xs: &mut [f32],
    s: &mut Scratch,
) {
    let d = xs.len() / ids.len().max(1);
    for (x, &id) in xs.chunks_mut(d).zip(ids) {
        start(start_plan, key, id, x, s);
    }
}

/// Draws particle `id` from the start distribution into x.
#[inline(always)]
pub fn start(start: &StartPlan, key: [u32; 2], id: u64, x: &mut [f32], s: &mut Scratch) {
    let d = x.len();
    let u = rng::uniform(rng::words(key, id, rng::INIT_STEP, rng::PICK_BLOCK)[0]);
    let k = pick(&start.cumulative, u);
    rng::fill_normals(key, id, rng::INIT_STEP, &mut s.z[..d]);
    apply(start.chol_form, &start.chol, &s.z[..d], x);
    for (xi, mi) in x.iter_mut().zip(&start.means[k * d..(k + 1) * d]) {
        *xi += mi;
    }
}
