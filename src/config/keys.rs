//! Every config key, declared once: its field and default in [`Config`], its section (what it
//! is about), the file its value may name and how that file's shape implies the dimension d, its
//! flag and the flag's help. The struct, its defaults, the flags (`cli::args`), the fingerprint
//! (the sections that define a study), what each study reads (the studies' `READS` lists), the
//! files a study reads and the dimensions they imply all follow from this one table, so adding a
//! key is one declaration here plus the code that uses it.

use std::path::{Path, PathBuf};

use clap::builder::{PathBufValueParser, StringValueParser};
use clap::{Arg, value_parser};
use serde::{Deserialize, Serialize};

use super::flag::{choice, numbers, parsed, spec, switch, typed, whole, with};
use super::{Backend, BranchTimes};
use crate::model::coupling::{Coupling, Pairing};
use crate::model::{MeanSpec, QSpec, USpec};
use crate::plan::{Scheme, Spacing, Start, Steps};

/// What a key is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The forward process and the target mixture.
    Model,
    /// The empirical target's training points.
    Target,
    /// How generation samples: seed, particles, steps, time grid, scheme, start.
    Sampling,
    /// What is measured, and when.
    Measurement,
    /// How a study runs, not what it measures.
    Engine,
    /// How figures are drawn, not what they show.
    Figure,
}

impl Section {
    /// Whether the section's keys define the study (and so its fingerprint): shards and
    /// checkpoints that differ only in engine or figure keys belong to the same study.
    pub const fn defines_study(self) -> bool {
        !matches!(self, Section::Engine | Section::Figure)
    }

    /// The heading of its flags in `--help` (the target's keys sit with the model's).
    pub const fn heading(self) -> &'static str {
        match self {
            Section::Model | Section::Target => "Model",
            Section::Sampling => "Sampling",
            Section::Measurement => "Measurements",
            Section::Engine => "Engine",
            Section::Figure => "Figures",
        }
    }
}

/// How a file named by a key implies d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// It does not (a schedule, labels).
    None,
    /// A d × d matrix: its rows.
    Rows,
    /// d values.
    Len,
    /// Rows of `skip` + d values (a mixture's weight, then its mean); with coupled modalities
    /// the rows hold the pair (x, y), 2d values.
    Columns { skip: usize },
}

/// The file a key's value names, if any.
pub type FileOf = fn(&Config) -> Option<&Path>;

/// One config key (kebab-case, as in TOML, flags and summary.json).
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    /// The field's name, the id of its flag.
    pub id: &'static str,
    pub section: Section,
    /// The file its value names (`file:PATH` specs and path keys).
    pub file: FileOf,
    pub shape: Shape,
    /// The flag's help (its `--help` line, and the field's doc).
    pub help: &'static str,
    /// The flag's value: its name in the help and its parser (see [`super::flag`]).
    pub flag: fn(Arg) -> Arg,
}

impl Key {
    /// The key's command-line flag, `--name`, under its section's heading; its value is the
    /// key's JSON value, read back into [`Config`] by the config overlay.
    pub fn arg(&self) -> Arg {
        // One sentence ends without a period in clap's help, as derived flags do.
        let help = match self.help.ends_with("..") {
            true => self.help,
            false => self.help.strip_suffix('.').unwrap_or(self.help),
        };
        let arg = Arg::new(self.id)
            .long(self.name)
            .help(help)
            .help_heading(self.section.heading());
        (self.flag)(arg)
    }
}

/// A keyword as front ends document it (the Python package's docstrings): read from its
/// flag, so that the help, the value's name and its choices are the command line's.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    /// Kebab-case, as the flag without `--`.
    pub name: String,
    pub takes: Takes,
    /// The heading it is listed under.
    pub heading: String,
    pub help: String,
}

/// What a keyword takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Takes {
    /// A switch: given alone, it is on.
    Switch,
    /// A value: its name in the help (`T1,T2,...|auto`), and the values it may be where it
    /// names them (a choice; empty otherwise).
    Value { name: String, choices: Vec<String> },
}

impl Doc {
    /// The documentation of a long flag (under `heading` where it has none of its own).
    pub fn of(arg: &Arg, heading: &str) -> Doc {
        let switch = !arg.get_action().takes_values()
            || arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        let takes = match switch {
            true => Takes::Switch,
            false => Takes::Value {
                name: arg
                    .get_value_names()
                    .map(|v| v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" "))
                    .unwrap_or_else(|| arg.get_id().as_str().to_uppercase()),
                choices: arg
                    .get_possible_values()
                    .iter()
                    .filter(|v| !v.is_hide_set())
                    .map(|v| v.get_name().to_string())
                    .collect(),
            },
        };
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        // A default clap states beside the help (the keys state theirs in the help).
        let defaults: Vec<_> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy())
            .collect();
        if !defaults.is_empty() && !matches!(takes, Takes::Switch) {
            help = format!("{help} [default: {}]", defaults.join(","));
        }
        Doc {
            name: arg.get_long().unwrap_or(arg.get_id().as_str()).to_string(),
            takes,
            heading: arg.get_help_heading().unwrap_or(heading).to_string(),
            help,
        }
    }
}

fn no_file(_: &Config) -> Option<&Path> {
    None
}

/// Declares the keys: each is `"name" field: Type = default, Section [file(FILE_OF, SHAPE)],
/// FLAG, "help";`, with optional doc lines above for the field alone. Expands to [`Config`], its
/// `Default` and [`KEYS`].
macro_rules! declare_keys {
    (@file) => { no_file };
    (@file $f:expr) => { $f };
    (@shape) => { Shape::None };
    (@shape $s:expr) => { $s };
    ($(
        $(#[doc = $doc:literal])*
        $name:literal $field:ident: $ty:ty = $default:expr,
        $section:ident $(file($file:expr, $shape:expr))?, $flag:expr,
        $help:literal;
    )*) => {
        /// Everything a study needs, resolved. Field names are the TOML keys and (with `--`)
        /// the flags; each is declared in [`KEYS`] (`config::keys`).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Config {
            $(
                #[doc = $help]
                #[doc = ""]
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for Config {
            fn default() -> Self {
                Config { $($field: $default,)* }
            }
        }

        /// Every key of [`Config`], in the order of its fields.
        pub const KEYS: &[Key] = &[$(
            Key {
                name: $name,
                id: stringify!($field),
                section: Section::$section,
                file: declare_keys!(@file $($file)?),
                shape: declare_keys!(@shape $($shape)?),
                help: $help,
                flag: $flag,
            },
        )*];
    };
}

declare_keys! {
    "dim" dim: usize = 16,
    Model, |a| a.value_name("D").value_parser(parsed::<usize>()),
    "Dimension d of the data [default: 16].";

    /// See [`USpec`].
    "u" u: USpec = USpec::Identity,
    Model file(|c| c.u.file().map(|p| p.as_path()), Shape::Rows), spec::<USpec>,
    "Stationary precision U of the forward process [default: identity]. Forms: identity | \
     diag:A,B,... (d values) | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI (geometric \
     spectrum in a random basis) | file:PATH (.npy or CSV, d×d). Example: --u geomspace:0.2:5";

    /// See [`QSpec`].
    "q" q: QSpec = QSpec::Zero,
    Model file(|c| c.q.file().map(|p| p.as_path()), Shape::Rows), spec::<QSpec>,
    "Antisymmetric Q breaking detailed balance; A = (I + Q) U [default: zero]. Forms: zero | \
     optimal (reaches the gap Tr(U)/d) | optimal:SCALE | pair:I:J:Q (0-based, U's eigenbasis) | \
     toward-soft:Q | random:FROB | file:PATH. Example: --q pair:0:15:-2.5";

    /// (docs/mathematics.md §6.2); None = 1, 2, …, d.
    "q-lambdas" q_lambdas: Option<Vec<f64>> = None,
    Model, |a| numbers(a.value_name("L1,L2,...")),
    "The distinct positive λ_k of the optimal-Q construction, d values, comma separated \
     [default: 1,2,...,d]. Example: --q-lambdas 1,2,4,8";

    /// See [`MeanSpec`].
    "mean" mean: MeanSpec = MeanSpec::Ones,
    Model file(|c| c.mean.file().map(|p| p.as_path()), Shape::Len),
    |a| a.value_name("SPEC").value_parser(parsed::<MeanSpec>()),
    "Direction of the class mean m for the two classes ±m [default: ones]. Forms: ones | stiff \
     (U's largest eigenvalue) | soft (smallest) | random | file:PATH (rescaled to --mean-norm2).";

    /// None = d (per-coordinate 1).
    "mean-norm2" mean_norm2: Option<f64> = None,
    Model, |a| a.value_name("M2").value_parser(with(super::flag::finite)),
    "Squared norm ‖m‖² of the class mean [default: d, i.e. 1 per coordinate]. Example: \
     --mean-norm2 4";

    /// C = σ² I, or σ² W with `within_cov`.
    "sigma" sigma: f64 = 1.0,
    Model, |a| a.value_name("SIGMA").value_parser(with(super::flag::finite)),
    "Within-class standard deviation σ, covariance σ²I [default: 1].";

    /// None = the identity.
    "within-cov" within_cov: Option<USpec> = None,
    Model file(|c| c.within_cov.as_ref()?.file().map(|p| p.as_path()), Shape::Rows),
    |a| a.value_name("SPEC").value_parser(with(super::flag::within_cov_spec)),
    "An anisotropic shared within-class covariance C = σ²W, W in the forms of --u (identity | \
     diag:… | linspace:LO:HI | geomspace:LO:HI | rotated:LO:HI | file:PATH) [default: \
     identity]. Example: --within-cov geomspace:0.5:2";

    /// Two coupled modalities of dimension d each (joint dimension 2d); None = one modality.
    "coupling" coupling: Option<Coupling> = None,
    Model file(
        |c| c.coupling.as_ref()?.schedule()?.file.as_deref().map(Path::new),
        Shape::None
    ),
    spec::<Coupling>,
    "Couple two modalities x, y ∈ R^d (joint dimension 2d, x first). additive:G gives the joint \
     precision [[1, −γ], [−γ, 1]] ⊗ U (stable for |γ| < 1; the common mode (x+y)/√2 relaxes at \
     1 − γ, the difference mode at 1 + γ); diffusive:G gives [[1+γ, −γ], [−γ, 1+γ]] ⊗ U \
     (stable for γ > −½). G may change with time: step:G0,T1,G1,… (G0 until T1, then G1, …), \
     ramp:G0,T1,G1,… (linear between the knots) or file:PATH (rows \"t γ\", a ramp). \
     additive:features:G1,…,Gd sets one γ per feature (diagonal U); rotating:G,OMEGA adds the \
     rotation Q = ω J ⊗ I between the modalities. Classes ±(m_x, m_y), see --pairing and \
     --pair-angle; mixture and training files then hold 2d columns (x then y). Examples: \
     --coupling additive:0.5, --coupling additive:step:0.2,1.5,0.6";

    "pairing" pairing: Pairing = Pairing::Shared,
    Model, |a| a.value_name("HOW").value_parser(choice::<Pairing>()),
    "With --coupling, how the classes of the two modalities go together [default: shared]: \
     shared (paired data, classes ±(m_x, m_y)) or per-mode (the common and the difference mode \
     each carry an independent label: four classes; each mode then speciates at its own t_S).";

    "pair-angle" pair_angle: f64 = 90.0,
    Model, |a| a.value_name("DEGREES").value_parser(with(super::flag::finite)),
    "With --coupling, the angle between the class means m_x and m_y in degrees [default: 90, \
     orthogonal; 0 aligned]. Both have the norm² --mean-norm2.";

    "mixture-file" mixture_file: Option<PathBuf> = None,
    Model file(|c| c.mixture_file.as_deref(), Shape::Columns { skip: 1 }),
    |a| a.value_name("PATH").value_parser(typed(PathBufValueParser::new())),
    "Gaussian mixture target from a file (.npy or CSV): K rows of 1 + d values, the weight then \
     the mean; replaces the two classes ±m.";

    /// None = `run` samples the mixture, and N = [`super::DEFAULT_N_TRAIN`] where a study needs
    /// one.
    "n-train" n_train: Option<usize> = None,
    Target, |a| a.value_name("N").value_parser(whole::<usize>()),
    "Number N of training points of the empirical target; set (here or in a config file), `run` \
     samples N drawn points instead of the mixture [default: 1000 for collapse and t_C].";

    "train-file" train_file: Option<PathBuf> = None,
    Target file(|c| c.train_file.as_deref(), Shape::Columns { skip: 0 }),
    |a| a.value_name("PATH").value_parser(typed(PathBufValueParser::new())),
    "Training points from a file (.npy or CSV, N×d) instead of drawing them from the target.";

    "train-labels" train_labels: Option<PathBuf> = None,
    Target file(|c| c.train_labels.as_deref(), Shape::None),
    |a| a.value_name("PATH").value_parser(typed(PathBufValueParser::new())),
    "Class labels of the --train-file points (.npy or CSV/text, N whole numbers): theory on the \
     labelled data (between-class t_S), class-level cloning in speciation and collapse.";

    "seed" seed: u64 = 1,
    Sampling, |a| a.value_name("SEED").value_parser(typed(value_parser!(u64))),
    "Seed of every random choice (particles, training set, random U/Q/mean) [default: 1].";

    /// None = the command's default.
    "particles" particles: Option<u64> = None,
    Sampling, |a| a.value_name("N").value_parser(whole::<u64>()),
    "Number of generated particles [default: run 100000, collapse 2000]. Example: --particles \
     10000000 (fine on a GPU).";

    /// `auto` is chosen for the scheme and model: see `study::auto_steps`.
    "steps" steps: Steps = Steps::Count(1000),
    Sampling, |a| a.value_name("N|auto").value_parser(with(super::flag::steps)),
    "Time steps from t-max down to 0; Δt = t-max / steps [default: 1000, or the default scheme's \
     own grid when neither --scheme nor --grid is given]. `auto` picks them for an expected φ \
     bias of at most 0.005 from the scheme's measured bias and the model's rotation ‖QU‖₂ \
     (`regimes reproduce discretisation` measures it), and prints its choice. Example: --steps \
     auto";

    "t-max" t_max: f64 = 10.0,
    Sampling, |a| a.value_name("T").value_parser(with(super::flag::finite)),
    "Horizon T in forward-time units, where generation starts [default: 10].";

    "scheme" scheme: Scheme = Scheme::Auto,
    Sampling, |a| a.value_name("SCHEME").value_parser(choice::<Scheme>()),
    "Discretisation of the reverse dynamics [default: auto]. `auto` runs `exact` wherever it \
     applies (every mixture and training set here): no discretisation bias at any Δt, so \
     without --steps/--grid its grid is 20 nodes plus the study's own times (collapse: also \
     Δt = T/1000 up to 2 t_C, to resolve t̂_C, each trajectory drawing its training point \
     once and then evaluating only its label), about 10× faster than 1000 Euler–Maruyama \
     steps; the summary records the scheme that ran. Example: --scheme euler-maruyama";

    /// The study's branch, record and entropy times are added as nodes.
    "grid" grid: Spacing = Spacing::Uniform,
    Sampling, |a| a.value_name("SPACING").value_parser(parsed::<Spacing>()),
    "Spacing of the time grid [default: uniform]: uniform | geometric:TMIN (--steps nodes \
     geometric from t-max to TMIN, then 0: fine steps near t = 0) | nodes:T1,T2,... (exactly \
     these). Branch, record and entropy times are always added as nodes. Example: --grid \
     geometric:0.001";

    "start" start: Start = Start::Exact,
    Sampling, |a| a.value_name("START").value_parser(choice::<Start>()),
    "Start distribution at t = T [default: exact].";

    "backend" backend: Backend = Backend::Auto,
    Engine, |a| a.value_name("BACKEND").value_parser(choice::<Backend>()),
    "Engine [default: auto = GPU if a Vulkan/Metal/DX12 adapter exists, else CPU].";

    /// A substring of the GPU adapter's name.
    "adapter" adapter: Option<String> = None,
    Engine, |a| a.value_name("NAME").value_parser(typed(StringValueParser::new())),
    "Pick the GPU adapter whose name contains this text (case-insensitive). Example: --adapter \
     llvmpipe";

    /// None = the command's default.
    "pairs" pairs: Option<u64> = None,
    Measurement, |a| a.value_name("N").value_parser(whole::<u64>()),
    "Clone pairs per branch time for φ(t) [default: speciation 20000, collapse 500].";

    /// None = a grid bracketing the theoretical t_S; `auto` = refined around the measured t_S.
    "branch-times" branch_times: Option<BranchTimes> = None,
    Measurement, |a| a.value_name("T1,T2,...|auto").value_parser(parsed::<BranchTimes>()),
    "Branch times (forward time, in (0, t-max]), comma separated [default: a grid bracketing \
     the theoretical t_S]. `auto` (speciation): a coarse pass with an eighth of the pairs, then \
     pairs of times closing in on φ's crossing of F(1), measured with all the pairs, until the \
     bracket's interpolation error is below half the noise's part of t_S (at most 2 rounds; not \
     with --shard, --devices or --checkpoint-every). Example: --branch-times 0.5,1,1.5,2";

    "entropy-times" entropy_times: Option<Vec<f64>> = None,
    Measurement, |a| numbers(a.value_name("T1,T2,...")),
    "Times of the excess-entropy measurement, comma separated [default: a grid bracketing the \
     theoretical t_C].";

    "record-times" record_times: Option<Vec<f64>> = None,
    Measurement, |a| numbers(a.value_name("T1,T2,...")),
    "Times at which particle statistics are recorded, comma separated [default: a grid].";

    "entropy-samples" entropy_samples: u64 = 2000,
    Measurement, |a| a.value_name("N").value_parser(typed(value_parser!(u64))),
    "Exact forward samples per entropy time [default: 2000].";

    /// None = as large as the engine allows.
    "batch" batch: Option<usize> = None,
    Engine, |a| a.value_name("N").value_parser(parsed::<usize>()),
    "Particles per engine batch [default: the largest the engine allows].";

    /// None = all cores.
    "threads" threads: Option<usize> = None,
    Engine, |a| a.value_name("N").value_parser(parsed::<usize>()),
    "CPU worker threads [default: all cores]. Results do not depend on it.";

    /// Keeps dispatches short for the watchdog. None = measured per plan shape so that a
    /// dispatch lasts at most about 0.25 s.
    "steps-per-dispatch" steps_per_dispatch: Option<usize> = None,
    Engine, |a| a.value_name("N").value_parser(parsed::<usize>()),
    "Time steps fused into one GPU dispatch; lower it if the GPU watchdog resets the device \
     [default: measured per plan shape, so that a dispatch stays well under the OS watchdogs' \
     ~1 s].";

    "save-samples" save_samples: bool = false,
    Measurement, switch,
    "Also write the final samples as samples.npy (particles × d, f32) and their labels as \
     labels.npy; for `run` with --record-times also the samples at each record time \
     (samples_t{t}.npy, listed in snapshots.csv) [default: false].";

    /// [width, height]; None = 860 × 540 plus a legend column.
    "figure-size" figure_size: Option<(u32, u32)> = None,
    Figure, |a| a.value_name("WxH").value_parser(with(crate::report::parse_figure_size)),
    "Figure size, WIDTHxHEIGHT in units of 1/96 inch (the SVG's size) [default: 860x540 plus a \
     240-wide legend column]. Example: --figure-size 1200x800";

    "dpi" dpi: u32 = 96,
    Figure, |a| a.value_name("DPI").value_parser(typed(value_parser!(u32))),
    "PNG resolution in dots per inch: the PNG is figure-size × DPI / 96 pixels, laid out as the \
     SVG [default: 96]. Example: --dpi 300";
}

/// The declaration of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a key that defines the study (not an engine or figure key; unknown names
/// do not).
pub fn defines_study(name: &str) -> bool {
    find(name).is_some_and(|k| k.section.defines_study())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field of `Config` is declared once, and nothing else is.
    #[test]
    fn every_config_key_is_declared_once() {
        let mut declared: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut fields = Config::keys();
        declared.sort_unstable();
        for w in declared.windows(2) {
            assert_ne!(w[0], w[1], "'{}' is declared twice", w[0]);
        }
        fields.sort();
        for f in &fields {
            assert!(
                declared.contains(&f.as_str()),
                "config key '{f}' is not declared in config::keys::KEYS"
            );
        }
        assert_eq!(declared, fields, "KEYS declares a key Config does not have");
    }
}
