//! The loop cost model of the step kernels on a loop-limited driver (`loop_budget.rs`): loop
//! iterations of one evaluation and one update of an invocation, per variant.

use super::super::GpuEngine;
use super::super::footprint::rows_per_tile;
use super::super::loop_budget::{LOOP_BUDGET, apply_cost, block_cost, cuts_loops};
use super::super::shaders::{ROW_BLOCK, WORKGROUP};
use super::kernels::{onchip_tile_width, tiled};
use super::variant::{ONCHIP_GROUP, Variant, wide_blocks, wide_group};
use crate::linalg::Form;
use crate::plan::{Kind, Plan};

/// Loop iterations of an empirical evaluation: outside the tiles (B x, the final scaling or the
/// drawn row, the carried state) and per tile (its load, logits, exponentials, and Wᵀe or the
/// exact scheme's draw with the copy of a picked row), in workgroups of `wg` invocations (who
/// share a tile's load).
pub(super) fn eval_costs(plan: &Plan, wg: usize) -> (u64, u64) {
    let d = plan.dim as u64;
    let r = rows_per_tile(&plan.shape()) as u64;
    let fixed = apply_cost(plan.b_form, d) + d + 16;
    let tail = block_cost(d, r).max(2 * r + d);
    let load = if tiled(&plan.shape()) {
        (r * d).div_ceil(wg as u64)
    } else {
        0
    };
    let per_tile = load + block_cost(r, d) + r + tail;
    (fixed, per_tile)
}

/// Loop iterations (upper bounds, counting the unrolled 8-row loops as loops) of one evaluation
/// and one update of an invocation of the step kernels. An empirical evaluation split in parts
/// ([`super::training`]) is counted per part, each within the budget by construction.
fn op_costs(plan: &Plan, whole: bool, wg: usize) -> (u64, u64) {
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let eval = match plan.kind {
        Kind::Mixture => {
            apply_cost(plan.b_form, d) + block_cost(k, d) + 2 * k + block_cost(d, k) + 16
        }
        Kind::Empirical if whole => {
            let (fixed, per_tile) = eval_costs(plan, wg);
            fixed + k.div_ceil(rows_per_tile(&plan.shape()) as u64) * per_tile
        }
        Kind::Empirical => 0,
    };
    let blocks = d.div_ceil(ROW_BLOCK as u64);
    let p_cost = if plan.p_form == Form::Dense {
        block_cost(d, d)
    } else {
        blocks * ROW_BLOCK as u64
    };
    // Per block of 8 rows: two Philox calls (10 rounds each) for each of four particles.
    let update = apply_cost(plan.m_form, d) + p_cost + blocks * (8 * 10 + 8);
    if plan.scheme.corrects() {
        // Heun's step: x₀ kept, the predictor, a second evaluation and the corrector.
        return (eval, d + 2 * (update + 16) + eval);
    }
    (eval, update + 16)
}

/// The same for the on-chip variants (`step_mixture_onchip.wgsl`, `step_empirical_onchip.wgsl`),
/// whose loops over rows of a product run one row (or an unrolled block of 8) per iteration: d·d
/// per dense product, d·K for a mixture's logits and Wᵀ r, for the empirical target per tile its
/// loads (a share of the workgroup's), 8-row blocks over d for the logits and over the tile for
/// Wᵀe, the max and the exponentials; a Philox call (10 rounds) per four coordinates; plus the
/// loads and stores of x and v at the ends.
fn onchip_op_costs(plan: &Plan) -> (u64, u64) {
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let apply = |f: Form| if f == Form::Dense { d * d + d } else { d };
    let eval = match plan.kind {
        Kind::Mixture => apply(plan.b_form) + k * d + 3 * k + d * k + 2 * d,
        Kind::Empirical => {
            let shape = plan.shape();
            let (r, tw, rb) = (
                rows_per_tile(&shape) as u64,
                onchip_tile_width(&shape) as u64,
                ROW_BLOCK as u64,
            );
            let chunks = d.div_ceil(tw);
            let load = (r * tw).div_ceil(ONCHIP_GROUP as u64) + 2;
            let logits = chunks * load + r.div_ceil(rb) * (d + 2 * rb * chunks);
            let weighted = (chunks - 1) * load + (d.div_ceil(rb) + chunks) * (r + 2 * rb);
            let per_tile = logits + 4 * r + weighted;
            apply(plan.b_form) + k.div_ceil(r) * per_tile + 2 * d
        }
    };
    let p_cost = if plan.p_form == Form::Dense {
        d * d + d
    } else {
        d
    };
    let noise = if plan.noise_form == Form::Dense {
        d * d + 2 * d
    } else {
        0
    };
    let update = apply(plan.m_form) + p_cost + d.div_ceil(4) * (10 + 4) + noise;
    (eval + 4 * d + 16, update + 4 * d + 16)
}

/// The same for the wide variant (`step_mixture_wide.wgsl`), per invocation, which owns R = 4·QW
/// coordinates of its particle: R per diagonal product, d·R (QW tiles of 4·WWG columns for R
/// rows, plus the tile's copy and the barriers) per dense one; for the logits R per group of
/// four classes plus the tree's log2 WWG rounds; K per pass over the logits (max, exponentials,
/// purity, the draw) and K·R for Wᵀ r; a Philox call (10 rounds) per owned block of four; plus
/// the loads and stores of x and v at the ends.
fn wide_op_costs(plan: &Plan) -> (u64, u64) {
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let qw = wide_blocks(plan.dim) as u64;
    let r = 4 * qw;
    let rounds = (wide_group(plan.dim) as u64).ilog2() as u64 + 2;
    let dense = d * r + qw * (r + 6) + r;
    let apply = |f: Form| if f == Form::Dense { dense } else { r };
    let eval = apply(plan.b_form) + k.div_ceil(4) * (r + rounds + 8) + 4 * k + k * (r + 1) + r;
    let p_cost = if plan.p_form == Form::Dense { dense } else { 0 };
    let noise = if plan.noise_form == Form::Dense {
        dense + qw * 14 + r
    } else {
        0
    };
    let update = apply(plan.m_form) + p_cost + qw * (10 + 8) + noise;
    (eval + 4 * r + 16, update + 4 * r + 16)
}

/// Loop iterations of one evaluation and one update of `plan`'s step in `variant` (an empirical
/// evaluation counted `whole`, or per part when split), a blocked kernel in workgroups of `wg`.
pub(super) fn step_costs(plan: &Plan, variant: Variant, whole: bool, wg: usize) -> (u64, u64) {
    match variant {
        Variant::Blocked => op_costs(plan, whole, wg),
        Variant::OnChip => onchip_op_costs(plan),
        Variant::Wide => wide_op_costs(plan),
    }
}

impl GpuEngine {
    /// Whether one step of `plan` in this variant stays within a loop-limited driver's budget
    /// (always, elsewhere).
    pub(super) fn fits_loop_budget(&self, plan: &Plan, variant: Variant) -> bool {
        if !cuts_loops(&self.info) {
            return true;
        }
        let (eval, update) = step_costs(plan, variant, true, WORKGROUP);
        eval.max(update) <= LOOP_BUDGET
    }
}
