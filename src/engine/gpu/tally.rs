//! Host side of `shaders/tally.wgsl` (CPU twin: `engine/cpu/tally.rs`): final labels, last-change
//! times, agreeing clone pairs and the pair histogram, counted with u32 atomics.

use anyhow::Result;

use super::layout::{Bindings, Params};
use super::shaders::{COMMON, Kernel, KernelArgs, WORKGROUP, kernel_args, kernel_file};
use super::{GpuBatch, GpuEngine};
use crate::plan::Plan;
use crate::stats::Tally;

kernel_args!(
    /// `tally.wgsl`.
    TallyArgs {
        /// Time points of the grid (the last-change histogram's length).
        points,
        /// K when the K×K pair histogram is kept, else 0.
        pair_classes,
    }
);

pub(super) const TALLY: Kernel = Kernel {
    name: "tally",
    args: TallyArgs::wgsl,
    pieces: &[COMMON, kernel_file!("tally.wgsl")],
    outputs: [None, Some(("counts", "array<atomic<u32>>"))],
};

impl GpuEngine {
    /// [`crate::engine::Engine::tally`].
    pub(super) fn tally_batch(&self, plan: &Plan, batch: &GpuBatch) -> Result<Tally> {
        self.check_batch(plan, batch)?;
        let k = plan.centers_count;
        let points = plan.grid.steps + 1;
        let pair_classes = Tally::pair_classes(k);
        let len = k + points + 1 + pair_classes * pair_classes;
        let counts = self.storage_zeroed("tally", (len * 4) as u64);
        if batch.n > 0 {
            let params = Params {
                n: batch.n as u32,
                stride: batch.stride as u32,
                d: batch.dim as u32,
                k: k as u32,
                args: TallyArgs {
                    points: points as u32,
                    pair_classes: pair_classes as u32,
                }
                .words(),
                ..Params::default()
            };
            self.dispatch_alone(
                &self.pipelines.tally,
                &params,
                Bindings {
                    pmeta: Some(&batch.meta),
                    out_b: Some(&counts),
                    ..Bindings::default()
                },
                batch.n.div_ceil(WORKGROUP),
            );
        }
        let c: Vec<u32> = bytemuck::pod_collect_to_vec(&self.read_back(&counts, (len * 4) as u64)?);
        let mut t = Tally::new(k, points);
        for (a, b) in t.labels.iter_mut().zip(&c[..k]) {
            *a = u64::from(*b);
        }
        for (a, b) in t.last_change.iter_mut().zip(&c[k..k + points]) {
            *a = u64::from(*b);
        }
        t.pairs_agree = u64::from(c[k + points]);
        for (a, b) in t.pair_labels.iter_mut().zip(&c[k + points + 1..]) {
            *a = u64::from(*b);
        }
        t.pairs = (batch.n / 2) as u64;
        Ok(t)
    }
}
