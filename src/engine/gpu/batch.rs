//! Particle state on the device: coordinate-major positions (`x[c·stride + p]`),
//! [`META_WORDS`] metadata words per particle (rng id lo/hi, label, last change, drawn training
//! point) and the step kernels' scratch rows; the largest batch a plan allows; uploading a host
//! copy ([`Engine::load`](crate::engine::Engine)) and reading one back.

use anyhow::{Result, ensure};

use super::GpuEngine;
use super::buffers::{bytes_of, round_up};
use super::footprint::{scratch_rows, training_bytes};
use super::layout::META_WORDS;
use super::shaders::WORKGROUP;
use crate::engine::Particles;
use crate::plan::Plan;

/// Particle state on the device.
pub struct GpuBatch {
    pub(super) x: wgpu::Buffer,
    pub(super) meta: wgpu::Buffer,
    pub(super) scratch: wgpu::Buffer,
    pub(super) n: usize,
    pub(super) stride: usize,
    pub(super) dim: usize,
    pub(super) scratch_rows: usize,
    pub(super) seed: u64,
}

impl GpuBatch {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Device bytes of the batch: positions, metadata and scratch.
    pub(super) fn bytes(&self) -> u64 {
        (4 * self.stride * (self.dim + META_WORDS + self.scratch_rows)) as u64
    }
}

impl GpuEngine {
    /// [`crate::engine::Engine::max_batch`]: the storage-binding size and the memory budget less
    /// the resident training points, rounded down to whole workgroups.
    pub(super) fn largest_batch(&self, plan: &Plan) -> usize {
        let rows = scratch_rows(plan).max(plan.dim);
        let per_particle = 4 * (plan.dim + scratch_rows(plan) + META_WORDS) as u64;
        let budget = self
            .options
            .memory_budget_bytes
            .saturating_sub(training_bytes(plan));
        let by_memory = (budget / per_particle) as usize;
        let by_binding = self.fits(rows).min(self.fits(META_WORDS));
        let n = by_binding.min(by_memory).min(1 << 31);
        (n / WORKGROUP * WORKGROUP).max(WORKGROUP)
    }

    pub(super) fn check_batch(&self, plan: &Plan, batch: &GpuBatch) -> Result<()> {
        ensure!(
            batch.dim == plan.dim && batch.scratch_rows >= scratch_rows(plan),
            "gpu: batch was started for another plan (d = {}, scratch rows {})",
            batch.dim,
            batch.scratch_rows
        );
        Ok(())
    }

    /// The row stride of a batch of `n` particles (whole workgroups), refusing one larger than
    /// the engine takes for the plan.
    pub(super) fn batch_stride(&self, plan: &Plan, n: usize) -> Result<usize> {
        ensure!(
            n <= self.largest_batch(plan),
            "gpu: batch of {n} particles exceeds the largest batch {} for this plan and device",
            self.largest_batch(plan)
        );
        Ok(round_up(n.max(1), WORKGROUP))
    }

    /// A batch of `n` particles around its positions `x`: metadata ([`META_WORDS`] per particle) and
    /// the step kernels' scratch rows.
    pub(super) fn batch(
        &self,
        plan: &Plan,
        seed: u64,
        n: usize,
        x: wgpu::Buffer,
        meta: &[u32],
    ) -> GpuBatch {
        let stride = round_up(n.max(1), WORKGROUP);
        let rows = scratch_rows(plan);
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        GpuBatch {
            x,
            meta: self.storage_init("meta", bytes_of(meta), copy),
            scratch: self.storage_zeroed("scratch", (stride * rows * 4) as u64),
            n,
            stride,
            dim: plan.dim,
            scratch_rows: rows,
            seed,
        }
    }

    /// [`crate::engine::Engine::load`]: the particles uploaded in the device layout
    /// (coordinate-major positions, [`META_WORDS`] metadata words per particle), as `start` leaves
    /// them.
    pub(super) fn upload(&self, plan: &Plan, seed: u64, p: &Particles) -> Result<GpuBatch> {
        crate::engine::cpu::check_particles(plan, p)?;
        let (n, d) = (p.len(), plan.dim);
        let stride = self.batch_stride(plan, n)?;
        let mut xs = vec![0.0f32; stride * d];
        for c in 0..d {
            for i in 0..n {
                xs[c * stride + i] = p.x[i * d + c];
            }
        }
        let meta: Vec<u32> = (0..n)
            .flat_map(|i| {
                let id = p.ids[i];
                [
                    id as u32,
                    (id >> 32) as u32,
                    p.label[i],
                    p.changed[i],
                    p.drawn[i],
                ]
            })
            .collect();
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let x = self.storage_init("x", bytes_of(&xs), copy);
        Ok(self.batch(plan, seed, n, x, &meta))
    }

    /// [`crate::engine::Engine::read`]: a host copy, row-major.
    pub(super) fn download(&self, batch: &GpuBatch) -> Result<Particles> {
        let (n, d, stride) = (batch.n, batch.dim, batch.stride);
        let mut p = Particles {
            dim: d,
            x: vec![0.0; n * d],
            ids: Vec::with_capacity(n),
            label: Vec::with_capacity(n),
            changed: Vec::with_capacity(n),
            drawn: Vec::with_capacity(n),
        };
        if n == 0 {
            return Ok(p);
        }
        let xs: Vec<f32> =
            bytemuck::pod_collect_to_vec(&self.read_back(&batch.x, (stride * d * 4) as u64)?);
        for c in 0..d {
            for i in 0..n {
                p.x[i * d + c] = xs[c * stride + i];
            }
        }
        let meta: Vec<u32> = bytemuck::pod_collect_to_vec(
            &self.read_back(&batch.meta, (n * 4 * META_WORDS) as u64)?,
        );
        for m in meta.chunks_exact(META_WORDS) {
            p.ids.push(u64::from(m[0]) | (u64::from(m[1]) << 32));
            p.label.push(m[2]);
            p.changed.push(m[3]);
            p.drawn.push(m[4]);
        }
        Ok(p)
    }
}
