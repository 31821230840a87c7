//! Host side of `shaders/branch.wgsl` (CPU twin: `engine/cpu/branch.rs`): a batch of two adjacent
//! clones of every particle, the second in another rng stream ([`crate::rng::with_stream`]); neither
//! holds a drawn training point ([`crate::engine::Particles::drawn`]): each draws its own.

use anyhow::{Result, ensure};

use super::buffers::round_up;
use super::layout::META_WORDS;
use super::layout::{Bindings, Params};
use super::shaders::{COMMON, Kernel, KernelArgs, WORKGROUP, kernel_args, kernel_file};
use super::{GpuBatch, GpuEngine};

kernel_args!(
    /// `branch.wgsl`.
    BranchArgs {
        /// Stream tag of the second clone.
        stream,
        /// Row stride of the destination.
        dst_stride,
    }
);

pub(super) const BRANCH: Kernel = Kernel {
    name: "branch",
    args: BranchArgs::wgsl,
    pieces: &[COMMON, kernel_file!("branch.wgsl")],
    outputs: [
        Some(("dst_x", "array<f32>")),
        Some(("dst_meta", "array<u32>")),
    ],
};

impl GpuEngine {
    /// [`crate::engine::Engine::branch`].
    pub(super) fn branch_batch(&self, batch: &GpuBatch, stream: u16) -> Result<GpuBatch> {
        let n2 = 2 * batch.n;
        let d = batch.dim;
        ensure!(
            n2 <= self
                .fits(batch.scratch_rows.max(d))
                .min(self.fits(META_WORDS)),
            "gpu: branching {} particles gives {n2}, more than a storage binding holds; \
             start batches of at most half the engine's max batch when branching",
            batch.n
        );
        let stride = round_up(n2.max(1), WORKGROUP);
        let out = GpuBatch {
            x: self.storage_zeroed("x", (stride * d * 4) as u64),
            meta: self.storage_zeroed("meta", (n2 * 4 * META_WORDS) as u64),
            scratch: self.storage_zeroed("scratch", (stride * batch.scratch_rows * 4) as u64),
            n: n2,
            stride,
            dim: d,
            scratch_rows: batch.scratch_rows,
            seed: batch.seed,
        };
        if n2 > 0 {
            let params = Params {
                n: batch.n as u32,
                stride: batch.stride as u32,
                d: d as u32,
                args: BranchArgs {
                    stream: u32::from(stream),
                    dst_stride: stride as u32,
                }
                .words(),
                ..Params::default()
            };
            self.dispatch_alone(
                &self.pipelines.branch,
                &params,
                Bindings {
                    xs: Some(&batch.x),
                    pmeta: Some(&batch.meta),
                    out_a: Some(&out.x),
                    out_b: Some(&out.meta),
                    ..Bindings::default()
                },
                n2.div_ceil(WORKGROUP),
            );
        }
        self.check_errors()?;
        Ok(out)
    }
}
