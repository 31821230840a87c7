//! A general run: particles from t = T to 0, with statistics at chosen time points.

use anyhow::Result;

use super::{Tick, advance, batch_size, for_each_batch};
use crate::engine::{Engine, Particles, Recorder};
use crate::plan::Plan;
use crate::rng::rng_id;
use crate::stats::Tally;

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
    pub stopped: Option<String>,
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
    let RunSpec {
        seed,
        particles,
        keep_samples,
        batch,
    } = spec;
    let n = plan.grid.steps;
    let mut out = RunOutcome {
        recorder,
        tally: Tally::new(plan.centers_count, n + 1),
        samples: keep_samples.then(|| Particles {
            dim: plan.dim,
            x: vec![],
            ids: vec![],
            label: vec![],
            changed: vec![],
        }),
        particles_done: 0,
        stopped: None,
    };
    let size = batch_size(engine, plan, batch);
    let stopped = for_each_batch(particles, size, |range| {
        let ids: Vec<u64> = range.map(|i| rng_id(i, 0)).collect();
        // Fold into a copy, so a batch that fails half-way leaves no trace.
        let mut recorder = out.recorder.clone();
        let mut b = engine.start(plan, seed, &ids)?;
        let count = ids.len() as u64;
        if let Err(e) = advance(engine, plan, &mut b, (0, n), &mut recorder, count, tick) {
            // Interrupted: the points this batch already passed keep its statistics (their
            // counts say how many particles they hold); its trajectories are not counted done.
            if e.is::<super::Interrupted>() {
                out.recorder = recorder;
            }
            return Err(e);
        }
        let tally = engine.tally(plan, &b)?;
        let samples = out.samples.is_some().then(|| engine.read(&b)).transpose()?;
        out.recorder = recorder;
        out.tally.merge(&tally);
        if let (Some(s), Some(p)) = (&mut out.samples, samples) {
            s.x.extend(p.x);
            s.ids.extend(p.ids);
            s.label.extend(p.label);
            s.changed.extend(p.changed);
        }
        out.particles_done += ids.len() as u64;
        Ok(())
    });
    out.stopped = stopped;
    check_finite(&out, plan)?;
    Ok(out)
}

/// Refuses results that hold inf or NaN: the particles blew up, and the statistics would say so
/// only as nulls in the JSON.
fn check_finite(out: &RunOutcome, plan: &Plan) -> anyhow::Result<()> {
    let bad = |v: &[f64]| v.iter().any(|x| !x.is_finite());
    for (&j, s) in out.recorder.points.iter().zip(&out.recorder.stats) {
        anyhow::ensure!(
            !(bad(&s.coords.mean) || bad(&s.coords.m2)),
            "the particles became infinite or NaN by t = {:.4}: the step is too coarse for this \
             model (use more --steps) or the model overflows f32",
            plan.grid.time(j)
        );
    }
    if let Some(s) = &out.samples {
        anyhow::ensure!(
            s.x.iter().all(|x| x.is_finite()),
            "the final samples hold inf or NaN: the step is too coarse for this model (use more \
             --steps) or the model overflows f32"
        );
    }
    Ok(())
}
