//! Host side of `shaders/start.wgsl` (CPU twin: `engine/cpu/start.rs`): draws a batch from the
//! start plan, uploaded as means, cumulative weights and the Cholesky factor.

use anyhow::{Result, ensure};

use super::buffers::bytes_of;
use super::layout::{Bindings, Params};
use super::shaders::{
    COMMON, Kernel, KernelArgs, LINEAR, RNG, WORKGROUP, form_code, kernel_args, kernel_file,
};
use super::{GpuBatch, GpuEngine};
use crate::engine::NO_LABEL;
use crate::plan::Plan;
use crate::rng;

kernel_args!(
    /// `start.wgsl`: offsets into the start plan.
    StartArgs {
        /// K×d class means.
        means,
        /// K cumulative weights.
        cum_weights,
        /// Cholesky factor of the start covariance.
        chol,
        /// Its form code.
        chol_form,
    }
);

pub(super) const START: Kernel = Kernel {
    name: "start",
    args: StartArgs::wgsl,
    pieces: &[COMMON, RNG, LINEAR, kernel_file!("start.wgsl")],
    outputs: [None, None],
};

impl GpuEngine {
    /// [`crate::engine::Engine::start`].
    pub(super) fn start_batch(&self, plan: &Plan, seed: u64, ids: &[u64]) -> Result<GpuBatch> {
        let n = ids.len();
        let d = plan.dim;
        let stride = self.batch_stride(plan, n)?;
        let meta: Vec<u32> = ids
            .iter()
            .flat_map(|&id| [id as u32, (id >> 32) as u32, NO_LABEL, 0])
            .collect();
        let x = self.storage_zeroed("x", (stride * d * 4) as u64);
        let batch = self.batch(plan, seed, n, x, &meta);
        let sp = &plan.start;
        let k = sp.cumulative.len();
        let mut data = sp.means.clone();
        let off_cum = data.len();
        data.extend(&sp.cumulative);
        let off_chol = data.len();
        data.extend(&sp.chol);
        ensure!(
            (data.len() * 4) as u64 <= self.max_binding,
            "gpu: the start distribution ({} floats) exceeds a storage binding",
            data.len()
        );
        let plan_buf =
            self.storage_init("start plan", bytes_of(&data), wgpu::BufferUsages::empty());
        let key = rng::key(seed);
        let params = Params {
            n: n as u32,
            stride: stride as u32,
            d: d as u32,
            k: k as u32,
            key0: key[0],
            key1: key[1],
            args: StartArgs {
                means: 0,
                cum_weights: off_cum as u32,
                chol: off_chol as u32,
                chol_form: form_code(sp.chol_form),
            }
            .words(),
            ..Params::default()
        };
        if n > 0 {
            self.dispatch_alone(
                &self.pipelines.start,
                &params,
                Bindings {
                    xs: Some(&batch.x),
                    pmeta: Some(&batch.meta),
                    scratch: Some(&batch.scratch),
                    plan: Some(&plan_buf),
                    ..Bindings::default()
                },
                n.div_ceil(WORKGROUP),
            );
        }
        self.check_errors()?;
        Ok(batch)
    }
}
