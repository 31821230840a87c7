//! The fingerprint of a study: its canonical config (the keys of the sections that define a
//! study, [`crate::config::keys::Section::defines_study`]) with a digest of every file it reads,
//! hashed. Shards and checkpoints of one study share it; `merge` and `resume` refuse anything
//! else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::config::keys::defines_study;
use crate::digest::digest;

/// The keys of a study's config that say what it measures: its JSON without the engine and
/// figure sections (no file is read).
pub fn study_keys(cfg: &Config) -> BTreeMap<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(cfg) else {
        unreachable!("Config serialises to an object")
    };
    map.into_iter().filter(|(k, _)| defines_study(k)).collect()
}

/// The canonical config of a study: its [`study_keys`] and a digest of the contents of every
/// file it reads (`KEY (content)`), so that shards reading different data under one path do not
/// pass for one study.
fn canonical(cfg: &Config) -> BTreeMap<String, serde_json::Value> {
    let mut out = study_keys(cfg);
    for (key, path) in input_files(cfg) {
        let digest = crate::io::read_bounded(&path, crate::io::MAX_MATRIX_BYTES)
            .map_or_else(|e| format!("unreadable: {e}"), |b| digest(&b));
        out.insert(format!("{key} (content)"), digest.into());
    }
    out
}

/// Every file a study of `cfg` reads, with the key that names it (from the keys' declaration:
/// [`Config::input_files`]).
pub fn input_files(cfg: &Config) -> Vec<(&'static str, PathBuf)> {
    cfg.input_files()
        .into_iter()
        .map(|(k, p): (&'static str, &Path)| (k, p.to_path_buf()))
        .collect()
}

/// The digest of the command and the canonical config.
pub fn config_hash(command: &str, cfg: &Config) -> String {
    let text = format!(
        "{command}\n{}",
        serde_json::to_string(&canonical(cfg)).unwrap_or_default()
    );
    digest(text.as_bytes())
}

/// The key of a file's own checksum.
const CHECKSUM: &str = "checksum";

/// `value` (a JSON object) with its checksum: the digest of its compact JSON without the
/// checksum key (keys sorted), so that an edited shard or checkpoint file is told from the one
/// written.
pub fn seal(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(map) = value.as_object_mut() {
        map.remove(CHECKSUM);
        let sum = digest(serde_json::to_string(&map).unwrap_or_default().as_bytes());
        map.insert(CHECKSUM.into(), sum.into());
    }
    value
}

/// Checks the checksum [`seal`] wrote; `what` names the file in the error.
pub fn check_seal(value: &serde_json::Value, what: &str) -> anyhow::Result<()> {
    let Some(map) = value.as_object() else {
        anyhow::bail!("{what}: not a JSON object");
    };
    let Some(recorded) = map.get(CHECKSUM).and_then(|v| v.as_str()) else {
        anyhow::bail!("{what}: has no checksum (written by an older regimes, or edited)");
    };
    anyhow::ensure!(
        !crate::digest::is_legacy(recorded),
        "{what}: sealed by an older regimes (before BLAKE3 digests); this version cannot check \
         it: run that part again"
    );
    let mut rest = map.clone();
    rest.remove(CHECKSUM);
    let sum = digest(serde_json::to_string(&rest).unwrap_or_default().as_bytes());
    anyhow::ensure!(
        sum == recorded,
        "{what}: its contents do not match its checksum (edited or damaged after it was written; \
         run that part again)"
    );
    Ok(())
}

/// The config keys on which two studies differ (engine keys aside).
pub fn differing_keys(a: &Config, b: &Config) -> Vec<String> {
    let (a, b) = (canonical(a), canonical(b));
    a.keys()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_sealed_file_edited_anywhere_fails_its_check() {
        let v = seal(serde_json::json!({"done": 3, "tally": [1, 2], "seed": 7}));
        check_seal(&v, "shard.json").unwrap();
        let mut edited = v.clone();
        edited["tally"][1] = 3.into();
        assert!(check_seal(&edited, "shard.json").is_err());
        let mut bare = v.clone();
        bare.as_object_mut().unwrap().remove("checksum");
        let e = check_seal(&bare, "shard.json").unwrap_err().to_string();
        assert!(e.contains("shard.json") && e.contains("no checksum"), "{e}");
        // Sealing twice gives the same file.
        assert_eq!(seal(v.clone()), v);
        // A file sealed by an older regimes (a 16-digit FNV-1a checksum) is refused as such.
        let mut old = v.clone();
        old["checksum"] = "0123456789abcdef".into();
        let e = check_seal(&old, "shard.json").unwrap_err().to_string();
        assert!(e.contains("older regimes"), "{e}");
    }

    #[test]
    fn the_hash_ignores_engine_keys_only() {
        let a = Config::default();
        let mut b = a.clone();
        b.threads = Some(1);
        b.batch = Some(4096);
        b.backend = crate::config::Backend::Cpu;
        assert_eq!(config_hash("run", &a), config_hash("run", &b));
        assert_ne!(config_hash("run", &a), config_hash("speciation", &a));
        b.seed = 2;
        assert_ne!(config_hash("run", &a), config_hash("run", &b));
        assert_eq!(differing_keys(&a, &b), ["seed"]);
        // A file read under the same path with other contents is another study.
        let dir = std::env::temp_dir().join(format!("regimes-hash-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let train = dir.join("train.csv");
        fs::write(&train, "1,2\n3,4\n").unwrap();
        let mut c = a.clone();
        c.train_file = Some(train.clone());
        let before = config_hash("collapse", &c);
        assert_eq!(before, config_hash("collapse", &c));
        fs::write(&train, "1,2\n3,5\n").unwrap();
        assert_ne!(before, config_hash("collapse", &c));
        // So is a coupling schedule read from a file.
        let schedule = dir.join("gamma.csv");
        fs::write(&schedule, "0,0.5\n2,0.2\n").unwrap();
        let mut s = a.clone();
        s.coupling = Some(
            format!("additive:file:{}", schedule.display())
                .parse()
                .unwrap(),
        );
        let before = config_hash("speciation", &s);
        fs::write(&schedule, "0,0.5\n2,0.3\n").unwrap();
        assert_ne!(before, config_hash("speciation", &s));
        fs::remove_dir_all(dir).unwrap();
    }
}
