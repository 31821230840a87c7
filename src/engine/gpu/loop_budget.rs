//! lavapipe's loop limit. llvmpipe ends the loops of an invocation after 65535 iterations in
//! total (`LP_MAX_TGSI_LOOP_ITERATIONS`, shared by every loop of a shader), silently. On that
//! driver dispatches are cut so that no invocation comes near it ([`LOOP_BUDGET`], counted by the
//! model of [`op_costs`]), and work that cannot be cut is refused with an explanation.

use anyhow::{Result, anyhow};

use super::GpuEngine;
use super::shaders::{ROW_BLOCK, WORKGROUP};
use super::step::{onchip_tile_width, rows_per_tile, tiled};
use super::variant::{ONCHIP_GROUP, Variant, wide_blocks, wide_group};
use crate::linalg::Form;
use crate::plan::{Kind, Plan};

/// Estimated loop iterations an invocation may run on a loop-limited driver.
pub(super) const LOOP_BUDGET: u64 = 60_000;

/// Loop iterations of one register-blocked product of `rows` outputs over `cols` inputs.
fn block_cost(rows: u64, cols: u64) -> u64 {
    let blocks = rows.div_ceil(ROW_BLOCK as u64);
    blocks * (cols + 2 * ROW_BLOCK as u64)
}

/// Loop iterations of `apply_rows` over all d rows.
fn apply_cost(form: Form, d: u64) -> u64 {
    match form {
        Form::Dense => block_cost(d, d),
        _ => d,
    }
}

/// Loop iterations of an empirical evaluation: outside the tiles (B x, the final scaling or the
/// drawn row, the carried state) and per tile (its load, logits, exponentials, and Wᵀe or the
/// exact scheme's draw with the copy of a picked row).
pub(super) fn eval_costs(plan: &Plan) -> (u64, u64) {
    let d = plan.dim as u64;
    let r = rows_per_tile(&plan.shape()) as u64;
    let fixed = apply_cost(plan.b_form, d) + d + 16;
    let tail = block_cost(d, r).max(2 * r + d);
    let load = if tiled(&plan.shape()) {
        (r * d).div_ceil(WORKGROUP as u64)
    } else {
        0
    };
    let per_tile = load + block_cost(r, d) + r + tail;
    (fixed, per_tile)
}

/// Loop iterations (upper bounds, counting the unrolled 8-row loops as loops) of one evaluation
/// and one update of an invocation of the step kernels. An empirical evaluation split in parts
/// ([`super::training`]) is counted per part, each within the budget by construction.
fn op_costs(plan: &Plan, whole: bool) -> (u64, u64) {
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let eval = match plan.kind {
        Kind::Mixture => {
            apply_cost(plan.b_form, d) + block_cost(k, d) + 2 * k + block_cost(d, k) + 16
        }
        Kind::Empirical if whole => {
            let (fixed, per_tile) = eval_costs(plan);
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

/// Whether the driver silently cuts long loops (llvmpipe).
pub(super) fn cuts_loops(info: &wgpu::AdapterInfo) -> bool {
    info.driver.to_lowercase().contains("llvmpipe") || info.name.to_lowercase().contains("llvmpipe")
}

/// Loop iterations of one invocation of `start.wgsl`'s drawing dispatch: the bisection, the
/// normals, and x = L z + mean (`apply_row` per row: d for a dense factor).
fn start_cost(plan: &Plan) -> u64 {
    let d = plan.dim as u64;
    let k = plan.start.cumulative.len().max(2) as u64;
    let rows = match plan.start.chol_form {
        Form::Dense => d * d,
        _ => d,
    };
    64 - (k - 1).leading_zeros() as u64 + d.div_ceil(4) * 4 + rows + d
}

impl GpuEngine {
    /// Whether the start kernel draws `plan`'s particles within a loop-limited driver's budget
    /// (always, elsewhere); where it does not, the engine draws them on the host instead of letting
    /// the driver cut the loop (silently wrong particles: a dense factor past d ≈ 245).
    pub(super) fn start_fits_loop_budget(&self, plan: &Plan) -> bool {
        !cuts_loops(&self.info) || start_cost(plan) <= LOOP_BUDGET
    }

    /// Whether one step of `plan` in this variant stays within a loop-limited driver's budget
    /// (always, elsewhere).
    pub(super) fn fits_loop_budget(&self, plan: &Plan, variant: Variant) -> bool {
        if !cuts_loops(&self.info) {
            return true;
        }
        let (eval, update) = match variant {
            Variant::Blocked => op_costs(plan, true),
            Variant::OnChip => onchip_op_costs(plan),
            Variant::Wide => wide_op_costs(plan),
        };
        eval.max(update) <= LOOP_BUDGET
    }

    /// The most ops a step dispatch may hold, and what bounds it (None: nothing but
    /// [`super::dispatch_length`]'s sizing): one where an empirical evaluation is split in parts,
    /// and on a loop-limited driver no more than the budget allows; refuses a step, or a
    /// projection of `dirs` directions in the reduction, that alone exceeds it.
    pub(super) fn ops_limit(
        &self,
        plan: &Plan,
        dirs: usize,
        variant: Variant,
    ) -> Result<(usize, Option<&'static str>)> {
        let whole = plan.kind == Kind::Mixture || self.training_split(plan)?.is_whole();
        if !whole {
            return Ok((1, Some("the training set's parts (one op per dispatch)")));
        }
        if cuts_loops(&self.info) {
            let (eval, update) = match variant {
                Variant::Blocked => op_costs(plan, whole),
                Variant::OnChip => onchip_op_costs(plan),
                Variant::Wide => wide_op_costs(plan),
            };
            if eval.max(update) > LOOP_BUDGET {
                return Err(self.loop_error("one step of this plan", eval.max(update)));
            }
            // A reduction window: each invocation folds a workgroup of particles, a projection
            // costing d per particle.
            let window = WORKGROUP as u64 * (plan.dim as u64 + 1);
            if dirs > 0 && window > LOOP_BUDGET {
                return Err(self.loop_error("a projection in the reduction", window));
            }
            let steps = LOOP_BUDGET / (eval + update + 2);
            let ops = if steps == 0 { 1 } else { 2 * steps as usize };
            return Ok((ops, Some("the driver's loop budget")));
        }
        Ok((usize::MAX, None))
    }

    pub(super) fn loop_error(&self, what: &str, cost: u64) -> anyhow::Error {
        anyhow!(
            "gpu: {what} takes about {cost} loop iterations per particle, more than the {} that \
             {} runs before cutting loops short (llvmpipe's shared loop limit); use fewer \
             dimensions or classes, a hardware GPU, or the CPU engine",
            LOOP_BUDGET,
            self.info.name
        )
    }
}
