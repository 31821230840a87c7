//! `advance`, the host side of a step ([`super::kernels`]): runs the dispatches [`schedule`]
//! cuts in the variant [`super::choice`] picks and the length [`super::dispatch_length`] sizes,
//! uploading the coefficients of each dispatch's points ([`PointLayout`]), and reduces at the
//! recorder's points ([`super::super::reduce`]).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Result, ensure};

use super::super::buffers::{ParamBlocks, bytes_of, record};
use super::super::layout::{Bindings, Params};
use super::super::reduce::Pending;
use super::super::shaders::form_code;
use super::super::{GpuBatch, GpuEngine, schedule};
use super::dispatch_length::{PILOT_STEPS, Source, Timer};
use super::kernels::group_particles;
use super::points::PointLayout;
use super::training::Training;
use crate::engine::Recorder;
use crate::plan::{Chunk, Kind, Plan};
use crate::rng;

/// Partial buffers waiting to be read back are flushed above this many bytes.
const PENDING_BYTES: u64 = 64 << 20;

/// Bounds of a group of step dispatches recorded and submitted together (coefficient bytes,
/// dispatches).
const GROUP_BYTES: u64 = 16 << 20;
const GROUP_DISPATCHES: usize = 256;

/// One recorded command of a group: a step dispatch (the training binding it reads, its
/// parameter block's offset) or the reduction at a recorded point.
enum Op {
    Step { binding: usize, offset: u32 },
    Record { slot: usize, offsets: Vec<u32> },
}

/// Dispatches waiting to be recorded: their coefficients, one after another, and parameters.
struct Group {
    data: Vec<f32>,
    params: ParamBlocks,
    ops: Vec<Op>,
}

impl Group {
    fn new(stride: usize) -> Self {
        Group {
            data: Vec::new(),
            params: ParamBlocks::new(stride),
            ops: Vec::new(),
        }
    }
}

/// What every group of one advance shares, and the reductions it leaves to fold.
struct Flush<'a> {
    step: &'a wgpu::ComputePipeline,
    step_groups: usize,
    batch: &'a GpuBatch,
    base: &'a Params,
    training: Option<&'a Training>,
    directions: Option<&'a wgpu::Buffer>,
    dirs: usize,
    rec: &'a mut Recorder,
    pending: Vec<Pending>,
    pending_bytes: u64,
    /// The last submission.
    last: Option<wgpu::SubmissionIndex>,
}

impl GpuEngine {
    /// [`crate::engine::Engine::advance`].
    pub(in crate::engine::gpu) fn advance_batch(
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
        let key = rng::key(batch.seed);
        let dirs = rec.directions.len() / d;

        let training = if plan.kind == Kind::Empirical {
            Some(self.training(plan, batch)?)
        } else {
            None
        };
        let directions = (dirs > 0).then(|| {
            self.storage_init(
                "directions",
                bytes_of(&rec.directions[..dirs * d]),
                wgpu::BufferUsages::empty(),
            )
        });
        let layout = PointLayout::of(plan);
        let point_bytes = layout.bytes();
        ensure!(
            point_bytes <= self.max_binding,
            "gpu: one time point of the plan ({point_bytes} bytes) exceeds a storage binding"
        );
        let base = Params {
            n: n as u32,
            stride: batch.stride as u32,
            d: d as u32,
            k: k as u32,
            key0: key[0],
            key1: key[1],
            m_form: form_code(plan.m_form),
            b_form: form_code(plan.b_form),
            p_form: form_code(plan.p_form),
            ..Params::default()
        };
        let variant = self.step_variant(plan, from, to, n, &base, training.as_ref())?;
        let shape = plan.shape();
        let wg = self.step_group(plan, variant, n)?;
        let limit = self.ops_limit(plan, dirs, variant, wg)?;
        let bounds = |ops: usize| schedule::Bounds {
            chunk_len: plan.chunk_len,
            ops_per_dispatch: ops,
            points_per_upload: (self.max_binding / point_bytes) as usize,
        };
        let slots = rec.slots_for(from, to);
        let (mut op, end_op, mut next_slot) = (2 * from, 2 * to + 1, slots.start);
        // Ops per dispatch: given, or measured (None until this shape is timed: its first
        // dispatches then run alone, timed, `dispatch_length.rs`).
        let mut sized = self.dispatch_ops(&shape, variant, n, limit);
        let mut spans: VecDeque<schedule::Span> = match sized {
            Some(ops) => {
                schedule::schedule_ops(op, end_op, bounds(ops), &rec.points, slots.clone()).into()
            }
            None => VecDeque::new(),
        };
        let step = self.step_pipeline(plan, variant, wg)?;
        let mut out = Flush {
            step: &step,
            step_groups: n.div_ceil(group_particles(variant, wg)),
            batch,
            base: &base,
            training: training.as_ref(),
            directions: directions.as_ref(),
            dirs,
            rec,
            pending: Vec::new(),
            pending_bytes: 0,
            last: None,
        };
        let cap = (self.max_binding.min(GROUP_BYTES) / 4) as usize;
        let mut group = Group::new(self.params_stride());
        let mut chunk_cache: Option<(usize, Arc<Chunk>)> = None;
        let started = std::time::Instant::now();
        // Ops and seconds of the timed first dispatches so far.
        let mut timed = (0usize, 0.0f64);
        while op < end_op {
            let pilot = sized.is_none();
            let span = if pilot {
                let ops = (2 * PILOT_STEPS).min(limit.0);
                let first = schedule::schedule_ops(
                    op,
                    end_op,
                    bounds(ops),
                    &out.rec.points,
                    next_slot..slots.end,
                );
                first[0]
            } else {
                spans.pop_front().expect("the spans cover the range")
            };
            op = span.op1;
            if let Some(s) = span.record {
                next_slot = s + 1;
            }
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
            let mut params = Params {
                phase: (span.op0 % 2) as u32,
                ops: (span.op1 - span.op0) as u32,
                first: j as u32,
                ..base
            };
            let (a, b) = (j - chunk.first, span.last_point() - chunk.first + 1);
            let data = layout.upload(&chunk, a, b, &mut params);
            if !group.ops.is_empty()
                && (group.data.len() + data.len() > cap || group.ops.len() >= GROUP_DISPATCHES)
            {
                self.flush(
                    std::mem::replace(&mut group, Group::new(self.params_stride())),
                    &mut out,
                    None,
                )?;
            }
            // The span's coefficients follow the group's so far.
            let shift = group.data.len() as u32;
            for off in [
                &mut params.off_m,
                &mut params.off_b,
                &mut params.off_p,
                &mut params.off_w,
                &mut params.off_bias,
                &mut params.off_noise,
                &mut params.off_offsets,
                &mut params.off_cm,
                &mut params.off_cp,
                &mut params.off_cw,
                &mut params.off_cbias,
            ] {
                *off += shift;
            }
            group.data.extend_from_slice(&data);
            // One dispatch, or one per part of a split empirical evaluation.
            let parts = match &training {
                Some(t) => t.parts(params.phase == 0),
                None => vec![(0, params.args)],
            };
            for (binding, args) in parts {
                // A recorded point reads the posterior's purity, held draws or not.
                params.args = match (&training, span.record) {
                    (Some(_), Some(_)) => super::kernels::recorded(args),
                    _ => args,
                };
                let offset = group.params.push(&params);
                group.ops.push(Op::Step { binding, offset });
            }
            if let Some(slot) = span.record {
                let offsets = GpuEngine::reduce_params(&base, dirs)
                    .iter()
                    .map(|p| group.params.push(p))
                    .collect();
                group.ops.push(Op::Record { slot, offsets });
            }
            if pilot {
                // Alone on the device (the previous advance done), timed.
                self.settle(None, started)?;
                let timer = self.timer();
                let clock = std::time::Instant::now();
                let alone = std::mem::replace(&mut group, Group::new(self.params_stride()));
                self.flush(alone, &mut out, timer.as_ref())?;
                self.wait()?;
                let (seconds, source) = match &timer {
                    Some(t) => (self.timer_seconds(t)?, Source::Timestamps),
                    None => (clock.elapsed().as_secs_f64(), Source::Wall),
                };
                timed = (timed.0 + span.op1 - span.op0, timed.1 + seconds);
                // Two ops at least (an evaluation and an update) before sizing by them.
                if timed.0 >= 2 {
                    self.note_rate(&shape, variant, n, timed.0, timed.1, source);
                    sized = self.dispatch_ops(&shape, variant, n, limit);
                    let ops = sized.expect("a timed shape is sized");
                    spans = schedule::schedule_ops(
                        op,
                        end_op,
                        bounds(ops),
                        &out.rec.points,
                        next_slot..slots.end,
                    )
                    .into();
                }
            }
        }
        if !group.ops.is_empty() {
            self.flush(group, &mut out, None)?;
        }
        let Flush {
            mut pending, last, ..
        } = out;
        self.fold(&mut pending, rec, d, dirs, k)?;
        // Done before returning, or (short advances) left running while the host goes on.
        self.settle(last, started)
    }

    /// Records and submits a group of dispatches: one coefficient buffer, one parameter buffer
    /// and one bind group per training binding for all of them; reductions at recorded points
    /// (their parameters in the same buffer, a bind group each for its partials), folded once
    /// their partials exceed [`PENDING_BYTES`].
    /// `timer`, where given, takes timestamps at the start and end of the first pass of steps.
    fn flush(&self, group: Group, out: &mut Flush, timer: Option<&Timer>) -> Result<()> {
        let plan_buf =
            self.storage_init("plan", bytes_of(&group.data), wgpu::BufferUsages::empty());
        let params = group.params.buffer(&self.device);
        let binds: Vec<wgpu::BindGroup> = match out.training {
            Some(t) => t.buffers().iter().map(Some).collect(),
            None => vec![None],
        }
        .into_iter()
        .map(|centers| {
            self.bind_group(
                &params,
                Bindings {
                    xs: Some(&out.batch.x),
                    pmeta: Some(&out.batch.meta),
                    scratch: Some(&out.batch.scratch),
                    plan: Some(&plan_buf),
                    centers,
                    ..Bindings::default()
                },
            )
        })
        .collect();
        let (d, k) = (out.batch.dim, out.base.k as usize);
        let mut enc = self.encoder();
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut stamps = timer;
        for op in group.ops {
            match op {
                Op::Step { binding, offset } => {
                    let p = pass.get_or_insert_with(|| {
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: stamps.take().map(|t| {
                                wgpu::ComputePassTimestampWrites {
                                    query_set: &t.set,
                                    beginning_of_pass_write_index: Some(0),
                                    end_of_pass_write_index: Some(1),
                                }
                            }),
                        })
                        .forget_lifetime()
                    });
                    record(p, out.step, &binds[binding], offset, out.step_groups);
                }
                Op::Record { slot, offsets } => {
                    pass = None;
                    let p = self.record_reduce(
                        &mut enc,
                        &params,
                        &offsets,
                        k,
                        out.batch,
                        out.directions,
                        slot,
                        out.dirs,
                    );
                    out.pending_bytes += p.bytes(d, out.dirs);
                    out.pending.push(p);
                    if out.pending_bytes > PENDING_BYTES {
                        let full = std::mem::replace(&mut enc, self.encoder());
                        self.queue.submit([full.finish()]);
                        self.fold(&mut out.pending, out.rec, d, out.dirs, k)?;
                        out.pending_bytes = 0;
                    }
                }
            }
        }
        drop(pass);
        if let Some(t) = timer {
            enc.resolve_query_set(&t.set, 0..2, &t.resolve, 0);
        }
        out.last = Some(self.queue.submit([enc.finish()]));
        Ok(())
    }
}
