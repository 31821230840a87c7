//! Host side of `shaders/rng_probe.wgsl`, a test kernel (CPU twin: `rng::philox`,
//! `rng::normal4`): Philox words and normals of the shared WGSL for given counters.

use anyhow::Result;

use super::GpuEngine;
use super::buffers::bytes_of;
use super::layout::{Bindings, Params};
use super::pipelines::build_pipeline;
use super::shaders::{COMMON, Kernel, RNG, WORKGROUP, kernel_file, no_args};

pub(super) const RNG_PROBE: Kernel = Kernel {
    name: "rng_probe",
    args: no_args,
    pieces: &[COMMON, RNG, kernel_file!("rng_probe.wgsl")],
    outputs: [
        Some(("normals_out", "array<f32>")),
        Some(("words_out", "array<u32>")),
    ],
};

impl GpuEngine {
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
                    &RNG_PROBE,
                    "",
                    false,
                    self.int64,
                    WORKGROUP,
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
                pmeta: Some(&inp),
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
}
