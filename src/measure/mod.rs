//! Measurements built on any [`Engine`]: general runs, the cloning experiment (speciation and
//! clone-collapse), per-trajectory collapse times and the excess entropy. Runs are streamed
//! through the engine in batches of particle ids, and every statistic is folded in id order, so
//! memory stays flat and results do not depend on the batch size.

pub mod cloning;
pub mod entropy;
pub mod run;

pub mod checkpoint;

use std::ops::Range;

pub use crate::engine::BATCH_ALIGN;
pub use crate::stop::{Interrupted, Stop, request_stop, stop_reason};
pub use checkpoint::{Checkpointer, Every, Shard};

use crate::engine::{Engine, Recorder};
use crate::plan::Plan;

/// Splits particle indices `0..total` into consecutive batches of `size` (the last may be
/// shorter).
pub fn batches(total: u64, size: usize) -> impl Iterator<Item = Range<u64>> {
    batches_in(0..total, size)
}

/// Splits particle indices `range` into consecutive batches of `size` starting at `range.start`
/// (the last may be shorter).
pub fn batches_in(range: Range<u64>, size: usize) -> impl Iterator<Item = Range<u64>> {
    let size = size.max(1) as u64;
    let Range { start, end } = range;
    let count = end.saturating_sub(start).div_ceil(size);
    (0..count).map(move |b| start + b * size..(start + (b + 1) * size).min(end))
}

/// The batch size to use: the user's request capped by the engine, rounded down to the
/// alignment (unless the engine takes less than one aligned block).
pub fn batch_size<E: Engine>(engine: &E, plan: &Plan, requested: Option<usize>) -> usize {
    let cap = engine.max_batch(plan).max(1);
    let want = requested.map_or(cap, |r| r.min(cap));
    if want >= BATCH_ALIGN {
        want / BATCH_ALIGN * BATCH_ALIGN
    } else {
        want
    }
}

/// The wall time an automatically sized batch aims at. A stop keeps the completed batches and
/// only the statistics of the one in flight, so a batch must end within seconds: a single batch
/// of the engine's largest size (two million particles on a GPU) can take minutes on a slow
/// adapter and leave nothing when stopped. Long enough that per-batch costs (start, tally,
/// fold) stay small.
pub const BATCH_SECONDS: f64 = 2.0;

/// Consecutive batches of a range of particle ids (or pairs), sized as they go. With a
/// requested size (`--batch`) every batch has it, capped by the engine. Without one, the first
/// batch is one aligned block and each next one is sized from the measured rate of the last to
/// take about [`BATCH_SECONDS`], growing at most fourfold a batch, never above the engine's
/// largest. Results do not depend on the sizes (statistics fold in id order).
pub(crate) struct Sizer {
    cap: usize,
    align: usize,
    next: std::cell::Cell<usize>,
    fixed: bool,
}

impl Sizer {
    /// Batches of at most `cap` items, multiples of `align` (unless capped below one block),
    /// the first (unless `requested`) of `first` items rounded up to a block.
    pub(crate) fn new(cap: usize, align: usize, first: usize, requested: bool) -> Sizer {
        let (cap, align) = (cap.max(1), align.max(1));
        let first = first.div_ceil(align).max(1) * align;
        Sizer {
            cap,
            align,
            next: std::cell::Cell::new(if requested { cap } else { first.min(cap) }),
            fixed: requested,
        }
    }

    /// The size of the next batch.
    pub(crate) fn size(&self) -> usize {
        self.next.get()
    }

    /// `range` in consecutive batches, each of the size current when it is drawn.
    pub(crate) fn ranges(&self, range: Range<u64>) -> impl Iterator<Item = Range<u64>> + '_ {
        let mut at = range.start;
        std::iter::from_fn(move || {
            (at < range.end).then(|| {
                let end = range.end.min(at + self.size() as u64);
                let r = at..end;
                at = end;
                r
            })
        })
    }

    /// A batch of `items` completed in `seconds`: sizes the next one.
    pub(crate) fn observe(&self, items: u64, seconds: f64) {
        if self.fixed || items == 0 {
            return;
        }
        let rate = items as f64 / seconds.max(1e-6);
        let want = (rate * BATCH_SECONDS)
            .min(4.0 * items as f64)
            .min(self.cap as f64) as usize;
        let aligned = (want / self.align * self.align).max(self.align);
        self.next.set(aligned.min(self.cap));
    }
}

/// Sink for progress reports: called with the number of particle-steps just done.
pub type Tick<'a> = &'a mut dyn FnMut(u64);

/// Steps per progress report: long advances are cut into segments this long (recording is
/// unaffected, see [`Recorder::slots_for`]; each cut costs one extra logit evaluation).
pub const SEGMENT: usize = 100;

/// Steps of the first segment, and the fewest of any later one.
const MIN_SEGMENT: usize = 10;

/// The wall time a segment aims at.
const SEGMENT_SECONDS: f64 = 1.0;

/// Called at every segment boundary of an advance with (the step reached, the steps just
/// advanced, the batch, its recorder): where a checkpoint can capture the batch in flight.
pub type Boundary<'a, B> = &'a mut dyn FnMut(usize, u64, &B, &Recorder) -> anyhow::Result<()>;

/// `engine.advance(from, to)` in segments of at most `segment` steps, reporting progress after
/// each and calling `boundary` at every segment boundary (also before a stop request ends the
/// batch there).
#[allow(clippy::too_many_arguments)]
fn advance<E: Engine>(
    engine: &E,
    plan: &Plan,
    batch: &mut E::Batch,
    (from, to): (usize, usize),
    rec: &mut Recorder,
    particles: u64,
    tick: Tick,
    (segment, boundary): (usize, Boundary<E::Batch>),
) -> anyhow::Result<()> {
    let mut at = from;
    let mut just = 0u64;
    let longest = segment.clamp(1, SEGMENT);
    // Segments are sized from the measured rate to last about SEGMENT_SECONDS, so progress moves
    // and a stop request lands promptly on heavy steps; at least MIN_SEGMENT steps each, as every
    // cut costs one more evaluation of the score. Cuts never change results.
    let mut len = longest.min(MIN_SEGMENT);
    while at < to {
        boundary(at, just, batch, rec)?;
        // A stop request ends the batch at this step boundary.
        if stop_reason().is_some() {
            return Err(Interrupted.into());
        }
        let next = (at + len).min(to);
        let clock = std::time::Instant::now();
        engine.advance(plan, batch, at, next, rec)?;
        let per_step = clock.elapsed().as_secs_f64() / (next - at) as f64;
        len = ((SEGMENT_SECONDS / per_step.max(1e-9)) as usize)
            .clamp(MIN_SEGMENT.min(longest), longest);
        tick(particles * (next - at) as u64);
        just = (next - at) as u64;
        at = next;
    }
    if from == to {
        engine.advance(plan, batch, from, to, rec)?;
    }
    Ok(())
}

/// The resumable batch loop of every measurement. `ranges` are its batches (a resumed batch in
/// flight first). Before each batch a stop request ends the loop, saving a snapshot of what
/// `acc` folded (`snapshot(acc, first unfolded index)`); `batch` runs one batch and folds it into
/// `acc` (into copies first, so a batch that fails half-way leaves no trace), or returns the
/// stop that ends the loop there; after each batch a snapshot is saved when due. Errors of the
/// loop itself (a snapshot that cannot be saved, a batch that cannot start) propagate.
pub(crate) fn batch_loop<A, S, R>(
    ranges: R,
    acc: &mut A,
    ckpt: &mut Option<&mut Checkpointer<'_, S>>,
    snapshot: impl Fn(&A, u64) -> checkpoint::Snapshot<S>,
    mut batch: impl FnMut(
        Range<u64>,
        &mut A,
        &mut Option<&mut Checkpointer<'_, S>>,
    ) -> anyhow::Result<Result<(), Stop>>,
) -> anyhow::Result<Option<Stop>>
where
    R: Iterator<Item = Range<u64>>,
{
    for range in ranges {
        if let Some(stop) = stop_reason() {
            if let Some(c) = ckpt.as_deref_mut()
                && c.due(0)
            {
                c.save(snapshot(acc, range.start))?;
            }
            return Ok(Some(stop));
        }
        let end = range.end;
        if let Err(stop) = batch(range, acc, ckpt)? {
            return Ok(Some(stop));
        }
        if let Some(c) = ckpt.as_deref_mut()
            && c.due(0)
        {
            c.save(snapshot(acc, end))?;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cpu::CpuEngine;
    use crate::linalg::Linear;
    use crate::model::{Mixture, Model, Process, Target};
    use crate::plan::{Grid, Scheme, Start};

    #[test]
    fn batches_cover_the_particles_once_in_order() {
        let b: Vec<Range<u64>> = batches(2500, 1024).collect();
        assert_eq!(b, [0..1024, 1024..2048, 2048..2500]);
        assert_eq!(batches(0, 1024).count(), 0);
        assert_eq!(batches(5, 0).count(), 5, "a zero size is read as 1");
        let b: Vec<Range<u64>> = batches_in(1000..3100, 1024).collect();
        assert_eq!(b, [1000..2024, 2024..3048, 3048..3100]);
        assert_eq!(batches_in(7..7, 1024).count(), 0);
    }

    #[test]
    fn batch_sizes_are_aligned_and_capped_by_the_engine() {
        let d = 4;
        let model = Model {
            process: Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap(),
            target: Target::Mixture(Mixture::two_class(
                nalgebra::DVector::from_element(d, 1.0),
                1.0,
            )),
        };
        let grid = Grid::new(1.0, 2).unwrap();
        let plan = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
        let engine = CpuEngine::new();
        let cap = engine.max_batch(&plan);
        let full = batch_size(&engine, &plan, None);
        assert!(full <= cap && full % BATCH_ALIGN == 0 && full > 0);
        assert_eq!(batch_size(&engine, &plan, Some(5000)), 4096, "aligned down");
        assert_eq!(
            batch_size(&engine, &plan, Some(100)),
            100,
            "below one aligned block"
        );
        assert_eq!(batch_size(&engine, &plan, Some(usize::MAX)), full, "capped");
    }
}
