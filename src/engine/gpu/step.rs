//! Host side of `shaders/step_mixture.wgsl` and `shaders/step_empirical.wgsl`, of their
//! on-chip variants `step_mixture_onchip.wgsl` and `step_empirical_onchip.wgsl` and of the wide
//! variant `step_mixture_wide.wgsl` (CPU twins:
//! `engine/cpu/step.rs` and `engine/cpu/lanes.rs`): the step kernels specialised per plan
//! [`Shape`], and `advance`, which runs the dispatches [`schedule`] cuts, uploading the
//! coefficients of each dispatch's points, and reduces at the recorder's points ([`super::reduce`]).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Result, ensure};

use super::buffers::{ParamBlocks, bytes_of, record};
use super::dispatch_length::{PILOT_STEPS, Source, Timer};
use super::layout::{Bindings, Params};
use super::reduce::Pending;
use super::shaders::{
    BLOCK, COMMON, GROUP_PARTICLES, Kernel, KernelArgs, ONCHIP, PARTICLES_PER_INVOCATION, RNG,
    ROW_BLOCK, STEP, TILE_FLOATS, form_code, kernel_file, no_args,
};
use super::training::EmpiricalArgs;
use super::variant::Variant;
use super::{GpuBatch, GpuEngine, schedule};
use crate::engine::{Recorder, SOFTMAX_ROWS};
use crate::plan::{Chunk, Kind, Plan, Shape, form_len};
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
    training: Option<&'a super::training::Training>,
    directions: Option<&'a wgpu::Buffer>,
    dirs: usize,
    rec: &'a mut Recorder,
    pending: Vec<Pending>,
    pending_bytes: u64,
    /// The last submission.
    last: Option<wgpu::SubmissionIndex>,
}

/// The step kernels read their sizes and forms from the constants of a [`Shape`] ([`constants`]).
pub(super) const STEP_MIXTURE: Kernel = Kernel {
    name: "step_mixture",
    args: no_args,
    pieces: &[COMMON, RNG, BLOCK, STEP, kernel_file!("step_mixture.wgsl")],
    outputs: [None, None],
};
pub(super) const STEP_EMPIRICAL: Kernel = Kernel {
    name: "step_empirical",
    args: EmpiricalArgs::wgsl,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        kernel_file!("step_empirical.wgsl"),
    ],
    outputs: [None, None],
};

/// The on-chip variant of the mixture step (`variant.rs`); it reuses the shared pieces' names
/// (scratch rows, form codes) but none of the register blocks.
pub(super) const STEP_MIXTURE_ONCHIP: Kernel = Kernel {
    name: "step_mixture_onchip",
    args: no_args,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        ONCHIP,
        kernel_file!("step_mixture_onchip.wgsl"),
    ],
    outputs: [None, None],
};

/// The wide variant of the mixture step (`variant.rs`): a workgroup per particle, for large d.
/// Its own private arrays and workgroup memory; the shared pieces give the scratch rows, form
/// codes and Philox.
pub(super) const STEP_MIXTURE_WIDE: Kernel = Kernel {
    name: "step_mixture_wide",
    args: no_args,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        kernel_file!("step_mixture_wide.wgsl"),
    ],
    outputs: [None, None],
};

/// The on-chip variant of the empirical step: tiles of training points in workgroup memory
/// shared by the workgroup's particles, each particle's state in private arrays.
pub(super) const STEP_EMPIRICAL_ONCHIP: Kernel = Kernel {
    name: "step_empirical_onchip",
    args: EmpiricalArgs::wgsl,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        ONCHIP,
        kernel_file!("step_empirical_onchip.wgsl"),
    ],
    outputs: [None, None],
};

/// Coordinates per row of a tile of the on-chip empirical kernel (`TW`): the whole point where
/// [`rows_per_tile`] points fit workgroup memory, else slices of this many.
pub(super) fn onchip_tile_width(shape: &Shape) -> usize {
    shape.dim.clamp(1, TILE_FLOATS / rows_per_tile(shape))
}

/// Training points per softmax tile: the CPU's block, so both engines round the online softmax
/// alike for every d.
pub(super) fn rows_per_tile(_shape: &Shape) -> usize {
    SOFTMAX_ROWS
}

/// Whether a tile of training points goes through workgroup memory (d ≤ 64). Larger points are
/// read from `centers` by every invocation: on lavapipe 64-row tiles read so beat the smaller
/// tiles workgroup memory holds (d = 100: 866 vs 486 particle-steps/s; d = 784: 3.7×), as
/// each tile rereads and rewrites Wᵀe in scratch; untested on hardware GPUs.
pub(super) fn tiled(shape: &Shape) -> bool {
    shape.dim * rows_per_tile(shape) <= TILE_FLOATS
}

/// The step kernel of a shape. Pipelines are cached per shape, so a run compiles its step kernel
/// once, and the compiler sees constant loop bounds and no branches on forms.
pub(super) fn kernel(shape: &Shape, variant: Variant) -> &'static Kernel {
    match (shape.kind, variant) {
        (Kind::Empirical, Variant::Blocked) => &STEP_EMPIRICAL,
        (Kind::Empirical, Variant::OnChip) => &STEP_EMPIRICAL_ONCHIP,
        (Kind::Mixture, Variant::Blocked) => &STEP_MIXTURE,
        (Kind::Mixture, Variant::OnChip) => &STEP_MIXTURE_ONCHIP,
        (Kind::Mixture, Variant::Wide) => &STEP_MIXTURE_WIDE,
        // Never chosen (`Variant::applies`); the blocked kernel keeps the match total.
        (Kind::Empirical, Variant::Wide) => &STEP_EMPIRICAL,
    }
}

/// The specialisation constants (WGSL) of a shape, generated from the Rust values.
pub(super) fn constants(shape: &Shape) -> String {
    format!(
        "const D: u32 = {d}u;\n\
         const K: u32 = {k}u;\n\
         const M_FORM: u32 = {m}u;\n\
         const B_FORM: u32 = {b}u;\n\
         const P_FORM: u32 = {p}u;\n\
         const NOISE_FORM: u32 = {noise}u;\n\
         const STOCHASTIC: bool = {stochastic};\n\
         const DRAWS: bool = {draws};\n\
         const PB: u32 = {pb}u;\n\
         const GP: u32 = {gp}u;\n\
         const RB: u32 = {rb}u;\n\
         const KB: u32 = {kb}u;\n\
         const ROWS: u32 = {rows}u;\n\
         const TILED: bool = {tiled};\n\
         const OWG: u32 = {owg}u;\n\
         const TW: u32 = {tw}u;\n\
         const WWG: u32 = {wwg}u;\n\
         const QW: u32 = {qw}u;\n",
        d = shape.dim,
        k = shape.centers,
        m = form_code(shape.m_form),
        b = form_code(shape.b_form),
        p = form_code(shape.p_form),
        noise = form_code(shape.noise_form),
        stochastic = shape.stochastic,
        draws = shape.draws,
        pb = PARTICLES_PER_INVOCATION,
        gp = GROUP_PARTICLES,
        rb = ROW_BLOCK,
        kb = shape.centers.clamp(1, ROW_BLOCK),
        rows = rows_per_tile(shape),
        tiled = tiled(shape),
        owg = super::variant::ONCHIP_GROUP,
        tw = onchip_tile_width(shape),
        wwg = super::variant::wide_group(shape.dim),
        qw = super::variant::wide_blocks(shape.dim),
    )
}

/// Floats per time point of the coefficients a step dispatch uploads: M, B, P, the mixture's
/// centers W (the empirical target's are resident), the K biases, the noise factor and the
/// exact mixture's offsets.
pub(super) struct PointLayout {
    m: usize,
    b: usize,
    p: usize,
    w: usize,
    k: usize,
    noise: usize,
    offsets: usize,
}

impl PointLayout {
    pub(super) fn of(plan: &Plan) -> Self {
        let d = plan.dim;
        PointLayout {
            m: form_len(plan.m_form, d),
            b: form_len(plan.b_form, d),
            p: form_len(plan.p_form, d),
            w: if plan.kind == Kind::Empirical {
                0
            } else {
                plan.centers_count * d
            },
            k: plan.centers_count,
            noise: form_len(plan.noise_form, d),
            offsets: if plan.kind == Kind::Mixture && plan.scheme.draws_component() {
                plan.centers_count * d
            } else {
                0
            },
        }
    }

    fn bytes(&self) -> u64 {
        (4 * (self.m + self.b + self.p + self.w + self.k + self.noise + self.offsets)) as u64
    }

    /// The coefficients of chunk points `a..b` and the step words of `Params` locating them.
    pub(super) fn upload(
        &self,
        chunk: &Chunk,
        a: usize,
        b: usize,
        params: &mut Params,
    ) -> Vec<f32> {
        let mut data: Vec<f32> = Vec::with_capacity((b - a) * self.bytes() as usize / 4);
        let mut push = |v: &[f32], len: usize| {
            let off = data.len() as u32;
            data.extend_from_slice(&v[a * len..b * len]);
            off
        };
        params.off_m = push(&chunk.m, self.m);
        params.off_b = push(&chunk.b, self.b);
        params.off_p = push(&chunk.p, self.p);
        params.off_w = if self.w > 0 {
            push(&chunk.w, self.w)
        } else {
            0
        };
        params.off_bias = push(&chunk.bias, self.k);
        params.off_noise = push(&chunk.noise, self.noise);
        params.off_offsets = if self.offsets > 0 {
            push(&chunk.offsets, self.offsets)
        } else {
            0
        };
        data
    }
}

impl GpuEngine {
    /// [`crate::engine::Engine::advance`].
    pub(super) fn advance_batch(
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
        let limit = self.ops_limit(plan, dirs, variant)?;
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
        let step = self.step_pipeline(plan, variant)?;
        let mut out = Flush {
            step: &step,
            step_groups: n.div_ceil(variant.group_particles()),
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
                params.args = args;
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
