//! A general run: particles from t = T to 0, with statistics at chosen time points.

use anyhow::Result;

use super::{Tick, batch_size, batches};
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
    };
    for range in batches(particles, batch_size(engine, plan, batch)) {
        let ids: Vec<u64> = range.clone().map(|i| rng_id(i, 0)).collect();
        let mut b = engine.start(plan, seed, &ids)?;
        engine.advance(plan, &mut b, 0, n, &mut out.recorder)?;
        out.tally.merge(&engine.tally(plan, &b)?);
        if let Some(s) = &mut out.samples {
            let p = engine.read(&b)?;
            s.x.extend(p.x);
            s.ids.extend(p.ids);
            s.label.extend(p.label);
            s.changed.extend(p.changed);
        }
        tick(ids.len() as u64 * n as u64);
    }
    Ok(out)
}
