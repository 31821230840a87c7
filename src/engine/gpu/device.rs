//! Adapters: discovery, selection and the summary printed by `regimes devices`.

use anyhow::{Result, anyhow, bail, ensure};
use serde::Serialize;

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
}

pub(crate) fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

pub(crate) fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
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
