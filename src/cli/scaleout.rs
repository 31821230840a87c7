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
use super::{Context, Study, Summary, collapse, run, speciation, study, write_summary};
use crate::config::Config;
use crate::engine::Particles;
use crate::engine::gpu::{GpuEngine, GpuOptions, list_adapters};
use crate::measure::checkpoint::{Every, PhaseState, Shard, Snapshot};
use crate::measure::cloning::CloneState;
use crate::measure::run::RunState;
use crate::plan::Grid;
use crate::report::OutDir;
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
            let digest = crate::io::read_bounded(p, crate::io::MAX_MATRIX_BYTES)
                .map_or_else(|e| format!("unreadable: {e}"), |b| fnv1a(&b));
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
        let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES).map_err(|e| {
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
        ensure!(
            s.pair_labels.len() == acc.pair_labels.len(),
            "shards branch at different points"
        );
        for (a, b) in acc.pair_labels.iter_mut().zip(&s.pair_labels) {
            crate::measure::cloning::add_pairs(a, b);
        }
        acc.done += s.done;
        acc.next = s.next;
    }
    Ok(acc)
}

/// `regimes merge DIR... --out DIR`: the shards' accumulators folded in shard order, reported by
/// the code that reports an unsharded run.
pub(super) fn merge(
    dirs: &[PathBuf],
    out: &Path,
    force: bool,
    json: bool,
    quiet: bool,
) -> Result<()> {
    let mut shards = dirs
        .iter()
        .map(|d| ShardFile::read(d).map(|f| (d.clone(), f)))
        .collect::<Result<Vec<_>>>()?;
    check_shards(&mut shards)?;
    // Merging into a shard's directory would replace the shard's files.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some((d, _)) = shards.iter().find(|(d, _)| same(d, out)) {
        bail!(
            "--out {} is the shard directory {}; give the merge a directory of its own",
            out.display(),
            d.display()
        );
    }
    let first = shards[0].1.clone();
    let kind = Study::from_name(&first.command)?;
    let name = kind.name();
    let grid = Grid::new(first.config.t_max, first.config.steps)?;
    let mut cx = Context::new(first.config.clone(), first.empirical, grid, quiet || json);
    cx.out = Some(OutDir::create_for(out, force, name)?);
    // The shards' samples, concatenated in shard order.
    let samples = if first.config.save_samples {
        let mut x = vec![];
        let mut dim = None;
        for (d, _) in &shards {
            let m = crate::io::read_matrix(&d.join("samples.npy"))
                .map_err(|e| anyhow!("{}: {e:#}", d.display()))?;
            ensure!(
                *dim.get_or_insert(m.ncols()) == m.ncols(),
                "{}: samples.npy has {} columns, the first shard's {}",
                d.display(),
                m.ncols(),
                dim.unwrap_or(0)
            );
            for r in 0..m.nrows() {
                x.extend(m.row(r).iter().map(|&v| v as f32));
            }
        }
        Some((x.len() / dim.unwrap_or(1).max(1), x))
    } else {
        None
    };
    let labels: Vec<String> = shards
        .iter()
        .map(|(d, _)| d.display().to_string())
        .collect();
    let parts: Vec<&ShardParts> = shards.iter().map(|(_, f)| &f.parts).collect();
    let (table, result, _) = report_parts(kind, &mut cx, &parts, &labels, samples)?;
    let mut backends: Vec<String> = vec![];
    for (_, f) in &shards {
        if !backends.contains(&f.backend) {
            backends.push(f.backend.clone());
        }
    }
    let summary = Summary {
        command: name,
        version: env!("CARGO_PKG_VERSION"),
        seed: cx.cfg.seed,
        backend: backends.join("; "),
        wall_seconds: shards.iter().map(|(_, f)| f.wall_seconds).sum(),
        shader_compile_seconds: None,
        stopped_early: None,
        shard: None,
        merged_from: Some(
            shards
                .iter()
                .map(|(d, _)| d.display().to_string())
                .collect(),
        ),
        warnings: &cx.warnings,
        config: &cx.cfg,
        result,
    };
    write_summary(&cx, &summary, &table, json)
}

/// The accumulators of slices (shards, devices) folded in order and reported by the code that
/// reports an unsharded run: (table, summary result, the merged accumulators). `labels` name the
/// slices in errors; `samples` are the slices' final positions, concatenated.
fn report_parts(
    kind: Study,
    cx: &mut Context,
    parts: &[&ShardParts],
    labels: &[String],
    samples: Option<(usize, Vec<f32>)>,
) -> Result<(String, serde_json::Value, ShardParts)> {
    let runs = || -> Result<crate::measure::run::RunState> {
        let states = parts
            .iter()
            .zip(labels)
            .map(|(p, l)| {
                p.run
                    .as_ref()
                    .ok_or_else(|| anyhow!("{l}: the shard holds no trajectories"))
            })
            .collect::<Result<Vec<_>>>()?;
        merge_runs(&states)
    };
    let clones = || -> Result<crate::measure::cloning::CloneState> {
        let states = parts
            .iter()
            .zip(labels)
            .map(|(p, l)| {
                p.clones
                    .as_ref()
                    .ok_or_else(|| anyhow!("{l}: the shard holds no clone pairs"))
            })
            .collect::<Result<Vec<_>>>()?;
        merge_clones(&states)
    };
    let samples = samples.as_ref().map(|(n, x)| (*n, &x[..]));
    let mut merged = ShardParts::default();
    let (table, result) = match kind {
        Study::Run => {
            let s = run::setup(cx)?;
            let state = runs()?;
            let r = run::report(cx, &s, &state.stats, &state.tally, state.done, samples)?;
            merged.run = Some(state);
            (run::table(&r), serde_json::to_value(&r)?)
        }
        Study::Speciation => {
            let s = speciation::setup(cx)?;
            let state = clones()?;
            merged.clones = Some(state.clone());
            let branches = s.branches(state);
            let r = speciation::report(cx, &s, branches)?;
            (speciation::table(&r), serde_json::to_value(&r)?)
        }
        Study::Collapse => {
            let s = collapse::setup(cx)?;
            let (traj, pairs) = (runs()?, clones()?);
            let mut seconds = collapse::PhaseSeconds::default();
            for p in parts {
                if let Some(t) = &p.seconds {
                    seconds.setup += t.setup;
                    seconds.trajectories += t.trajectories;
                    seconds.clone_pairs += t.clone_pairs;
                    seconds.excess_entropy += t.excess_entropy;
                }
            }
            let entropy = parts[0].entropy.clone().unwrap_or_default();
            merged.clones = Some(pairs.clone());
            merged.entropy = Some(entropy.clone());
            merged.seconds = Some(seconds.clone());
            let measured = collapse::Measured {
                tally: &traj.tally,
                particles: traj.done,
                branches: s.branches(pairs),
                excess_entropy: entropy,
                seconds,
                samples,
            };
            let r = collapse::report(cx, &s, measured)?;
            merged.run = Some(traj);
            (collapse::table(&r), serde_json::to_value(&r)?)
        }
        Study::Theory => bail!("theory has no shards"),
    };
    Ok((table, result, merged))
}

/// `--devices`: the study split across GPU adapters, one thread and engine each, the slices
/// folded in device order (particle order) and reported as one run.
pub(super) fn study_on_devices(
    kind: Study,
    cx: &mut Context,
    spec: &str,
) -> Result<(String, String, serde_json::Value)> {
    let devices = resolve_devices(spec, &list_adapters())?;
    if !cx.quiet {
        let names: Vec<String> = devices.iter().map(|(i, n)| format!("{i}: {n}")).collect();
        crate::note!("devices: {} slices on {}", devices.len(), names.join(", "));
    }
    let count = devices.len() as u64;
    let (cfg, empirical, grid, shard) = (&cx.cfg, cx.empirical, cx.grid, cx.shard);
    type Slice = (ShardParts, String, Option<String>);
    let results: Vec<Result<Slice>> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(k, &(index, _))| {
                scope.spawn(move || -> Result<Slice> {
                    let mut sub = Context::new(cfg.clone(), empirical, grid, true);
                    sub.shard = shard;
                    sub.device = Some(Shard {
                        index: k as u64,
                        count,
                    });
                    let engine = GpuEngine::with_options(GpuOptions {
                        adapter_index: Some(index),
                        steps_per_dispatch: cfg.steps_per_dispatch,
                        ..GpuOptions::default()
                    })?;
                    let (backend, _, _) = study(kind, &mut sub, &engine)?;
                    Ok((sub.parts, backend, sub.stopped_early))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("the device's thread panicked")))
            })
            .collect()
    });
    let mut parts = vec![];
    let mut backends: Vec<String> = vec![];
    for (r, (index, name)) in results.into_iter().zip(&devices) {
        let (p, backend, stopped) = r.map_err(|e| e.context(format!("device {index} ({name})")))?;
        cx.stopped(stopped);
        if !backends.contains(&backend) {
            backends.push(backend);
        }
        parts.push(p);
    }
    let samples = cx.cfg.save_samples.then(|| {
        let mut x = vec![];
        let mut rows = 0;
        for p in &mut parts {
            if let Some((n, v)) = p.samples.take() {
                rows += n;
                x.extend(v);
            }
        }
        (rows, x)
    });
    let labels: Vec<String> = devices
        .iter()
        .map(|(i, n)| format!("device {i} ({n})"))
        .collect();
    let refs: Vec<&ShardParts> = parts.iter().collect();
    let (table, json, merged) = report_parts(kind, cx, &refs, &labels, samples)?;
    cx.parts = merged;
    Ok((backends.join("; "), table, json))
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
        let text = crate::io::read_text(&path, crate::io::MAX_STATE_BYTES).map_err(|_| {
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
                let bytes = crate::io::read_bounded(&dir.join(&e.blob), crate::io::MAX_BLOB_BYTES)
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
        let unused = crate::io::read_text(&state, crate::io::MAX_STATE_BYTES)
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
