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
mod kernels;
mod schedule;
mod shaders;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use wgpu::util::DeviceExt;

pub use device::{AdapterSummary, list_adapters};

use crate::linalg::Form;
use crate::plan::{Kind, Plan};

/// Particles per workgroup (WG in the shaders).
pub const WORKGROUP: usize = 64;

/// Largest workgroup count per grid dimension we use (the WebGPU minimum).
const GRID_X: usize = 65535;

/// lavapipe (llvmpipe) ends the loops of an invocation after 65535 iterations in total
/// (`LP_MAX_TGSI_LOOP_ITERATIONS`, shared by every loop of a shader), silently. On that driver
/// dispatches are cut so that no invocation comes near it, and work that cannot be cut is refused.
const LOOP_BUDGET: u64 = 60_000;

/// Loop iterations of one register-blocked product of `rows` outputs over `cols` inputs.
fn block_cost(rows: u64, cols: u64) -> u64 {
    let blocks = rows.div_ceil(shaders::ROW_BLOCK as u64);
    blocks * (cols + 2 * shaders::ROW_BLOCK as u64)
}

/// Loop iterations of `apply_rows` over all d rows.
fn apply_cost(form: Form, d: u64) -> u64 {
    match form {
        Form::Dense => block_cost(d, d),
        _ => d,
    }
}

/// Loop iterations (upper bounds, counting the unrolled 8-row loops as loops) of one evaluation
/// and one update of an invocation of the step kernels.
fn op_costs(plan: &Plan) -> (u64, u64) {
    let shape = shaders::StepShape::of(plan);
    let d = plan.dim as u64;
    let k = plan.centers_count as u64;
    let eval = match plan.kind {
        Kind::Mixture => apply_cost(plan.b_form, d) + block_cost(k, d) + 2 * k + block_cost(d, k),
        Kind::Empirical => {
            let r = shape.rows_per_tile() as u64;
            let tiles = k.div_ceil(r);
            apply_cost(plan.b_form, d)
                + tiles
                    * ((r * d).div_ceil(WORKGROUP as u64) + block_cost(r, d) + r + block_cost(d, r))
                + d
        }
    };
    let blocks = d.div_ceil(shaders::ROW_BLOCK as u64);
    let p_cost = if plan.p_form == Form::Dense {
        block_cost(d, d)
    } else {
        blocks * shaders::ROW_BLOCK as u64
    };
    // Per block of 8 rows: two Philox calls (10 rounds each) for each of four particles.
    let update = apply_cost(plan.m_form, d) + p_cost + blocks * (8 * 10 + 8);
    (eval + 16, update + 16)
}

/// Partial buffers waiting to be read back are flushed above this many bytes.
const PENDING_BYTES: u64 = 64 << 20;

#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Pick the adapter whose name contains this (case-insensitive); default: wgpu's
    /// high-performance choice (`WGPU_BACKEND` / `WGPU_ADAPTER_NAME` honoured).
    pub adapter: Option<String>,
    /// Pick the adapter at this index of [`list_adapters`] (before `adapter`): tells identical
    /// GPUs apart (`--devices`).
    pub adapter_index: Option<usize>,
    /// Pretend the storage-binding limit is this small (tests, or to bound batch sizes).
    pub max_binding_bytes: Option<u64>,
    /// Time steps fused into one dispatch at most (keeps each dispatch short for watchdogs).
    pub steps_per_dispatch: usize,
    /// Device memory a batch may occupy (positions, scratch, metadata).
    pub memory_budget_bytes: u64,
    /// Use the adapter's 64-bit integers (SHADER_INT64) for Philox's wide multiply where it
    /// offers them; false keeps the portable 16-bit-halves path (same words, for tests).
    pub native_int64: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            adapter: None,
            adapter_index: None,
            max_binding_bytes: None,
            steps_per_dispatch: 50,
            memory_budget_bytes: 2 << 30,
            native_int64: true,
        }
    }
}

#[derive(Clone)]
struct Pipelines {
    start: wgpu::ComputePipeline,
    reduce: wgpu::ComputePipeline,
    tally: wgpu::ComputePipeline,
    branch: wgpu::ComputePipeline,
    /// Step pipelines specialised per plan shape, built on first use (shared by reconfigured
    /// engines), and the seconds spent building them.
    steps: Arc<Mutex<StepCache>>,
}

#[derive(Default)]
struct StepCache {
    pipelines: HashMap<shaders::StepShape, wgpu::ComputePipeline>,
    seconds: f64,
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
    /// Whether kernels are built with native 64-bit integers (SHADER_INT64 requested).
    int64: bool,
    compile_seconds: f64,
    errors: Arc<Mutex<Vec<String>>>,
    /// The training points of the last empirical plan, kept on the device across batches and
    /// advances (keyed by a hash of their bits), so a run uploads them once.
    centers: Arc<Mutex<Option<(u64, wgpu::Buffer)>>>,
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
    /// Step kernels: the first op's parity (0 evaluate, 1 update) and the number of ops, counted
    /// from point `first`, so no op index grows with the run.
    phase: u32,
    ops: u32,
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
    /// The kernel's named arguments ([`shaders::KernelArgs`]).
    args: [u32; shaders::ARG_WORDS],
}

/// The buffers of one dispatch by binding (see shaders/shared/common.wgsl); None binds a dummy.
#[derive(Default)]
struct Bindings<'a> {
    /// 1: particle coordinates.
    xs: Option<&'a wgpu::Buffer>,
    /// 2: per-particle id, label and last change.
    meta: Option<&'a wgpu::Buffer>,
    /// 3: per-particle scratch rows.
    scratch: Option<&'a wgpu::Buffer>,
    /// 4: coefficients (plan chunk, start plan or projection directions).
    plan: Option<&'a wgpu::Buffer>,
    /// 5: training points of the empirical target.
    centers: Option<&'a wgpu::Buffer>,
    /// 6 and 7: the kernel's outputs (branch: the clones' x and meta; reduce: partials and class
    /// counts; tally: —, counts; rng_probe: normals, words).
    out_a: Option<&'a wgpu::Buffer>,
    out_b: Option<&'a wgpu::Buffer>,
}

impl<'a> Bindings<'a> {
    fn slots(&self) -> [Option<&'a wgpu::Buffer>; 7] {
        [
            self.xs,
            self.meta,
            self.scratch,
            self.plan,
            self.centers,
            self.out_a,
            self.out_b,
        ]
    }
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

/// Scratch rows per particle: B x / M x (d), Wᵀ r (d), purity (1), then the mixture's K logits
/// or one tile's logits of the empirical target.
fn scratch_rows(plan: &Plan) -> usize {
    let d = plan.dim;
    match plan.kind {
        Kind::Mixture => 2 * d + 1 + plan.centers_count,
        Kind::Empirical => 2 * d + 1 + shaders::StepShape::of(plan).rows_per_tile(),
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
        let adapter = match options.adapter_index {
            Some(i) => device::pick_index(i)?,
            None => device::pick(options.adapter.as_deref())?,
        };
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
        let int64 =
            options.native_int64 && adapter.features().contains(wgpu::Features::SHADER_INT64);
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("regimes"),
            required_features: if int64 {
                wgpu::Features::SHADER_INT64
            } else {
                wgpu::Features::empty()
            },
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
        let make = |k: shaders::Kernel| build_pipeline(&device, &layout, &k, "", false, int64);
        let pipelines = Pipelines {
            start: make(shaders::START)?,
            reduce: make(shaders::REDUCE)?,
            tally: make(shaders::TALLY)?,
            branch: make(shaders::BRANCH)?,
            steps: Arc::default(),
        };
        let mut engine = GpuEngine {
            device,
            queue,
            info,
            layout,
            bgl,
            pipelines,
            probe: OnceLock::new(),
            centers: Arc::default(),
            dummies,
            options,
            max_binding,
            int64,
            compile_seconds: 0.0,
            errors,
        };
        // Warm every pipeline with an empty dispatch so that drivers that compile lazily
        // (lavapipe JITs at first use) pay that cost here, where it is timed.
        let mut enc = engine.encoder();
        for p in [
            &engine.pipelines.start,
            &engine.pipelines.reduce,
            &engine.pipelines.tally,
            &engine.pipelines.branch,
        ] {
            engine.dispatch(&mut enc, p, &Params::default(), Bindings::default(), 1);
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
            pipelines: self.pipelines.clone(),
            probe: OnceLock::new(),
            dummies: self.dummies.clone(),
            options,
            max_binding,
            int64: self.int64,
            compile_seconds: self.compile_seconds,
            errors: self.errors.clone(),
            centers: self.centers.clone(),
        })
    }

    /// Seconds spent compiling and JIT-warming the pipelines: at creation, plus the step
    /// pipelines specialised so far.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds + self.pipelines.steps.lock().expect("step pipelines").seconds
    }

    /// The step pipeline for a plan's shape: cached, or built and JIT-warmed now (timed into
    /// [`Self::compile_seconds`]).
    fn step_pipeline(&self, plan: &Plan) -> Result<wgpu::ComputePipeline> {
        let shape = shaders::StepShape::of(plan);
        let mut cache = self.pipelines.steps.lock().expect("step pipelines");
        if let Some(p) = cache.pipelines.get(&shape) {
            return Ok(p.clone());
        }
        let clock = Instant::now();
        // Bounds-safe by construction (block.wgsl clamps every particle index and the host sizes
        // every binding), so built without per-access checks or loop counters.
        let p = build_pipeline(
            &self.device,
            &self.layout,
            shape.kernel(),
            &shape.constants(),
            true,
            self.int64,
        )?;
        // An empty dispatch makes lazily compiling drivers (lavapipe) JIT it here, timed.
        self.dispatch_alone(&p, &Params::default(), Bindings::default(), 1);
        self.wait()?;
        cache.seconds += clock.elapsed().as_secs_f64();
        cache.pipelines.insert(shape, p.clone());
        Ok(p)
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether Philox runs on the adapter's native 64-bit integers.
    pub fn native_int64(&self) -> bool {
        self.int64
    }

    /// Whether the driver silently cuts long loops (lavapipe), see [`LOOP_BUDGET`].
    fn loop_limited(&self) -> bool {
        self.info.driver.to_lowercase().contains("llvmpipe")
            || self.info.name.to_lowercase().contains("llvmpipe")
    }

    fn loop_error(&self, what: &str, cost: u64) -> anyhow::Error {
        anyhow!(
            "gpu: {what} takes about {cost} loop iterations per particle, more than the {} that \
             {} runs before cutting loops short (llvmpipe's shared loop limit); use fewer \
             dimensions or training points, a hardware GPU, or the CPU engine",
            LOOP_BUDGET,
            self.info.name
        )
    }

    /// The device buffer of these training points: the resident one if it holds the same bits,
    /// else a new upload that becomes resident.
    fn resident_centers(&self, centers: &[f32]) -> wgpu::Buffer {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes_of(centers).hash(&mut h);
        let key = h.finish();
        let mut slot = self.centers.lock().expect("resident centers");
        if let Some((k, buf)) = slot.as_ref()
            && *k == key
        {
            return buf.clone();
        }
        let buf = self.storage_init("centers", bytes_of(centers), wgpu::BufferUsages::empty());
        *slot = Some((key, buf.clone()));
        buf
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

    /// Records one dispatch in an encoder of its own and submits it.
    fn dispatch_alone(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        bindings: Bindings,
        groups: usize,
    ) {
        let mut enc = self.encoder();
        self.dispatch(&mut enc, pipeline, params, bindings, groups);
        self.queue.submit([enc.finish()]);
    }

    /// Records one dispatch.
    fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        params: &Params,
        bindings: Bindings,
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
        for (i, b) in bindings.slots().iter().enumerate() {
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
                let p = build_pipeline(
                    &self.device,
                    &self.layout,
                    &shaders::RNG_PROBE,
                    "",
                    false,
                    self.int64,
                )?;
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
        self.dispatch_alone(
            pipeline,
            &params,
            Bindings {
                meta: Some(&inp),
                out_a: Some(&normals),
                out_b: Some(&words),
                ..Bindings::default()
            },
            n.div_ceil(WORKGROUP),
        );
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

/// Compiles a kernel with extra constants. `trusted` kernels must be bounds-safe by
/// construction and free of unbounded loops: they are built without wgpu's runtime checks.
fn build_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    kernel: &shaders::Kernel,
    specialised: &str,
    trusted: bool,
    int64: bool,
) -> Result<wgpu::ComputePipeline> {
    let name = kernel.name;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(kernel.source_with(specialised, int64).into()),
    };
    let module = if trusted {
        // SAFETY: the step kernels index only within their bindings (particle indices are
        // clamped to n − 1, coefficient offsets come from the host's own layout of the uploaded
        // plan) and every loop has a constant or host-given bound.
        unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
    } else {
        device.create_shader_module(desc)
    };
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
