//! What a plan occupies on the device besides its positions: the step kernels' scratch rows per
//! particle (sized by the softmax tile of the empirical target) and the resident training points.
//! Definitions only, below the batch and the step that allocate and use them.

use crate::engine::SOFTMAX_ROWS;
use crate::plan::{Kind, Plan, Shape};

/// Scratch rows of the softmax state carried between parts (`ROW_STATE` of the kernel): max, Σe,
/// Σe², argmax, the exact scheme's conditional uniform, its pick and the uniform inside the tile.
pub(super) const STATE_ROWS: usize = 7;

/// Training points per softmax tile: the CPU's block, so both engines round the online softmax
/// alike for every d.
pub(super) fn rows_per_tile(_shape: &Shape) -> usize {
    SOFTMAX_ROWS
}

/// Scratch rows per particle: B x / M x (d), Wᵀ r (d), purity (1), then the mixture's K logits
/// or one tile's logits of the empirical target and its softmax state between parts.
pub(super) fn scratch_rows(plan: &Plan) -> usize {
    let d = plan.dim;
    match plan.kind {
        // (Heun keeps x at the step's start in d more.)
        Kind::Mixture => {
            2 * d + 1 + plan.centers_count + if plan.scheme.corrects() { d } else { 0 }
        }
        Kind::Empirical => 2 * d + 1 + rows_per_tile(&plan.shape()) + STATE_ROWS,
    }
}

/// Bytes of the training points an empirical plan keeps on the device (0 for a mixture).
pub(super) fn training_bytes(plan: &Plan) -> u64 {
    match plan.kind {
        Kind::Empirical => (plan.centers.len() * 4) as u64,
        Kind::Mixture => 0,
    }
}
