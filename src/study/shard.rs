//! `shard.json`: the mergeable accumulators of one slice of a study (`--shard I/N`), with the
//! study's config and fingerprint, and the checks `merge` makes before folding shards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};

use super::Parts;
use super::{LABELS, SAMPLES};

use super::fingerprint::{check_seal, config_hash, differing_keys, input_files, seal, study_keys};
use crate::config::Config;
use crate::digest::digest;
use crate::measure::Shard;
use crate::report::CHECKPOINT_DIR;

/// The file a shard writes into its `--out` directory.
pub const SHARD_FILE: &str = "shard.json";

/// Version of the shard and checkpoint formats (2: checksums, the writer's version, digests of
/// the data files; 3: BLAKE3 digests, the target decided by the config alone; 4: checkpoints hold
/// each particle's drawn training point).
pub const FORMAT: u32 = 4;

/// The version of regimes that writes shards and checkpoints; only the same version reads them
/// (another may compute other numbers).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `shard.json`: one slice of a study, ready to merge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub format: u32,
    /// The version of regimes that wrote it.
    #[serde(default)]
    pub version: String,
    pub command: String,
    pub shard: Shard,
    pub config_hash: String,
    pub config: Config,
    pub backend: String,
    pub wall_seconds: f64,
    /// Digests of the data files the shard wrote beside it (samples.npy).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    #[serde(flatten)]
    pub parts: Parts,
}

impl ShardFile {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        command: &str,
        shard: Shard,
        cfg: &Config,
        backend: &str,
        wall_seconds: f64,
        parts: Parts,
    ) -> Self {
        ShardFile {
            format: FORMAT,
            version: VERSION.to_string(),
            command: command.to_string(),
            shard,
            config_hash: config_hash(command, cfg),
            config: cfg.clone(),
            backend: backend.to_string(),
            wall_seconds,
            files: BTreeMap::new(),
            parts,
        }
    }

    /// The file's JSON with its checksum.
    pub fn sealed(&self) -> Result<serde_json::Value> {
        Ok(seal(serde_json::to_value(self)?))
    }

    /// Reads `dir/shard.json`, naming the directory in every error.
    pub fn read(dir: &Path) -> Result<ShardFile> {
        let path = dir.join(SHARD_FILE);
        let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES).map_err(|e| {
            let hint = if dir.join(CHECKPOINT_DIR).join("state.json").exists() {
                format!(
                    "; it was interrupted: resume it with `regimes resume {}`",
                    dir.display()
                )
            } else {
                " (run with --shard I/N --out DIR)".to_string()
            };
            anyhow!(
                "{}: no readable {SHARD_FILE} ({e}); a shard writes it when it completes{hint}",
                dir.display()
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: {SHARD_FILE} is not a shard file", path.display()))?;
        let format = value.get("format").and_then(|v| v.as_u64());
        ensure!(
            format == Some(u64::from(FORMAT)),
            "{}: shard format {} (this regimes reads {FORMAT}); merge it with the version of \
             regimes that wrote it",
            path.display(),
            format.map_or("unknown".to_string(), |f| f.to_string())
        );
        check_seal(&value, &path.display().to_string())?;
        let f: ShardFile = serde_json::from_value(value)
            .with_context(|| format!("{}: {SHARD_FILE} is not a shard file", path.display()))?;
        ensure!(
            f.version == VERSION,
            "{}: written by regimes {}, this is {VERSION}; merge it with the version that wrote it",
            path.display(),
            f.version
        );
        f.check_counts()
            .with_context(|| format!("{}: {SHARD_FILE} is inconsistent", path.display()))?;
        Ok(f)
    }

    /// The counts a shard holds agree with each other: trajectories tallied once each, clone
    /// pairs agreeing at most once per pair, statistics over the particles done.
    fn check_counts(&self) -> Result<()> {
        if let Some(r) = &self.parts.run {
            ensure!(r.flight.is_none(), "the shard holds a batch in flight");
            ensure!(
                r.tally.labels.iter().sum::<u64>() == r.done
                    && r.tally.last_change.iter().sum::<u64>() == r.done,
                "its trajectories' tallies count {} particles, not the {} done",
                r.tally.labels.iter().sum::<u64>(),
                r.done
            );
            ensure!(
                r.stats.iter().all(|s| s.coords.count <= r.done),
                "its statistics hold more particles than the {} done",
                r.done
            );
            ensure!(r.next >= r.done, "it ends before the particles it did");
        }
        if let Some(c) = &self.parts.clones {
            ensure!(c.flight.is_none(), "the shard holds a batch in flight");
            ensure!(
                c.agree.iter().all(|&a| a <= c.done)
                    && c.stats.iter().all(|s| s.purity.count == c.done),
                "its clone pairs count more agreements or trunks than the {} pairs done",
                c.done
            );
            ensure!(c.next >= c.done, "it ends before the pairs it did");
        }
        Ok(())
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
                    format!(
                        "none; the files they read ({}) differ in content, or they come from \
                         different versions of regimes",
                        input_names(&first.config)
                    )
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
    // The study they name must be the study they ran: the same config in every shard (the
    // recorded hashes agree, so an edited config shows as a difference), and that config's
    // hash where the merge runs, which reads the files it names once for all shards.
    for (dir, f) in shards.iter() {
        ensure!(
            study_keys(&f.config) == study_keys(&first.config),
            "{}: its config is not the one its hash was made from ({SHARD_FILE} was edited); run \
             that shard again",
            dir.display()
        );
    }
    let now = config_hash(&first.command, &first.config);
    ensure!(
        now == first.config_hash,
        "{}: the study changed since the shards ran (config hash {} then, {now} now): a file it \
         reads ({}) has other contents here, or {SHARD_FILE} was edited; merge where the \
         shards' files are, as they were",
        first_dir.display(),
        first.config_hash,
        input_names(&first.config)
    );
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
    // Each slice starts where the one before ended: together they are the study's units once.
    type Span = fn(&ShardFile) -> Option<(u64, u64)>;
    let spans: [(&str, Span); 2] = [
        ("particles", |f| {
            f.parts.run.as_ref().map(|r| (r.next - r.done, r.next))
        }),
        ("clone pairs", |f| {
            f.parts.clones.as_ref().map(|c| (c.next - c.done, c.next))
        }),
    ];
    for (what, span) in spans {
        let mut end = 0;
        for (dir, f) in shards.iter() {
            if let Some((start, next)) = span(f) {
                ensure!(
                    start == end,
                    "{}: shard {} holds {what} {start}..{next}, but the shards before it end at \
                     {end}: its counts were edited, or it belongs to another split",
                    dir.display(),
                    f.shard
                );
                end = next;
            }
        }
    }
    Ok(())
}

/// The keys of the files a study reads, for messages.
pub(crate) fn input_names(cfg: &Config) -> String {
    let files = input_files(cfg);
    if files.is_empty() {
        "none".to_string()
    } else {
        files
            .iter()
            .map(|(k, p)| format!("{k} {}", p.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The shards' parts folded in shard order, with each shard's samples read back; the backends
/// they ran on.
pub fn fold_shards(shards: &[(PathBuf, ShardFile)]) -> Result<(Parts, String, f64)> {
    let mut parts: Vec<Parts> = shards.iter().map(|(_, f)| f.parts.clone()).collect();
    if shards[0].1.config.save_samples {
        let mut dim = None;
        for ((d, f), p) in shards.iter().zip(&mut parts) {
            // A data file beside the shard, as the shard wrote it.
            let read = |name: &str| -> Result<nalgebra::DMatrix<f64>> {
                let path = d.join(name);
                let bytes = crate::io::read_bounded(&path, crate::io::MAX_MATRIX_BYTES)
                    .map_err(|e| anyhow!("{}: cannot read {name} ({e:#})", d.display()))?;
                ensure!(
                    f.files.get(name) == Some(&digest(&bytes)),
                    "{}: {name} is not the file the shard wrote (truncated, replaced or edited); \
                     run the shard again",
                    d.display()
                );
                // A shard without particles wrote an array of no rows.
                crate::io::parse_rows(&bytes, &path).map_err(|e| anyhow!("{}: {e:#}", d.display()))
            };
            let m = read(SAMPLES)?;
            ensure!(
                *dim.get_or_insert(m.ncols()) == m.ncols(),
                "{}: samples.npy has {} columns, the first shard's {}",
                d.display(),
                m.ncols(),
                dim.unwrap_or(0)
            );
            let labels = read(LABELS)?;
            ensure!(
                labels.len() == m.nrows(),
                "{}: {LABELS} holds {} labels for {} samples",
                d.display(),
                labels.len(),
                m.nrows()
            );
            let x = (0..m.nrows())
                .flat_map(|r| m.row(r).iter().map(|&v| v as f32).collect::<Vec<_>>())
                .collect();
            p.samples = Some(super::parts::Samples {
                rows: m.nrows(),
                x,
                // −1 (no label) back to the engine's mark.
                labels: labels
                    .iter()
                    .map(|&l| {
                        if l < 0.0 {
                            crate::engine::NO_LABEL
                        } else {
                            l as u32
                        }
                    })
                    .collect(),
            });
        }
    }
    let labels: Vec<String> = shards
        .iter()
        .map(|(d, _)| d.display().to_string())
        .collect();
    let refs: Vec<&Parts> = parts.iter().collect();
    Ok((
        Parts::fold(&refs, &labels)?,
        super::distinct(shards.iter().map(|(_, f)| f.backend.clone())),
        shards.iter().map(|(_, f)| f.wall_seconds).sum(),
    ))
}
