//! `--devices`: the GPU adapters a study is split across, one slice each.

use anyhow::{Result, anyhow, ensure};

/// The adapters of `--devices`: `all` (the hardware adapters wgpu lists, or every adapter when
/// there is none, e.g. lavapipe alone), or a comma-separated list of indices and name substrings
/// (an adapter named twice runs two slices). Returns (index in `adapters`, name).
pub fn resolve_devices(
    spec: &str,
    adapters: &[crate::engine::gpu::AdapterSummary],
) -> Result<Vec<(usize, String)>> {
    let listing = || {
        adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i}: {} ({})", a.name, a.device_type))
            .collect::<Vec<_>>()
            .join("; ")
    };
    ensure!(
        !adapters.is_empty(),
        "devices: wgpu lists no GPU adapter (see `regimes devices`; for a software device \
         install lavapipe and set WGPU_BACKEND=vulkan)"
    );
    let all: Vec<(usize, String)> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.name.clone()))
        .collect();
    if spec.trim() == "all" {
        let hardware: Vec<(usize, String)> = all
            .iter()
            .filter(|(i, _)| !adapters[*i].software)
            .cloned()
            .collect();
        return Ok(if hardware.is_empty() { all } else { hardware });
    }
    spec.split(',')
        .map(|item| {
            let item = item.trim();
            ensure!(
                !item.is_empty(),
                "devices: '{spec}' has an empty entry; give all, or indices and names \
                 separated by commas"
            );
            if let Ok(i) = item.parse::<usize>() {
                return all
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("devices: no adapter {i}; wgpu lists {}", listing()));
            }
            let lower = item.to_lowercase();
            all.iter()
                .find(|(_, n)| n.to_lowercase().contains(&lower))
                .cloned()
                .ok_or_else(|| {
                    anyhow!(
                        "devices: no adapter matches '{item}'; wgpu lists {}",
                        listing()
                    )
                })
        })
        .collect()
}
