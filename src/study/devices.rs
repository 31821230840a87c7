//! `--devices`: the GPU adapters a study is split across, one slice each.

use anyhow::{Result, anyhow, ensure};

use super::{Inputs, Parts, Session, Study};
use crate::engine::Engine;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};
use crate::measure::{Shard, Stop};

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

/// The study split across GPU adapters, one thread and engine each, the slices folded in device
/// order (particle order); the backends and the step-kernel variants of the devices.
pub fn on_devices<S: Study>(
    inputs: &Inputs,
    setup: &S::Setup,
    spec: &str,
    session: &mut Session,
) -> Result<(Parts, String, Option<String>)> {
    let devices = resolve_devices(spec, &list_adapters())?;
    let names: Vec<String> = devices.iter().map(|(i, n)| format!("{i}: {n}")).collect();
    inputs.note(&format!(
        "devices: {} slices on {}",
        devices.len(),
        names.join(", ")
    ));
    let count = devices.len() as u64;
    type Slice = (Parts, String, Option<Stop>, Option<String>);
    // Each device's thread polls this run's stop request.
    let stop = crate::stop::scope();
    let results: Vec<Result<Slice>> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(k, &(index, _))| {
                let stop = stop.clone();
                scope.spawn(move || {
                    stop.enter(|| -> Result<Slice> {
                        let mut sub = inputs.clone();
                        sub.quiet = true;
                        sub.device = Some(Shard {
                            index: k as u64,
                            count,
                        });
                        let engine = GpuEngine::with_options(GpuOptions {
                            adapter_index: Some(index),
                            steps_per_dispatch: sub.cfg.steps_per_dispatch,
                            ..GpuOptions::default()
                        })?;
                        let mut s = Session::new(true);
                        let parts = S::measure(&sub, setup, &engine, &mut s)?;
                        Ok((parts, engine.describe(), s.stopped, engine.used_variants()))
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("the device's thread panicked")))
            })
            .collect()
    });
    let mut parts = vec![];
    let mut backends = vec![];
    let mut variants = vec![];
    for (r, (index, name)) in results.into_iter().zip(&devices) {
        let (p, backend, stopped, variant) =
            r.map_err(|e| e.context(format!("device {index} ({name})")))?;
        session.stopped(stopped);
        backends.push(backend);
        variants.extend(variant);
        parts.push(p);
    }
    let labels: Vec<String> = devices
        .iter()
        .map(|(i, n)| format!("device {i} ({n})"))
        .collect();
    let refs: Vec<&Parts> = parts.iter().collect();
    let variants = (!variants.is_empty()).then(|| super::distinct(variants));
    Ok((
        Parts::fold(&refs, &labels)?,
        super::distinct(backends),
        variants,
    ))
}
