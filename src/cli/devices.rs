//! `regimes devices`: the GPU adapters wgpu can see, with their limits and features.

use anyhow::Result;

use crate::engine::gpu::list_adapters;
use crate::report::format_table;

pub fn devices(json: bool) -> Result<()> {
    let adapters = list_adapters();
    if json {
        crate::out!("{}", serde_json::to_string_pretty(&adapters)?)?;
        return Ok(());
    }
    if adapters.is_empty() {
        crate::out!(
            "no GPU adapter found. For a software device install lavapipe (apt install \
             mesa-vulkan-drivers libvulkan1) and set WGPU_BACKEND=vulkan."
        )?;
        return Ok(());
    }
    for a in &adapters {
        crate::out!("{} ({}, {})", a.name, a.backend, a.device_type)?;
        crate::out!(
            "{}",
            format_table(&[
                ("  driver".into(), format!("{} {}", a.driver, a.driver_info)),
                (
                    "  max storage binding".into(),
                    format!("{} MiB", a.max_storage_buffer_binding_size >> 20)
                ),
                (
                    "  max buffer".into(),
                    format!("{} MiB", a.max_buffer_size >> 20)
                ),
                (
                    "  storage buffers per stage".into(),
                    a.max_storage_buffers_per_shader_stage.to_string()
                ),
                (
                    "  workgroups per dimension".into(),
                    a.max_compute_workgroups_per_dimension.to_string()
                ),
                (
                    "  invocations per workgroup".into(),
                    a.max_compute_invocations_per_workgroup.to_string()
                ),
                (
                    "  workgroup storage".into(),
                    format!("{} KiB", a.max_compute_workgroup_storage_size >> 10)
                ),
                ("  features".into(), a.features.clone()),
            ])
        )?;
    }
    Ok(())
}
