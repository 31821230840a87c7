//! `shard.json`: the mergeable accumulators of one slice of a study (`--shard I/N`), with the
//! study's config and fingerprint, and the checks `merge` makes before folding shards.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};

use super::Parts;
use super::fingerprint::{config_hash, differing_keys};
use crate::config::Config;
use crate::measure::Shard;

/// The file a shard writes into its `--out` directory.
pub const SHARD_FILE: &str = "shard.json";

/// Version of the shard and checkpoint formats.
pub const FORMAT: u32 = 1;

/// `shard.json`: one slice of a study, ready to merge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub format: u32,
    pub command: String,
    pub shard: Shard,
    pub config_hash: String,
    pub config: Config,
    pub empirical: bool,
    pub backend: String,
    pub wall_seconds: f64,
    #[serde(flatten)]
    pub parts: Parts,
}

impl ShardFile {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        command: &str,
        shard: Shard,
        cfg: &Config,
        empirical: bool,
        backend: &str,
        wall_seconds: f64,
        parts: Parts,
    ) -> Self {
        ShardFile {
            format: FORMAT,
            command: command.to_string(),
            shard,
            config_hash: config_hash(command, cfg),
            config: cfg.clone(),
            empirical,
            backend: backend.to_string(),
            wall_seconds,
            parts,
        }
    }

    /// Reads `dir/shard.json`, naming the directory in every error.
    pub fn read(dir: &Path) -> Result<ShardFile> {
        let path = dir.join(SHARD_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            anyhow!(
                "{}: no readable {SHARD_FILE} ({e}); a shard writes it when it completes \
                 (run with --shard I/N --out DIR, or resume it with `regimes resume {}`)",
                dir.display(),
                dir.display()
            )
        })?;
        let f: ShardFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: {SHARD_FILE} is not a shard file", path.display()))?;
        ensure!(
            f.format == FORMAT,
            "{}: shard format {} (this regimes reads {FORMAT})",
            path.display(),
            f.format
        );
        Ok(f)
    }
}

/// Checks that `shards` are the slices 0..N of one study, each once, and sorts them by index.
/// Refusals name the directories at fault.
pub fn check_shards(shards: &mut [(PathBuf, ShardFile)]) -> Result<()> {
    ensure!(!shards.is_empty(), "merge: give the shard directories");
    let (first_dir, first) = (shards[0].0.clone(), shards[0].1.clone());
    for (dir, f) in shards.iter() {
        ensure!(
            f.command == first.command,
            "{} is a shard of `{}` but {} is a shard of `{}`: they are different studies",
            dir.display(),
            f.command,
            first_dir.display(),
            first.command
        );
        if f.config_hash != first.config_hash {
            let keys = differing_keys(&first.config, &f.config);
            bail!(
                "{} is a shard of a different study than {} (config hash {} ≠ {}; differing \
                 settings: {})",
                dir.display(),
                first_dir.display(),
                f.config_hash,
                first.config_hash,
                if keys.is_empty() {
                    "none; the files they read (u, q, mean, mixture or training file) differ in \
                     content, or they come from different versions of regimes"
                        .to_string()
                } else {
                    keys.join(", ")
                }
            );
        }
        ensure!(
            f.shard.count == first.shard.count,
            "{} is shard {} but {} is shard {}: the study was split in different ways",
            dir.display(),
            f.shard,
            first_dir.display(),
            first.shard
        );
    }
    shards.sort_by_key(|(_, f)| f.shard.index);
    for w in shards.windows(2) {
        ensure!(
            w[0].1.shard != w[1].1.shard,
            "{} and {} are both shard {}: give each shard once",
            w[0].0.display(),
            w[1].0.display(),
            w[0].1.shard
        );
    }
    let n = first.shard.count;
    let missing: Vec<String> = (0..n)
        .filter(|i| !shards.iter().any(|(_, f)| f.shard.index == *i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    ensure!(
        missing.is_empty(),
        "missing shard{} {} of {n}: merge needs every slice",
        if missing.len() == 1 { "" } else { "s" },
        missing.join(", ")
    );
    Ok(())
}
