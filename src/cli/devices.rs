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
    crate::out!("index: what --devices takes (e.g. --devices 0,1); --json lists every feature")?;
    for (i, a) in adapters.iter().enumerate() {
        crate::out!("[{i}] {} ({}, {})", a.name, a.backend, a.device_type)?;
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
                ("  features".into(), features_line(&a.features)),
            ])
        )?;
    }
    Ok(())
}

/// The features regimes uses, and how many the adapter lists (the full list is over a thousand
/// characters; `--json` has it).
fn features_line(features: &str) -> String {
    let names: Vec<&str> = features
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.len() > 2
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let int64 = names.contains(&"SHADER_INT64");
    format!(
        "{} listed; SHADER_INT64 (native 64-bit Philox multiply) {}",
        names.len(),
        if int64 { "yes" } else { "no" }
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn features_are_summarised() {
        let line = super::features_line(
            "Features { features_wgpu: FeaturesWGPU(SHADER_INT64 | TIMESTAMP_QUERY), \
             features_webgpu: FeaturesWebGPU(DEPTH_CLIP_CONTROL) }",
        );
        assert_eq!(
            line,
            "3 listed; SHADER_INT64 (native 64-bit Philox multiply) yes"
        );
        assert!(super::features_line("FeaturesWGPU(SHADER_INT64_ATOMIC_MIN_MAX)").ends_with("no"));
    }
}
