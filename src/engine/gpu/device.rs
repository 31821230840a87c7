//! Adapters and devices: discovery, selection, the summary printed by `regimes devices`, whether
//! an adapter is a software one, opening a device with the limits the kernels need, and the
//! storage-binding size the engine plans with.

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::Serialize;

use super::GpuOptions;
use super::layout::STORAGE_BINDINGS;
use super::shaders::{TILE_FLOATS, WORKGROUP};

/// What `regimes devices` shows about one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub vendor: u32,
    pub device: u32,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub features: String,
    /// A software adapter ([`is_software`]); not printed, `device_type` says it.
    #[serde(skip)]
    pub software: bool,
}

/// Whether an adapter is a CPU implementation of the GPU API (lavapipe/llvmpipe, SwiftShader),
/// which runs on the host's cores: `--backend auto` and `--devices` skip it, the benchmark
/// compares it with the host's peak.
pub fn is_software(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader"]
            .iter()
            .any(|s| name.contains(s))
}

pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

pub(crate) fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
        software: is_software(&info),
        name: info.name,
        backend: format!("{:?}", info.backend).to_lowercase(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        vendor: info.vendor,
        device: info.device,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        features: format!("{:?}", adapter.features()),
    }
}

/// Every adapter wgpu sees (honouring `WGPU_BACKEND`), GL excluded since it is not compiled in.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let inst = instance();
    pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(summary)
        .collect()
}

const NO_ADAPTER: &str = "no GPU adapter found (wgpu saw no Vulkan, Metal or DX12 device). For a software \
     device install lavapipe (Debian/Ubuntu: `apt install mesa-vulkan-drivers`) and set \
     WGPU_BACKEND=vulkan, or use the CPU engine";

/// The adapter at `index` of [`list_adapters`].
pub(crate) fn pick_index(index: usize) -> Result<wgpu::Adapter> {
    let inst = instance();
    let mut all = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
    if all.is_empty() {
        bail!("{NO_ADAPTER}");
    }
    let n = all.len();
    ensure!(
        index < n,
        "devices: no adapter {index}; wgpu lists {n} (0 to {}, see `regimes devices`)",
        n - 1
    );
    Ok(all.swap_remove(index))
}

/// The adapter whose name contains `name` (case-insensitive), or the default high-performance one.
pub(crate) fn pick(name: Option<&str>) -> Result<wgpu::Adapter> {
    let inst = instance();
    match name {
        Some(want) => {
            let all = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
            if all.is_empty() {
                bail!("{NO_ADAPTER}");
            }
            let lower = want.to_lowercase();
            let names: Vec<String> = all.iter().map(|a| a.get_info().name).collect();
            all.into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&lower))
                .ok_or_else(|| {
                    anyhow!(
                        "adapter: none matches {want:?}; available: {}",
                        names.join(", ")
                    )
                })
        }
        None => pollster::block_on(inst.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            ..Default::default()
        }))
        .map_err(|e| anyhow!("{NO_ADAPTER} ({e})")),
    }
}

/// An open device and what the engine needs to know about it.
pub(super) struct Opened {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Whether SHADER_INT64 was requested (native 64-bit Philox multiplies).
    pub int64: bool,
    /// Validation errors and device loss, reported by [`super::GpuEngine::wait`].
    pub errors: Arc<Mutex<Vec<String>>>,
}

/// Picks the adapter of `options`, checks that it offers what the kernels need, and opens a
/// device on it with the adapter's limits.
pub(super) fn open(options: &GpuOptions) -> Result<Opened> {
    let adapter = match options.adapter_index {
        Some(i) => pick_index(i)?,
        None => pick(options.adapter.as_deref())?,
    };
    let info = adapter.get_info();
    let limits = adapter.limits();
    let need = [
        (
            "storage buffers per shader stage",
            u64::from(limits.max_storage_buffers_per_shader_stage),
            STORAGE_BINDINGS as u64,
        ),
        (
            "invocations per workgroup",
            u64::from(limits.max_compute_invocations_per_workgroup),
            WORKGROUP as u64,
        ),
        (
            "workgroup storage bytes",
            u64::from(limits.max_compute_workgroup_storage_size),
            (TILE_FLOATS * 4) as u64,
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
    let int64 = options.native_int64 && adapter.features().contains(wgpu::Features::SHADER_INT64);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("regimes"),
        // Timestamp queries, where offered, time the first dispatches of an advance
        // (`step/dispatch_length.rs`).
        required_features: (if int64 {
            wgpu::Features::SHADER_INT64
        } else {
            wgpu::Features::empty()
        }) | (adapter.features() & wgpu::Features::TIMESTAMP_QUERY),
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
    Ok(Opened {
        device,
        queue,
        info,
        int64,
        errors,
    })
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

/// The largest storage binding to use: the device's, never beyond u32 word indices, or the
/// smaller limit a test asks for.
pub(super) fn binding_limit(limits: &wgpu::Limits, options: &GpuOptions) -> Result<u64> {
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
