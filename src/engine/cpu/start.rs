//! The CPU twin of `shaders/start.wgsl`: draw a particle from the start distribution.

use multiversion::multiversion;
use multiversion::target::target_cfg_f;

use super::lanes::{self, LANES};
use super::products;
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

/// Draws the particles `ids` into the rows of `xs`, [`LANES`] at a time: each lane performs
/// exactly [`start`]'s operations (`L ξ` as the lanes' blocked product, from 0 in ascending order
/// like `step::apply`), so the bits are the same. Compiled per instruction set like the step: a
/// dense Cholesky factor costs d² multiply-adds per particle, as much as a hundred steps at
/// d = 100 when they ran one particle at a time (and library calls outside a clone).
#[multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn start_rows(plan: &StartPlan, key: [u32; 2], ids: &[u64], xs: &mut [f32]) {
    const RB: usize = lanes::block_rows(target_cfg_f!(target_feature = "avx512f"));
    let d = xs.len() / ids.len().max(1);
    let mut z = vec![[0.0f32; LANES]; d];
    let mut lz = vec![[0.0f32; LANES]; d];
    for (xs, ids) in xs.chunks_mut(LANES * d).zip(ids.chunks(LANES)) {
        let id_lo = std::array::from_fn(|l| ids.get(l).map_or(0, |&id| id as u32));
        let id_hi = std::array::from_fn(|l| ids.get(l).map_or(0, |&id| (id >> 32) as u32));
        for (block, z4) in z.chunks_mut(4).enumerate() {
            let w = rng::normal4_lanes(key, &id_lo, &id_hi, rng::INIT_STEP, block as u32);
            z4.copy_from_slice(&w[..z4.len()]);
        }
        products::apply::<RB>(plan.chol_form, &plan.chol, &z, &mut lz);
        for (l, (x, &id)) in xs.chunks_mut(d).zip(ids).enumerate() {
            let u = rng::uniform(rng::words(key, id, rng::INIT_STEP, rng::PICK_BLOCK)[0]);
            let mean = &plan.means[pick(&plan.cumulative, u) * d..][..d];
            for ((xi, lzi), mi) in x.iter_mut().zip(&lz).zip(mean) {
                *xi = lzi[l] + mi;
            }
        }
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
