//! The resolved parameters of a study: defaults ← preset ← TOML file ← command-line flags.
//!
//! Specs (`u`, `q`, `mean`) are the model's typed specs ([`crate::model::spec`]), which serialise
//! as their text form, so the JSON summary and the TOML file read like the command line. Every
//! error names the field (or flag) it is about. The flags live in `cli::args`.
//!
//! Each key is declared once in [`keys`] (field, default, section, file, flag and help); the
//! presets live in `presets`, the checks in `validate`, the TOML and flag layers in `overlay`.

pub mod branch_times;
pub mod build;
pub mod files;
pub mod flag;
pub mod keys;
mod overlay;
mod presets;
mod validate;

pub use branch_times::BranchTimes;
pub use keys::Config;
pub use overlay::read_config_file;
pub use presets::PRESETS;

use serde::{Deserialize, Serialize};

use crate::model::coupling::Pairing;

/// Most particles (or clone pairs × 2) a run can tell apart: ids keep their top 16 bits for the
/// clone stream.
pub const MAX_PARTICLES: u64 = crate::rng::INDEX_MASK + 1;

/// Training points N of the empirical target where a study needs one and none is given.
pub const DEFAULT_N_TRAIN: usize = 1000;

/// Largest horizon T.
pub const MAX_HORIZON: f64 = 1e6;

/// Largest σ² and ‖m‖² (and smallest σ²): f32 plans hold them and their inverses.
pub const MAX_SCALE: f64 = 1e30;

/// Figure sides, in units of 1/96 inch.
pub const FIGURE_UNITS: std::ops::RangeInclusive<u32> = 200..=8000;

/// PNG resolutions, in dots per inch.
pub const FIGURE_DPI: std::ops::RangeInclusive<u32> = 24..=1200;

/// The longest side of a PNG in pixels (12 000² RGB is 432 MB).
pub const MAX_PNG_SIDE: u64 = 12_000;

/// Most CPU threads per core.
pub const MAX_THREADS_PER_CORE: usize = 8;

/// Which engine runs the particles (a study's choice; a bench record names the one it ran on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// Multi-threaded CPU engine.
    Cpu,
    /// wgpu compute engine (Vulkan, Metal or DX12; never GL).
    Gpu,
    /// The GPU when a suitable adapter exists, the CPU otherwise.
    #[default]
    Auto,
}

impl Backend {
    /// The name in TOML files, flags and bench records.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
            Backend::Auto => "auto",
        }
    }
}

impl Config {
    /// The names of all keys (kebab-case), as in TOML and JSON.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!("Config serialises to an object"),
        }
    }

    /// N after applying the default ([`DEFAULT_N_TRAIN`]).
    pub fn n_train_or_default(&self) -> usize {
        self.n_train.unwrap_or(DEFAULT_N_TRAIN)
    }

    /// ‖m‖² after applying the default (d).
    pub fn mean_norm2(&self) -> f64 {
        self.mean_norm2.unwrap_or(self.dim as f64)
    }

    /// Whether each mode of coupled modalities carries a label of its own, so that per-mode
    /// speciation is observable by cloning: per-mode pairing, or a mixture file's classes
    /// (whose projections group them per mode). One shared label commits once, jointly.
    pub fn mode_labels(&self) -> bool {
        self.pairing == Pairing::PerMode || self.mixture_file.is_some()
    }
}
