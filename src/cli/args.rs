//! The command-line flags of a study: one per [`Config`] field, plus `--preset` and `--config`.
//! Resolution is preset (or defaults) ← TOML file ← flags; d is inferred from the model's files
//! when no layer sets it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use crate::config::{Backend, BranchTimes, Config};
use crate::io::read_matrix;
use crate::model::coupling::{Coupling, Pairing};
use crate::model::{MeanSpec, QSpec, USpec};
use crate::plan::{Scheme, Spacing, Start, Steps};

// Command-line flags for every `Config` field, plus `--config` and `--preset`; unset flags leave
// the preset / file value in place. (A plain comment: a doc comment here would become the `about`
// text of whatever command flattens these flags.)
//
// Serialised (kebab-case, unset flags as null), the flags overlay the config like a TOML file.
#[derive(clap::Args, Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ConfigArgs {
    /// Start from a named preset (the help lists `config::PRESETS`). A --config file and flags
    /// apply on top.
    #[arg(long, value_name = "NAME", help_heading = "Study")]
    #[serde(skip)]
    pub preset: Option<String>,
    /// TOML file with any of these settings (keys are the flag names without '--', e.g.
    /// `particles = 1_000_000`); flags override it.
    #[arg(long, value_name = "PATH", help_heading = "Study")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Dimension d of the data [default: 16].
    #[arg(long, value_name = "D", help_heading = "Model")]
    pub dim: Option<usize>,
    /// Stationary precision U of the forward process [default: identity]. Forms: identity |
    /// diag:A,B,... (d values) | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI (geometric
    /// spectrum in a random basis) | file:PATH (.npy or CSV, d×d). Example: --u geomspace:0.2:5
    #[arg(
        long,
        value_name = "SPEC",
        allow_hyphen_values = true,
        help_heading = "Model"
    )]
    pub u: Option<USpec>,
    /// Antisymmetric Q breaking detailed balance; A = (I + Q) U [default: zero]. Forms: zero |
    /// optimal (reaches the gap Tr(U)/d) | optimal:SCALE | pair:I:J:Q (0-based, U's eigenbasis) |
    /// toward-soft:Q | random:FROB | file:PATH. Example: --q pair:0:15:-2.5
    #[arg(
        long,
        value_name = "SPEC",
        allow_hyphen_values = true,
        help_heading = "Model"
    )]
    pub q: Option<QSpec>,
    /// The distinct positive λ_k of the optimal-Q construction, d values, comma separated
    /// [default: 1,2,...,d]. Example: --q-lambdas 1,2,4,8
    #[arg(
        long,
        value_name = "L1,L2,...",
        value_delimiter = ',',
        value_parser = finite,
        help_heading = "Model"
    )]
    pub q_lambdas: Option<Vec<f64>>,
    /// Direction of the class mean m for the two classes ±m [default: ones]. Forms: ones | stiff
    /// (U's largest eigenvalue) | soft (smallest) | random | file:PATH (rescaled to --mean-norm2).
    #[arg(long, value_name = "SPEC", help_heading = "Model")]
    pub mean: Option<MeanSpec>,
    /// Squared norm ‖m‖² of the class mean [default: d, i.e. 1 per coordinate]. Example: --mean-norm2 4
    #[arg(long, value_name = "M2", value_parser = finite, help_heading = "Model")]
    pub mean_norm2: Option<f64>,
    /// Within-class standard deviation σ, covariance σ²I [default: 1].
    #[arg(long, value_name = "SIGMA", value_parser = finite, help_heading = "Model")]
    pub sigma: Option<f64>,
    /// An anisotropic shared within-class covariance C = σ²W, W in the forms of --u (identity |
    /// diag:… | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI | file:PATH) [default:
    /// identity]. Example: --within-cov geomspace:0.5:2
    #[arg(long, value_name = "SPEC", value_parser = within_cov_spec, help_heading = "Model")]
    pub within_cov: Option<USpec>,
    /// Couple two modalities x, y ∈ R^d (joint dimension 2d, x first). additive:G gives the joint
    /// precision [[1, −γ], [−γ, 1]] ⊗ U (stable for |γ| < 1; the common mode (x+y)/√2 relaxes at
    /// 1 − γ, the difference mode at 1 + γ); diffusive:G gives [[1+γ, −γ], [−γ, 1+γ]] ⊗ U
    /// (stable for γ > −½). G may change with time: step:G0,T1,G1,… (G0 until T1, then G1, …),
    /// ramp:G0,T1,G1,… (linear between the knots) or file:PATH (rows "t γ", a ramp).
    /// additive:features:G1,…,Gd sets one γ per feature (diagonal U); rotating:G,OMEGA adds the
    /// rotation Q = ω J ⊗ I between the modalities. Classes ±(m_x, m_y), see --pairing and
    /// --pair-angle; mixture and training files then hold 2d columns (x then y).
    /// Examples: --coupling additive:0.5, --coupling additive:step:0.2,1.5,0.6
    #[arg(
        long,
        value_name = "SPEC",
        allow_hyphen_values = true,
        help_heading = "Model"
    )]
    pub coupling: Option<Coupling>,
    /// With --coupling, how the classes of the two modalities go together [default: shared]:
    /// shared (paired data, classes ±(m_x, m_y)) or per-mode (the common and the difference mode
    /// each carry an independent label: four classes; each mode then speciates at its own t_S).
    #[arg(long, value_name = "HOW", help_heading = "Model")]
    pub pairing: Option<Pairing>,
    /// With --coupling, the angle between the class means m_x and m_y in degrees [default: 90,
    /// orthogonal; 0 aligned]. Both have the norm² --mean-norm2.
    #[arg(long, value_name = "DEGREES", value_parser = finite, help_heading = "Model")]
    pub pair_angle: Option<f64>,
    /// Gaussian mixture target from a file (.npy or CSV): K rows of 1 + d values, the weight then
    /// the mean; replaces the two classes ±m.
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub mixture_file: Option<PathBuf>,
    /// Number N of training points of the empirical target; set (here or in a config file),
    /// `run` samples N drawn points instead of the mixture [default: 1000 for collapse and t_C].
    #[arg(long, value_name = "N", value_parser = count::<usize>, help_heading = "Model")]
    pub n_train: Option<usize>,
    /// Training points from a file (.npy or CSV, N×d) instead of drawing them from the target.
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub train_file: Option<PathBuf>,
    /// Class labels of the --train-file points (.npy or CSV/text, N whole numbers): theory on
    /// the labelled data (between-class t_S), class-level cloning in speciation and collapse.
    #[arg(long, value_name = "PATH", help_heading = "Model")]
    pub train_labels: Option<PathBuf>,

    /// Seed of every random choice (particles, training set, random U/Q/mean) [default: 1].
    #[arg(long, value_name = "SEED", help_heading = "Sampling")]
    pub seed: Option<u64>,
    /// Number of generated particles [default: run 100000, collapse 2000]. Example: --particles 10000000 (fine on a GPU).
    #[arg(long, value_name = "N", value_parser = count::<u64>, help_heading = "Sampling")]
    pub particles: Option<u64>,
    /// Time steps from t-max down to 0; Δt = t-max / steps [default: 1000, or the default
    /// scheme's own grid when neither --scheme nor --grid is given]. `auto` picks them
    /// for an expected φ bias of at most 0.005 from the scheme's measured bias and the model's
    /// rotation ‖QU‖₂ (`regimes reproduce discretisation` measures it), and prints its choice.
    /// Example: --steps auto
    #[arg(long, value_name = "N|auto", value_parser = parse_steps, help_heading = "Sampling")]
    pub steps: Option<Steps>,
    /// Horizon T in forward-time units, where generation starts [default: 10].
    #[arg(long, value_name = "T", value_parser = finite, help_heading = "Sampling")]
    pub t_max: Option<f64>,
    /// Discretisation of the reverse dynamics [default: auto]. `auto` runs `exact` wherever it
    /// applies (every mixture and training set here): no discretisation bias at any Δt, so
    /// without --steps/--grid its grid is 20 nodes plus the study's own times (collapse: also
    /// Δt = T/1000 up to 8 t_C, to resolve t̂_C), about 10× faster than 1000 Euler–Maruyama
    /// steps; the summary records the scheme that ran. Example: --scheme euler-maruyama
    #[arg(long, value_enum, help_heading = "Sampling")]
    pub scheme: Option<Scheme>,
    /// Spacing of the time grid [default: uniform]: uniform | geometric:TMIN (--steps nodes
    /// geometric from t-max to TMIN, then 0: fine steps near t = 0) | nodes:T1,T2,... (exactly
    /// these). Branch, record and entropy times are always added as nodes. Example: --grid
    /// geometric:0.001
    #[arg(long, value_name = "SPACING", help_heading = "Sampling")]
    pub grid: Option<Spacing>,
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
    /// (the help states the measured default's target length).
    #[arg(long, value_name = "N", help_heading = "Engine")]
    pub steps_per_dispatch: Option<usize>,

    /// Clone pairs per branch time for φ(t) [default: speciation 20000, collapse 500].
    #[arg(long, value_name = "N", value_parser = count::<u64>, help_heading = "Measurements")]
    pub pairs: Option<u64>,
    /// Branch times (forward time, in (0, t-max]), comma separated [default: a grid bracketing
    /// the theoretical t_S]. `auto` (speciation): a coarse pass with an eighth of the pairs,
    /// then pairs of times closing in on φ's crossing of F(1), measured with all the pairs,
    /// until the bracket's interpolation error is below half the noise's part of t_S (at most 2
    /// rounds; not with --shard, --devices or --checkpoint-every). Example: --branch-times
    /// 0.5,1,1.5,2
    #[arg(
        long,
        value_name = "T1,T2,...|auto",
        value_parser = parse_branch_times,
        help_heading = "Measurements"
    )]
    pub branch_times: Option<BranchTimes>,
    /// Times of the excess-entropy measurement, comma separated [default: a grid bracketing the
    /// theoretical t_C].
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        value_parser = finite,
        help_heading = "Measurements"
    )]
    pub entropy_times: Option<Vec<f64>>,
    /// Times at which particle statistics are recorded, comma separated [default: a grid].
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        value_parser = finite,
        help_heading = "Measurements"
    )]
    pub record_times: Option<Vec<f64>>,
    /// Exact forward samples per entropy time [default: 2000].
    #[arg(long, value_name = "N", help_heading = "Measurements")]
    pub entropy_samples: Option<u64>,
    /// Also write the final samples as samples.npy (particles × d, f32) and their labels as
    /// labels.npy; for `run` with --record-times also the samples at each record time
    /// (samples_t{t}.npy, listed in snapshots.csv) [default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Measurements")]
    pub save_samples: Option<bool>,

    /// Figure size, WIDTHxHEIGHT in units of 1/96 inch (the SVG's size) [default: 860x540 plus
    /// a 240-wide legend column]. Example: --figure-size 1200x800
    #[arg(long, value_name = "WxH", value_parser = crate::report::parse_figure_size, help_heading = "Figures")]
    pub figure_size: Option<(u32, u32)>,
    /// PNG resolution in dots per inch: the PNG is figure-size × DPI / 96 pixels, laid out as
    /// the SVG [default: 96]. Example: --dpi 300
    #[arg(long, value_name = "DPI", help_heading = "Figures")]
    pub dpi: Option<u32>,
}

impl ConfigArgs {
    /// preset (or defaults) ← TOML file ← flags; d inferred from the model's files when no layer
    /// sets it; the training file fixes N; then [`Config::validate`].
    pub fn resolve(&self) -> Result<Config> {
        self.resolve_without(&[])
    }

    /// [`ConfigArgs::resolve`] with the --config file's `skip` keys left out (keys another
    /// layer reads, such as a sweep's `over`).
    pub fn resolve_without(&self, skip: &[&str]) -> Result<Config> {
        let mut c = match &self.preset {
            Some(name) => Config::preset(name)?,
            None => Config::default(),
        };
        let mut dim_given = self.dim.is_some() || c.dim != Config::default().dim;
        let mut grid_given = self.steps.is_some() || self.grid.is_some();
        if let Some(path) = &self.config {
            let mut text = crate::config::read_config_file(path)?;
            if !skip.is_empty()
                && let Ok(mut t) = toml::from_str::<toml::Table>(&text)
            {
                t.retain(|k, _| !skip.contains(&k));
                text = toml::to_string(&t)?;
            }
            if let Ok(t) = toml::from_str::<toml::Table>(&text) {
                dim_given |= t.contains_key("dim");
                grid_given |= t.contains_key("steps") || t.contains_key("grid");
            }
            c = c.overlay_toml(&text, &path.display().to_string())?;
        }
        c = self.apply(c)?;
        // The default scheme chooses its own grid unless steps or a grid are given (a preset's
        // steps are Euler–Maruyama's): see `study::scheme`.
        if c.scheme == Scheme::Auto && !grid_given {
            c.steps = Steps::Auto;
        }
        // The training file is read once here: its columns imply d, its rows fix N.
        let train_shape = match &c.train_file {
            Some(p) => {
                let m = read_matrix(p).context("train-file")?;
                Some((p.clone(), m.nrows(), m.ncols()))
            }
            None => None,
        };
        let read: Vec<(&Path, (usize, usize))> = train_shape
            .iter()
            .map(|(p, rows, cols)| (p.as_path(), (*rows, *cols)))
            .collect();
        let implied = c.implied_dims(&read)?;
        if let Some((first, d)) = implied.first() {
            if let Some((other, e)) = implied.iter().find(|(_, e)| e != d) {
                anyhow::bail!("{first} implies d = {d} but {other} implies d = {e}");
            }
            if !dim_given {
                c.dim = *d;
            }
        }
        if let Some((path, n, _)) = train_shape {
            if let Some(given) = c.n_train {
                ensure!(
                    n == given,
                    "n-train: {given} conflicts with train-file {}, which holds {n} points (omit \
                     n-train)",
                    path.display()
                );
            }
            c.n_train = Some(n);
        }
        c.validate()?;
        Ok(c)
    }

    /// The flags given, as config keys (kebab-case) and values.
    fn flags(&self) -> serde_json::Map<String, serde_json::Value> {
        let Ok(serde_json::Value::Object(mut flags)) = serde_json::to_value(self) else {
            unreachable!("flags serialise to an object")
        };
        flags.retain(|_, v| !v.is_null());
        flags
    }

    /// The keys (kebab-case) given as flags.
    pub fn given(&self) -> Vec<String> {
        self.flags().into_iter().map(|(k, _)| k).collect()
    }

    /// The keys the --config file sets.
    pub fn file_keys(&self) -> Vec<String> {
        self.config
            .as_deref()
            .and_then(|p| crate::config::read_config_file(p).ok())
            .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
            .map(|t| t.keys().filter(|k| *k != "over").cloned().collect())
            .unwrap_or_default()
    }

    /// Set every field whose flag was given.
    pub fn apply(&self, c: Config) -> Result<Config> {
        c.overlay(self.flags(), "flags")
    }
}

/// `--within-cov` reads like `--u`; its errors name it.
fn within_cov_spec(s: &str) -> std::result::Result<USpec, String> {
    crate::model::spec::parse_spd_spec("within-cov", "W is a covariance shape", s)
        .map_err(|e| e.to_string())
}

fn parse_branch_times(s: &str) -> std::result::Result<BranchTimes, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

fn parse_steps(s: &str) -> std::result::Result<Steps, String> {
    s.parse().map_err(|e: anyhow::Error| e.to_string())
}

/// A number flag: finite, so that it survives the JSON overlay (NaN would read as unset) and
/// bad values are refused at parse time, naming the flag.
/// A count: digits (`1000000`, `1_000_000`) or an exact whole number in scientific notation
/// (`1e6`, `2.5e3`), so `--n-train 1e12` reaches the check that states what it would cost.
pub fn count<T: TryFrom<u64>>(s: &str) -> std::result::Result<T, String> {
    let t = s.trim().replace('_', "");
    let n = match t.parse::<u64>() {
        Ok(n) => n,
        Err(_) => match t.parse::<f64>() {
            Ok(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => x as u64,
            Ok(_) => return Err(format!("'{s}' is not a whole number ≥ 0")),
            Err(_) => return Err(format!("'{s}' is not a whole number (e.g. 1000000 or 1e6)")),
        },
    };
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

fn finite(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("must be a finite number".into()),
        Err(e) => Err(e.to_string()),
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
        let d = std::env::temp_dir().join(format!("regimes-args-{}-{name}", std::process::id()));
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
        assert_eq!(c.u, USpec::Geomspace(0.2, 5.0)); // preset
        assert_eq!(c.particles, Some(5000)); // file
        assert_eq!(c.steps, Steps::Count(700)); // flag over file
        assert_eq!(c.q, QSpec::Pair(0, 1, -0.5)); // flag over file, negative value
        assert_eq!(c.branch_times, Some(BranchTimes::At(vec![0.5, 1.0, 2.0])));
        assert!(c.save_samples);
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
    fn every_flag_is_a_config_key_and_back() {
        let serde_json::Value::Object(flags) = serde_json::to_value(ConfigArgs::default()).unwrap()
        else {
            panic!("flags serialise to an object")
        };
        let mut flags: Vec<String> = flags.keys().cloned().collect();
        let mut keys = Config::keys();
        flags.sort();
        keys.sort();
        assert_eq!(flags, keys);
    }

    #[test]
    fn files_imply_d_and_the_training_file_fixes_n() {
        let d = scratch("implied");
        let train = d.join("train.csv");
        std::fs::write(&train, "1,2,3\n4,5,6\n").unwrap();
        let mean = d.join("mean.csv");
        std::fs::write(&mean, "1\n2\n3\n4\n").unwrap();
        let t = train.to_str().unwrap();
        let c = cli(&["--train-file", t]).resolve().unwrap();
        assert_eq!((c.dim, c.n_train), (3, Some(2)));
        // An explicit d that disagrees is refused later, by the model; an explicit N here.
        let e = cli(&["--train-file", t, "--n-train", "5"])
            .resolve()
            .unwrap_err();
        assert!(format!("{e:#}").contains("n-train: 5 conflicts"), "{e:#}");
        assert!(
            cli(&["--train-file", t, "--n-train", "2"])
                .resolve()
                .is_ok()
        );
        // Two sources that disagree are named.
        let m = format!("file:{}", mean.to_str().unwrap());
        let e = cli(&["--train-file", t, "--mean", &m])
            .resolve()
            .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("implies d = 4") && e.contains("implies d = 3"),
            "{e}"
        );
        // The within-class covariance's file implies d too.
        let w = d.join("w.csv");
        std::fs::write(&w, "2,0\n0,1\n").unwrap();
        let w = format!("file:{}", w.to_str().unwrap());
        assert_eq!(cli(&["--within-cov", &w]).resolve().unwrap().dim, 2);
        let e = cli(&["--within-cov", &w, "--train-file", t])
            .resolve()
            .unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("within-cov file") && e.contains("implies d = 2"),
            "{e}"
        );
        std::fs::remove_dir_all(d).unwrap();
    }
}
