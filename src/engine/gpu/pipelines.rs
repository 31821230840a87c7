//! Compiled pipelines: the fixed kernels built when the engine opens, and how any kernel is
//! compiled (the step kernels, built on first use per plan shape, are cached in
//! `step/pipelines.rs`).

use anyhow::{Result, bail};

use super::layout::{Bindings, Params};
use super::shaders::{Kernel, WORKGROUP};
use super::{GpuEngine, branch, reduce, start, tally};

#[derive(Clone)]
pub(super) struct Pipelines {
    pub start: wgpu::ComputePipeline,
    pub reduce: wgpu::ComputePipeline,
    pub tally: wgpu::ComputePipeline,
    pub branch: wgpu::ComputePipeline,
}

impl Pipelines {
    /// The fixed kernels (not the step kernels, which wait for a plan).
    pub fn build(
        device: &wgpu::Device,
        layout: &wgpu::PipelineLayout,
        int64: bool,
    ) -> Result<Self> {
        let make = |k: &Kernel| build_pipeline(device, layout, k, "", false, int64, WORKGROUP);
        Ok(Pipelines {
            start: make(&start::START)?,
            reduce: make(&reduce::REDUCE)?,
            tally: make(&tally::TALLY)?,
            branch: make(&branch::BRANCH)?,
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
}

/// Compiles a kernel with extra constants and `wg` invocations per workgroup (`WG`). `trusted`
/// kernels must be bounds-safe by construction and free of unbounded loops: they are built
/// without wgpu's runtime checks.
pub(super) fn build_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    kernel: &Kernel,
    specialised: &str,
    trusted: bool,
    int64: bool,
    wg: usize,
) -> Result<wgpu::ComputePipeline> {
    let name = kernel.name;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let desc = wgpu::ShaderModuleDescriptor {
        label: Some(name),
        source: wgpu::ShaderSource::Wgsl(kernel.source_grouped(specialised, int64, wg).into()),
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
