//! The named starting points of `--preset`.

use anyhow::{Result, bail};

use super::Config;
use crate::model::coupling::Coupling;
use crate::model::{MeanSpec, QSpec, USpec};
use crate::plan::Steps;

/// Named starting points: `(name, description)`.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "biroli",
        "Biroli et al. 2024: U = I, Q = 0, classes ±m along (1,…,1), ‖m‖² = d, σ = 1, T = 10, 1000 steps",
    ),
    (
        "lu-tang",
        "Lu & Tang 2026: anisotropic U (geomspace:0.2:5), optimal Q, mean along U's softest direction; T = 5, 2000 steps (Δt‖QU‖ < 0.05 at d = 16)",
    ),
    (
        "coupled",
        "two modalities x, y coupled additively (γ = 0.5), classes ±(m_x, m_y) with m_x ⟂ m_y, ‖m_x‖² = ‖m_y‖² = d, σ = 1, T = 10, 1000 steps",
    ),
    (
        "quick",
        "a smoke test in seconds: d = 8, 10 000 particles, 200 steps, 2 000 pairs",
    ),
];

impl Config {
    /// A named preset (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Config> {
        let base = Config::default();
        Ok(match name {
            "biroli" => Config {
                u: USpec::Identity,
                q: QSpec::Zero,
                mean: MeanSpec::Ones,
                mean_norm2: None,
                sigma: 1.0,
                t_max: 10.0,
                steps: Steps::Count(1000),
                ..base
            },
            // The optimal Q is a strong rotation: a finer step keeps Euler–Maruyama accurate, and
            // the gap Tr(U)/d makes T = 5 as converged as T = 10 is for U = I.
            "lu-tang" => Config {
                u: USpec::Geomspace(0.2, 5.0),
                q: QSpec::Optimal(1.0),
                mean: MeanSpec::Soft,
                t_max: 5.0,
                steps: Steps::Count(2000),
                ..base
            },
            "coupled" => Config {
                coupling: Some(Coupling::additive(0.5)),
                ..base
            },
            "quick" => Config {
                dim: 8,
                particles: Some(10_000),
                steps: Steps::Count(200),
                pairs: Some(2_000),
                entropy_samples: 200,
                ..base
            },
            _ => {
                let known: Vec<String> = PRESETS
                    .iter()
                    .map(|(n, d)| format!("  {n:<8} {d}"))
                    .collect();
                bail!(
                    "unknown preset '{name}'; known presets:\n{}",
                    known.join("\n")
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_presets_too() {
        Config::default().validate().unwrap();
        for (name, _) in PRESETS {
            Config::preset(name).unwrap().validate().unwrap();
        }
        let e = Config::preset("birol").unwrap_err().to_string();
        assert!(e.contains("biroli") && e.contains("lu-tang"), "{e}");
        let b = Config::preset("biroli").unwrap();
        assert_eq!(b.mean_norm2(), b.dim as f64);
        assert_eq!((b.t_max, b.steps, b.sigma), (10.0, Steps::Count(1000), 1.0));
    }
}
