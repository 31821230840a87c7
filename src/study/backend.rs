//! The engine of `--backend`: auto takes a hardware GPU when wgpu sees one (or the `--adapter`
//! named), and the CPU engine otherwise — a software adapter such as lavapipe is slower than it.

use anyhow::Result;

use crate::config::{Backend, Config};
use crate::engine::cpu::CpuEngine;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};

/// An engine chosen at run time.
pub enum Selected {
    Cpu(CpuEngine),
    Gpu(Box<GpuEngine>),
}

impl Selected {
    /// GPU shader compilation (JIT) time, kept apart from the run's wall time.
    pub fn compile_seconds(&self) -> Option<f64> {
        match self {
            Selected::Cpu(_) => None,
            Selected::Gpu(e) => Some(e.compile_seconds()),
        }
    }
}

/// The engine `cfg` asks for; notes on stderr unless `quiet`.
pub fn select_engine(cfg: &Config, quiet: bool) -> Result<Selected> {
    let gpu = |adapter: Option<String>| -> Result<Selected> {
        let options = GpuOptions {
            adapter,
            steps_per_dispatch: cfg.steps_per_dispatch,
            ..GpuOptions::default()
        };
        let engine = GpuEngine::with_options(options)?;
        if !quiet && crate::engine::gpu::is_software(engine.adapter_info()) {
            crate::note!(
                "gpu: {} is a software adapter running on this machine's cores: slower than the \
                 CPU engine (--backend cpu)",
                engine.adapter_info().name
            );
        }
        if !quiet {
            crate::note!("gpu: shaders compiled in {:.2} s", engine.compile_seconds());
        }
        Ok(Selected::Gpu(Box::new(engine)))
    };
    match cfg.backend {
        Backend::Cpu => cpu_engine(cfg),
        Backend::Gpu => gpu(cfg.adapter.clone()),
        Backend::Auto if cfg.adapter.is_some() => gpu(cfg.adapter.clone()),
        Backend::Auto => {
            let hardware = list_adapters().into_iter().find(|a| !a.software);
            match hardware {
                Some(a) => gpu(Some(a.name)),
                None => {
                    if !quiet {
                        crate::note!(
                            "backend auto: no hardware GPU adapter found, using the CPU engine"
                        );
                    }
                    cpu_engine(cfg)
                }
            }
        }
    }
}

fn cpu_engine(cfg: &Config) -> Result<Selected> {
    Ok(Selected::Cpu(match cfg.threads {
        Some(t) => CpuEngine::with_threads(t)?,
        None => CpuEngine::new(),
    }))
}
