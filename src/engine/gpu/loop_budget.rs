//! lavapipe's loop limit. llvmpipe ends the loops of an invocation after 65535 iterations in
//! total (`LP_MAX_TGSI_LOOP_ITERATIONS`, shared by every loop of a shader), silently. On that
//! driver dispatches are cut so that no invocation comes near it ([`LOOP_BUDGET`], counted by
//! models of each kernel's loops: the start kernel's here, the step kernels' in
//! `step/costs.rs`), and work that cannot be cut is refused with an explanation.

use anyhow::anyhow;

use super::GpuEngine;
use super::shaders::ROW_BLOCK;
use crate::linalg::Form;
use crate::plan::Plan;

/// Estimated loop iterations an invocation may run on a loop-limited driver.
pub(super) const LOOP_BUDGET: u64 = 60_000;

/// Loop iterations of one register-blocked product of `rows` outputs over `cols` inputs.
pub(super) fn block_cost(rows: u64, cols: u64) -> u64 {
    let blocks = rows.div_ceil(ROW_BLOCK as u64);
    blocks * (cols + 2 * ROW_BLOCK as u64)
}

/// Loop iterations of `apply_rows` over all d rows.
pub(super) fn apply_cost(form: Form, d: u64) -> u64 {
    match form {
        Form::Dense => block_cost(d, d),
        _ => d,
    }
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
