//! The mergeable accumulators of a study's slice (what `shard.json` holds), and their fold in
//! slice order: what `merge` and `--devices` report through the study's own summarise.

use anyhow::{Result, anyhow, ensure};
use serde::{Deserialize, Serialize};

use super::diagnostics::{PhaseSeconds, PrunedTiles};
use super::modes::ModeCollapse;
use crate::measure::cloning::{CloneRound, CloneState};
use crate::measure::entropy::EntropyRow;
use crate::measure::run::RunState;

/// What a study folded: the mergeable accumulators of its slice.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Parts {
    /// Trajectories (`run`, `collapse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunState>,
    /// Clone pairs (`speciation`, `collapse`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clones: Option<CloneState>,
    /// Clone pairs in rounds whose branch times were chosen as they went (`speciation
    /// --branch-times auto`, which runs unsharded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Vec<CloneRound>>,
    /// The excess entropy (`collapse`; measured by shard 0 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<Vec<EntropyRow>>,
    /// The excess entropy read on each mode of coupled modalities (`collapse`, shard 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_entropy: Option<Vec<ModeCollapse>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<PhaseSeconds>,
    /// Tiles of training points the CPU engine pruned (`collapse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PrunedTiles>,
    /// Final samples with --save-samples, kept in memory for `--devices` (a shard's directory
    /// holds its own in samples.npy and labels.npy).
    #[serde(skip)]
    pub samples: Option<Samples>,
    /// With --save-samples and --record-times (`run`): the samples at each record time, (t,
    /// samples), kept in memory like `samples`.
    #[serde(skip)]
    pub snapshots: Vec<(f64, Samples)>,
}

/// The final samples of a run (`--save-samples`): positions and the label of each.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub rows: usize,
    /// Positions, row-major (rows × d).
    pub x: Vec<f32>,
    /// Each sample's class (mixture) or nearest training point (empirical target) as the
    /// engine last assigned it, or [`crate::engine::NO_LABEL`].
    pub labels: Vec<u32>,
}

impl Samples {
    pub fn from_particles(p: crate::engine::Particles) -> Samples {
        Samples {
            rows: p.len(),
            x: p.x,
            labels: p.label,
        }
    }
}

impl Parts {
    /// The folded trajectories.
    pub fn trajectories(&self) -> Result<&RunState> {
        self.run
            .as_ref()
            .ok_or_else(|| anyhow!("the study holds no trajectories"))
    }

    /// The folded clone pairs.
    pub fn clone_pairs(&self) -> Result<&CloneState> {
        self.clones
            .as_ref()
            .ok_or_else(|| anyhow!("the study holds no clone pairs"))
    }

    /// The parts of slices (shards, devices) folded in slice order, which is particle order;
    /// `labels` name the slices in errors. Host-side measurements (the excess entropy) come
    /// from the first slice, which made them; timings add up.
    pub fn fold(parts: &[&Parts], labels: &[String]) -> Result<Parts> {
        let first = parts.first().ok_or_else(|| anyhow!("no slices to merge"))?;
        // A field some slice holds, every slice must hold.
        fn each<'a, T>(
            parts: &[&'a Parts],
            labels: &[String],
            field: fn(&'a Parts) -> Option<&'a T>,
            what: &str,
        ) -> Result<Option<Vec<&'a T>>> {
            if parts.iter().all(|p| field(p).is_none()) {
                return Ok(None);
            }
            parts
                .iter()
                .zip(labels)
                .map(|(p, l)| field(p).ok_or_else(|| anyhow!("{l}: the shard holds no {what}")))
                .collect::<Result<Vec<_>>>()
                .map(Some)
        }
        let run = each(parts, labels, |p| p.run.as_ref(), "trajectories")?
            .map(|s| merge_runs(&s))
            .transpose()?;
        let clones = each(parts, labels, |p| p.clones.as_ref(), "clone pairs")?
            .map(|s| merge_clones(&s))
            .transpose()?;
        let seconds = parts.iter().filter_map(|p| p.seconds.as_ref()).fold(
            None,
            |acc: Option<PhaseSeconds>, t| {
                let mut a = acc.unwrap_or_default();
                a.setup += t.setup;
                a.trajectories += t.trajectories;
                a.clone_pairs += t.clone_pairs;
                a.excess_entropy += t.excess_entropy;
                Some(a)
            },
        );
        let pruning = parts
            .iter()
            .filter_map(|p| p.pruning.as_ref())
            .fold(None, |acc: Option<PrunedTiles>, p| {
                Some(acc.unwrap_or_default().plus(p))
            });
        let samples = parts.iter().any(|p| p.samples.is_some()).then(|| {
            let mut all = Samples::default();
            for s in parts.iter().filter_map(|p| p.samples.as_ref()) {
                all.rows += s.rows;
                all.x.extend_from_slice(&s.x);
                all.labels.extend_from_slice(&s.labels);
            }
            all
        });
        // Slices in order: each time's rows are the slices' rows one after the other.
        let mut snapshots = first.snapshots.clone();
        for p in &parts[1..] {
            for ((_, all), (_, s)) in snapshots.iter_mut().zip(&p.snapshots) {
                all.rows += s.rows;
                all.x.extend_from_slice(&s.x);
                all.labels.extend_from_slice(&s.labels);
            }
        }
        Ok(Parts {
            run,
            clones,
            rounds: first.rounds.clone(),
            entropy: first.entropy.clone(),
            mode_entropy: first.mode_entropy.clone(),
            seconds,
            pruning,
            samples,
            snapshots,
        })
    }
}

/// Folds run states in shard order.
fn merge_runs(states: &[&RunState]) -> Result<RunState> {
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
fn merge_clones(states: &[&CloneState]) -> Result<CloneState> {
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
