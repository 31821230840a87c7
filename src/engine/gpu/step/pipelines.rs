//! The step pipelines: one per plan shape and variant, built and JIT-warmed on first use, cached
//! for the process (shared by reconfigured engines), and the seconds spent building them.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;

use super::super::GpuEngine;
use super::super::layout::{Bindings, Params};
use super::super::pipelines::build_pipeline;
use super::kernels::{constants, kernel};
use super::variant::Variant;
use crate::plan::{Plan, Shape};

/// The step pipelines built so far and the seconds they took.
#[derive(Default)]
pub(in crate::engine::gpu) struct StepPipelines {
    built: HashMap<(Shape, Variant, usize), wgpu::ComputePipeline>,
    pub seconds: f64,
}

impl GpuEngine {
    /// The step pipeline of a variant for a plan's shape, in workgroups of `wg` invocations
    /// ([`Self::step_group`]): cached, or built and JIT-warmed now (timed into
    /// [`Self::compile_seconds`]).
    pub(super) fn step_pipeline(
        &self,
        plan: &Plan,
        variant: Variant,
        wg: usize,
    ) -> Result<wgpu::ComputePipeline> {
        let shape = plan.shape();
        let mut cache = self.steps.lock().expect("step pipelines");
        if let Some(p) = cache.built.get(&(shape, variant, wg)) {
            return Ok(p.clone());
        }
        let clock = Instant::now();
        // Bounds-safe by construction (block.wgsl clamps every particle index and the host sizes
        // every binding), so built without per-access checks or loop counters.
        let p = build_pipeline(
            &self.device,
            &self.layout,
            kernel(&shape, variant),
            &constants(&shape, wg),
            true,
            self.int64,
            wg,
        )?;
        // An empty dispatch makes lazily compiling drivers (lavapipe) JIT it here, timed.
        self.dispatch_alone(&p, &Params::default(), Bindings::default(), 1);
        self.wait()?;
        cache.seconds += clock.elapsed().as_secs_f64();
        cache.built.insert((shape, variant, wg), p.clone());
        Ok(p)
    }
}
