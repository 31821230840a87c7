//! The GPU engine (wgpu, WGSL kernels in `shaders/`). Same trait, same plan, same counter-based
//! noise as the CPU engine; trajectories agree to f32 round-off.
//!
//! * Particle state stays on the device, coordinate-major (`x[c·stride + p]`), plus five words of
//!   metadata per particle (rng id lo/hi, label, last change, the training point a plan that
//!   draws once holds) and per-particle scratch rows.
//! * A step dispatch fuses many time points (the loop runs inside the kernel); dispatches are
//!   split at recorder points, at plan-chunk boundaries, where the uploaded coefficients would
//!   exceed a storage binding, and every `steps_per_dispatch` steps where given, else where a
//!   measured time per step puts the dispatch's end (`step/dispatch_length.rs`, for watchdogs).
//! * Reductions are deterministic: per-workgroup partials (f32 Welford within a workgroup of 64
//!   particles) folded on the host in workgroup order in f64; class counts and the tally use u32
//!   atomics. No float atomics.
//! * A batch is limited by the storage-binding size (lavapipe: 128 MiB) and a memory budget; the
//!   drivers stream larger runs in batches of at most [`Engine::max_batch`] particles, a multiple
//!   of the workgroup, so statistics do not depend on the batch size.
//!
//! Each kernel `shaders/X.wgsl` has its host side in `X.rs` here (its `Kernel`, its named
//! arguments, its dispatches) and its CPU twin in `engine/cpu/X.rs`; the step kernels, about
//! 80 % of the engine, have a folder, `step/` (its `mod.rs` lists its files). The rest, each
//! below `step/`: `device.rs` (adapters, opening, limits), `layout.rs` (`Params` and the
//! bindings, generating both the wgpu layout and the WGSL declarations), `shaders.rs`
//! (assembling the WGSL), `pipelines.rs` (the fixed pipelines, compiling), `buffers.rs`
//! (buffers, dispatch, read-back), `footprint.rs` (scratch rows and training bytes of a plan),
//! `batch.rs` (particle state), `schedule.rs` (cutting `advance` into dispatches) and
//! `loop_budget.rs` (lavapipe's loop limit).

mod batch;
mod branch;
mod buffers;
mod device;
mod footprint;
mod layout;
mod loop_budget;
mod pipelines;
mod probe;
mod reduce;
mod schedule;
mod shaders;
mod start;
mod step;
mod tally;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anyhow::{Result, ensure};

pub use batch::GpuBatch;
pub use device::{AdapterSummary, is_software, list_adapters};
pub use shaders::{GROUP_PARTICLES, ROW_BLOCK, TILE_FLOATS, WORKGROUP};
pub use step::{
    Choice, DispatchLength, How, MAX_MEASURED_STEPS, ONCHIP_GROUP, SOFTWARE_TARGET_SECONDS,
    TARGET_SECONDS, VARIANT_ENV, Variant, parse_variant, variant_from_env, wide_group,
};

use crate::engine::{Engine, Particles, Recorder};
use crate::plan::Plan;
use crate::stats::Tally;
use pipelines::Pipelines;

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
    /// Time steps fused into one dispatch: Some(N) fixes N; None measures, per plan shape, how
    /// many keep a dispatch under [`TARGET_SECONDS`] (OS watchdogs reset a GPU whose work runs
    /// about 1 s; `step/dispatch_length.rs`). Either way no more than a loop-limited driver allows.
    pub steps_per_dispatch: Option<usize>,
    /// Time the first dispatches with timestamp queries where the adapter offers them; false
    /// uses wall times (the probe's or the first dispatches'), as on adapters without them.
    pub timestamps: bool,
    /// Device memory a batch may occupy (positions, scratch, metadata).
    pub memory_budget_bytes: u64,
    /// Use the adapter's 64-bit integers (SHADER_INT64) for Philox's wide multiply where it
    /// offers them; false keeps the portable 16-bit-halves path (same words, for tests).
    pub native_int64: bool,
    /// Run every plan the variant applies to with this step-kernel variant; None chooses per
    /// shape by timing ([`Variant`]). [`GpuEngine::with_options`] takes `REGIMES_GPU_VARIANT`
    /// when this is None.
    pub variant: Option<Variant>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            adapter: None,
            adapter_index: None,
            max_binding_bytes: None,
            steps_per_dispatch: None,
            timestamps: true,
            memory_budget_bytes: 2 << 30,
            native_int64: true,
            variant: None,
        }
    }
}

pub struct GpuEngine {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    layout: wgpu::PipelineLayout,
    bgl: wgpu::BindGroupLayout,
    pipelines: Pipelines,
    probe: OnceLock<wgpu::ComputePipeline>,
    /// One tiny buffer per storage binding, bound where a kernel does not use the binding.
    dummies: Vec<wgpu::Buffer>,
    options: GpuOptions,
    max_binding: u64,
    /// Whether kernels are built with native 64-bit integers (SHADER_INT64 requested).
    int64: bool,
    compile_seconds: f64,
    errors: Arc<Mutex<Vec<String>>>,
    /// The training points of the last empirical plan, one buffer per binding, kept on the
    /// device across batches and advances (keyed by a hash of their bits and split), so a run
    /// uploads them once.
    centers: Arc<Mutex<Option<step::Resident>>>,
    /// Step pipelines specialised per plan shape and variant, built on first use (shared by
    /// reconfigured engines).
    steps: Arc<Mutex<step::StepPipelines>>,
    /// The variant each shape runs with, chosen at its first use (shared likewise).
    choices: Arc<Mutex<step::Choices>>,
    /// The plan shapes this engine advanced since [`GpuEngine::clear_used`], in first-use order
    /// (what a study's summary records the variants of).
    used: Mutex<Vec<crate::plan::Shape>>,
    /// The advance left running on the device, if any ([`GpuEngine::settle`]).
    in_flight: Mutex<buffers::InFlight>,
    /// The uniform buffer of lone dispatches (start, tally, branch, probes).
    single: Mutex<buffers::Single>,
    /// The measured time per step of each shape and variant, and the last dispatch length.
    rates: Mutex<step::Rates>,
}

impl GpuEngine {
    /// The default adapter with default options.
    pub fn new() -> Result<Self> {
        Self::with_options(GpuOptions::default())
    }

    pub fn with_options(mut options: GpuOptions) -> Result<Self> {
        if options.variant.is_none() {
            options.variant = variant_from_env()?;
        }
        ensure!(
            options.steps_per_dispatch != Some(0),
            "gpu: steps per dispatch must be positive"
        );
        let opened = device::open(&options)?;
        let device = opened.device;
        let max_binding = device::binding_limit(&device.limits(), &options)?;
        let bgl = layout::bind_group_layout(&device);
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("regimes"),
            bind_group_layouts: &[Some(&bgl)],
            immediate_size: 0,
        });
        let dummies = layout::dummies(&device);
        let single = Mutex::new(buffers::Single::new(&device));
        let clock = Instant::now();
        let pipelines = Pipelines::build(&device, &layout, opened.int64)?;
        let mut engine = GpuEngine {
            device,
            queue: opened.queue,
            info: opened.info,
            layout,
            bgl,
            pipelines,
            probe: OnceLock::new(),
            centers: Arc::default(),
            steps: Arc::default(),
            choices: Arc::default(),
            dummies,
            options,
            max_binding,
            int64: opened.int64,
            compile_seconds: 0.0,
            errors: opened.errors,
            used: Mutex::default(),
            in_flight: Mutex::default(),
            single,
            rates: Mutex::default(),
        };
        engine.warm_up()?;
        engine.compile_seconds = clock.elapsed().as_secs_f64();
        Ok(engine)
    }

    /// The same device and compiled pipelines with other knobs (steps per dispatch, binding
    /// limit, memory budget); the adapter option is ignored. Costs no compilation.
    pub fn reconfigured(&self, mut options: GpuOptions) -> Result<Self> {
        if options.variant.is_none() {
            options.variant = variant_from_env()?;
        }
        ensure!(
            options.steps_per_dispatch != Some(0),
            "gpu: steps per dispatch must be positive"
        );
        let max_binding = device::binding_limit(&self.device.limits(), &options)?;
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
            steps: self.steps.clone(),
            choices: self.choices.clone(),
            used: Mutex::default(),
            in_flight: Mutex::default(),
            single: Mutex::new(buffers::Single::new(&self.device)),
            rates: Mutex::default(),
        })
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether Philox runs on the adapter's native 64-bit integers.
    pub fn native_int64(&self) -> bool {
        self.int64
    }

    /// Seconds spent compiling and JIT-warming the pipelines: at creation, plus the step
    /// pipelines specialised so far.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds + self.steps.lock().expect("step pipelines").seconds
    }

    /// The storage-binding size this engine plans with.
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }
}

/// The trait on the device: each method is the host side of its kernel (`start.rs`,
/// `step/advance.rs` with `reduce.rs`, `branch.rs`, `tally.rs`) or of the batch layout
/// (`batch.rs`).
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
        self.largest_batch(plan)
    }

    /// The particles the kernel-variant probe times (it probes on the first batch), so the
    /// choice is the one a full-size batch makes.
    fn first_batch(&self, _plan: &Plan) -> usize {
        step::probe_particles(is_software(&self.info))
    }

    fn start(&self, plan: &Plan, seed: u64, ids: &[u64]) -> Result<GpuBatch> {
        self.start_batch(plan, seed, ids)
    }

    fn advance(
        &self,
        plan: &Plan,
        batch: &mut GpuBatch,
        from: usize,
        to: usize,
        rec: &mut Recorder,
    ) -> Result<()> {
        self.advance_batch(plan, batch, from, to, rec)
    }

    fn branch(&self, batch: &GpuBatch, stream: u16) -> Result<GpuBatch> {
        self.branch_batch(batch, stream)
    }

    fn tally(&self, plan: &Plan, batch: &GpuBatch) -> Result<Tally> {
        self.tally_batch(plan, batch)
    }

    fn read(&self, batch: &GpuBatch) -> Result<Particles> {
        self.download(batch)
    }

    fn load(&self, plan: &Plan, seed: u64, particles: &Particles) -> Result<GpuBatch> {
        self.upload(plan, seed, particles)
    }
}
