//! A general run: particles from t = T to 0, with statistics at chosen time points.

use std::ops::Range;

use anyhow::{Result, anyhow, ensure};
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpointer, Resumable, Snapshot};
use super::{Tick, advance, batch_size};
use crate::engine::{Engine, Particles, Recorder};
use crate::plan::Plan;
use crate::rng::rng_id;
use crate::stats::{PointStats, Tally};
use crate::stop::Stop;

pub struct RunOutcome {
    /// Statistics at the recorded time points.
    pub recorder: Recorder,
    /// Final labels and per-trajectory last-change times.
    pub tally: Tally,
    /// Final positions, when asked for.
    pub samples: Option<Particles>,
    /// Particles that completed (all of them unless stopped early).
    pub particles_done: u64,
    /// Why the run stopped before all particles were done (interrupt, device error).
    pub stopped: Option<Stop>,
}

/// What to run: particles `0..particles` with the run's seed.
#[derive(Clone, Copy, Debug)]
pub struct RunSpec {
    pub seed: u64,
    pub particles: u64,
    /// Keep the final positions (memory grows with the particle count).
    pub keep_samples: bool,
    /// Requested batch size (capped by the engine).
    pub batch: Option<usize>,
}

/// Runs the particles of `spec` through the whole plan.
pub fn run<E: Engine>(
    engine: &E,
    plan: &Plan,
    spec: RunSpec,
    recorder: Recorder,
    tick: Tick,
) -> Result<RunOutcome> {
    run_from(
        engine,
        plan,
        spec,
        0..spec.particles,
        recorder,
        None,
        None,
        tick,
    )
}

/// What a run has folded so far: the statistics of the completed batches of its particle range,
/// the next particle index, and the batch in flight, if any (see [`super::checkpoint`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunState {
    /// The first particle index not folded into `stats` and `tally`.
    pub next: u64,
    /// One per recorded point.
    pub stats: Vec<PointStats>,
    pub tally: Tally,
    pub done: u64,
    /// Index of the final samples' particle set (with --save-samples).
    pub samples: Option<usize>,
    pub flight: Option<RunFlight>,
}

/// A batch caught between two segments: particles `next..next + len` at `step`, and the
/// recorder with its statistics folded in at the points it passed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunFlight {
    pub step: usize,
    pub stats: Vec<PointStats>,
    /// Index of its particle set.
    pub particles: usize,
}

/// Runs the particles `range` of `spec` (the whole of `spec.particles` is the study; `range` is a
/// shard of it), starting from a snapshot when given and saving snapshots through `ckpt`.
#[allow(clippy::too_many_arguments)]
pub fn run_from<E: Engine>(
    engine: &E,
    plan: &Plan,
    spec: RunSpec,
    range: Range<u64>,
    recorder: Recorder,
    resume: Option<Snapshot<RunState>>,
    mut ckpt: Option<&mut Checkpointer<RunState>>,
    tick: Tick,
) -> Result<RunOutcome> {
    let RunSpec {
        seed,
        keep_samples,
        batch,
        ..
    } = spec;
    let n = plan.grid.steps;
    let mut out = RunOutcome {
        recorder,
        tally: Tally::new(plan.centers_count, n + 1),
        samples: keep_samples.then(|| Particles::empty(plan.dim)),
        particles_done: 0,
        stopped: None,
    };
    let mut next = range.start;
    // The batch in flight at the snapshot: (step, recorder, particles).
    let mut flight: Option<(usize, Recorder, Particles)> = None;
    if let Some(snap) = resume {
        let state = snap.state;
        let mut sets = snap.particles.into_iter().map(Some).collect::<Vec<_>>();
        let mut take = |i: usize| -> Result<Particles> {
            sets.get_mut(i)
                .and_then(Option::take)
                .ok_or_else(|| anyhow!("checkpoint: particle set {i} is missing"))
        };
        ensure!(
            state.stats.len() == out.recorder.stats.len()
                && state.tally.last_change.len() == out.tally.last_change.len()
                && (range.start..=range.end).contains(&state.next),
            "checkpoint: its statistics do not match this run's record points and grid"
        );
        out.recorder.stats = state.stats;
        out.tally = state.tally;
        out.particles_done = state.done;
        next = state.next;
        if let Some(i) = state.samples {
            out.samples = Some(take(i)?);
        }
        if let Some(f) = state.flight {
            let mut rec = out.recorder.clone();
            rec.stats = f.stats;
            let p = take(f.particles)?;
            ensure!(
                f.step <= n && p.dim == plan.dim && p.len() as u64 <= range.end - next,
                "checkpoint: the batch in flight does not fit this run"
            );
            flight = Some((f.step, rec, p));
        }
    }
    let sizer = super::Sizer::new(
        batch_size(engine, plan, batch),
        super::BATCH_ALIGN,
        engine.first_batch(plan),
        batch.is_some(),
    );
    let bound = plan.marginal_scale();
    let segment = ckpt.as_ref().map_or(super::SEGMENT, |c| c.segment());
    // The batch in flight first, then whole batches from the end of it.
    let flight_end = next + flight.as_ref().map_or(0, |f| f.2.len() as u64);
    let flight_range = (flight.is_some()).then_some(next..flight_end);
    let ranges = flight_range
        .into_iter()
        .chain(sizer.ranges(flight_end..range.end));
    let stopped = super::batch_loop(
        ranges,
        &mut out,
        &mut ckpt,
        |out, at| snapshot(out, at, None),
        |batch_range, out, ckpt| {
            let start = batch_range.start;
            let count = batch_range.end - start;
            let clock = std::time::Instant::now();
            let (mut b, mut recorder, at) = match flight.take() {
                Some((step, rec, p)) => (engine.load(plan, seed, &p)?, rec, step),
                None => {
                    let ids: Vec<u64> = batch_range.map(|i| rng_id(i, 0)).collect();
                    // Fold into a copy, so a batch that fails half-way leaves no trace.
                    (engine.start(plan, seed, &ids)?, out.recorder.clone(), 0)
                }
            };
            let result = {
                let out = &*out;
                let mut boundary = |step: usize, steps: u64, b: &E::Batch, rec: &Recorder| {
                    if let Some(c) = ckpt.as_deref_mut()
                        && c.due(steps)
                    {
                        let p = engine.read(b)?;
                        c.save(snapshot(out, start, Some((step, rec, p))))?;
                    }
                    Ok(())
                };
                advance(
                    engine,
                    plan,
                    &mut b,
                    (at, n),
                    &mut recorder,
                    count,
                    tick,
                    (segment, &mut boundary),
                )
            };
            if let Err(e) = result {
                // Interrupted: the points this batch already passed keep its statistics (their
                // counts say how many particles they hold); its trajectories are not done.
                if e.is::<super::Interrupted>() {
                    out.recorder = recorder;
                }
                return Ok(Err(Stop::from_error(&e)));
            }
            // An error, not a stop: the first batch whose particles blew up ends the run.
            check_scale(&recorder, plan, bound)?;
            let folded = (|| -> Result<()> {
                let tally = engine.tally(plan, &b)?;
                let samples = out.samples.is_some().then(|| engine.read(&b)).transpose()?;
                out.recorder = recorder;
                out.tally.merge(&tally);
                if let (Some(s), Some(p)) = (&mut out.samples, samples) {
                    s.extend(p);
                }
                out.particles_done += count;
                // A resumed batch in flight ran part of its steps: its rate is not a batch's.
                if at == 0 {
                    sizer.observe(count, clock.elapsed().as_secs_f64());
                }
                Ok(())
            })();
            Ok(folded.map_err(|e| Stop::Failed(format!("{e:#}"))))
        },
    )?;
    out.stopped = stopped;
    check_finite(&out, plan)?;
    Ok(out)
}

/// A run's snapshot: what `out` folded, from particle `at` on, and the batch in flight (its step,
/// recorder and particles) if any.
fn snapshot(
    out: &RunOutcome,
    at: u64,
    flight: Option<(usize, &Recorder, Particles)>,
) -> Snapshot<RunState> {
    let mut particles = vec![];
    let samples = out.samples.as_ref().map(|s| {
        particles.push(s.clone());
        particles.len() - 1
    });
    let flight = flight.map(|(step, rec, p)| {
        particles.push(p);
        RunFlight {
            step,
            stats: rec.stats.clone(),
            particles: particles.len() - 1,
        }
    });
    Snapshot {
        state: RunState {
            next: at,
            stats: out.recorder.stats.clone(),
            tally: out.tally.clone(),
            done: out.particles_done,
            samples,
            flight,
        },
        particles,
    }
}

impl Resumable for RunState {
    fn next(&self) -> u64 {
        self.next
    }

    fn flight_work(&self, particles: &[Particles]) -> u64 {
        self.flight.as_ref().map_or(0, |f| {
            let n = particles.get(f.particles).map_or(0, Particles::len);
            n as u64 * f.step as u64
        })
    }
}

impl RunOutcome {
    /// The final state of a completed run of particles `range` (what a shard holds).
    pub fn state(&self, range: &Range<u64>) -> RunState {
        RunState {
            next: range.end,
            stats: self.recorder.stats.clone(),
            tally: self.tally.clone(),
            done: self.particles_done,
            samples: None,
            flight: None,
        }
    }
}

/// How far beyond the forward marginals' scale ([`Plan::marginal_scale`]) the particles' mean
/// |x|² may go before a run is stopped: far beyond any honest sampler's error, long before f32
/// overflows.
pub const SCALE_GUARD: f64 = 1e4;

/// Stops a run whose particles left the scale of the forward marginal: the mean |x|² at a
/// recorded point (from the moments already folded, so free) above [`SCALE_GUARD`] × the
/// marginals' bound, or inf or NaN. One particle alone trips it past `count × SCALE_GUARD ×` the
/// bound.
fn check_scale(recorder: &Recorder, plan: &Plan, bound: f64) -> Result<()> {
    for (&j, s) in recorder.points.iter().zip(&recorder.stats) {
        let c = &s.coords;
        if c.count == 0 {
            continue;
        }
        let norm2: f64 =
            c.mean.iter().map(|m| m * m).sum::<f64>() + c.m2.iter().sum::<f64>() / c.count as f64;
        ensure!(
            norm2 <= SCALE_GUARD * bound,
            "the particles left the scale of the forward marginal by t = {:.4}: their mean |x|² \
             is {norm2:.3e}, beyond {SCALE_GUARD:.0e} × {bound:.3e} (the most any marginal of \
             this model reaches); the step is too coarse for this model (use more --steps or \
             --scheme exact) or the model overflows f32",
            plan.grid.time(j)
        );
    }
    Ok(())
}

/// Refuses results that hold inf or NaN or left the marginals' scale ([`check_scale`]): the
/// particles blew up, and the statistics would say so only as nulls or nonsense in the JSON.
fn check_finite(out: &RunOutcome, plan: &Plan) -> anyhow::Result<()> {
    let bound = plan.marginal_scale();
    check_scale(&out.recorder, plan, bound)?;
    if let Some(s) = &out.samples {
        let far =
            s.x.chunks(plan.dim.max(1))
                .map(|x| x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>())
                .fold(0.0, |a: f64, b| if b.is_nan() { b } else { a.max(b) });
        anyhow::ensure!(
            far <= SCALE_GUARD * bound,
            "the final samples hold inf or NaN or a point with |x|² = {far:.3e}, beyond \
             {SCALE_GUARD:.0e} × {bound:.3e} (the most any marginal of this model reaches): the \
             step is too coarse for this model (use more --steps or --scheme exact) or the model \
             overflows f32"
        );
    }
    Ok(())
}
