//! The CPU twin of `shaders/start.wgsl`: draw a particle from the start distribution.

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

/// Draws particle `id` from the start distribution into x.
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
