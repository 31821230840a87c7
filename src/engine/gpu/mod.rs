//! The GPU engine (wgpu, WGSL kernels in `shaders/`). Same trait, same plan, same counter-based
//! noise as the CPU engine; trajectories agree to f32 round-off.
//!
//! * Particle state stays on the device, coordinate-major (`x[c·stride + p]`), plus four words of
//!   metadata per particle (rng id lo/hi, label, last change) and per-particle scratch rows.
//! * A step dispatch fuses many time points (the loop runs inside the kernel); dispatches are
//!   split at recorder points, at plan-chunk boundaries, where the uploaded coefficients would
//!   exceed a storage binding, and every `steps_per_dispatch` steps (watchdogs).
//! * Reductions are deterministic: per-workgroup partials (f32 Welford within a workgroup of 64
//!   particles) folded on the host in workgroup order in f64; class counts and the tally use u32
//!   atomics. No float atomics.
//! * A batch is limited by the storage-binding size (lavapipe: 128 MiB) and a memory budget; the
//!   drivers stream larger runs in batches of at most [`Engine::max_batch`] particles, a multiple
//!   of the workgroup, so statistics do not depend on the batch size.

mod device;
mod shaders;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use wgpu::util::DeviceExt;

pub use device::{AdapterSummary, list_adapters};

use super::{Engine, NO_LABEL, Particles, Recorder};
use crate::engine::kernel::SOFTMAX_ROWS;
use crate::linalg::Form;
use crate::plan::{Kind, Plan, form_len};
use crate::rng;
use crate::stats::{Moments, PointStats, Tally};

/// Particles per workgroup (WG in the shaders).
pub const WORKGROUP: usize = 64;

/// Largest workgroup count per grid dimension we use (the WebGPU minimum).
const GRID_X: usize = 65535;

/// lavapipe (llvmpipe) ends the loops of an invocation after 65535 iterations in total
/// (`LP_MAX_TGSI_LOOP_ITERATIONS`, shared by every loop of a shader), silently. On that driver
/// dispatches are cut so that no invocation comes near it, and work that cannot be cut is refused.
const LOOP_BUDGET: u64 = 60_000;

/// Loop iterations of one `apply_row` pass over all d rows.
fn apply_cost(form: Form, d: u64) -> u64 {
    match form {
        Form::Dense => d + d * d,
        _ => d,
    }
}

/// Loop iterations (upper bounds) of one evaluation and one update in the step kernels.
fn op_costs(plan: &Plan, rows_per_tile: usize) -> (u64, u64) {
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let eval = match plan.kind {
        Kind::Mixture => apply_cost(plan.b_form, d) + k * (d + 1) + 2 * k + d * (k + 1),
        Kind::Empirical => {
            let r = rows_per_tile as u64;
            let tiles = k.div_ceil(r);
            apply_cost(plan.b_form, d)
                + tiles * ((r * d).div_ceil(WORKGROUP as u64) + r * (d + 1) + r + d * (r + 1) + 2)
                + d
        }
    };
    let blocks = d.div_ceil(4);
    let p_rows = if plan.p_form == Form::Dense { d * d } else { 0 };
    let update = apply_cost(plan.m_form, d) + blocks * (10 + 4) + p_rows;
    (eval + 16, update + 16)
}

/// Partial buffers waiting to be read back are flushed above this many bytes.
const PENDING_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Pick the adapter whose name contains this (case-insensitive); default: wgpu's
    /// high-performance choice (`WGPU_BACKEND` / `WGPU_ADAPTER_NAME` honoured).
    pub adapter: Option<String>,
    /// Pretend the storage-binding limit is this small (tests, or to bound batch sizes).
    pub max_binding_bytes: Option<u64>,
    /// Time steps fused into one dispatch at most (keeps each dispatch short for watchdogs).
    pub steps_per_dispatch: usize,
    /// Device memory a batch may occupy (positions, scratch, metadata).
    pub memory_budget_bytes: u64,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            adapter: None,
            max_binding_bytes: None,
            steps_per_dispatch: 50,
            memory_budget_bytes: 2 << 30,
        }
    }
}

struct Pipelines {
    start: wgpu::ComputePipeline,
    step_mixture: wgpu::ComputePipeline,
    step_empirical: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    tally: wgpu::ComputePipeline,
    branch: wgpu::ComputePipeline,
}

pub struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    layout: wgpu::PipelineLayout,
    bgl: wgpu::BindGroupLayout,
    pipelines: Pipelines,
    probe: OnceLock<wgpu::ComputePipeline>,
    /// One tiny buffer per binding slot 1..=7, bound where a kernel does not use the slot.
    dummies: Vec<wgpu::Buffer>,
    options: GpuOptions,
    max_binding: u64,
    compile_seconds: f64,
    errors: Arc<Mutex<Vec<String>>>,
}

/// Particle state on the device.
pub struct GpuBatch {
    x: wgpu::Buffer,
    meta: wgpu::Buffer,
    scratch: wgpu::Buffer,
    n: usize,
    stride: usize,
    dim: usize,
    scratch_rows: usize,
    seed: u64,
}

impl GpuBatch {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The uniform block of every kernel (`Params` in shaders/shared/common.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    stride: u32,
    d: u32,
    k: u32,
    key0: u32,
    key1: u32,
    op0: u32,
    op1: u32,
    to: u32,
    m_form: u32,
    b_form: u32,
    p_form: u32,
    first: u32,
    off_m: u32,
    off_b: u32,
    off_p: u32,
    off_w: u32,
    off_bias: u32,
    off_noise: u32,
    aux0: u32,
    aux1: u32,
    aux2: u32,
    aux3: u32,
    aux4: u32,
}

/// The largest storage binding to use: the device's, never beyond u32 word indices, or the
/// smaller limit a test asks for.
fn binding_limit(limits: &wgpu::Limits, options: &GpuOptions) -> Result<u64> {
    let mut max_binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(u64::from(u32::MAX) + 1 - 256);
    if let Some(m) = options.max_binding_bytes {
        max_binding = max_binding.min(m);
    }
    ensure!(
        max_binding >= 4096,
        "gpu: a storage binding of {max_binding} bytes is too small"
    );
    Ok(max_binding)
}

fn form_code(f: Form) -> u32 {
    match f {
        Form::Scalar => 0,
        Form::Diagonal => 1,
        Form::Dense => 2,
    }
}

/// Scratch rows per particle: B x / M x (d), Wᵀ r (d), purity (1), mixture logits (K).
fn scratch_rows(plan: &Plan) -> usize {
    let d = plan.dim;
    match plan.kind {
        Kind::Mixture => 2 * d + 1 + plan.centers_count,
        Kind::Empirical => 2 * d + 1,
    }
}

fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// A 2-D grid of at least `groups` workgroups.
fn grid(groups: usize) -> (u32, u32) {
    let groups = groups.max(1);
    let x = groups.min(GRID_X);
    (x as u32, groups.div_ceil(x) as u32)
}

fn bytes_of<T: bytemuck::Pod>(v: &[T]) -> &[u8] {
    bytemuck::cast_slice(v)
}

impl GpuEngine {
    /// The default adapter with default options.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default())
    }

    pub fn with_options(options: GpuOptions) -> Result<Self> {
        ensure!(
            options.steps_per_dispatch > 0,
            "gpu: steps per dispatch must be positive"
        );
        let adapter = device::pick(options.adapter.as_deref())?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let need = [
            (
                "storage buffers per shader stage",
                u64::from(limits.max_storage_buffers_per_shader_stage),
                7,
            ),
            (
                "invocations per workgroup",
                u64::from(limits.max_compute_invocations_per_workgroup),
                WORKGROUP as u64,
            ),
            (
                "workgroup storage bytes",
                u64::from(limits.max_compute_workgroup_storage_size),
                (shaders::TILE_FLOATS * 4) as u64,
            ),
        ];
        for (what, have, want) in need {
            ensure!(
                have >= want,
                "gpu: adapter {} ({:?}) offers {have} {what}, the kernels need {want}",
                info.name,
                info.backend
            );
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("regimes"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| format!("gpu: could not open device on adapter {}", info.name))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                errors.lock().expect("gpu errors").push(e.to_string());
            }));
        }
        watch_device_lost(&device, &errors);
        let max_binding = binding_limit(&limits, &options)?;

        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        for b in 1..=7 {
            entries.push(storage(b, b == 4 || b == 5));
        }
        let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("regimes"),
            entries: &entries,
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("regimes"),
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        let dummies = (1..=7)
            .map(|b| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("dummy {b}")),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();

        let clock = Instant::now();
        let make = |k: (&str, &[&str])| build_pipeline(&device, &layout, k);
        let pipelines = Pipelines {
            start: make(shaders::START)?,
            step_mixture: make(shaders::STEP_MIXTURE)?,
            step_empirical: make(shaders::STEP_EMPIRICAL)?,
            reduce: make(shaders::REDUCE)?,
            tally: make(shaders::TALLY)?,
            branch: make(shaders::BRANCH)?,
        };
        let mut engine = GpuEngine {
            device,
            queue,
            info,
            layout,
            bgl,
            pipelines,
            probe: OnceLock::new(),
            dummies,
            options,
            max_binding,
            compile_seconds: 0.0,
            errors,
        };
        // Warm every pipeline with an empty dispatch so that drivers that compile lazily
        // (lavapipe JITs at first use) pay that cost here, where it is timed.
        let mut enc = engine.encoder();
        for p in [
            &engine.pipelines.start,
            &engine.pipelines.step_mixture,
            &engine.pipelines.step_empirical,
            &engine.pipelines.reduce,
            &engine.pipelines.tally,
            &engine.pipelines.branch,
        ] {
            engine.dispatch(&mut enc, p, &Params::default(), &[None; 7], 1);
        }
        engine.queue.submit([enc.finish()]);
        engine.wait()?;
        engine.compile_seconds = clock.elapsed().as_secs_f64();
        Ok(engine)
    }

    /// The same device and compiled pipelines with other knobs (steps per dispatch, binding
    /// limit, memory budget); the adapter option is ignored. Costs no compilation.
    pub fn reconfigured(&self, options: GpuOptions) -> Result<Self> {
        ensure!(
            options.steps_per_dispatch > 0,
            "gpu: steps per dispatch must be positive"
        );
        let limits = self.device.limits();
        let max_binding = binding_limit(&limits, &options)?;
        Ok(GpuEngine {
            device: self.device.clone(),
            queue: self.queue.clone(),
            info: self.info.clone(),
            layout: self.layout.clone(),
            bgl: self.bgl.clone(),
            pipelines: Pipelines {
                start: self.pipelines.start.clone(),
                step_mixture: self.pipelines.step_mixture.clone(),
                step_empirical: self.pipelines.step_empirical.clone(),
                reduce: self.pipelines.reduce.clone(),
                tally: self.pipelines.tally.clone(),
                branch: self.pipelines.branch.clone(),
            },
            probe: OnceLock::new(),
            dummies: self.dummies.clone(),
            options,
            max_binding,
            compile_seconds: self.compile_seconds,
            errors: self.errors.clone(),
        })
    }

    /// Seconds spent compiling and JIT-warming the pipelines at creation.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether the driver silently cuts long loops (lavapipe), see [`LOOP_BUDGET`].
    fn loop_limited(&self) -> bool {
        self.info.driver.to_lowercase().contains("llvmpipe")
            || self.info.name.to_lowercase().contains("llvmpipe")
    }

    fn loop_error(&self, what: &str, cost: u64) -> anyhow::Error {
        anyhow!(
            "gpu: {what} takes about {cost} loop iterations per particle, more than the {} that              {} runs before cutting loops short (llvmpipe's shared loop limit); use fewer              dimensions or training points, a hardware GPU, or the CPU engine",
            LOOP_BUDGET,
            self.info.name
        )
    }

    /// The storage-binding size this engine plans with.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    fn encoder(&self) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    fn check_errors(&self) -> Result<()> {
        let mut errs = self.errors.lock().expect("gpu errors");
        if !errs.is_empty() {
            let msg = errs.join("; ");
            errs.clear();
            bail!("gpu: {msg}");
        }
        Ok(())
    }

    /// Waits for all submitted work; reports validation errors and device loss.
    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| anyhow!("gpu: device lost or timed out while waiting ({e})"))?;
        self.check_errors()
    }

    fn storage_init(&self, label: &str, data: &[u8], extra: wgpu::BufferUsages) -> wgpu::Buffer {
        let mut padded;
        let contents = if data.len() < 16 || !data.len().is_multiple_of(4) {
            padded = data.to_vec();
            padded.resize(round_up(data.len().max(16), 4), 0);
            &padded[..]
        } else {
            data
        };
        let buf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: contents.len() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buf, 0, contents);
        buf
    }

    fn storage_zeroed(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: round_up(bytes.max(16) as usize, 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Records one dispatch; `buffers[i]` goes to binding i+1 (a dummy where None).
    fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        buffers: &[Option<&wgpu::Buffer>; 7],
        groups: usize,
    ) {
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.unwrap_or(&self.dummies[i]).as_entire_binding(),
            });
        }
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.bgl,
            entries: &entries,
        });
        let (gx, gy) = grid(groups);
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// Copies `bytes` bytes of a buffer to the host.
    fn read_back(&self, buf: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let size = round_up(bytes.max(4) as usize, 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("staging"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.encoder();
        enc.copy_buffer_to_buffer(buf, 0, &staging, 0, size);
        self.queue.submit([enc.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| anyhow!("gpu: buffer mapping was dropped"))?
            .map_err(|e| anyhow!("gpu: could not map a buffer for reading ({e})"))?;
        let out = staging
            .get_mapped_range(..)
            .map_err(|e| anyhow!("gpu: {e}"))?
            .to_vec();
        staging.unmap();
        Ok(out[..bytes as usize].to_vec())
    }

    /// Philox words and Box–Muller normals for `(key, counter)` probes, computed by the shared
    /// WGSL (tests compare them with `crate::rng`).
    #[doc(hidden)]
    pub fn rng_probe(&self, probes: &[([u32; 2], [u32; 4])]) -> Result<Vec<([u32; 4], [f32; 4])>> {
        let pipeline = match self.probe.get() {
            Some(p) => p,
            None => {
                let p = build_pipeline(&self.device, &self.layout, shaders::RNG_PROBE)?;
                self.probe.get_or_init(|| p)
            }
        };
        let n = probes.len();
        let input: Vec<u32> = probes
            .iter()
            .flat_map(|(k, c)| [k[0], k[1], c[0], c[1], c[2], c[3]])
            .collect();
        let inp = self.storage_init("probe in", bytes_of(&input), wgpu::BufferUsages::empty());
        let normals = self.storage_zeroed("probe normals", (n * 16) as u64);
        let words = self.storage_zeroed("probe words", (n * 16) as u64);
        let params = Params {
            n: n as u32,
            ..Params::default()
        };
        let mut enc = self.encoder();
        self.dispatch(
            &mut enc,
            pipeline,
            &params,
            &[
                None,
                Some(&inp),
                None,
                None,
                None,
                Some(&normals),
                Some(&words),
            ],
            n.div_ceil(WORKGROUP),
        );
        self.queue.submit([enc.finish()]);
        let z: Vec<f32> = bytemuck::pod_collect_to_vec(&self.read_back(&normals, (n * 16) as u64)?);
        let w: Vec<u32> = bytemuck::pod_collect_to_vec(&self.read_back(&words, (n * 16) as u64)?);
        Ok((0..n)
            .map(|i| {
                (
                    [w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]],
                    [z[4 * i], z[4 * i + 1], z[4 * i + 2], z[4 * i + 3]],
                )
            })
            .collect())
    }

    fn check_batch(&self, plan: &Plan, batch: &GpuBatch) -> Result<()> {
        ensure!(
            batch.dim == plan.dim && batch.scratch_rows >= scratch_rows(plan),
            "gpu: batch was started for another plan (d = {}, scratch rows {})",
            batch.dim,
            batch.scratch_rows
        );
        Ok(())
    }

    /// Particles of dimension `rows` per binding under the binding limit.
    fn fits(&self, rows: usize) -> usize {
        (self.max_binding / (4 * rows.max(1) as u64)) as usize
    }
}

/// Device-lost reports go to the same list as validation errors.
fn watch_device_lost(device: &wgpu::Device, errors: &Arc<Mutex<Vec<String>>>) {
    let sink = errors.clone();
    device.set_device_lost_callback(move |reason, msg| {
        if reason != wgpu::DeviceLostReason::Destroyed {
            sink.lock()
                .expect("gpu errors")
                .push(format!("device lost ({reason:?}): {msg}"));
        }
    });
}

fn build_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    (name, pieces): (&str, &[&str]),
) -> Result<wgpu::ComputePipeline> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(shaders::source(pieces).into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(name),
        layout: Some(layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        bail!("gpu: kernel {name} failed to compile: {e}");
    }
    Ok(pipeline)
}

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
        ensure!(
            n <= self.max_batch(plan),
            "gpu: batch of {n} particles exceeds the largest batch {} for this plan and device",
            self.max_batch(plan)
        );
        let stride = round_up(n.max(1), WORKGROUP);
        let rows = scratch_rows(plan);
        let meta: Vec<u32> = ids
            .iter()
            .flat_map(|&id| [id as u32, (id >> 32) as u32, NO_LABEL, 0])
            .collect();
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let batch = GpuBatch {
            x: self.storage_zeroed("x", (stride * d * 4) as u64),
            meta: self.storage_init("meta", bytes_of(&meta), copy),
            scratch: self.storage_zeroed("scratch", (stride * rows * 4) as u64),
            n,
            stride,
            dim: d,
            scratch_rows: rows,
            seed,
        };
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
            aux0: 0,
            aux1: off_cum as u32,
            aux2: off_chol as u32,
            aux3: form_code(sp.chol_form),
            ..Params::default()
        };
        if n > 0 {
            let mut enc = self.encoder();
            self.dispatch(
                &mut enc,
                &self.pipelines.start,
                &params,
                &[
                    Some(&batch.x),
                    Some(&batch.meta),
                    Some(&batch.scratch),
                    Some(&plan_buf),
                    None,
                    None,
                    None,
                ],
                n.div_ceil(WORKGROUP),
            );
            self.queue.submit([enc.finish()]);
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
            Some(self.storage_init(
                "centers",
                bytes_of(&plan.centers),
                wgpu::BufferUsages::empty(),
            ))
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
        // The CPU's block of training points for d ≤ 64, so both engines round alike there.
        let rows_per_tile = (shaders::TILE_FLOATS / d).clamp(1, SOFTMAX_ROWS);
        let tiled = d <= shaders::TILE_FLOATS;
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
            aux0: (2 * d) as u32,
            aux1: (2 * d + 1) as u32,
            aux2: rows_per_tile as u32,
            aux3: u32::from(tiled),
            ..Params::default()
        };
        let step = if empirical {
            &self.pipelines.step_empirical
        } else {
            &self.pipelines.step_mixture
        };
        let mut ops_per_dispatch = 2 * self.options.steps_per_dispatch;
        if self.loop_limited() {
            let (eval, update) = op_costs(plan, rows_per_tile);
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
        let slots = rec.slots_for(from, to);
        let mut next_slot = slots.start;
        let mut pending: Vec<Pending> = Vec::new();
        let mut pending_bytes = 0u64;
        let per = 1 + 2 * (d + dirs + 1);

        let end_op = 2 * to + 1;
        let mut op = 2 * from;
        let mut chunk_cache: Option<(usize, Arc<crate::plan::Chunk>)> = None;
        while op < end_op {
            let j = op / 2;
            let c = plan.chunk_of(j);
            let chunk = match &chunk_cache {
                Some((cc, ch)) if *cc == c => ch.clone(),
                _ => {
                    let ch = plan.chunk(c)?;
                    chunk_cache = Some((c, ch.clone()));
                    ch
                }
            };
            let mut op1 = end_op
                .min(2 * (chunk.first + chunk.len))
                .min(op + ops_per_dispatch)
                .min(2 * (j + points_per_upload));
            let record = if next_slot < slots.end && 2 * rec.points[next_slot] < op1 {
                op1 = 2 * rec.points[next_slot] + 1;
                Some(next_slot)
            } else {
                None
            };
            // Coefficients of points j ..= last.
            let last = (op1 - 1) / 2;
            let (a, b) = (j - chunk.first, last - chunk.first + 1);
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
                op0: op as u32,
                op1: op1 as u32,
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
                step,
                &params,
                &[
                    Some(&batch.x),
                    Some(&batch.meta),
                    Some(&batch.scratch),
                    Some(&plan_buf),
                    centers.as_ref(),
                    None,
                    None,
                ],
                groups,
            );
            if let Some(slot) = record {
                let bytes = (groups * per * 4) as u64;
                let partials = self.storage_zeroed("partials", bytes);
                let counts = self.storage_zeroed("class counts", (k * 4) as u64);
                // One window of 64 quantities per dispatch keeps every invocation's loops short.
                for q0 in (0..d + dirs + 1).step_by(WORKGROUP) {
                    let params = Params {
                        aux0: (2 * d) as u32,
                        aux1: dirs as u32,
                        aux2: 0,
                        aux3: q0 as u32,
                        ..base
                    };
                    self.dispatch(
                        &mut enc,
                        &self.pipelines.reduce,
                        &params,
                        &[
                            Some(&batch.x),
                            Some(&batch.meta),
                            Some(&batch.scratch),
                            directions.as_ref(),
                            None,
                            Some(&partials),
                            Some(&counts),
                        ],
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
                next_slot += 1;
            }
            self.queue.submit([enc.finish()]);
            if pending_bytes > PENDING_BYTES {
                self.fold(&mut pending, rec, d, dirs, k)?;
                pending_bytes = 0;
            }
            op = op1;
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
                aux0: u32::from(stream),
                aux1: stride as u32,
                ..Params::default()
            };
            let mut enc = self.encoder();
            self.dispatch(
                &mut enc,
                &self.pipelines.branch,
                &params,
                &[
                    Some(&batch.x),
                    Some(&batch.meta),
                    None,
                    None,
                    None,
                    Some(&out.x),
                    Some(&out.meta),
                ],
                n2.div_ceil(WORKGROUP),
            );
            self.queue.submit([enc.finish()]);
        }
        self.check_errors()?;
        Ok(out)
    }

    fn tally(&self, plan: &Plan, batch: &GpuBatch) -> Result<Tally> {
        self.check_batch(plan, batch)?;
        let k = plan.centers_count;
        let points = plan.grid.steps + 1;
        let len = k + points + 1;
        let counts = self.storage_zeroed("tally", (len * 4) as u64);
        if batch.n > 0 {
            let params = Params {
                n: batch.n as u32,
                stride: batch.stride as u32,
                d: batch.dim as u32,
                k: k as u32,
                aux0: points as u32,
                ..Params::default()
            };
            let mut enc = self.encoder();
            self.dispatch(
                &mut enc,
                &self.pipelines.tally,
                &params,
                &[
                    None,
                    Some(&batch.meta),
                    None,
                    None,
                    None,
                    None,
                    Some(&counts),
                ],
                batch.n.div_ceil(WORKGROUP),
            );
            self.queue.submit([enc.finish()]);
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
}

impl GpuEngine {
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
