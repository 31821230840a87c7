//! Engines execute a [`Plan`] on particles. The CPU and GPU engines implement the same trait with
//! the same arithmetic and the same counter-based noise, so their trajectories agree to f32
//! round-off and everything above this layer (drivers, measurements) is engine-agnostic.

pub mod cpu;
pub mod gpu;

use std::ops::Range;

use anyhow::Result;

use crate::plan::Plan;
use crate::stats::{PointStats, Tally};

/// Label of a particle whose logits were never evaluated.
pub const NO_LABEL: u32 = u32::MAX;

pub use crate::plan::SOFTMAX_ROWS;

/// A host copy of particle state.
#[derive(Clone, Debug, PartialEq)]
pub struct Particles {
    pub dim: usize,
    /// Positions, row-major (particles × d).
    pub x: Vec<f32>,
    /// Rng ids (particle index and stream, see [`crate::rng::rng_id`]).
    pub ids: Vec<u64>,
    /// Current argmax label (class or nearest training point), or [`NO_LABEL`].
    pub label: Vec<u32>,
    /// Time point of the last label change.
    pub changed: Vec<u32>,
    /// The training point a plan that draws once ([`crate::plan::Draws::Once`]) drew for the
    /// particle and steps towards, or [`NO_LABEL`] before its first evaluation (and after a
    /// branch: each clone draws its own).
    pub drawn: Vec<u32>,
}

impl Particles {
    /// No particles, of dimension `dim`.
    pub fn empty(dim: usize) -> Self {
        Particles {
            dim,
            x: vec![],
            ids: vec![],
            label: vec![],
            changed: vec![],
            drawn: vec![],
        }
    }

    /// Appends the particles of `other` (of the same dimension).
    pub fn extend(&mut self, other: Particles) {
        self.x.extend(other.x);
        self.ids.extend(other.ids);
        self.label.extend(other.label);
        self.changed.extend(other.changed);
        self.drawn.extend(other.drawn);
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Statistics wanted at chosen time points of one segment of a trajectory.
#[derive(Clone, Debug)]
pub struct Recorder {
    /// Time points (grid indices) to reduce at, ascending.
    pub points: Vec<usize>,
    /// Unit directions to project on, row-major (count × d).
    pub directions: Vec<f32>,
    /// One accumulator per point, folded in particle order.
    pub stats: Vec<PointStats>,
}

impl Recorder {
    pub fn new(plan: &Plan, mut points: Vec<usize>, directions: Vec<f32>) -> Self {
        points.sort_unstable();
        points.dedup();
        let dirs = directions.len() / plan.dim.max(1);
        let stats = points
            .iter()
            .map(|_| PointStats::new(plan.dim, dirs, plan.centers_count))
            .collect();
        Recorder {
            points,
            directions,
            stats,
        }
    }

    /// Recorder that records nothing.
    pub fn none(plan: &Plan) -> Self {
        Recorder::new(plan, vec![], vec![])
    }

    /// Index into `points` of time point j, if recorded.
    pub fn slot(&self, j: usize) -> Option<usize> {
        self.points.binary_search(&j).ok()
    }

    /// Slots whose points fall in the range.
    pub fn slots_in(&self, range: Range<usize>) -> Range<usize> {
        let lo = self.points.partition_point(|&p| p < range.start);
        let hi = self.points.partition_point(|&p| p < range.end);
        lo..hi.max(lo)
    }

    /// Slots an `advance(from, to)` records: points in `(from, to]`, and `from` itself only at the
    /// start of a trajectory (from = 0). A trajectory advanced in segments is thus recorded once
    /// at every point, whatever the segments.
    pub fn slots_for(&self, from: usize, to: usize) -> Range<usize> {
        let lo = if from == 0 { 0 } else { from + 1 };
        self.slots_in(lo..to + 1)
    }

    /// The same recorder with empty accumulators.
    pub fn fresh(&self, plan: &Plan) -> Self {
        Recorder::new(plan, self.points.clone(), self.directions.clone())
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (a, b) in self.stats.iter_mut().zip(&other.stats) {
            a.merge(b);
        }
    }
}

/// An engine advances batches of particles through a plan.
/// Batches are multiples of this many particles, so that tiles and workgroups never straddle a
/// batch boundary and folding order is independent of the batch size.
pub const BATCH_ALIGN: usize = 1024;

pub trait Engine {
    /// Particle state as the engine holds it (host memory, GPU buffers).
    type Batch;

    /// A one-line description (backend, adapter, threads).
    fn describe(&self) -> String;

    /// The largest batch this engine takes for the plan (memory, binding limits); drivers stream
    /// larger runs through in batches of at most this many particles.
    fn max_batch(&self, plan: &Plan) -> usize;

    /// The first batch of a run sized by its measured rate (no `--batch`): small, so that a
    /// slow device completes it within seconds; later batches grow from its rate.
    fn first_batch(&self, _plan: &Plan) -> usize {
        BATCH_ALIGN
    }

    /// Draws particles `ids` from the plan's start distribution with the run's seed.
    fn start(&self, plan: &Plan, seed: u64, ids: &[u64]) -> Result<Self::Batch>;

    /// Moves the batch from time point `from` to `to`, evaluating the logits (labels, last-change
    /// times) at every point of `from..=to` and reducing at the recorder's points
    /// [`Recorder::slots_for`]`(from, to)`.
    fn advance(
        &self,
        plan: &Plan,
        batch: &mut Self::Batch,
        from: usize,
        to: usize,
        rec: &mut Recorder,
    ) -> Result<()>;

    /// Two clones of every particle, adjacent: the first keeps the id, the second moves to `stream`.
    fn branch(&self, batch: &Self::Batch, stream: u16) -> Result<Self::Batch>;

    /// Final labels, last-change times and clone-pair agreement.
    fn tally(&self, plan: &Plan, batch: &Self::Batch) -> Result<Tally>;

    /// A host copy of the batch (samples, tests).
    fn read(&self, batch: &Self::Batch) -> Result<Particles>;

    /// A batch holding `particles` (as [`Engine::read`] returned them), with the run's seed: a
    /// checkpointed batch resumes from it exactly.
    fn load(&self, plan: &Plan, seed: u64, particles: &Particles) -> Result<Self::Batch>;

    /// Builds once what the engine needs of `plan` before its first step (the CPU engine's
    /// pruning table), which the first step would otherwise spend its time on.
    fn prepare(&self, _plan: &Plan) {}

    /// Per time point j: the tiles of training points the empirical softmax pruned and the tiles
    /// it had, summed over blocks of particles, since the last call ([`crate::plan::prune`]);
    /// empty for an engine that does not prune.
    fn take_pruning(&self) -> Vec<[u64; 2]> {
        vec![]
    }
}
