//! The fingerprint of a study: its canonical config (engine keys aside) with a digest of every
//! file it reads, hashed. Shards and checkpoints of one study share it; `merge` and `resume`
//! refuse anything else.

use std::collections::BTreeMap;
use std::fs;

use super::keys::ENGINE_KEYS;
use crate::config::Config;

/// The canonical config of a study: its JSON with the engine keys left out, and a digest of the
/// contents of every file it reads (`KEY (content)`), so that shards reading different data
/// under one path do not pass for one study.
fn canonical(cfg: &Config) -> BTreeMap<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(cfg) else {
        unreachable!("Config serialises to an object")
    };
    let mut out: BTreeMap<String, serde_json::Value> = map
        .into_iter()
        .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
        .collect();
    let files = [
        ("u", cfg.u.file()),
        ("q", cfg.q.file()),
        ("mean", cfg.mean.file()),
        ("mixture-file", cfg.mixture_file.as_ref()),
        ("train-file", cfg.train_file.as_ref()),
    ];
    for (key, path) in files {
        if let Some(p) = path {
            let digest = fs::read(p).map_or_else(|e| format!("unreadable: {e}"), |b| fnv1a(&b));
            out.insert(format!("{key} (content)"), digest.into());
        }
    }
    out
}

/// FNV-1a, 64 bits, in hex.
fn fnv1a(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// FNV-1a of the command and the canonical config.
pub fn config_hash(command: &str, cfg: &Config) -> String {
    let text = format!(
        "{command}\n{}",
        serde_json::to_string(&canonical(cfg)).unwrap_or_default()
    );
    fnv1a(text.as_bytes())
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
        fs::remove_dir_all(dir).unwrap();
    }
}
