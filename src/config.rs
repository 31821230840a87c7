//! The resolved parameters of a study: defaults ← preset ← TOML file ← command-line flags.
//!
//! Specs (`u`, `q`, `mean`) are kept as strings in [`Config`] so that the JSON summary and the
//! TOML file read like the command line; [`parse_u`], [`parse_q`] and [`parse_mean`] turn them into
//! the model's enums. Every error names the field (or flag) it is about.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::model::{MeanSpec, QSpec, USpec};
use crate::plan::{Scheme, Start};

/// Which engine runs the particles.
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

/// Everything a study needs, resolved. Field names are the TOML keys and (with `--`) the flags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Dimension d.
    pub dim: usize,
    /// Stationary precision U (see [`parse_u`]).
    pub u: String,
    /// Antisymmetric Q (see [`parse_q`]).
    pub q: String,
    /// The distinct positive λ_k of the optimal-Q construction (DESIGN §5); None = 1, 2, …, d.
    pub q_lambdas: Option<Vec<f64>>,
    /// Direction of the class mean m (see [`parse_mean`]).
    pub mean: String,
    /// ‖m‖²; None = d (per-coordinate 1).
    pub mean_norm2: Option<f64>,
    /// Within-class standard deviation σ (C = σ² I).
    pub sigma: f64,
    /// Gaussian mixture from a file: K rows of 1 + d values (weight, then mean).
    pub mixture_file: Option<PathBuf>,
    /// Number of training points N of the empirical target.
    pub n_train: usize,
    /// Training points from a file (N × d) instead of drawn from the mixture.
    pub train_file: Option<PathBuf>,
    pub seed: u64,
    /// Particles; None = the command's default (run: 100 000, collapse: 2 000).
    pub particles: Option<u64>,
    pub steps: usize,
    pub t_max: f64,
    pub scheme: Scheme,
    pub start: Start,
    pub backend: Backend,
    /// Substring of the GPU adapter name to pick.
    pub adapter: Option<String>,
    /// Clone pairs per branch time; None = the command's default (speciation: 20 000,
    /// collapse: 500).
    pub pairs: Option<u64>,
    /// None = a grid bracketing the theoretical t_S.
    pub branch_times: Option<Vec<f64>>,
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
    /// Time steps fused into one GPU dispatch (keeps dispatches short for the watchdog).
    pub steps_per_dispatch: usize,
    /// Write the final samples as samples.npy.
    pub save_samples: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dim: 16,
            u: "identity".into(),
            q: "zero".into(),
            q_lambdas: None,
            mean: "ones".into(),
            mean_norm2: None,
            sigma: 1.0,
            mixture_file: None,
            n_train: 1000,
            train_file: None,
            seed: 1,
            particles: None,
            steps: 1000,
            t_max: 10.0,
            scheme: Scheme::EulerMaruyama,
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
            steps_per_dispatch: 50,
            save_samples: false,
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
        "quick",
        "a smoke test in seconds: d = 8, 10 000 particles, 200 steps, 2 000 pairs",
    ),
];

const U_FORMS: &str =
    "identity | diag:A,B,... | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI | file:PATH";
const Q_FORMS: &str =
    "zero | optimal | optimal:SCALE | pair:I:J:Q | toward-soft:Q | random:FROB | file:PATH";
const MEAN_FORMS: &str = "ones | stiff | soft | random | file:PATH";

fn spec_error(flag: &str, s: &str, why: &str, forms: &str) -> anyhow::Error {
    anyhow!("{flag} (--{flag}): cannot use '{s}': {why}; accepted forms: {forms}")
}

/// Split `head:rest` (rest may contain ':' only for `file:`).
fn split_spec(s: &str) -> (&str, Option<&str>) {
    match s.split_once(':') {
        Some((h, r)) => (h.trim(), Some(r)),
        None => (s.trim(), None),
    }
}

fn number(flag: &str, s: &str, forms: &str, what: &str, text: &str) -> Result<f64> {
    let x: f64 = text
        .trim()
        .parse()
        .map_err(|_| spec_error(flag, s, &format!("{what} '{text}' is not a number"), forms))?;
    if !x.is_finite() {
        return Err(spec_error(
            flag,
            s,
            &format!("{what} must be finite (got {text})"),
            forms,
        ));
    }
    Ok(x)
}

fn args<'a>(
    flag: &str,
    s: &str,
    forms: &str,
    rest: Option<&'a str>,
    n: usize,
) -> Result<Vec<&'a str>> {
    let parts: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
    if parts.len() != n || parts.iter().any(|p| p.trim().is_empty()) {
        let head = split_spec(s).0;
        return Err(spec_error(
            flag,
            s,
            &format!(
                "'{head}' takes {n} ':'-separated value{}",
                if n == 1 { "" } else { "s" }
            ),
            forms,
        ));
    }
    Ok(parts)
}

fn file_arg(flag: &str, s: &str, forms: &str, rest: Option<&str>) -> Result<PathBuf> {
    match rest {
        Some(p) if !p.trim().is_empty() => Ok(PathBuf::from(p.trim())),
        _ => Err(spec_error(flag, s, "file: needs a path", forms)),
    }
}

fn no_args(flag: &str, s: &str, forms: &str, rest: Option<&str>) -> Result<()> {
    match rest {
        None => Ok(()),
        Some(_) => Err(spec_error(
            flag,
            s,
            &format!("'{}' takes no value", split_spec(s).0),
            forms,
        )),
    }
}

/// Parse `--u`: `identity | diag:a,b,… | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI |
/// file:PATH`. Eigenvalues must be positive and finite (U is a precision).
pub fn parse_u(s: &str) -> Result<USpec> {
    let (f, forms) = ("u", U_FORMS);
    let (head, rest) = split_spec(s);
    let positive = |what: &str, text: &str| -> Result<f64> {
        let x = number(f, s, forms, what, text)?;
        if x <= 0.0 {
            return Err(spec_error(
                f,
                s,
                &format!("{what} must be positive (U is a precision; got {text})"),
                forms,
            ));
        }
        Ok(x)
    };
    let range = |rest| -> Result<(f64, f64)> {
        let a = args(f, s, forms, rest, 2)?;
        Ok((positive("LO", a[0])?, positive("HI", a[1])?))
    };
    Ok(match head {
        "identity" => {
            no_args(f, s, forms, rest)?;
            USpec::Identity
        }
        "diag" => {
            let r = rest.unwrap_or("");
            if r.trim().is_empty() {
                return Err(spec_error(
                    f,
                    s,
                    "diag: needs a comma list of eigenvalues",
                    forms,
                ));
            }
            USpec::Diag(
                r.split(',')
                    .map(|x| positive("eigenvalue", x))
                    .collect::<Result<_>>()?,
            )
        }
        "linspace" => {
            let (lo, hi) = range(rest)?;
            USpec::Linspace(lo, hi)
        }
        "geomspace" => {
            let (lo, hi) = range(rest)?;
            USpec::Geomspace(lo, hi)
        }
        "rotated" => {
            let (lo, hi) = range(rest)?;
            USpec::Rotated(lo, hi)
        }
        "file" => USpec::File(file_arg(f, s, forms, rest)?),
        _ => return Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    })
}

/// Parse `--q`: `zero | optimal | optimal:SCALE | pair:I:J:Q | toward-soft:Q | random:FROB |
/// file:PATH`. I, J are 0-based indices into U's eigenbasis.
pub fn parse_q(s: &str) -> Result<QSpec> {
    let (f, forms) = ("q", Q_FORMS);
    let (head, rest) = split_spec(s);
    Ok(match head {
        "zero" => {
            no_args(f, s, forms, rest)?;
            QSpec::Zero
        }
        "optimal" => match rest {
            None => QSpec::Optimal(1.0),
            Some(_) => {
                let a = args(f, s, forms, rest, 1)?;
                QSpec::Optimal(number(f, s, forms, "SCALE", a[0])?)
            }
        },
        "pair" => {
            let a = args(f, s, forms, rest, 3)?;
            let index = |what: &str, text: &str| -> Result<usize> {
                text.trim().parse().map_err(|_| {
                    spec_error(
                        f,
                        s,
                        &format!("{what} must be a 0-based index (got '{text}')"),
                        forms,
                    )
                })
            };
            let (i, j) = (index("I", a[0])?, index("J", a[1])?);
            if i == j {
                return Err(spec_error(f, s, "I and J must differ", forms));
            }
            QSpec::Pair(i, j, number(f, s, forms, "Q", a[2])?)
        }
        "toward-soft" => {
            let a = args(f, s, forms, rest, 1)?;
            QSpec::TowardSoft(number(f, s, forms, "Q", a[0])?)
        }
        "random" => {
            let a = args(f, s, forms, rest, 1)?;
            let frob = number(f, s, forms, "FROB", a[0])?;
            if frob < 0.0 {
                return Err(spec_error(f, s, "FROB (a norm) must be ≥ 0", forms));
            }
            QSpec::Random(frob)
        }
        "file" => QSpec::File(file_arg(f, s, forms, rest)?),
        _ => return Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    })
}

/// Parse `--mean`: `ones | stiff | soft | random | file:PATH`.
pub fn parse_mean(s: &str) -> Result<MeanSpec> {
    let (f, forms) = ("mean", MEAN_FORMS);
    let (head, rest) = split_spec(s);
    let simple = |spec: MeanSpec| -> Result<MeanSpec> {
        no_args(f, s, forms, rest)?;
        Ok(spec)
    };
    match head {
        "ones" => simple(MeanSpec::Ones),
        "stiff" => simple(MeanSpec::Stiff),
        "soft" => simple(MeanSpec::Soft),
        "random" => simple(MeanSpec::Random),
        "file" => Ok(MeanSpec::File(file_arg(f, s, forms, rest)?)),
        _ => Err(spec_error(f, s, &format!("unknown form '{head}'"), forms)),
    }
}

fn check_times(field: &str, times: &Option<Vec<f64>>, t_max: f64) -> Result<()> {
    if let Some(ts) = times {
        ensure!(
            !ts.is_empty(),
            "{field}: must not be empty (omit it for the default grid)"
        );
        for &t in ts {
            ensure!(t.is_finite(), "{field}: {t} is not finite");
            ensure!(
                t > 0.0 && t <= t_max,
                "{field}: {t} is outside (0, t-max = {t_max}]"
            );
        }
    }
    Ok(())
}

impl Config {
    /// The names of all keys (kebab-case), as in TOML and JSON.
    pub fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => unreachable!("Config serialises to an object"),
        }
    }

    /// ‖m‖² after applying the default (d).
    pub fn mean_norm2(&self) -> f64 {
        self.mean_norm2.unwrap_or(self.dim as f64)
    }

    pub fn u_spec(&self) -> Result<USpec> {
        parse_u(&self.u)
    }
    pub fn q_spec(&self) -> Result<QSpec> {
        parse_q(&self.q)
    }
    pub fn mean_spec(&self) -> Result<MeanSpec> {
        parse_mean(&self.mean)
    }

    /// Check every field; the error names the first field at fault.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.dim > 0, "dim: must be positive");
        ensure!(self.particles != Some(0), "particles: must be positive");
        ensure!(self.steps > 0, "steps: must be positive");
        ensure!(self.pairs != Some(0), "pairs: must be positive");
        ensure!(self.n_train > 0, "n-train: must be positive");
        ensure!(
            self.entropy_samples > 0,
            "entropy-samples: must be positive"
        );
        ensure!(
            self.steps_per_dispatch > 0,
            "steps-per-dispatch: must be positive"
        );
        ensure!(
            self.t_max.is_finite() && self.t_max > 0.0,
            "t-max: must be positive and finite (got {})",
            self.t_max
        );
        ensure!(
            self.sigma.is_finite() && self.sigma > 0.0,
            "sigma: must be positive and finite (got {})",
            self.sigma
        );
        if let Some(m2) = self.mean_norm2 {
            ensure!(
                m2.is_finite() && m2 >= 0.0,
                "mean-norm2: must be ≥ 0 and finite (got {m2})"
            );
        }
        if let Some(b) = self.batch {
            ensure!(
                b > 0,
                "batch: must be positive (omit it for the engine's maximum)"
            );
        }
        if let Some(t) = self.threads {
            ensure!(t > 0, "threads: must be positive (omit it for all cores)");
        }
        if let Some(a) = &self.adapter {
            ensure!(!a.trim().is_empty(), "adapter: must not be empty");
        }
        check_times("branch-times", &self.branch_times, self.t_max)?;
        check_times("entropy-times", &self.entropy_times, self.t_max)?;
        check_times("record-times", &self.record_times, self.t_max)?;

        let u = self.u_spec()?;
        if let USpec::Diag(v) = &u {
            ensure!(
                v.len() == self.dim,
                "u: diag has {} eigenvalues but dim is {} (set dim = {} or give {} values)",
                v.len(),
                self.dim,
                v.len(),
                self.dim
            );
        }
        let q = self.q_spec()?;
        if let QSpec::Pair(i, j, _) = q {
            ensure!(
                i < self.dim && j < self.dim,
                "q: pair indices {i}, {j} must be below dim = {} (they are 0-based)",
                self.dim
            );
        }
        self.mean_spec()?;
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
        for (field, p) in [
            ("mixture-file", &self.mixture_file),
            ("train-file", &self.train_file),
        ] {
            if let Some(p) = p {
                ensure!(!p.as_os_str().is_empty(), "{field}: must not be empty");
            }
        }
        Ok(())
    }

    /// A named preset (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Config> {
        let base = Config::default();
        Ok(match name {
            "biroli" => Config {
                u: "identity".into(),
                q: "zero".into(),
                mean: "ones".into(),
                mean_norm2: None,
                sigma: 1.0,
                t_max: 10.0,
                steps: 1000,
                ..base
            },
            // The optimal Q is a strong rotation: a finer step keeps Euler–Maruyama accurate, and
            // the gap Tr(U)/d makes T = 5 as converged as T = 10 is for U = I.
            "lu-tang" => Config {
                u: "geomspace:0.2:5".into(),
                q: "optimal".into(),
                mean: "soft".into(),
                t_max: 5.0,
                steps: 2000,
                ..base
            },
            "quick" => Config {
                dim: 8,
                particles: Some(10_000),
                steps: 200,
                pairs: Some(2_000),
                n_train: 200,
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
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        self.overlay_toml(&text, &path.display().to_string())
    }

    /// Set each key of the TOML document on top of `self`. `source` names the document in errors.
    pub fn overlay_toml(self, text: &str, source: &str) -> Result<Config> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| anyhow!("{source}: not valid TOML: {e}"))?;
        let keys = Config::keys();
        let mut base = match serde_json::to_value(&self)? {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("Config serialises to an object"),
        };
        for (k, v) in &table {
            if !keys.iter().any(|known| known == k) {
                let best = keys
                    .iter()
                    .map(|known| (strsim::jaro_winkler(k, known), known))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                let hint = match best {
                    Some((score, known)) if score > 0.7 => {
                        format!(" (did you mean '{known}'?)")
                    }
                    _ => format!(" (known keys: {})", keys.join(", ")),
                };
                bail!("unknown key '{k}' in {source}{hint}");
            }
            let json = serde_json::to_value(v)
                .with_context(|| format!("{source}: key '{k}': unsupported value"))?;
            // Check this key alone, so that a type error names it.
            let mut one = base.clone();
            one.insert(k.clone(), json.clone());
            serde_json::from_value::<Config>(serde_json::Value::Object(one))
                .map_err(|e| anyhow!("{source}: key '{k}': {e}"))?;
            base.insert(k.clone(), json);
        }
        Ok(serde_json::from_value(serde_json::Value::Object(base))?)
    }

    /// The configuration as a TOML document (readable back with [`Config::from_toml_str`]).
    pub fn to_toml_string(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }
}

fn clap_u(s: &str) -> std::result::Result<String, String> {
    parse_u(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}
fn clap_q(s: &str) -> std::result::Result<String, String> {
    parse_q(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}
fn clap_mean(s: &str) -> std::result::Result<String, String> {
    parse_mean(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

// Command-line flags for every `Config` field, plus `--config` and `--preset`; unset flags leave
// the preset / file value in place. (A plain comment: a doc comment here would become the `about`
// text of whatever command flattens these flags.)
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// Start from a named preset: biroli (U = I, Q = 0, the base paper), lu-tang (anisotropic U,
    /// optimal Q), quick (smoke test). A --config file and flags apply on top.
    #[arg(long, value_name = "NAME", help_heading = "Study")]
    pub preset: Option<String>,
    /// TOML file with any of these settings (keys are the flag names without '--', e.g.
    /// `particles = 1_000_000`); flags override it.
    #[arg(long, value_name = "PATH", help_heading = "Study")]
    pub config: Option<PathBuf>,

    /// Dimension d of the data [default: 16].
    #[arg(long, value_name = "D", help_heading = "Model")]
    pub dim: Option<usize>,
    /// Stationary precision U of the forward process [default: identity]. Forms: identity |
    /// diag:A,B,... (d values) | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI (geometric
    /// spectrum in a random basis) | file:PATH (.npy or CSV, d×d). Example: --u geomspace:0.2:5
    #[arg(long, value_name = "SPEC", value_parser = clap_u, allow_hyphen_values = true, help_heading = "Model")]
    pub u: Option<String>,
    /// Antisymmetric Q breaking detailed balance; A = (I + Q) U [default: zero]. Forms: zero |
    /// optimal (reaches the gap Tr(U)/d) | optimal:SCALE | pair:I:J:Q (0-based, U's eigenbasis) |
    /// toward-soft:Q | random:FROB | file:PATH. Example: --q pair:0:15:-2.5
    #[arg(long, value_name = "SPEC", value_parser = clap_q, allow_hyphen_values = true, help_heading = "Model")]
    pub q: Option<String>,
    /// The distinct positive λ_k of the optimal-Q construction, d values, comma separated
    /// [default: 1,2,...,d]. Example: --q-lambdas 1,2,4,8
    #[arg(
        long,
        value_name = "L1,L2,...",
        value_delimiter = ',',
        help_heading = "Model"
    )]
    pub q_lambdas: Option<Vec<f64>>,
    /// Direction of the class mean m for the two classes ±m [default: ones]. Forms: ones | stiff
    /// (U's largest eigenvalue) | soft (smallest) | random | file:PATH (rescaled to --mean-norm2).
    #[arg(long, value_name = "SPEC", value_parser = clap_mean, help_heading = "Model")]
    pub mean: Option<String>,
    /// Squared norm ‖m‖² of the class mean [default: d, i.e. 1 per coordinate]. Example: --mean-norm2 4
    #[arg(long, value_name = "M2", help_heading = "Model")]
    pub mean_norm2: Option<f64>,
    /// Within-class standard deviation σ, covariance σ²I [default: 1].
    #[arg(long, value_name = "SIGMA", help_heading = "Model")]
    pub sigma: Option<f64>,
    /// Gaussian mixture target from a file (.npy or CSV): K rows of 1 + d values, the weight then
    /// the mean; replaces the two classes ±m.
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub mixture_file: Option<PathBuf>,
    /// Number N of training points of the empirical target (collapse) [default: 1000].
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub n_train: Option<usize>,
    /// Training points from a file (.npy or CSV, N×d) instead of drawing them from the target.
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub train_file: Option<PathBuf>,

    /// Seed of every random choice (particles, training set, random U/Q/mean) [default: 1].
    #[arg(long, value_name = "SEED", help_heading = "Sampling")]
    pub seed: Option<u64>,
    /// Number of generated particles [default: run 100000, collapse 2000]. Example: --particles 10000000 (fine on a GPU).
    #[arg(long, value_name = "N", help_heading = "Sampling")]
    pub particles: Option<u64>,
    /// Time steps from t-max down to 0; Δt = t-max / steps [default: 1000].
    #[arg(long, value_name = "N", help_heading = "Sampling")]
    pub steps: Option<usize>,
    /// Horizon T in forward-time units, where generation starts [default: 10].
    #[arg(long, value_name = "T", help_heading = "Sampling")]
    pub t_max: Option<f64>,
    /// Discretisation of the reverse dynamics [default: euler-maruyama].
    #[arg(long, value_enum, help_heading = "Sampling")]
    pub scheme: Option<Scheme>,
    /// Start distribution at t = T [default: exact].
    #[arg(long, value_enum, help_heading = "Sampling")]
    pub start: Option<Start>,

    /// Engine [default: auto = GPU if a Vulkan/Metal/DX12 adapter exists, else CPU].
    #[arg(long, value_enum, help_heading = "Engine")]
    pub backend: Option<Backend>,
    /// Pick the GPU adapter whose name contains this text (case-insensitive). Example: --adapter llvmpipe
    #[arg(long, value_name = "NAME", help_heading = "Engine")]
    pub adapter: Option<String>,
    /// Particles per engine batch [default: the largest the engine allows].
    #[arg(long, value_name = "N", help_heading = "Engine")]
    pub batch: Option<usize>,
    /// CPU worker threads [default: all cores]. Results do not depend on it.
    #[arg(long, value_name = "N", help_heading = "Engine")]
    pub threads: Option<usize>,
    /// Time steps fused into one GPU dispatch; lower it if the GPU watchdog resets the device
    /// [default: 50].
    #[arg(long, value_name = "N", help_heading = "Engine")]
    pub steps_per_dispatch: Option<usize>,

    /// Clone pairs per branch time for φ(t) [default: speciation 20000, collapse 500].
    #[arg(long, value_name = "N", help_heading = "Measurements")]
    pub pairs: Option<u64>,
    /// Branch times (forward time, in (0, t-max]), comma separated [default: a grid bracketing
    /// the theoretical t_S]. Example: --branch-times 0.5,1,1.5,2
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        help_heading = "Measurements"
    )]
    pub branch_times: Option<Vec<f64>>,
    /// Times of the excess-entropy measurement, comma separated [default: a grid bracketing the
    /// theoretical t_C].
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        help_heading = "Measurements"
    )]
    pub entropy_times: Option<Vec<f64>>,
    /// Times at which particle statistics are recorded, comma separated [default: a grid].
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        help_heading = "Measurements"
    )]
    pub record_times: Option<Vec<f64>>,
    /// Exact forward samples per entropy time [default: 2000].
    #[arg(long, value_name = "N", help_heading = "Measurements")]
    pub entropy_samples: Option<u64>,
    /// Also write the final samples as samples.npy (particles × d, f32) [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Measurements")]
    pub save_samples: Option<bool>,
}

impl ConfigArgs {
    /// preset (or defaults) ← TOML file ← flags, then [`Config::validate`].
    pub fn resolve(&self) -> Result<Config> {
        let mut c = match &self.preset {
            Some(name) => Config::preset(name)?,
            None => Config::default(),
        };
        let mut dim_given = self.dim.is_some() || self.preset.is_some();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            if let Ok(t) = toml::from_str::<toml::Table>(&text) {
                dim_given |= t.contains_key("dim");
            }
            c = c.overlay_toml(&text, &path.display().to_string())?;
        }
        self.apply(&mut c);
        // `diag:…` fixes d unless d was given explicitly.
        if let (false, Ok(USpec::Diag(v))) = (dim_given, c.u_spec()) {
            c.dim = v.len();
        }
        c.validate()?;
        Ok(c)
    }

    /// Set every field whose flag was given.
    pub fn apply(&self, c: &mut Config) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        macro_rules! set_opt {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = Some(v.clone()); } )* };
        }
        set!(
            dim,
            u,
            q,
            mean,
            sigma,
            n_train,
            seed,
            steps,
            t_max,
            scheme,
            start,
            backend,
            entropy_samples,
            steps_per_dispatch,
            save_samples
        );
        set_opt!(
            particles,
            pairs,
            q_lambdas,
            mean_norm2,
            mixture_file,
            train_file,
            adapter,
            branch_times,
            entropy_times,
            record_times,
            batch,
            threads
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        cfg: ConfigArgs,
    }

    fn cli(args: &[&str]) -> ConfigArgs {
        let mut v = vec!["regimes"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap().cfg
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regimes-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        for flag in Config::keys() {
            assert!(help.contains(&format!("--{flag}")), "no flag --{flag}");
        }
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
        assert_eq!((b.t_max, b.steps, b.sigma), (10.0, 1000, 1.0));
    }

    #[test]
    fn toml_round_trip() {
        let mut c = Config::preset("lu-tang").unwrap();
        c.branch_times = Some(vec![0.5, 1.25, 3.0]);
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

    #[test]
    fn each_validation_error_names_its_field() {
        type Case = (&'static str, Box<dyn Fn(&mut Config)>);
        let cases: Vec<Case> = vec![
            ("dim", Box::new(|c| c.dim = 0)),
            ("particles", Box::new(|c| c.particles = Some(0))),
            ("steps", Box::new(|c| c.steps = 0)),
            ("pairs", Box::new(|c| c.pairs = Some(0))),
            ("n-train", Box::new(|c| c.n_train = 0)),
            ("entropy-samples", Box::new(|c| c.entropy_samples = 0)),
            ("steps-per-dispatch", Box::new(|c| c.steps_per_dispatch = 0)),
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
                Box::new(|c| c.branch_times = Some(vec![1.0, 11.0])),
            ),
            (
                "branch-times",
                Box::new(|c| c.branch_times = Some(vec![0.0])),
            ),
            (
                "entropy-times",
                Box::new(|c| c.entropy_times = Some(vec![f64::NAN])),
            ),
            ("record-times", Box::new(|c| c.record_times = Some(vec![]))),
            ("u", Box::new(|c| c.u = "diag:1,2".into())),
            ("u", Box::new(|c| c.u = "eye".into())),
            ("q", Box::new(|c| c.q = "pair:0:16:1".into())),
            ("q", Box::new(|c| c.q = "optimal:nan".into())),
            ("mean", Box::new(|c| c.mean = "up".into())),
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

    #[test]
    fn flags_override_file_override_preset() {
        let d = scratch("override");
        let p = d.join("study.toml");
        std::fs::write(&p, "particles = 5000\nsteps = 300\nq = \"pair:0:1:-2\"\n").unwrap();
        let p_str = p.to_str().unwrap();
        let a = cli(&[
            "--preset",
            "lu-tang",
            "--config",
            p_str,
            "--steps",
            "700",
            "--q",
            "pair:0:1:-0.5",
            "--branch-times",
            "0.5,1,2",
            "--save-samples",
        ]);
        let c = a.resolve().unwrap();
        assert_eq!(c.u, "geomspace:0.2:5"); // preset
        assert_eq!(c.particles, Some(5000)); // file
        assert_eq!(c.steps, 700); // flag over file
        assert_eq!(c.q, "pair:0:1:-0.5"); // flag over file, negative value
        assert_eq!(c.branch_times, Some(vec![0.5, 1.0, 2.0]));
        assert!(c.save_samples);
        assert_eq!(c.q_spec().unwrap(), QSpec::Pair(0, 1, -0.5));
        let c = cli(&["--save-samples", "false"]).resolve().unwrap();
        assert!(!c.save_samples);
        // diag fixes d unless d is given.
        let c = cli(&["--u", "diag:1,2,3"]).resolve().unwrap();
        assert_eq!(c.dim, 3);
        assert!(cli(&["--u", "diag:1,2,3", "--dim", "4"]).resolve().is_err());
        // Bad spec flags fail at parse time, naming the flag.
        let mut v = vec!["regimes", "--u", "linspace:1"];
        let e = Cli::try_parse_from(&v).err().unwrap().to_string();
        assert!(e.contains("--u"), "{e}");
        v[2] = "linspace:1:2";
        assert!(Cli::try_parse_from(&v).is_ok());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_spec_form_parses() {
        use std::path::PathBuf as P;
        assert_eq!(parse_u("identity").unwrap(), USpec::Identity);
        assert_eq!(
            parse_u("diag:1,2.5,3e-1").unwrap(),
            USpec::Diag(vec![1.0, 2.5, 0.3])
        );
        assert_eq!(
            parse_u("linspace:0.5:2").unwrap(),
            USpec::Linspace(0.5, 2.0)
        );
        assert_eq!(
            parse_u("geomspace:0.2:5").unwrap(),
            USpec::Geomspace(0.2, 5.0)
        );
        assert_eq!(parse_u("rotated:1:10").unwrap(), USpec::Rotated(1.0, 10.0));
        assert_eq!(
            parse_u("file:C:/a:b.npy").unwrap(),
            USpec::File(P::from("C:/a:b.npy"))
        );
        assert_eq!(parse_q("zero").unwrap(), QSpec::Zero);
        assert_eq!(parse_q("optimal").unwrap(), QSpec::Optimal(1.0));
        assert_eq!(parse_q("optimal:0.5").unwrap(), QSpec::Optimal(0.5));
        assert_eq!(parse_q("pair:0:3:-1.5").unwrap(), QSpec::Pair(0, 3, -1.5));
        assert_eq!(parse_q("toward-soft:2").unwrap(), QSpec::TowardSoft(2.0));
        assert_eq!(parse_q("random:3").unwrap(), QSpec::Random(3.0));
        assert_eq!(
            parse_q("file:q.csv").unwrap(),
            QSpec::File(P::from("q.csv"))
        );
        assert_eq!(parse_mean("ones").unwrap(), MeanSpec::Ones);
        assert_eq!(parse_mean("stiff").unwrap(), MeanSpec::Stiff);
        assert_eq!(parse_mean("soft").unwrap(), MeanSpec::Soft);
        assert_eq!(parse_mean("random").unwrap(), MeanSpec::Random);
        assert_eq!(
            parse_mean("file:m.npy").unwrap(),
            MeanSpec::File(P::from("m.npy"))
        );
    }

    #[test]
    fn bad_specs_error_with_flag_and_forms() {
        for bad in [
            "",
            "eye",
            "identity:2",
            "diag:",
            "diag:1,,2",
            "diag:1,-2",
            "diag:1,nan",
            "linspace:1",
            "linspace:1:2:3",
            "geomspace:0:1",
            "rotated:1:inf",
            "file:",
        ] {
            let e = parse_u(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("u (--u)") && e.contains("geomspace:LO:HI"),
                "{bad}: {e}"
            );
        }
        for bad in [
            "one",
            "zero:1",
            "optimal:",
            "optimal:x",
            "optimal:NaN",
            "pair:0:1",
            "pair:1:1:2",
            "pair:-1:2:1",
            "toward-soft",
            "random:-1",
            "random:inf",
            "file",
        ] {
            let e = parse_q(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("q (--q)") && e.contains("pair:I:J:Q"),
                "{bad}: {e}"
            );
        }
        for bad in ["up", "ones:1", "file:", "Soft"] {
            let e = parse_mean(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("mean (--mean)") && e.contains("stiff"),
                "{bad}: {e}"
            );
        }
    }
}
