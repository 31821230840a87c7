//! The command-line flags of a study: one per [`Config`] field, plus `--preset` and `--config`.
//! Resolution is preset (or defaults) ← TOML file ← flags; d is inferred from the model's files
//! when no layer sets it.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Arg, ArgMatches, FromArgMatches};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::config::keys::KEYS;
use crate::study::request::Layers;

pub use crate::config::flag::count;

/// Command-line flags for every `Config` field (one per [`KEYS`] entry, with its help), plus
/// `--config` and `--preset`; unset flags leave the preset / file value in place. Each flag's
/// value is held as the JSON value of its key, so the flags overlay the config like a TOML
/// file.
#[derive(Clone, Debug, Default)]
pub struct ConfigArgs {
    /// Start from a named preset (`config::PRESETS`).
    pub preset: Option<String>,
    /// A TOML file with any of the keys.
    pub config: Option<PathBuf>,
    /// The keys given as flags, with their values.
    flags: Map<String, Value>,
}

impl clap::Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let cmd = cmd
            .arg(
                Arg::new("preset")
                    .long("preset")
                    .value_name("NAME")
                    .help_heading("Study")
                    // (`cli::lists` writes the presets into this help.)
                    .help("Start from a named preset. A --config file and flags apply on top"),
            )
            .arg(
                Arg::new("config")
                    .long("config")
                    .value_name("PATH")
                    .help_heading("Study")
                    .value_parser(clap::value_parser!(PathBuf))
                    .help(
                        "TOML file with any of these settings (keys are the flag names without \
                         '--', e.g. `particles = 1_000_000`); flags override it",
                    ),
            );
        KEYS.iter().fold(cmd, |cmd, k| cmd.arg(k.arg()))
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ConfigArgs {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut a = ConfigArgs::default();
        a.update_from_arg_matches(m)?;
        Ok(a)
    }

    /// Reads each key's flag back by its id: one value, or a list for a list key.
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        if let Ok(Some(p)) = m.try_get_one::<String>("preset") {
            self.preset = Some(p.clone());
        }
        if let Ok(Some(p)) = m.try_get_one::<PathBuf>("config") {
            self.config = Some(p.clone());
        }
        for k in KEYS {
            let Ok(Some(values)) = m.try_get_many::<Value>(k.id) else {
                continue;
            };
            let values: Vec<Value> = values.cloned().collect();
            let value = match k.arg().get_value_delimiter() {
                Some(_) => Value::Array(values),
                None => values.into_iter().next_back().unwrap_or(Value::Null),
            };
            self.flags.insert(k.name.to_string(), value);
        }
        Ok(())
    }
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
        self.layers().resolve_without(skip)
    }

    /// The layers these flags give: `--preset`, `--config` and the flags on top.
    pub fn layers(&self) -> Layers<'_> {
        Layers {
            preset: self.preset.as_deref(),
            file: self.config.as_deref(),
            keys: self.flags.clone(),
            source: "flags",
        }
    }

    /// Whether the flag of `key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.flags.contains_key(key)
    }

    /// The keys (kebab-case) given as flags.
    pub fn given(&self) -> Vec<String> {
        self.flags.keys().cloned().collect()
    }

    /// The keys the --config file sets.
    pub fn file_keys(&self) -> Vec<String> {
        self.layers().file_keys()
    }

    /// Set every field whose flag was given.
    pub fn apply(&self, c: Config) -> Result<Config> {
        c.overlay(self.flags.clone(), "flags")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{QSpec, USpec};
    use crate::plan::Steps;
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
        assert_eq!(
            c.branch_times,
            Some(crate::config::BranchTimes::At(vec![0.5, 1.0, 2.0]))
        );
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

    /// The flags are the keys of `KEYS`, each `--` + its name, and each reads back as the key.
    #[test]
    fn every_flag_is_a_config_key_and_back() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut flags: Vec<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| !["preset", "config", "help"].contains(l))
            .map(str::to_string)
            .collect();
        let mut keys = Config::keys();
        flags.sort();
        keys.sort();
        assert_eq!(flags, keys);
        // A list key read from two flags and a switch alone.
        let a = cli(&[
            "--record-times",
            "1,0.5",
            "--record-times",
            "0",
            "--save-samples",
        ]);
        let c = a.resolve().unwrap();
        assert_eq!(c.record_times, Some(vec![1.0, 0.5, 0.0]));
        assert!(c.save_samples && a.has("save-samples") && !a.has("dim"));
        let mut given = a.given();
        given.sort();
        assert_eq!(given, ["record-times", "save-samples"]);
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
