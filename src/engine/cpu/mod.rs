//! The CPU engine: tiles of particles advanced in parallel with rayon, each tile in blocks of SIMD
//! lanes ([`lanes`]). Each kernel of `shaders/` has its CPU twin here, under the same name:
//! [`start`], [`step`] (scalar reference) and [`lanes`] (the same step across SIMD lanes, its
//! register-blocked products in [`products`]),
//! [`reduce`], [`tally`], [`branch`]. Tiles have a fixed size and their statistics are folded in particle
//! order, so results are bit-identical for any thread count and batch size (a multiple of the
//! tile).

use anyhow::Result;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
pub mod avx512;
pub mod branch;
pub mod lanes;
pub mod products;
pub mod reduce;
pub mod start;
pub mod step;
pub mod tally;

pub use tally::tally_particles;

use lanes::{Block, Evaluation, GROUP, run_group};
use reduce::record;

use super::{Engine, NO_LABEL, Particles, Recorder};
use crate::plan::{Chunk, Plan};
use crate::rng;
use crate::stats::{PointStats, Tally};

/// Particles per block: two AVX-512 registers, four AVX2 registers, eight NEON registers. Two
/// AVX-512 registers per block let each broadcast coefficient feed two fused multiply-adds.
pub const LANES: usize = 32;

/// One f32 per particle of a block.
pub type Lanes = [f32; LANES];

/// Particles per tile: the unit of parallel work and of statistics folding. One group of SIMD
/// blocks, so that a study of a few hundred particles on a large training set still spreads over
/// the threads (with 256, 200 trajectories on 60 000 points ran on one core of two).
pub const TILE: usize = GROUP * LANES;

/// The particles `ids` drawn from `plan`'s start distribution, tile by tile in parallel (on the
/// calling thread pool): [`Engine::start`] of the CPU engine, and the GPU engine's start where
/// its driver cannot run the start kernel.
pub fn start_particles(plan: &Plan, seed: u64, ids: &[u64]) -> Particles {
    let d = plan.dim;
    let key = rng::key(seed);
    let mut x = vec![0.0f32; ids.len() * d];
    x.par_chunks_mut(TILE * d)
        .zip(ids.par_chunks(TILE))
        .for_each(|(xs, tile_ids)| start::start_rows(&plan.start, key, tile_ids, xs));
    let n = ids.len();
    Particles {
        dim: d,
        x,
        ids: ids.to_vec(),
        label: vec![NO_LABEL; n],
        changed: vec![0; n],
        drawn: vec![NO_LABEL; n],
    }
}

pub struct CpuEngine {
    pool: Option<rayon::ThreadPool>,
    /// Whether the empirical softmax prunes tiles (exact; off only to compare).
    prune: bool,
    /// Per time point j: block-tile evaluations pruned and in all, since the last
    /// [`Engine::take_pruning`].
    pruning: std::sync::Mutex<Vec<[u64; 2]>>,
}

/// CPU particle state: the host copy itself, plus the seed that keys its noise.
pub struct CpuBatch {
    pub particles: Particles,
    pub seed: u64,
}

impl CpuEngine {
    /// Uses rayon's global pool (all cores, or `RAYON_NUM_THREADS`).
    pub fn new() -> Self {
        CpuEngine {
            pool: None,
            prune: true,
            pruning: Default::default(),
        }
    }

    /// The same engine with pruning off: every tile of training points is computed (the same
    /// bits, more work; for comparisons).
    pub fn without_pruning(mut self) -> Self {
        self.prune = false;
        self
    }

    /// Uses a private pool of `threads` threads.
    pub fn with_threads(threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        Ok(CpuEngine {
            pool: Some(pool),
            ..CpuEngine::new()
        })
    }

    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn threads(&self) -> usize {
        self.pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads())
    }
}

impl Default for CpuEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine for CpuEngine {
    type Batch = CpuBatch;

    fn describe(&self) -> String {
        format!("cpu ({} threads)", self.threads())
    }

    fn max_batch(&self, plan: &Plan) -> usize {
        // About 64 MiB of positions: memory stays flat however many particles a run has.
        ((16 << 20) / plan.dim.max(1)).div_ceil(TILE).max(1) * TILE
    }

    fn start(&self, plan: &Plan, seed: u64, ids: &[u64]) -> Result<CpuBatch> {
        Ok(CpuBatch {
            particles: self.run(|| start_particles(plan, seed, ids)),
            seed,
        })
    }

    fn advance(
        &self,
        plan: &Plan,
        batch: &mut CpuBatch,
        from: usize,
        to: usize,
        rec: &mut Recorder,
    ) -> Result<()> {
        anyhow::ensure!(
            from <= to && to <= plan.grid.steps,
            "advance: bad range {from}..={to}"
        );
        let d = plan.dim;
        let key = rng::key(batch.seed);
        let p = &mut batch.particles;
        if self.prune {
            // Built here, not at first use inside the parallel loop: a worker waiting for the
            // table's own parallel build could steal a tile that asks for it again.
            self.run(|| plan.tiles());
        }
        for c in plan.chunk_of(from)..=plan.chunk_of(to) {
            let chunk = plan.chunk(c)?;
            let lo = from.max(chunk.first);
            let hi = to.min(chunk.first + chunk.len - 1);
            // The recorder's points in this chunk, `from` only at a trajectory's start.
            let first = if from == 0 { lo } else { lo.max(from + 1) };
            let slots = rec.slots_in(first..hi + 1);
            let recording = Recording {
                points: &rec.points[slots.clone()],
                directions: &rec.directions,
            };
            let prune = self.prune;
            let tiles: Vec<(Vec<PointStats>, Vec<[u64; 2]>)> = self.run(|| {
                p.x.par_chunks_mut(TILE * d)
                    .zip(p.ids.par_chunks(TILE))
                    .zip(p.label.par_chunks_mut(TILE))
                    .zip(p.changed.par_chunks_mut(TILE))
                    .zip(p.drawn.par_chunks_mut(TILE))
                    .map(|((((xs, ids), labels), changed), drawn)| {
                        let tile = TileState {
                            xs,
                            ids,
                            labels,
                            changed,
                            drawn,
                        };
                        advance_tile(plan, &chunk, key, (lo, hi, to), &recording, tile, prune)
                    })
                    .collect()
            });
            let mut pruning = self.pruning.lock().expect("pruning counts");
            if pruning.len() <= hi {
                pruning.resize(hi + 1, [0; 2]);
            }
            for (stats, counts) in &tiles {
                for (acc, part) in rec.stats[slots.clone()].iter_mut().zip(stats) {
                    acc.merge(part);
                }
                for (acc, c) in pruning[lo..=hi].iter_mut().zip(counts) {
                    acc[0] += c[0];
                    acc[1] += c[1];
                }
            }
        }
        Ok(())
    }

    fn branch(&self, batch: &CpuBatch, stream: u16) -> Result<CpuBatch> {
        let out = branch::branch_particles(&batch.particles, stream);
        Ok(CpuBatch {
            particles: out,
            seed: batch.seed,
        })
    }

    fn tally(&self, plan: &Plan, batch: &CpuBatch) -> Result<Tally> {
        Ok(tally_particles(plan, &batch.particles))
    }

    fn read(&self, batch: &CpuBatch) -> Result<Particles> {
        Ok(batch.particles.clone())
    }

    fn prepare(&self, plan: &Plan) {
        if self.prune {
            self.run(|| plan.tiles());
        }
    }

    fn take_pruning(&self) -> Vec<[u64; 2]> {
        std::mem::take(&mut *self.pruning.lock().expect("pruning counts"))
    }

    fn load(&self, plan: &Plan, seed: u64, particles: &Particles) -> Result<CpuBatch> {
        check_particles(plan, particles)?;
        Ok(CpuBatch {
            particles: particles.clone(),
            seed,
        })
    }
}

/// Particles a batch can hold: the plan's dimension, consistent lengths.
pub(crate) fn check_particles(plan: &Plan, p: &Particles) -> Result<()> {
    let n = p.ids.len();
    anyhow::ensure!(
        p.dim == plan.dim
            && p.x.len() == n * p.dim
            && p.label.len() == n
            && p.changed.len() == n
            && p.changed.iter().all(|&c| c as usize <= plan.grid.steps)
            && p.drawn.len() == n
            && p.drawn
                .iter()
                .all(|&k| k == NO_LABEL || (k as usize) < plan.centers_count),
        "particles of dimension {} with {} ids do not fit this plan (d = {})",
        p.dim,
        n,
        plan.dim
    );
    Ok(())
}

/// The points a tile records at (ascending) and the directions it projects on.
struct Recording<'a> {
    points: &'a [usize],
    directions: &'a [f32],
}

/// The particles of one tile, row-major.
struct TileState<'a> {
    xs: &'a mut [f32],
    ids: &'a [u64],
    labels: &'a mut [u32],
    changed: &'a mut [u32],
    drawn: &'a mut [u32],
}

/// Moves one tile through `lo..=hi` in groups of SIMD blocks, in particle order, and returns its
/// statistics at the recorded points (folded in particle order) and, per point of `lo..=hi`, the
/// block-tiles of training points pruned and in all.
fn advance_tile(
    plan: &Plan,
    chunk: &Chunk,
    key: [u32; 2],
    range: (usize, usize, usize),
    recording: &Recording,
    tile: TileState,
    prune: bool,
) -> (Vec<PointStats>, Vec<[u64; 2]>) {
    let d = plan.dim;
    let dirs = recording.directions.len() / d;
    let mut stats: Vec<PointStats> = recording
        .points
        .iter()
        .map(|_| PointStats::new(d, dirs, plan.centers_count))
        .collect();
    let mut blocks: Vec<Block> = (0..GROUP).map(|_| Block::new(plan)).collect();
    let mut row = vec![0.0f32; d];
    let mut counts = vec![[0u64; 2]; range.1 + 1 - range.0];
    let per_group = GROUP * LANES;
    let groups = tile
        .xs
        .chunks_mut(per_group * d)
        .zip(tile.ids.chunks(per_group))
        .zip(tile.labels.chunks_mut(per_group))
        .zip(tile.changed.chunks_mut(per_group))
        .zip(tile.drawn.chunks_mut(per_group));
    for ((((xg, idg), lg), cg), dg) in groups {
        let used = idg.len().div_ceil(LANES);
        for (b, (xb, idb)) in blocks
            .iter_mut()
            .zip(xg.chunks(LANES * d).zip(idg.chunks(LANES)))
        {
            b.load(xb, idb);
        }
        // `run_group` reports each block in turn at every point; a recorded point is complete
        // once the group's last block has reported.
        let mut slot = 0;
        let mut first_lane = 0;
        let mut record = |j: usize, b: &Block, ev: &Evaluation| {
            let count = &mut counts[j - range.0];
            count[0] += u64::from(ev.pruned);
            count[1] += u64::from(ev.tiles);
            if recording.points.get(slot) != Some(&j) {
                return;
            }
            for l in 0..(idg.len() - first_lane).min(LANES) {
                b.row(l, &mut row);
                record(
                    &mut stats[slot],
                    &row,
                    recording.directions,
                    ev.label[l],
                    ev.purity[l],
                );
            }
            first_lane += LANES;
            if first_lane >= idg.len() {
                first_lane = 0;
                slot += 1;
            }
        };
        run_group(
            plan,
            chunk,
            key,
            range,
            &mut blocks[..used],
            lg,
            cg,
            dg,
            (prune, recording.points),
            &mut record,
        );
        for (b, xb) in blocks.iter().zip(xg.chunks_mut(LANES * d)) {
            b.store(xb);
        }
    }
    (stats, counts)
}
