//! The [`Engine`] trait on the device: each method records the dispatches of its kernels
//! (`start`, the step kernels, `reduce`, `branch`, `tally`) and folds what comes back.

use std::sync::Arc;

use anyhow::{Result, ensure};

use super::shaders::{self, KernelArgs};
use super::{
    Bindings, GpuBatch, GpuEngine, LOOP_BUDGET, PENDING_BYTES, Params, WORKGROUP, bytes_of,
    form_code, op_costs, round_up, schedule, scratch_rows,
};
use crate::engine::{Engine, NO_LABEL, Particles, Recorder};
use crate::plan::{Kind, Plan, form_len};
use crate::rng;
use crate::stats::{Moments, PointStats, Tally};

/// One partial-statistics buffer awaiting read-back.
struct Pending {
    slot: usize,
    partials: wgpu::Buffer,
    counts: wgpu::Buffer,
    groups: usize,
}

impl Engine for GpuEngine {
    type Batch = GpuBatch;

    fn describe(&self) -> String {
        format!(
            "gpu: {} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }

    fn max_batch(&self, plan: &Plan) -> usize {
        let rows = scratch_rows(plan).max(plan.dim);
        let per_particle = 4 * (plan.dim + scratch_rows(plan) + 4) as u64;
        let by_memory = (self.options.memory_budget_bytes / per_particle) as usize;
        let by_binding = self.fits(rows).min(self.fits(4));
        let n = by_binding.min(by_memory).min(1 << 31);
        (n / WORKGROUP * WORKGROUP).max(WORKGROUP)
    }

    fn start(&self, plan: &Plan, seed: u64, ids: &[u64]) -> Result<GpuBatch> {
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
            args: shaders::StartArgs {
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
                    meta: Some(&batch.meta),
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

    fn advance(
        &self,
        plan: &Plan,
        batch: &mut GpuBatch,
        from: usize,
        to: usize,
        rec: &mut Recorder,
    ) -> Result<()> {
        ensure!(
            from <= to && to <= plan.grid.steps,
            "advance: bad range {from}..={to}"
        );
        self.check_batch(plan, batch)?;
        let (d, k, n) = (plan.dim, plan.centers_count, batch.n);
        if n == 0 {
            return Ok(());
        }
        let groups = n.div_ceil(WORKGROUP);
        let key = rng::key(batch.seed);
        let dirs = rec.directions.len() / d;
        let empirical = plan.kind == Kind::Empirical;

        let centers = if empirical {
            let bytes = (plan.centers.len() * 4) as u64;
            ensure!(
                bytes <= self.max_binding,
                "gpu: the training set ({bytes} bytes) exceeds the storage-binding limit of {} bytes",
                self.max_binding
            );
            Some(self.resident_centers(&plan.centers))
        } else {
            None
        };
        let directions = if dirs > 0 {
            Some(self.storage_init(
                "directions",
                bytes_of(&rec.directions[..dirs * d]),
                wgpu::BufferUsages::empty(),
            ))
        } else {
            None
        };
        let (mlen, blen, plen) = (
            form_len(plan.m_form, d),
            form_len(plan.b_form, d),
            form_len(plan.p_form, d),
        );
        let wlen = if empirical { 0 } else { k * d };
        let point_bytes = (4 * (mlen + blen + plen + wlen + k + 1)) as u64;
        ensure!(
            point_bytes <= self.max_binding,
            "gpu: one time point of the plan ({point_bytes} bytes) exceeds a storage binding"
        );
        let points_per_upload = (self.max_binding / point_bytes) as usize;
        let base = Params {
            n: n as u32,
            stride: batch.stride as u32,
            d: d as u32,
            k: k as u32,
            key0: key[0],
            key1: key[1],
            to: to as u32,
            m_form: form_code(plan.m_form),
            b_form: form_code(plan.b_form),
            p_form: form_code(plan.p_form),
            ..Params::default()
        };
        let mut ops_per_dispatch = 2 * self.options.steps_per_dispatch;
        if self.loop_limited() {
            let (eval, update) = op_costs(plan);
            if eval.max(update) > LOOP_BUDGET {
                return Err(self.loop_error("one step of this plan", eval.max(update)));
            }
            let steps = LOOP_BUDGET / (eval + update + 2);
            ops_per_dispatch =
                ops_per_dispatch.min(if steps == 0 { 1 } else { 2 * steps as usize });
            if dirs > 0 && 64 * (d as u64 + 1) > LOOP_BUDGET {
                return Err(self.loop_error("a projection in the reduction", 64 * (d as u64 + 1)));
            }
        }
        let bounds = schedule::Bounds {
            chunk_len: plan.chunk_len,
            ops_per_dispatch,
            points_per_upload,
        };
        let spans = schedule::schedule(from, to, bounds, &rec.points, rec.slots_for(from, to));
        let step = self.step_pipeline(plan)?;
        let step_groups = n.div_ceil(shaders::GROUP_PARTICLES);
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_bytes = 0u64;
        let per = 1 + 2 * (d + dirs + 1);
        let mut chunk_cache: Option<(usize, Arc<crate::plan::Chunk>)> = None;
        for span in spans {
            let j = span.first_point();
            let c = plan.chunk_of(j);
            let chunk = match &chunk_cache {
                Some((cc, ch)) if *cc == c => ch.clone(),
                _ => {
                    let ch = plan.chunk(c)?;
                    chunk_cache = Some((c, ch.clone()));
                    ch
                }
            };
            // Coefficients of points j ..= last.
            let (a, b) = (j - chunk.first, span.last_point() - chunk.first + 1);
            let mut data: Vec<f32> = Vec::with_capacity((b - a) * point_bytes as usize / 4);
            let mut push = |v: &[f32], len: usize| {
                let off = data.len() as u32;
                data.extend_from_slice(&v[a * len..b * len]);
                off
            };
            let off_m = push(&chunk.m, mlen);
            let off_b = push(&chunk.b, blen);
            let off_p = push(&chunk.p, plen);
            let off_w = if wlen > 0 { push(&chunk.w, wlen) } else { 0 };
            let off_bias = push(&chunk.bias, k);
            let off_noise = push(&chunk.noise, 1);
            let plan_buf = self.storage_init("plan", bytes_of(&data), wgpu::BufferUsages::empty());
            let params = Params {
                phase: (span.op0 % 2) as u32,
                ops: (span.op1 - span.op0) as u32,
                first: j as u32,
                off_m,
                off_b,
                off_p,
                off_w,
                off_bias,
                off_noise,
                ..base
            };
            let mut enc = self.encoder();
            self.dispatch(
                &mut enc,
                &step,
                &params,
                Bindings {
                    xs: Some(&batch.x),
                    meta: Some(&batch.meta),
                    scratch: Some(&batch.scratch),
                    plan: Some(&plan_buf),
                    centers: centers.as_ref(),
                    ..Bindings::default()
                },
                step_groups,
            );
            if let Some(slot) = span.record {
                let bytes = (groups * per * 4) as u64;
                let partials = self.storage_zeroed("partials", bytes);
                let counts = self.storage_zeroed("class counts", (k * 4) as u64);
                // One window of 64 quantities per dispatch keeps every invocation's loops short.
                for q0 in (0..d + dirs + 1).step_by(WORKGROUP) {
                    let params = Params {
                        args: shaders::ReduceArgs {
                            purity_row: (2 * d) as u32,
                            directions: dirs as u32,
                            counts_offset: 0,
                            first_quantity: q0 as u32,
                        }
                        .words(),
                        ..base
                    };
                    self.dispatch(
                        &mut enc,
                        &self.pipelines.reduce,
                        &params,
                        Bindings {
                            xs: Some(&batch.x),
                            meta: Some(&batch.meta),
                            scratch: Some(&batch.scratch),
                            plan: directions.as_ref(),
                            out_a: Some(&partials),
                            out_b: Some(&counts),
                            ..Bindings::default()
                        },
                        groups,
                    );
                }
                pending.push(Pending {
                    slot,
                    partials,
                    counts,
                    groups,
                });
                pending_bytes += bytes;
            }
            self.queue.submit([enc.finish()]);
            if pending_bytes > PENDING_BYTES {
                self.fold(&mut pending, rec, d, dirs, k)?;
                pending_bytes = 0;
            }
        }
        self.fold(&mut pending, rec, d, dirs, k)?;
        self.wait()
    }

    fn branch(&self, batch: &GpuBatch, stream: u16) -> Result<GpuBatch> {
        let n2 = 2 * batch.n;
        let d = batch.dim;
        ensure!(
            n2 <= self.fits(batch.scratch_rows.max(d)).min(self.fits(4)),
            "gpu: branching {} particles gives {n2}, more than a storage binding holds; \
             start batches of at most half the engine's max batch when branching",
            batch.n
        );
        let stride = round_up(n2.max(1), WORKGROUP);
        let out = GpuBatch {
            x: self.storage_zeroed("x", (stride * d * 4) as u64),
            meta: self.storage_zeroed("meta", (n2 * 16) as u64),
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
                args: shaders::BranchArgs {
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
                    meta: Some(&batch.meta),
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

    fn tally(&self, plan: &Plan, batch: &GpuBatch) -> Result<Tally> {
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
                args: shaders::TallyArgs {
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
                    meta: Some(&batch.meta),
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

    fn read(&self, batch: &GpuBatch) -> Result<Particles> {
        let (n, d, stride) = (batch.n, batch.dim, batch.stride);
        let mut p = Particles {
            dim: d,
            x: vec![0.0; n * d],
            ids: Vec::with_capacity(n),
            label: Vec::with_capacity(n),
            changed: Vec::with_capacity(n),
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
        let meta: Vec<u32> =
            bytemuck::pod_collect_to_vec(&self.read_back(&batch.meta, (n * 16) as u64)?);
        for m in meta.chunks_exact(4) {
            p.ids.push(u64::from(m[0]) | (u64::from(m[1]) << 32));
            p.label.push(m[2]);
            p.changed.push(m[3]);
        }
        Ok(p)
    }

    fn load(&self, plan: &Plan, seed: u64, particles: &Particles) -> Result<GpuBatch> {
        self.upload(plan, seed, particles)
    }
}

impl GpuEngine {
    /// [`Engine::load`]: the particles uploaded in the device layout (coordinate-major positions,
    /// four metadata words per particle), as [`Engine::start`] leaves them.
    fn upload(&self, plan: &Plan, seed: u64, p: &Particles) -> Result<GpuBatch> {
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
                [id as u32, (id >> 32) as u32, p.label[i], p.changed[i]]
            })
            .collect();
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let x = self.storage_init("x", bytes_of(&xs), copy);
        Ok(self.batch(plan, seed, n, x, &meta))
    }

    /// The row stride of a batch of `n` particles (whole workgroups), refusing one larger than
    /// the engine takes for the plan.
    fn batch_stride(&self, plan: &Plan, n: usize) -> Result<usize> {
        ensure!(
            n <= self.max_batch(plan),
            "gpu: batch of {n} particles exceeds the largest batch {} for this plan and device",
            self.max_batch(plan)
        );
        Ok(round_up(n.max(1), WORKGROUP))
    }

    /// A batch of `n` particles around its positions `x`: metadata (four words per particle) and
    /// the step kernels' scratch rows.
    fn batch(&self, plan: &Plan, seed: u64, n: usize, x: wgpu::Buffer, meta: &[u32]) -> GpuBatch {
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

    /// Reads back pending partials and folds them into the recorder in workgroup order.
    fn fold(
        &self,
        pending: &mut Vec<Pending>,
        rec: &mut Recorder,
        d: usize,
        dirs: usize,
        k: usize,
    ) -> Result<()> {
        let per = 1 + 2 * (d + dirs + 1);
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
