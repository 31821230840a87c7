//! The resolved parameters of a study: defaults ← preset ← TOML file ← command-line flags.
//!
//! Specs (`u`, `q`, `mean`) are the model's typed specs ([`crate::model::spec`]), which serialise
//! as their text form, so the JSON summary and the TOML file read like the command line. Every
//! error names the field (or flag) it is about. The flags live in `cli::args`.
//!
//! (Longer than 500 lines: every key with its default, preset value and validation rule in one
//! place, and 165 lines of tests.)

pub mod branch_times;
pub mod build;
pub mod keys;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::model::coupling::{Coupling, Pairing};
use crate::model::{MeanSpec, QSpec, USpec};
use crate::plan::{Scheme, Spacing, Start, Steps};
pub use branch_times::BranchTimes;

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

/// Everything a study needs, resolved. Field names are the TOML keys and (with `--`) the flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Dimension d.
    pub dim: usize,
    /// Stationary precision U (see [`USpec`]).
    pub u: USpec,
    /// Antisymmetric Q (see [`QSpec`]).
    pub q: QSpec,
    /// The distinct positive λ_k of the optimal-Q construction (docs/mathematics.md §6.2); None = 1, 2, …, d.
    pub q_lambdas: Option<Vec<f64>>,
    /// Direction of the class mean m (see [`MeanSpec`]).
    pub mean: MeanSpec,
    /// ‖m‖²; None = d (per-coordinate 1).
    pub mean_norm2: Option<f64>,
    /// Within-class standard deviation σ (C = σ² I, or σ² W with `within_cov`).
    pub sigma: f64,
    /// The shape W of an anisotropic shared within-class covariance C = σ² W (the forms of
    /// `u`); None = the identity.
    pub within_cov: Option<USpec>,
    /// Two coupled modalities of dimension d each (joint dimension 2d); None = one modality.
    pub coupling: Option<Coupling>,
    /// With a coupling: one class label for both modalities, or one per mode.
    pub pairing: Pairing,
    /// With a coupling: the angle between m_x and m_y in degrees (90 = orthogonal).
    pub pair_angle: f64,
    /// Gaussian mixture from a file: K rows of 1 + d values (weight, then mean).
    pub mixture_file: Option<PathBuf>,
    /// Number of training points N of the empirical target. Given (or a `train-file`), `run`
    /// samples the empirical target; None = `run` samples the mixture, and N =
    /// [`DEFAULT_N_TRAIN`] where a study needs one (collapse, t_C).
    pub n_train: Option<usize>,
    /// Training points from a file (N × d) instead of drawn from the mixture.
    pub train_file: Option<PathBuf>,
    /// Class labels of the training file's points (N whole numbers: .npy or CSV/text).
    pub train_labels: Option<PathBuf>,
    pub seed: u64,
    /// Particles; None = the command's default (run: 100 000, collapse: 2 000).
    pub particles: Option<u64>,
    /// Time steps, or `auto` (chosen for the scheme and model: see `study::auto_steps`).
    pub steps: Steps,
    pub t_max: f64,
    pub scheme: Scheme,
    /// Spacing of the time grid (the study's branch, record and entropy times are added as
    /// nodes).
    pub grid: Spacing,
    pub start: Start,
    pub backend: Backend,
    /// Substring of the GPU adapter name to pick.
    pub adapter: Option<String>,
    /// Clone pairs per branch time; None = the command's default (speciation: 20 000,
    /// collapse: 500).
    pub pairs: Option<u64>,
    /// None = a grid bracketing the theoretical t_S; `auto` = refined around the measured t_S.
    pub branch_times: Option<BranchTimes>,
    /// None = a grid bracketing the theoretical t_C.
    pub entropy_times: Option<Vec<f64>>,
    /// Times at which particle statistics are recorded; None = a default grid.
    pub record_times: Option<Vec<f64>>,
    /// Exact forward samples per entropy time.
    pub entropy_samples: u64,
    /// Particles per engine batch; None = as large as the engine allows.
    pub batch: Option<usize>,
    /// CPU threads; None = all cores.
    pub threads: Option<usize>,
    /// Time steps fused into one GPU dispatch (keeps dispatches short for the watchdog); None =
    /// measured per plan shape so that a dispatch lasts at most about 0.25 s.
    pub steps_per_dispatch: Option<usize>,
    /// Write the final samples as samples.npy.
    pub save_samples: bool,
    /// Figure size [width, height] in units of 1/96 inch (the SVG's size); None = 860 × 540
    /// plus a legend column.
    pub figure_size: Option<(u32, u32)>,
    /// PNG resolution in dots per inch: a PNG is figure-size × dpi / 96 pixels.
    pub dpi: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dim: 16,
            u: USpec::Identity,
            q: QSpec::Zero,
            q_lambdas: None,
            mean: MeanSpec::Ones,
            mean_norm2: None,
            sigma: 1.0,
            within_cov: None,
            coupling: None,
            pairing: Pairing::Shared,
            pair_angle: 90.0,
            mixture_file: None,
            n_train: None,
            train_file: None,
            train_labels: None,
            seed: 1,
            particles: None,
            steps: Steps::Count(1000),
            t_max: 10.0,
            scheme: Scheme::Auto,
            grid: Spacing::Uniform,
            start: Start::Exact,
            backend: Backend::Auto,
            adapter: None,
            pairs: None,
            branch_times: None,
            entropy_times: None,
            record_times: None,
            entropy_samples: 2000,
            batch: None,
            threads: None,
            steps_per_dispatch: None,
            save_samples: false,
            figure_size: None,
            dpi: 96,
        }
    }
}

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

/// Times in (0, t_max], or [0, t_max] where t = 0 is meaningful (`zero`: the samples themselves;
/// a branch or an entropy time needs t > 0).
fn check_times(field: &str, times: &Option<Vec<f64>>, t_max: f64, zero: bool) -> Result<()> {
    if let Some(ts) = times {
        ensure!(
            !ts.is_empty(),
            "{field}: must not be empty (omit it for the default grid)"
        );
        let open = if zero { "[" } else { "(" };
        for &t in ts {
            ensure!(t.is_finite(), "{field}: {t} is not finite");
            ensure!(
                (t > 0.0 || (zero && t == 0.0)) && t <= t_max,
                "{field}: {t} is outside {open}0, t-max = {t_max}]"
            );
        }
    }
    Ok(())
}

/// The text of a config file (at most [`crate::io::MAX_CONFIG_BYTES`], UTF-8).
pub fn read_config_file(path: &Path) -> Result<String> {
    let bytes = crate::io::read_bounded(path, crate::io::MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| anyhow!("config file {}: not UTF-8 text ({e})", path.display()))
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

    /// Check every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.dim > 0, "dim: must be positive");
        ensure!(self.particles != Some(0), "particles: must be positive");
        ensure!(self.steps != Steps::Count(0), "steps: must be positive");
        ensure!(self.pairs != Some(0), "pairs: must be positive");
        if let Some(n) = self.n_train {
            ensure!(
                n >= 2,
                "n-train: {n} training point{} make no empirical target (α = ln N / d = 0); use \
                 at least 2",
                if n == 1 { "" } else { "s" }
            );
        }
        // Particle ids carry a clone's stream tag in their top 16 bits.
        if let Some(p) = self.particles {
            ensure!(
                p <= MAX_PARTICLES,
                "particles: {p} is more than the {MAX_PARTICLES} (2⁴⁸) a run can tell apart"
            );
            ensure!(
                p.checked_mul(self.steps.count().unwrap_or(1) as u64)
                    .is_some_and(|n| n < u64::MAX / 4),
                "particles × steps = {p} × {} overflows the 64-bit counters",
                self.steps
            );
        }
        if let Some(p) = self.pairs {
            ensure!(
                p <= MAX_PARTICLES / 2,
                "pairs: {p} is more than the {} a run can tell apart",
                MAX_PARTICLES / 2
            );
        }
        // One sample has no standard error (it would print as 0).
        ensure!(
            self.entropy_samples >= 2,
            "entropy-samples: must be at least 2 (f^e's standard error needs two samples)"
        );
        ensure!(
            self.steps_per_dispatch != Some(0),
            "steps-per-dispatch: must be positive"
        );
        ensure!(
            self.t_max.is_finite() && self.t_max > 0.0,
            "t-max: must be positive and finite (got {})",
            self.t_max
        );
        ensure!(
            self.t_max <= MAX_HORIZON,
            "t-max: {:e} is beyond any useful horizon (at most {MAX_HORIZON:e}: the process has \
             relaxed after a few times 1/gap, and the theory's time scans lose their resolution)",
            self.t_max
        );
        ensure!(
            self.sigma.is_finite() && self.sigma > 0.0,
            "sigma: must be positive and finite (got {})",
            self.sigma
        );
        ensure!(
            (1.0 / MAX_SCALE..=MAX_SCALE).contains(&(self.sigma * self.sigma)),
            "sigma: σ² = {:e} is outside [1e−30, 1e30], where f32 plans overflow",
            self.sigma * self.sigma
        );
        if let Some(m2) = self.mean_norm2 {
            ensure!(
                m2.is_finite() && m2 >= 0.0,
                "mean-norm2: must be ≥ 0 and finite (got {m2})"
            );
            ensure!(
                m2 <= MAX_SCALE,
                "mean-norm2: {m2:e} is above 1e30, where f32 plans overflow"
            );
        }
        // At t = 0 the logits hold ‖m‖²/σ² (Γ(0) = C = σ²I): above 1e30 their f32 sums overflow
        // and every particle turns NaN (‖m‖² = 1e20 with σ = 1e-12 did).
        let m2 = self.mean_norm2.unwrap_or(self.dim as f64);
        let ratio = m2 / (self.sigma * self.sigma);
        ensure!(
            ratio <= MAX_SCALE,
            "sigma: ‖m‖²/σ² = {ratio:.1e} (mean-norm2 {m2:e}, sigma {:e}) is above 1e30, where the \
             f32 logits at t = 0 overflow to NaN; use a larger --sigma or a smaller --mean-norm2",
            self.sigma
        );
        if let Some(b) = self.batch {
            ensure!(
                b > 0,
                "batch: must be positive (omit it for the engine's maximum)"
            );
        }
        if let Some(t) = self.threads {
            ensure!(t > 0, "threads: must be positive (omit it for all cores)");
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            ensure!(
                t <= MAX_THREADS_PER_CORE * cores,
                "threads: {t} is more than {MAX_THREADS_PER_CORE} per core ({cores} cores here); \
                 more threads only add overhead"
            );
        }
        if let Some(a) = &self.adapter {
            ensure!(!a.trim().is_empty(), "adapter: must not be empty");
        }
        let branch = self
            .branch_times
            .as_ref()
            .and_then(|b| b.times().map(<[f64]>::to_vec));
        check_times("branch-times", &branch, self.t_max, false)?;
        if let Spacing::Nodes(v) = &self.grid {
            check_times("grid", &Some(v.clone()), self.t_max, false)?;
        }
        check_times("entropy-times", &self.entropy_times, self.t_max, false)?;
        check_times("record-times", &self.record_times, self.t_max, true)?;

        if let USpec::Diag(v) = &self.u {
            ensure!(
                v.len() == self.dim,
                "u: diag has {} eigenvalues but dim is {} (set dim = {} or give {} values)",
                v.len(),
                self.dim,
                v.len(),
                self.dim
            );
        }
        ensure!(
            self.coupling.is_some() || (self.pairing == Pairing::Shared && self.pair_angle == 90.0),
            "pairing, pair-angle: they shape the classes of coupled modalities; set --coupling \
             too (or leave them out)"
        );
        if let Some(c) = &self.coupling {
            c.check(Some(self.dim))?;
            ensure!(
                self.q == QSpec::Zero,
                "q: --q does not apply to coupled modalities; rotate them with --coupling \
                 rotating:GAMMA,OMEGA"
            );
            ensure!(
                self.pairing == Pairing::Shared || self.mixture_file.is_none(),
                "pairing: per-mode builds its four classes from m_x and m_y; a mixture-file gives \
                 its own classes (omit one of them)"
            );
            ensure!(self.dim >= 2, "dim: --coupling needs d ≥ 2 per modality");
        }
        if let QSpec::Pair(i, j, _) = self.q {
            ensure!(
                i < self.dim && j < self.dim,
                "q: pair indices {i}, {j} must be below dim = {} (they are 0-based)",
                self.dim
            );
        }
        if let Some(ls) = &self.q_lambdas {
            ensure!(
                ls.len() == self.dim,
                "q-lambdas: needs dim = {} values, got {}",
                self.dim,
                ls.len()
            );
            ensure!(
                ls.iter().all(|l| l.is_finite() && *l > 0.0),
                "q-lambdas: every value must be positive and finite"
            );
            let distinct: BTreeSet<u64> = ls.iter().map(|l| l.to_bits()).collect();
            ensure!(
                distinct.len() == ls.len(),
                "q-lambdas: values must be distinct"
            );
        }
        if let Some((w, h)) = self.figure_size {
            ensure!(
                FIGURE_UNITS.contains(&w) && FIGURE_UNITS.contains(&h),
                "figure-size: {w}x{h}: width and height from {} to {} (units of 1/96 inch)",
                FIGURE_UNITS.start(),
                FIGURE_UNITS.end()
            );
        }
        ensure!(
            FIGURE_DPI.contains(&self.dpi),
            "dpi: {} is not from {} to {}",
            self.dpi,
            FIGURE_DPI.start(),
            FIGURE_DPI.end()
        );
        let (w, h) = self.figure_size.unwrap_or((1100, 540));
        let pixels = |v: u32| u64::from(v) * u64::from(self.dpi) / 96;
        ensure!(
            pixels(w).max(pixels(h)) <= MAX_PNG_SIDE,
            "dpi: {} makes a {}x{}-pixel PNG of a {w}x{h} figure; at most {MAX_PNG_SIDE} pixels \
             a side (lower dpi or figure-size)",
            self.dpi,
            pixels(w),
            pixels(h)
        );
        for (field, p) in [
            ("mixture-file", &self.mixture_file),
            ("train-file", &self.train_file),
            ("train-labels", &self.train_labels),
        ] {
            if let Some(p) = p {
                ensure!(!p.as_os_str().is_empty(), "{field}: must not be empty");
            }
        }
        ensure!(
            self.train_labels.is_none() || self.train_file.is_some(),
            "train-labels: labels belong to the points of a train-file (give --train-file too)"
        );
        Ok(())
    }

    /// Whether each mode of coupled modalities carries a label of its own, so that per-mode
    /// speciation is observable by cloning: per-mode pairing, or a mixture file's classes
    /// (whose projections group them per mode). One shared label commits once, jointly.
    pub fn mode_labels(&self) -> bool {
        self.pairing == Pairing::PerMode || self.mixture_file.is_some()
    }

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

    /// Parse a TOML document over the defaults (does not validate).
    pub fn from_toml_str(text: &str) -> Result<Config> {
        Config::default().overlay_toml(text, "config")
    }

    /// Read a TOML file over the defaults (does not validate).
    pub fn load(path: &Path) -> Result<Config> {
        Config::default().overlay_file(path)
    }

    /// Read a TOML file and set each key it has on top of `self`.
    pub fn overlay_file(self, path: &Path) -> Result<Config> {
        let text = read_config_file(path)?;
        self.overlay_toml(&text, &path.display().to_string())
    }

    /// Set each key of the TOML document on top of `self`. `source` names the document in errors.
    pub fn overlay_toml(self, text: &str, source: &str) -> Result<Config> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| anyhow!("{source}: not valid TOML: {e}"))?;
        let mut keys = serde_json::Map::new();
        for (k, v) in table {
            let json = serde_json::to_value(&v)
                .with_context(|| format!("{source}: key '{k}': unsupported value"))?;
            keys.insert(k, json);
        }
        self.overlay(keys, source)
    }

    /// Set each key (kebab-case, as in TOML and JSON) on top of `self`; an unknown key is refused
    /// with the closest known one, a value of the wrong type names its key.
    pub fn overlay(
        self,
        keys: serde_json::Map<String, serde_json::Value>,
        source: &str,
    ) -> Result<Config> {
        let known = Config::keys();
        let mut base = match serde_json::to_value(&self)? {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("Config serialises to an object"),
        };
        for (k, json) in keys {
            if let Some(why) = flag_only(&k) {
                bail!(
                    "'{k}' in {source} is not a config key: {why}, so it is given on the \
                     command line (--{k})"
                );
            }
            if !known.contains(&k) {
                let best = known
                    .iter()
                    .map(|n| (strsim::jaro_winkler(&k, n), n))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let hint = match best {
                    Some((score, n)) if score > 0.7 => format!(" (did you mean '{n}'?)"),
                    _ => format!(" (known keys: {})", known.join(", ")),
                };
                bail!("unknown key '{k}' in {source}{hint}");
            }
            // Check this key alone, so that a type error names it.
            let mut one = base.clone();
            one.insert(k.clone(), json.clone());
            serde_json::from_value::<Config>(serde_json::Value::Object(one))
                .map_err(|e| anyhow!("{source}: key '{k}': {e}"))?;
            base.insert(k, json);
        }
        Ok(serde_json::from_value(serde_json::Value::Object(base))?)
    }

    /// The configuration as a TOML document (readable back with [`Config::from_toml_str`]).
    pub fn to_toml_string(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }
}

/// Why a flag is not a config key, for the flags a TOML file might try to set.
fn flag_only(key: &str) -> Option<&'static str> {
    Some(match key {
        "preset" => "a preset is the layer below the config file (--preset, then --config)",
        "config" => "a config file cannot name another",
        "shard" | "checkpoint-every" | "devices" => {
            "scale-out settings belong to one invocation, not to the study"
        }
        "out" | "force" | "json" | "quiet" => "where and how one invocation reports",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regimes-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

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

    #[test]
    fn toml_round_trip() {
        let mut c = Config::preset("lu-tang").unwrap();
        c.branch_times = Some(BranchTimes::At(vec![0.5, 1.25, 3.0]));
        c.mean_norm2 = Some(2.5);
        c.train_file = Some("data/train.npy".into());
        c.scheme = Scheme::ProbabilityFlow;
        c.backend = Backend::Cpu;
        c.save_samples = true;
        let text = c.to_toml_string().unwrap();
        assert!(text.contains("scheme = \"probability-flow\""), "{text}");
        assert_eq!(Config::from_toml_str(&text).unwrap(), c);
        // And JSON too.
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), c);
    }

    #[test]
    fn unknown_key_suggests_the_closest() {
        let e = Config::from_toml_str("particels = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key 'particels'"), "{e}");
        assert!(e.contains("did you mean 'particles'?"), "{e}");
        let e = Config::from_toml_str("n_train = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean 'n-train'?"), "{e}");
        for key in ["shard = \"0/2\"", "preset = \"biroli\""] {
            let e = Config::from_toml_str(&format!("{key}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("not a config key") && e.contains("command line"),
                "{e}"
            );
        }
        let d = scratch("unknown");
        let p = d.join("config.toml");
        std::fs::write(&p, "t_max = 3.0\n").unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("config.toml") && e.contains("'t-max'"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn type_errors_name_the_key_and_missing_files_the_path() {
        let e = Config::from_toml_str("steps = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key 'steps'"), "{e}");
        let e = Config::from_toml_str("scheme = \"heun\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key 'scheme'"), "{e}");
        let e = Config::from_toml_str("dim = -3\n").unwrap_err().to_string();
        assert!(e.contains("key 'dim'"), "{e}");
        let e = Config::load(Path::new("/nonexistent/regimes.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/regimes.toml"), "{e}");
    }

    /// The samples themselves (t = 0) may be recorded; a branch or an entropy time needs t > 0.
    #[test]
    fn record_times_may_include_the_end() {
        let ok = Config {
            record_times: Some(vec![10.0, 0.0]),
            ..Config::default()
        };
        ok.validate().unwrap();
        for c in [
            Config {
                branch_times: Some(BranchTimes::At(vec![0.0])),
                ..Config::default()
            },
            Config {
                entropy_times: Some(vec![0.0]),
                ..Config::default()
            },
            Config {
                record_times: Some(vec![-0.5]),
                ..Config::default()
            },
        ] {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("is outside"), "{e}");
        }
    }

    #[test]
    fn each_validation_error_names_its_field() {
        type Case = (&'static str, Box<dyn Fn(&mut Config)>);
        let cases: Vec<Case> = vec![
            ("dim", Box::new(|c| c.dim = 0)),
            ("particles", Box::new(|c| c.particles = Some(0))),
            ("steps", Box::new(|c| c.steps = Steps::Count(0))),
            ("pairs", Box::new(|c| c.pairs = Some(0))),
            ("n-train", Box::new(|c| c.n_train = Some(0))),
            ("entropy-samples", Box::new(|c| c.entropy_samples = 0)),
            (
                "steps-per-dispatch",
                Box::new(|c| c.steps_per_dispatch = Some(0)),
            ),
            ("t-max", Box::new(|c| c.t_max = f64::INFINITY)),
            ("t-max", Box::new(|c| c.t_max = -1.0)),
            ("sigma", Box::new(|c| c.sigma = f64::NAN)),
            ("sigma", Box::new(|c| c.sigma = 0.0)),
            ("mean-norm2", Box::new(|c| c.mean_norm2 = Some(-1.0))),
            ("mean-norm2", Box::new(|c| c.mean_norm2 = Some(f64::NAN))),
            ("batch", Box::new(|c| c.batch = Some(0))),
            ("threads", Box::new(|c| c.threads = Some(0))),
            ("adapter", Box::new(|c| c.adapter = Some(" ".into()))),
            (
                "branch-times",
                Box::new(|c| c.branch_times = Some(BranchTimes::At(vec![1.0, 11.0]))),
            ),
            (
                "branch-times",
                Box::new(|c| c.branch_times = Some(BranchTimes::At(vec![0.0]))),
            ),
            (
                "entropy-times",
                Box::new(|c| c.entropy_times = Some(vec![f64::NAN])),
            ),
            ("record-times", Box::new(|c| c.record_times = Some(vec![]))),
            ("u", Box::new(|c| c.u = USpec::Diag(vec![1.0, 2.0]))),
            ("q", Box::new(|c| c.q = QSpec::Pair(0, 16, 1.0))),
            ("q-lambdas", Box::new(|c| c.q_lambdas = Some(vec![1.0; 16]))),
            (
                "q-lambdas",
                Box::new(|c| c.q_lambdas = Some(vec![1.0, 2.0])),
            ),
        ];
        for (field, f) in cases {
            let mut c = Config::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{field}:")) || e.starts_with(&format!("{field} (")),
                "{field}: {e}"
            );
        }
    }
}
