//! Host side of `shaders/start.wgsl` (CPU twin: `engine/cpu/start.rs`): draws a batch from the
//! start plan, uploaded as cumulative weights and the Cholesky factor, and the means in one
//! dispatch per storage binding they fill (the exact start of a large training set).

use anyhow::{Result, ensure};

use super::buffers::bytes_of;
use super::footprint::training_bytes;
use super::layout::{Bindings, Params};
use super::shaders::{
    COMMON, Kernel, KernelArgs, LINEAR, RNG, WORKGROUP, form_code, kernel_args, kernel_file,
};
use super::{GpuBatch, GpuEngine};
use crate::engine::NO_LABEL;
use crate::plan::Plan;
use crate::rng;

kernel_args!(
    /// `start.wgsl`: offsets into the start plan (cumulative weights at 0), the bound means.
    StartArgs {
        /// Cholesky factor of the start covariance.
        chol,
        /// Its form code.
        chol_form,
        /// First component whose mean the `centers` binding holds.
        base,
        /// One past its last.
        end,
        /// 1: draw component, normals and x = L z (first dispatch); 0: only add bound means.
        draw,
    }
);

/// Components travel in scratch as f32 between the dispatches of a split start (exact below).
const MAX_SPLIT_COMPONENTS: usize = 1 << 24;

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
        if !self.start_fits_loop_budget(plan) {
            // The driver would cut the kernel's loop: the CPU engine's start (the same Philox
            // words, drawn by the CPU twin) is uploaded instead.
            let particles = crate::engine::cpu::start_particles(plan, seed, ids);
            return self.upload(plan, seed, &particles);
        }
        let stride = self.batch_stride(plan, n)?;
        let meta: Vec<u32> = ids
            .iter()
            .flat_map(|&id| [id as u32, (id >> 32) as u32, NO_LABEL, 0, NO_LABEL])
            .collect();
        let x = self.storage_zeroed("x", (stride * d * 4) as u64);
        let batch = self.batch(plan, seed, n, x, &meta);
        let sp = &plan.start;
        let k = sp.cumulative.len();
        let mut data = sp.cumulative.clone();
        let off_chol = data.len();
        data.extend(&sp.chol);
        ensure!(
            (data.len() * 4) as u64 <= self.max_binding,
            "gpu: the start distribution's weights and factor ({} floats) exceed a storage binding",
            data.len()
        );
        let per_binding = (self.max_binding / (4 * d.max(1) as u64)).max(1) as usize;
        ensure!(
            k <= per_binding || k <= MAX_SPLIT_COMPONENTS,
            "gpu: a start distribution of {k} components exceeds the {MAX_SPLIT_COMPONENTS} a \
             split start indexes"
        );
        let means_bytes = (sp.means.len() * 4) as u64;
        let need = means_bytes.min(self.max_binding) + training_bytes(plan) + batch.bytes();
        ensure!(
            need <= self.options.memory_budget_bytes,
            "gpu: starting {n} particles needs {:.1} MB of device memory (the batch, the training \
             points and one binding of start means), more than the budget of {:.1} MB; use fewer \
             particles or training points, a larger GPU memory budget, or the CPU engine",
            need as f64 / 1e6,
            self.options.memory_budget_bytes as f64 / 1e6
        );
        let plan_buf =
            self.storage_init("start plan", bytes_of(&data), wgpu::BufferUsages::empty());
        let key = rng::key(seed);
        if n > 0 {
            for (c, base) in (0..k).step_by(per_binding).enumerate() {
                let end = k.min(base + per_binding);
                let means = self.storage_init(
                    "start means",
                    bytes_of(&sp.means[base * d..end * d]),
                    wgpu::BufferUsages::empty(),
                );
                let params = Params {
                    n: n as u32,
                    stride: stride as u32,
                    d: d as u32,
                    k: k as u32,
                    key0: key[0],
                    key1: key[1],
                    args: StartArgs {
                        chol: off_chol as u32,
                        chol_form: form_code(sp.chol_form),
                        base: base as u32,
                        end: end as u32,
                        draw: u32::from(c == 0),
                    }
                    .words(),
                    ..Params::default()
                };
                self.dispatch_alone(
                    &self.pipelines.start,
                    &params,
                    Bindings {
                        xs: Some(&batch.x),
                        pmeta: Some(&batch.meta),
                        scratch: Some(&batch.scratch),
                        plan: Some(&plan_buf),
                        centers: Some(&means),
                        ..Bindings::default()
                    },
                    n.div_ceil(WORKGROUP),
                );
                // One binding of means at a time on the device.
                self.wait()?;
            }
        }
        self.check_errors()?;
        Ok(batch)
    }
}
