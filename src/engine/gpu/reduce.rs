//! Host side of `shaders/reduce.wgsl` (CPU twin: `engine/cpu/reduce.rs` and `Moments::merge`):
//! records the reduction of a recorded point after its step dispatch, and folds the
//! per-workgroup partials on the host, in workgroup order, in f64.

use anyhow::Result;

use super::buffers::record;
use super::layout::{Bindings, Params};
use super::shaders::{COMMON, Kernel, KernelArgs, WORKGROUP, kernel_args, kernel_file};
use super::{GpuBatch, GpuEngine};
use crate::engine::Recorder;
use crate::stats::{Moments, PointStats};

kernel_args!(
    /// `reduce.wgsl`.
    ReduceArgs {
        /// Scratch row of the purity.
        purity_row,
        /// Number of projection directions.
        directions,
        /// Offset of this point's class counters.
        counts_offset,
        /// First quantity of this window of 64.
        first_quantity,
    }
);

pub(super) const REDUCE: Kernel = Kernel {
    name: "reduce",
    args: ReduceArgs::wgsl,
    pieces: &[COMMON, kernel_file!("reduce.wgsl")],
    outputs: [
        Some(("partials", "array<f32>")),
        Some(("counts", "array<atomic<u32>>")),
    ],
};

/// Floats per workgroup of the partials: the count, then (mean, m2) of each quantity (d
/// coordinates, `dirs` projections, the purity).
fn partial_floats(d: usize, dirs: usize) -> usize {
    1 + 2 * (d + dirs + 1)
}

/// One partial-statistics buffer awaiting read-back.
pub(super) struct Pending {
    slot: usize,
    partials: wgpu::Buffer,
    counts: wgpu::Buffer,
    groups: usize,
}

impl Pending {
    /// Bytes of its partials.
    pub fn bytes(&self, d: usize, dirs: usize) -> u64 {
        (self.groups * partial_floats(d, dirs) * 4) as u64
    }
}

impl GpuEngine {
    /// The parameter blocks of the reduction of a recorded point: one dispatch per window of 64
    /// quantities, which keeps every invocation's loops short. `base` holds the batch's sizes.
    pub(super) fn reduce_params(base: &Params, dirs: usize) -> Vec<Params> {
        let d = base.d as usize;
        (0..d + dirs + 1)
            .step_by(WORKGROUP)
            .map(|q0| Params {
                args: ReduceArgs {
                    purity_row: (2 * d) as u32,
                    directions: dirs as u32,
                    counts_offset: 0,
                    first_quantity: q0 as u32,
                }
                .words(),
                ..*base
            })
            .collect()
    }

    /// Records the reduction of the batch's current state into recorder slot `slot`: the
    /// dispatches of [`Self::reduce_params`], whose blocks are at `offsets` of `params` (the
    /// step group's parameter buffer), under one bind group. `k` is the number of classes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record_reduce(
        &self,
        enc: &mut wgpu::CommandEncoder,
        params: &wgpu::Buffer,
        offsets: &[u32],
        k: usize,
        batch: &GpuBatch,
        directions: Option<&wgpu::Buffer>,
        slot: usize,
        dirs: usize,
    ) -> Pending {
        let d = batch.dim;
        let groups = batch.n.div_ceil(WORKGROUP);
        let bytes = (groups * partial_floats(d, dirs) * 4) as u64;
        let partials = self.storage_zeroed("partials", bytes);
        let counts = self.storage_zeroed("class counts", (k * 4) as u64);
        let bind = self.bind_group(
            params,
            Bindings {
                xs: Some(&batch.x),
                pmeta: Some(&batch.meta),
                scratch: Some(&batch.scratch),
                plan: directions,
                out_a: Some(&partials),
                out_b: Some(&counts),
                ..Bindings::default()
            },
        );
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        for &offset in offsets {
            record(&mut pass, &self.pipelines.reduce, &bind, offset, groups);
        }
        drop(pass);
        Pending {
            slot,
            partials,
            counts,
            groups,
        }
    }

    /// Reads back pending partials and folds them into the recorder in workgroup order.
    pub(super) fn fold(
        &self,
        pending: &mut Vec<Pending>,
        rec: &mut Recorder,
        d: usize,
        dirs: usize,
        k: usize,
    ) -> Result<()> {
        let per = partial_floats(d, dirs);
        for p in pending.drain(..) {
            let data: Vec<f32> = bytemuck::pod_collect_to_vec(
                &self.read_back(&p.partials, (p.groups * per * 4) as u64)?,
            );
            let counts: Vec<u32> =
                bytemuck::pod_collect_to_vec(&self.read_back(&p.counts, (k * 4) as u64)?);
            let acc = &mut rec.stats[p.slot];
            for g in 0..p.groups {
                let w = &data[g * per..(g + 1) * per];
                let count = w[0] as u64;
                if count == 0 {
                    continue;
                }
                let moments = |lo: usize, len: usize| Moments {
                    count,
                    mean: (lo..lo + len).map(|q| f64::from(w[1 + 2 * q])).collect(),
                    m2: (lo..lo + len).map(|q| f64::from(w[2 + 2 * q])).collect(),
                };
                let part = PointStats {
                    coords: moments(0, d),
                    projections: if dirs > 0 {
                        moments(d, dirs)
                    } else {
                        Moments::new(0)
                    },
                    classes: vec![0; k],
                    purity: moments(d + dirs, 1),
                };
                acc.merge(&part);
            }
            for (a, b) in acc.classes.iter_mut().zip(&counts) {
                *a += u64::from(*b);
            }
        }
        Ok(())
    }
}
