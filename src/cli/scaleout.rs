//! Scale-out on the command line: the `shard.json` a `--shard I/N` run leaves for `regimes merge`,
//! the checkpoints of `--checkpoint-every` that `regimes resume` continues, and the config hash
//! that tells the shards and checkpoints of one study from another's.
//!
//! A shard holds the raw mergeable accumulators of its slice (moments with count, mean and M2;
//! class counts; tallies; agreeing pairs per branch point); `merge` folds them in shard order,
//! which is particle order, and hands them to the same report code an unsharded run uses.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};

use super::collapse::{EntropyRow, PhaseSeconds};
use crate::config::Config;
use crate::engine::Particles;
use crate::measure::checkpoint::{Every, PhaseState, Shard, Snapshot};
use crate::measure::cloning::CloneState;
use crate::measure::run::RunState;
use crate::report::{CHECKPOINT_DIR, write_atomic};

/// The file a shard writes into its `--out` directory.
pub const SHARD_FILE: &str = "shard.json";

/// Version of the shard and checkpoint formats.
const FORMAT: u32 = 1;

/// Config keys that choose how a study runs, not what it measures: shards and checkpoints that
/// differ only in these belong to the same study.
const ENGINE_KEYS: &[&str] = &[
    "backend",
    "adapter",
    "batch",
    "threads",
    "steps-per-dispatch",
];

/// The canonical config of a study (its JSON, engine keys left out).
fn canonical(cfg: &Config) -> BTreeMap<String, serde_json::Value> {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(cfg) else {
        unreachable!("Config serialises to an object")
    };
    map.into_iter()
        .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
        .collect()
}

/// FNV-1a (64 bits) of the command and the canonical config, in hex.
pub fn config_hash(command: &str, cfg: &Config) -> String {
    let text = format!(
        "{command}\n{}",
        serde_json::to_string(&canonical(cfg)).unwrap_or_default()
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The config keys on which two studies differ (engine keys aside).
pub fn differing_keys(a: &Config, b: &Config) -> Vec<String> {
    let (a, b) = (canonical(a), canonical(b));
    a.keys()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// What a study deposits for its shard file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShardParts {
    /// Trajectories (`run`, `collapse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunState>,
    /// Clone pairs (`speciation`, `collapse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clones: Option<CloneState>,
    /// The excess entropy (`collapse`; measured by shard 0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<Vec<EntropyRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<PhaseSeconds>,
    /// Final positions (rows, values) with --save-samples, kept in memory for `--devices` (a
    /// shard's directory holds its own in samples.npy).
    #[serde(skip)]
    pub samples: Option<(usize, Vec<f32>)>,
}

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
    pub parts: ShardParts,
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
        parts: ShardParts,
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
                    "none visible; the shards come from different versions".to_string()
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

/// The adapters of `--devices`: `all` (the hardware adapters wgpu lists, or every adapter when
/// there is none, e.g. lavapipe alone), or a comma-separated list of indices and name substrings
/// (an adapter named twice runs two slices). Returns (index in `adapters`, name).
pub fn resolve_devices(
    spec: &str,
    adapters: &[crate::engine::gpu::AdapterSummary],
) -> Result<Vec<(usize, String)>> {
    let listing = || {
        adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{i}: {} ({})", a.name, a.device_type))
            .collect::<Vec<_>>()
            .join("; ")
    };
    ensure!(
        !adapters.is_empty(),
        "devices: wgpu lists no GPU adapter (see `regimes devices`; for a software device \
         install lavapipe and set WGPU_BACKEND=vulkan)"
    );
    let all: Vec<(usize, String)> = adapters
        .iter()
        .enumerate()
        .map(|(i, a)| (i, a.name.clone()))
        .collect();
    if spec.trim() == "all" {
        let hardware: Vec<(usize, String)> = all
            .iter()
            .filter(|(i, _)| adapters[*i].device_type != "Cpu")
            .cloned()
            .collect();
        return Ok(if hardware.is_empty() { all } else { hardware });
    }
    spec.split(',')
        .map(|item| {
            let item = item.trim();
            ensure!(
                !item.is_empty(),
                "devices: '{spec}' has an empty entry; give all, or indices and names \
                 separated by commas"
            );
            if let Ok(i) = item.parse::<usize>() {
                return all
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("devices: no adapter {i}; wgpu lists {}", listing()));
            }
            let lower = item.to_lowercase();
            all.iter()
                .find(|(_, n)| n.to_lowercase().contains(&lower))
                .cloned()
                .ok_or_else(|| {
                    anyhow!(
                        "devices: no adapter matches '{item}'; wgpu lists {}",
                        listing()
                    )
                })
        })
        .collect()
}

/// Folds run states in shard order.
pub fn merge_runs(states: &[&RunState]) -> Result<RunState> {
    let mut acc = (*states.first().ok_or_else(|| anyhow!("no trajectories"))?).clone();
    for s in &states[1..] {
        ensure!(
            s.stats.len() == acc.stats.len(),
            "shards record different points"
        );
        for (a, b) in acc.stats.iter_mut().zip(&s.stats) {
            a.merge(b);
        }
        acc.tally.merge(&s.tally);
        acc.done += s.done;
        acc.next = s.next;
    }
    Ok(acc)
}

/// Folds clone-experiment states in shard order.
pub fn merge_clones(states: &[&CloneState]) -> Result<CloneState> {
    let mut acc = (*states.first().ok_or_else(|| anyhow!("no clone pairs"))?).clone();
    for s in &states[1..] {
        ensure!(
            s.stats.len() == acc.stats.len() && s.agree.len() == acc.agree.len(),
            "shards branch at different points"
        );
        for (a, b) in acc.stats.iter_mut().zip(&s.stats) {
            a.merge(b);
        }
        for (a, b) in acc.agree.iter_mut().zip(&s.agree) {
            *a += b;
        }
        acc.done += s.done;
        acc.next = s.next;
    }
    Ok(acc)
}

/// A phase's state in the checkpoint, with the file holding its particle sets.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PhaseEntry {
    state: PhaseState,
    /// The binary file of its particle sets (empty when it has none).
    blob: String,
    /// (particles, dimension) of each set, in the blob's order.
    sets: Vec<(usize, usize)>,
}

/// `state.json` of a checkpoint: what the run is, and the state of each phase it reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub format: u32,
    pub command: String,
    pub config_hash: String,
    pub config: Config,
    pub empirical: bool,
    pub shard: Option<Shard>,
    pub every: Every,
    /// Sequence number of the last blob written.
    seq: u64,
    phases: Vec<PhaseEntry>,
}

impl CheckpointFile {
    pub fn new(
        command: &str,
        cfg: &Config,
        empirical: bool,
        shard: Option<Shard>,
        every: Every,
    ) -> Self {
        CheckpointFile {
            format: FORMAT,
            command: command.to_string(),
            config_hash: config_hash(command, cfg),
            config: cfg.clone(),
            empirical,
            shard,
            every,
            seq: 0,
            phases: vec![],
        }
    }
}

const STATE: &str = "state.json";

/// The checkpoints of a run in `OUT/.regimes-checkpoint/`: `state.json` names the blob files
/// of particle sets it uses. Every file is written atomically (temporary, fsync, rename, fsync
/// of the directory), blobs before the state that names them, and blobs no state names are
/// removed only after the new state landed: a kill at any point leaves the previous or the new
/// checkpoint whole.
pub struct Store {
    dir: PathBuf,
    file: CheckpointFile,
}

impl Store {
    /// A fresh checkpoint (the run's start) in `out`.
    pub fn create(out: &Path, file: CheckpointFile) -> Result<Store> {
        let dir = out.join(CHECKPOINT_DIR);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let store = Store { dir, file };
        store.write_state()?;
        Ok(store)
    }

    /// The checkpoint in `out` and the snapshot of each phase it reached.
    pub fn open(out: &Path) -> Result<(Store, Vec<Option<Snapshot>>)> {
        let dir = out.join(CHECKPOINT_DIR);
        let path = dir.join(STATE);
        let text = fs::read_to_string(&path).map_err(|_| {
            anyhow!(
                "{} holds no checkpoint to resume (start a run with --checkpoint-every and \
                 --out; a run that completed removes its checkpoint)",
                out.display()
            )
        })?;
        let file: CheckpointFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a regimes checkpoint", path.display()))?;
        ensure!(
            file.format == FORMAT,
            "{}: checkpoint format {} (this regimes reads {FORMAT})",
            path.display(),
            file.format
        );
        let mut snaps = vec![];
        for e in &file.phases {
            let particles = if e.sets.is_empty() {
                vec![]
            } else {
                let bytes = fs::read(dir.join(&e.blob))
                    .with_context(|| format!("checkpoint: cannot read {}", e.blob))?;
                decode(&bytes, &e.sets).with_context(|| format!("checkpoint: {}", e.blob))?
            };
            snaps.push(Some(Snapshot {
                state: e.state.clone(),
                particles,
            }));
        }
        let store = Store { dir, file };
        store.clean();
        Ok((store, snaps))
    }

    pub fn file(&self) -> &CheckpointFile {
        &self.file
    }

    /// Saves the snapshot of `phase` (later phases, if any, stay: they started from its end).
    pub fn save(&mut self, phase: usize, snap: Snapshot) -> Result<()> {
        ensure!(
            phase <= self.file.phases.len(),
            "checkpoint: phase {phase} saved before the phases ahead of it"
        );
        let sets: Vec<(usize, usize)> = snap.particles.iter().map(|p| (p.len(), p.dim)).collect();
        let blob = if sets.is_empty() {
            String::new()
        } else {
            self.file.seq += 1;
            let name = format!("p{phase}-{}.bin", self.file.seq);
            write_atomic(&self.dir, &name, &encode(&snap.particles), true)?;
            name
        };
        let entry = PhaseEntry {
            state: snap.state,
            blob,
            sets,
        };
        if phase == self.file.phases.len() {
            self.file.phases.push(entry);
        } else {
            self.file.phases[phase] = entry;
        }
        self.write_state()?;
        self.clean();
        Ok(())
    }

    fn write_state(&self) -> Result<()> {
        let text = serde_json::to_string(&self.file)?;
        write_atomic(&self.dir, STATE, text.as_bytes(), true)?;
        Ok(())
    }

    /// Removes blobs the state does not name and temporaries of killed writes.
    fn clean(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let named = self.file.phases.iter().any(|p| p.blob == name);
            if name != STATE && !named {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Removes the checkpoint (the run completed).
    pub fn remove(out: &Path) {
        let _ = fs::remove_dir_all(out.join(CHECKPOINT_DIR));
    }

    /// Removes the checkpoint if it holds nothing but the run's start (a study refused before
    /// any work leaves nothing behind).
    pub fn discard_if_unused(out: &Path) {
        let state = out.join(CHECKPOINT_DIR).join(STATE);
        let unused = fs::read_to_string(state)
            .ok()
            .and_then(|t| serde_json::from_str::<CheckpointFile>(&t).ok())
            .is_some_and(|f| f.phases.is_empty());
        if unused {
            Store::remove(out);
        }
    }
}

/// Particle sets as bytes: per set, positions (f32), ids (u64), labels and last changes (u32),
/// little-endian.
fn encode(sets: &[Particles]) -> Vec<u8> {
    let size: usize = sets.iter().map(|p| p.x.len() * 4 + p.len() * 16).sum();
    let mut out = Vec::with_capacity(size);
    for p in sets {
        p.x.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.ids.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.label.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.changed.iter().for_each(|v| out.extend(v.to_le_bytes()));
    }
    out
}

fn decode(bytes: &[u8], sets: &[(usize, usize)]) -> Result<Vec<Particles>> {
    let size = |&(n, d): &(usize, usize)| n.checked_mul(d)?.checked_add(4 * n)?.checked_mul(4);
    let want = sets
        .iter()
        .try_fold(0usize, |acc, s| acc.checked_add(size(s)?))
        .filter(|&w| w == bytes.len());
    ensure!(
        want.is_some(),
        "holds {} bytes, not what its state names (a damaged checkpoint)",
        bytes.len()
    );
    let mut at = 0;
    let mut take = |len: usize| {
        let s = &bytes[at..at + len];
        at += len;
        s
    };
    let u32s = |b: &[u8]| -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    Ok(sets
        .iter()
        .map(|&(n, dim)| {
            let x = take(n * dim * 4)
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let ids = take(n * 8)
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let label = u32s(take(n * 4));
            let changed = u32s(take(n * 4));
            Particles {
                dim,
                x,
                ids,
                label,
                changed,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn particle_sets_round_trip_bit_for_bit() {
        let a = Particles {
            dim: 2,
            x: vec![1.5, -0.0, f32::MIN_POSITIVE, 3.0e-39],
            ids: vec![7, u64::MAX],
            label: vec![0, u32::MAX],
            changed: vec![3, 9],
        };
        let b = Particles {
            dim: 3,
            x: vec![],
            ids: vec![],
            label: vec![],
            changed: vec![],
        };
        let sets = [a, b];
        let shape: Vec<(usize, usize)> = sets.iter().map(|p| (p.len(), p.dim)).collect();
        let back = decode(&encode(&sets), &shape).unwrap();
        assert_eq!(back, sets);
        let bits = |p: &Particles| p.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back[0]), bits(&sets[0]));
        assert!(decode(&encode(&sets)[1..], &shape).is_err());
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
    }
}
