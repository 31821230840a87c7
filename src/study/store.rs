//! The checkpoints of a run (`--checkpoint-every`) in `OUT/.regimes-checkpoint/`, which
//! `regimes resume` continues: the state of each phase the study reached, and its particle sets
//! in binary blobs.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, ensure};
use serde::{Deserialize, Serialize};

use super::fingerprint::config_hash;
use super::fingerprint::{check_seal, seal};
use super::shard::{FORMAT, VERSION};
use crate::config::Config;
use crate::digest::digest;
use crate::engine::Particles;
use crate::measure::checkpoint::{Every, Shard, Snapshot};
use crate::measure::cloning::CloneState;
use crate::measure::run::RunState;
use crate::report::{CHECKPOINT_DIR, write_atomic};

/// The state of one phase of a study (trajectories, clone pairs), as a checkpoint holds it.
/// Particle sets are stored apart and referred to by index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum PhaseState {
    Run(RunState),
    Clones(CloneState),
}

impl From<RunState> for PhaseState {
    fn from(s: RunState) -> Self {
        PhaseState::Run(s)
    }
}

impl From<CloneState> for PhaseState {
    fn from(s: CloneState) -> Self {
        PhaseState::Clones(s)
    }
}

impl TryFrom<PhaseState> for RunState {
    type Error = anyhow::Error;
    fn try_from(p: PhaseState) -> Result<Self> {
        match p {
            PhaseState::Run(s) => Ok(s),
            PhaseState::Clones(_) => Err(anyhow!("checkpoint: expected the state of a run")),
        }
    }
}

impl TryFrom<PhaseState> for CloneState {
    type Error = anyhow::Error;
    fn try_from(p: PhaseState) -> Result<Self> {
        match p {
            PhaseState::Clones(s) => Ok(s),
            PhaseState::Run(_) => Err(anyhow!(
                "checkpoint: expected the state of a clone experiment"
            )),
        }
    }
}

/// A phase's state in the checkpoint, with the file holding its particle sets.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PhaseEntry {
    state: PhaseState,
    /// The binary file of its particle sets (empty when it has none).
    blob: String,
    /// (particles, dimension) of each set, in the blob's order.
    sets: Vec<(usize, usize)>,
    /// FNV-1a of the blob, checked before it is used.
    #[serde(default)]
    digest: String,
}

/// `state.json` of a checkpoint: what the run is, and the state of each phase it reached.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointFile {
    pub format: u32,
    /// The version of regimes that wrote it (only the same version resumes it).
    #[serde(default)]
    pub version: String,
    pub command: String,
    pub config_hash: String,
    pub config: Config,
    pub shard: Option<Shard>,
    pub every: Every,
    /// Sequence number of the last blob written.
    seq: u64,
    phases: Vec<PhaseEntry>,
}

impl CheckpointFile {
    pub fn new(command: &str, cfg: &Config, shard: Option<Shard>, every: Every) -> Self {
        CheckpointFile {
            format: FORMAT,
            version: VERSION.to_string(),
            command: command.to_string(),
            config_hash: config_hash(command, cfg),
            config: cfg.clone(),
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

    /// The checkpoint file of the run in `out`, checked (format, checksum, version), naming
    /// `out` in its errors.
    pub fn read_file(out: &Path) -> Result<CheckpointFile> {
        let path = out.join(CHECKPOINT_DIR).join(STATE);
        let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES).map_err(|_| {
            anyhow!(
                "{} holds no checkpoint to resume (start a run with --checkpoint-every and \
                 --out; a run that completed removes its checkpoint)",
                out.display()
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("{}: not a regimes checkpoint ({e})", path.display()))?;
        let format = value.get("format").and_then(|v| v.as_u64());
        ensure!(
            format == Some(u64::from(FORMAT)),
            "{}: checkpoint format {} (this regimes reads {FORMAT}); resume it with the version \
             of regimes that wrote it",
            path.display(),
            format.map_or("unknown".to_string(), |f| f.to_string())
        );
        check_seal(&value, &path.display().to_string())?;
        let file: CheckpointFile = serde_json::from_value(value)
            .map_err(|e| anyhow!("{}: not a regimes checkpoint ({e})", path.display()))?;
        ensure!(
            file.version == VERSION,
            "{}: written by regimes {}, this is {VERSION}; resume it with the version that wrote \
             it",
            path.display(),
            file.version
        );
        Ok(file)
    }

    /// The checkpoint in `out` and the snapshot of each phase it reached, every blob checked
    /// against its digest.
    pub fn open(out: &Path) -> Result<(Store, Vec<Option<Snapshot<PhaseState>>>)> {
        let (store, snaps) = Store::read(out)?;
        store.clean();
        Ok((store, snaps))
    }

    /// [`Store::open`] without touching the directory: a resume checks its checkpoint with it
    /// before it takes the directory over, so a refused resume leaves everything as it was.
    pub fn read(out: &Path) -> Result<(Store, Vec<Option<Snapshot<PhaseState>>>)> {
        let dir = out.join(CHECKPOINT_DIR);
        let file = Store::read_file(out)?;
        let mut snaps = vec![];
        for e in &file.phases {
            let particles = if e.sets.is_empty() {
                vec![]
            } else {
                let bytes = crate::io::read_bounded(&dir.join(&e.blob), crate::io::MAX_BLOB_BYTES)
                    .with_context(|| format!("checkpoint: cannot read {}", e.blob))?;
                ensure!(
                    digest(&bytes) == e.digest,
                    "checkpoint: {} is not the file its state names (a damaged checkpoint, or \
                     an edited one); the run cannot resume from it, start it again",
                    dir.join(&e.blob).display()
                );
                decode(&bytes, &e.sets).with_context(|| format!("checkpoint: {}", e.blob))?
            };
            snaps.push(Some(Snapshot {
                state: e.state.clone(),
                particles,
            }));
        }
        Ok((Store { dir, file }, snaps))
    }

    pub fn file(&self) -> &CheckpointFile {
        &self.file
    }

    /// Saves the state of `phase` with its particle sets (later phases, if any, stay: they
    /// started from its end).
    pub fn save(
        &mut self,
        phase: usize,
        state: PhaseState,
        particles: Vec<Particles>,
    ) -> Result<()> {
        ensure!(
            phase <= self.file.phases.len(),
            "checkpoint: phase {phase} saved before the phases ahead of it"
        );
        let sets: Vec<(usize, usize)> = particles.iter().map(|p| (p.len(), p.dim)).collect();
        let (blob, digest) = if sets.is_empty() {
            (String::new(), String::new())
        } else {
            self.file.seq += 1;
            let name = format!("p{phase}-{}.bin", self.file.seq);
            let bytes = encode(&particles);
            write_atomic(&self.dir, &name, &bytes, true)?;
            (name, digest(&bytes))
        };
        let entry = PhaseEntry {
            state,
            blob,
            sets,
            digest,
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
        let text = serde_json::to_string(&seal(serde_json::to_value(&self.file)?))?;
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
        let unused = crate::io::read_text(&state, crate::io::MAX_STATE_BYTES)
            .ok()
            .and_then(|t| serde_json::from_str::<CheckpointFile>(&t).ok())
            .is_some_and(|f| f.phases.is_empty());
        if unused {
            Store::remove(out);
        }
    }
}

/// Particle sets as bytes: per set, positions (f32), ids (u64), labels, last changes and drawn
/// training points (u32), little-endian.
fn encode(sets: &[Particles]) -> Vec<u8> {
    let size: usize = sets.iter().map(|p| p.x.len() * 4 + p.len() * 20).sum();
    let mut out = Vec::with_capacity(size);
    for p in sets {
        p.x.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.ids.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.label.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.changed.iter().for_each(|v| out.extend(v.to_le_bytes()));
        p.drawn.iter().for_each(|v| out.extend(v.to_le_bytes()));
    }
    out
}

fn decode(bytes: &[u8], sets: &[(usize, usize)]) -> Result<Vec<Particles>> {
    let size = |&(n, d): &(usize, usize)| n.checked_mul(d)?.checked_add(5 * n)?.checked_mul(4);
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
            let drawn = u32s(take(n * 4));
            Particles {
                dim,
                x,
                ids,
                label,
                changed,
                drawn,
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
            drawn: vec![u32::MAX, 4],
        };
        let b = Particles::empty(3);
        let sets = [a, b];
        let shape: Vec<(usize, usize)> = sets.iter().map(|p| (p.len(), p.dim)).collect();
        let back = decode(&encode(&sets), &shape).unwrap();
        assert_eq!(back, sets);
        let bits = |p: &Particles| p.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back[0]), bits(&sets[0]));
        assert!(decode(&encode(&sets)[1..], &shape).is_err());
    }
}
