//! Config layers read from TOML (a `--config` file) and JSON key maps (flags, sweep points):
//! each key set on top of the config below it, unknown keys refused with the closest known one.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use super::Config;

/// The text of a config file (at most [`crate::io::MAX_CONFIG_BYTES`], UTF-8).
pub fn read_config_file(path: &Path) -> Result<String> {
    let bytes = crate::io::read_bounded(path, crate::io::MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|e| anyhow!("config file {}: not UTF-8 text ({e})", path.display()))
}

impl Config {
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
    use std::path::PathBuf;

    use super::*;
    use crate::config::{Backend, BranchTimes};
    use crate::plan::Scheme;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regimes-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
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
        let e = Config::from_toml_str("scheme = \"leapfrog\"\n")
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
}
