//! Compiled pipelines: the fixed kernels built when the engine opens, the step kernels built on
//! first use per plan shape and cached, and the compile time of both.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Result, bail};

use super::layout::{Bindings, Params};
use super::shaders::Kernel;
use super::variant::{Choice, Variant};
use super::{GpuEngine, branch, reduce, start, step, tally};
use crate::plan::{Plan, Shape};

#[derive(Clone)]
pub(super) struct Pipelines {
    pub start: wgpu::ComputePipeline,
    pub reduce: wgpu::ComputePipeline,
    pub tally: wgpu::ComputePipeline,
    pub branch: wgpu::ComputePipeline,
    /// Step pipelines specialised per plan shape, built on first use (shared by reconfigured
    /// engines), and the seconds spent building them.
    pub steps: Arc<Mutex<StepCache>>,
}

#[derive(Default)]
pub(super) struct StepCache {
    pipelines: HashMap<(Shape, Variant), wgpu::ComputePipeline>,
    /// The variant each shape runs with, chosen at its first use (`variant.rs`), keyed also by
    /// the variant forced, since reconfigured engines share this cache.
    pub choices: HashMap<(Shape, Option<Variant>), Choice>,
    pub seconds: f64,
}

impl Pipelines {
    /// The fixed kernels (not the step kernels, which wait for a plan).
    pub fn build(
        device: &wgpu::Device,
        layout: &wgpu::PipelineLayout,
        int64: bool,
    ) -> Result<Self> {
        let make = |k: &Kernel| build_pipeline(device, layout, k, "", false, int64);
        Ok(Pipelines {
            start: make(&start::START)?,
            reduce: make(&reduce::REDUCE)?,
            tally: make(&tally::TALLY)?,
            branch: make(&branch::BRANCH)?,
            steps: Arc::default(),
        })
    }
}

impl GpuEngine {
    /// Warms every fixed pipeline with an empty dispatch so that drivers that compile lazily
    /// (lavapipe JITs at first use) pay that cost where it is timed.
    pub(super) fn warm_up(&self) -> Result<()> {
        for p in [
            &self.pipelines.start,
            &self.pipelines.reduce,
            &self.pipelines.tally,
            &self.pipelines.branch,
        ] {
            self.dispatch_alone(p, &Params::default(), Bindings::default(), 1);
        }
        self.wait()
    }

    /// Seconds spent compiling and JIT-warming the pipelines: at creation, plus the step
    /// pipelines specialised so far.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds + self.pipelines.steps.lock().expect("step pipelines").seconds
    }

    /// The step pipeline of a variant for a plan's shape: cached, or built and JIT-warmed now
    /// (timed into [`Self::compile_seconds`]).
    pub(super) fn step_pipeline(
        &self,
        plan: &Plan,
        variant: Variant,
    ) -> Result<wgpu::ComputePipeline> {
        let shape = plan.shape();
        let mut cache = self.pipelines.steps.lock().expect("step pipelines");
        if let Some(p) = cache.pipelines.get(&(shape, variant)) {
            return Ok(p.clone());
        }
        let clock = Instant::now();
        // Bounds-safe by construction (block.wgsl clamps every particle index and the host sizes
        // every binding), so built without per-access checks or loop counters.
        let p = build_pipeline(
            &self.device,
            &self.layout,
            step::kernel(&shape, variant),
            &step::constants(&shape),
            true,
            self.int64,
        )?;
        // An empty dispatch makes lazily compiling drivers (lavapipe) JIT it here, timed.
        self.dispatch_alone(&p, &Params::default(), Bindings::default(), 1);
        self.wait()?;
        cache.seconds += clock.elapsed().as_secs_f64();
        cache.pipelines.insert((shape, variant), p.clone());
        Ok(p)
    }
}

/// Compiles a kernel with extra constants. `trusted` kernels must be bounds-safe by
/// construction and free of unbounded loops: they are built without wgpu's runtime checks.
pub(super) fn build_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    kernel: &Kernel,
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
