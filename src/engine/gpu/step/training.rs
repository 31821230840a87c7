//! The training points of an empirical plan on the device (the `centers` binding of
//! `shaders/step_empirical.wgsl`): resident across batches and advances, split into bindings under
//! the storage-binding limit, each evaluation cut into parts (one dispatch each) of whole softmax
//! tiles that lavapipe's loop budget allows, and the device memory of it all checked before any
//! work. A plan that fits one binding and one dispatch is one part, the kernel's unsplit case.

use std::ops::Range;

use anyhow::{Result, ensure};

use super::super::GpuEngine;
use super::super::batch::GpuBatch;
use super::super::buffers::bytes_of;
use super::super::footprint::{rows_per_tile, training_bytes};
use super::super::layout::ARG_WORDS;
use super::super::loop_budget::{LOOP_BUDGET, cuts_loops};
use super::super::shaders::{KernelArgs, WORKGROUP};
use super::costs::eval_costs;
use super::kernels::{EmpiricalArgs, FIRST, HOLD, LAST};
use crate::plan::Plan;

/// Carried indices travel as f32 (exact below 2^24).
const MAX_SPLIT_POINTS: usize = 1 << 24;

/// The resident training set: a key (hash of the points' bits and the split) and a buffer per
/// binding.
pub(in crate::engine::gpu) type Resident = (u64, Vec<wgpu::Buffer>);

/// One dispatch of an evaluation: points `rows` of binding `binding`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Part {
    pub binding: usize,
    pub rows: Range<usize>,
}

/// How a training set is laid out in bindings and an evaluation in parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// The points of each binding, consecutive.
    pub bindings: Vec<Range<usize>>,
    /// The parts of one evaluation, in order, each inside one binding.
    pub parts: Vec<Part>,
}

impl Split {
    /// `k` points in tiles of `tile`, at most `per_binding` points per binding and `per_part` per
    /// dispatch (both rounded down to whole tiles, so parts start where the unsplit kernel's tiles
    /// do and round alike).
    pub fn new(k: usize, tile: usize, per_binding: usize, per_part: usize) -> Result<Split> {
        let tile = tile.max(1);
        let per_binding = per_binding / tile * tile;
        let per_part = (per_part / tile * tile).min(per_binding);
        ensure!(
            per_part > 0,
            "gpu: a storage binding or dispatch holds fewer training points than one tile ({tile})"
        );
        let bindings: Vec<Range<usize>> = (0..k.max(1))
            .step_by(per_binding)
            .map(|a| a..k.min(a + per_binding))
            .collect();
        let parts: Vec<Part> = bindings
            .iter()
            .enumerate()
            .flat_map(|(b, r)| {
                r.clone().step_by(per_part).map(move |a| Part {
                    binding: b,
                    rows: a..r.end.min(a + per_part),
                })
            })
            .collect();
        ensure!(
            parts.len() == 1 || k <= MAX_SPLIT_POINTS,
            "gpu: {k} training points exceed the {MAX_SPLIT_POINTS} a split evaluation indexes"
        );
        Ok(Split { bindings, parts })
    }

    /// Whether one dispatch evaluates everything (ops may then be fused).
    pub fn is_whole(&self) -> bool {
        self.parts.len() == 1
    }

    /// The kernel arguments of part `i`, of a plan that draws once where `holds`.
    fn args(&self, i: usize, holds: bool) -> [u32; ARG_WORDS] {
        let p = &self.parts[i];
        let mut flags = if holds { HOLD } else { 0 };
        if i == 0 {
            flags |= FIRST;
        }
        if i + 1 == self.parts.len() {
            flags |= LAST;
        }
        EmpiricalArgs {
            base: self.bindings[p.binding].start as u32,
            begin: p.rows.start as u32,
            end: p.rows.end as u32,
            flags,
        }
        .words()
    }
}

/// The training set on the device, as one advance uses it.
pub(super) struct Training {
    pub split: Split,
    buffers: Vec<wgpu::Buffer>,
    /// The plan draws once: every part carries [`HOLD`].
    holds: bool,
}

impl Training {
    /// The dispatches of one span as (index into [`Self::buffers`], arguments): every part for an
    /// evaluation when the split has several, else the one whole part (whose arguments serve fused
    /// spans and updates alike).
    pub fn parts(&self, evaluates: bool) -> Vec<(usize, [u32; ARG_WORDS])> {
        let n = if evaluates { self.split.parts.len() } else { 1 };
        let n = if self.split.is_whole() { 1 } else { n };
        (0..n)
            .map(|i| (self.split.parts[i].binding, self.split.args(i, self.holds)))
            .collect()
    }

    /// The buffer of each binding of the split.
    pub fn buffers(&self) -> &[wgpu::Buffer] {
        &self.buffers
    }
}

impl GpuEngine {
    /// Storage bindings and dispatches per evaluation of an empirical plan's training set on this
    /// device (1, 1 when unsplit; tests and reports).
    #[doc(hidden)]
    pub fn training_layout(&self, plan: &Plan) -> Result<(usize, usize)> {
        let s = self.training_split(plan)?;
        Ok((s.bindings.len(), s.parts.len()))
    }

    /// The split of an empirical plan's training set on this device: bindings under the binding
    /// limit and, on a loop-limited driver, parts within the loop budget.
    pub(super) fn training_split(&self, plan: &Plan) -> Result<Split> {
        let d = plan.dim.max(1);
        let tile = rows_per_tile(&plan.shape());
        let per_binding = (self.max_binding / (4 * d as u64)) as usize;
        let per_part = if cuts_loops(&self.info) {
            let (fixed, per_tile) = eval_costs(plan, WORKGROUP);
            if fixed + per_tile > LOOP_BUDGET {
                return Err(self.loop_error("one tile of training points", fixed + per_tile));
            }
            ((LOOP_BUDGET - fixed) / per_tile) as usize * tile
        } else {
            usize::MAX
        };
        Split::new(plan.centers_count, tile, per_binding, per_part)
    }

    /// The training set of `plan` for an advance of `batch`: the device memory checked against
    /// the budget, then the resident buffers, uploaded unless the same bits already are.
    pub(super) fn training(&self, plan: &Plan, batch: &GpuBatch) -> Result<Training> {
        let split = self.training_split(plan)?;
        let need = training_bytes(plan) + batch.bytes();
        ensure!(
            need <= self.options.memory_budget_bytes,
            "gpu: {} training points in d = {} ({:.1} MB) and a batch of {} particles ({:.1} MB) \
             need {:.1} MB of device memory, more than the budget of {:.1} MB; use fewer training \
             points or particles, a larger GPU memory budget, or the CPU engine",
            plan.centers_count,
            plan.dim,
            training_bytes(plan) as f64 / 1e6,
            batch.n,
            batch.bytes() as f64 / 1e6,
            need as f64 / 1e6,
            self.options.memory_budget_bytes as f64 / 1e6
        );
        let buffers = self.resident_training(plan, &split.bindings);
        Ok(Training {
            split,
            buffers,
            holds: plan.holds_draws(),
        })
    }

    /// The device buffers of these training points in these bindings: the resident ones if they
    /// hold the same bits in the same layout, else new uploads that become resident.
    fn resident_training(&self, plan: &Plan, bindings: &[Range<usize>]) -> Vec<wgpu::Buffer> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes_of(&plan.centers).hash(&mut h);
        bindings.hash(&mut h);
        let key = h.finish();
        let mut slot = self.centers.lock().expect("resident centers");
        if let Some((k, bufs)) = slot.as_ref()
            && *k == key
        {
            return bufs.clone();
        }
        // Drop the old set before uploading the new one, so both are never resident at once.
        *slot = None;
        let d = plan.dim;
        let bufs: Vec<wgpu::Buffer> = bindings
            .iter()
            .map(|r| {
                let rows = &plan.centers[r.start * d..r.end * d];
                self.storage_init("centers", bytes_of(rows), wgpu::BufferUsages::empty())
            })
            .collect();
        *slot = Some((key, bufs.clone()));
        bufs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_every_point_once_in_whole_tiles() {
        for (k, tile, per_binding, per_part) in [
            (150, 64, usize::MAX, usize::MAX),
            (150, 64, 128, usize::MAX),
            (300, 64, 130, 64),
            (60_000, 5, 42_799, 95),
            (7, 5, 5, 5),
        ] {
            let s = Split::new(k, tile, per_binding, per_part).unwrap();
            let what = format!("{k} {tile} {per_binding} {per_part}: {s:?}");
            let mut next = 0;
            for (i, p) in s.parts.iter().enumerate() {
                assert_eq!(p.rows.start, next, "{what}");
                assert!(p.rows.start < p.rows.end, "{what}");
                assert_eq!(p.rows.start % tile, 0, "{what}");
                assert!(p.rows.len() <= per_part, "{what}");
                let b = &s.bindings[p.binding];
                assert!(b.start <= p.rows.start && p.rows.end <= b.end, "{what}");
                assert!(b.len() <= per_binding, "{what}");
                let flags = s.args(i, false)[3];
                assert_eq!(flags & FIRST != 0, i == 0, "{what}");
                assert_eq!(flags & LAST != 0, i + 1 == s.parts.len(), "{what}");
                next = p.rows.end;
            }
            assert_eq!(next, k, "{what}");
        }
        let whole = Split::new(150, 64, usize::MAX, usize::MAX).unwrap();
        assert!(whole.is_whole());
        assert_eq!(whole.args(0, false), [0, 0, 150, FIRST | LAST, 0]);
        // 128-point bindings: the third part starts binding 1 at point 128.
        let s = Split::new(300, 64, 130, 64).unwrap();
        assert_eq!(s.bindings, vec![0..128, 128..256, 256..300]);
        assert_eq!(s.args(2, false), [128, 128, 192, 0, 0]);
        assert_eq!(s.args(2, true), [128, 128, 192, HOLD, 0]);
        assert!(Split::new(10, 64, 63, 1000).is_err());
    }
}
