//! What one run of a study accumulates while it measures, apart from its immutable inputs:
//! warnings, why it stopped, its checkpoint store and its progress bar; and the one phase
//! sequence every measurement goes through ([`Session::phase`]).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::Inputs;
use super::speciation::pair_steps;
use super::store::{PhaseState, Store};
use crate::engine::{Engine, Recorder};
use crate::measure::checkpoint::{Checkpointer, Resumable, Snapshot};
use crate::measure::cloning::{Cloning, Pairs, clone_pairs_from};
use crate::measure::run::{RunOutcome, RunSpec, run_from};
use crate::measure::{Stop, Tick};
use crate::plan::Plan;
use crate::report::Progress;

/// What one run of a study accumulates: warnings, why it stopped early, and its checkpoints.
#[derive(Default)]
pub struct Session {
    quiet: bool,
    pub warnings: Vec<String>,
    /// Why a measurement stopped before completing; partial results are still reported.
    pub stopped: Option<Stop>,
    /// Where checkpoints go (`--checkpoint-every`), shared by the phases.
    store: Option<Arc<Mutex<Store>>>,
    /// The snapshot of each phase to resume from (`regimes resume`).
    resume: Vec<Option<Snapshot<PhaseState>>>,
    /// Wall time of the study's set-up (training set, theory, plan).
    pub setup_seconds: f64,
    /// One progress bar over the whole study's measurement, when the driver began one.
    progress: Option<(Progress, String)>,
}

impl Session {
    pub fn new(quiet: bool) -> Session {
        Session {
            quiet,
            ..Session::default()
        }
    }

    /// Saves checkpoints into `store` from now on, and resumes each phase from `resume`.
    pub fn set_store(&mut self, store: Store, resume: Vec<Option<Snapshot<PhaseState>>>) {
        self.store = Some(Arc::new(Mutex::new(store)));
        self.resume = resume;
    }

    /// One progress bar and ETA over `work` particle-steps of the study `what`, across the
    /// phases to come.
    pub fn begin_progress(&mut self, work: u64, what: &str) {
        self.progress = (work > 0).then(|| (Progress::new(work, what, self.quiet), what.into()));
    }

    /// Ends the study's progress bar (a summary line in logs, named for the study).
    pub fn finish_progress(&mut self) {
        if let Some((p, what)) = self.progress.take() {
            p.phase(&what);
            p.finish();
        }
    }

    pub fn checkpointing(&self) -> bool {
        self.store.is_some()
    }

    pub fn warn_all(&mut self, warnings: &[String]) {
        for w in warnings {
            if !self.quiet {
                crate::note!("warning: {w}");
            }
            self.warnings.push(w.clone());
        }
    }

    /// Records the first reason to stop.
    pub fn stopped(&mut self, reason: Option<Stop>) {
        if self.stopped.is_none() {
            self.stopped = reason;
        }
    }

    /// One phase of a measurement (trajectories, clone pairs): its slice of `total` units, the
    /// snapshot to resume phase `index` from, its checkpointer, and a progress bar over the
    /// `per_unit` particle-steps of each unit still to do. Records why it stopped early.
    pub fn phase<S, T>(
        &mut self,
        inputs: &Inputs,
        index: usize,
        (total, per_unit): (u64, u64),
        what: &str,
        f: impl FnOnce(Phase<S>) -> Result<T>,
    ) -> Result<T>
    where
        S: Resumable + TryFrom<PhaseState, Error = anyhow::Error> + Into<PhaseState> + 'static,
        T: Stopped,
    {
        let range = inputs.range(total);
        let resume = self
            .resume
            .get_mut(index)
            .and_then(Option::take)
            .map(|snap| {
                Ok::<_, anyhow::Error>(Snapshot {
                    state: S::try_from(snap.state)?,
                    particles: snap.particles,
                })
            })
            .transpose()?;
        let skipped = resume.as_ref().map_or(0, |r| r.work_done(&range, per_unit));
        let work = ((range.end - range.start) * per_unit).saturating_sub(skipped);
        let mut ckpt = self.checkpointer::<S>(index);
        let out = match &self.progress {
            // The study's bar: this phase's skipped work leaves its total.
            Some((p, _)) => {
                p.skip(skipped);
                p.phase(what);
                f(Phase {
                    range,
                    resume,
                    ckpt: ckpt.as_mut(),
                    tick: &mut |n| p.inc(n),
                })
            }
            None => inputs.with_progress(work, what, |tick| {
                f(Phase {
                    range,
                    resume,
                    ckpt: ckpt.as_mut(),
                    tick,
                })
            }),
        }?;
        self.stopped(out.stopped());
        Ok(out)
    }

    /// Phase `index`: the study's `particles` trajectories (this slice of them) through the whole
    /// plan, with the config's seed, batch and `--save-samples`, recorded by `rec`.
    pub fn trajectories<E: Engine>(
        &mut self,
        inputs: &Inputs,
        index: usize,
        (engine, plan): (&E, &Plan),
        (particles, rec): (u64, Recorder),
        what: &str,
    ) -> Result<RunOutcome> {
        let cfg = &inputs.cfg;
        let spec = RunSpec {
            seed: cfg.seed,
            particles,
            keep_samples: cfg.save_samples,
            batch: cfg.batch,
        };
        let steps = inputs.grid.steps as u64;
        self.phase(inputs, index, (particles, steps), what, |ph| {
            run_from(
                engine, plan, spec, ph.range, rec, ph.resume, ph.ckpt, ph.tick,
            )
        })
    }

    /// Phase `index`: the study's `pairs` clone pairs (this slice of them), branched at the grid
    /// points `branch_steps`, with the config's seed and batch.
    pub fn clone_pairs<E: Engine>(
        &mut self,
        inputs: &Inputs,
        index: usize,
        (engine, plan): (&E, &Plan),
        (pairs, branch_steps): (u64, &[usize]),
        classes: Option<&[u32]>,
    ) -> Result<Cloning> {
        let cfg = &inputs.cfg;
        let seeded = Pairs {
            seed: cfg.seed,
            batch: cfg.batch,
            classes,
        };
        let per_pair = pair_steps(branch_steps, plan.grid.steps);
        self.phase(inputs, index, (pairs, per_pair), "clone pairs", |ph| {
            clone_pairs_from(
                engine,
                plan,
                seeded,
                ph.range,
                branch_steps,
                ph.resume,
                ph.ckpt,
                ph.tick,
            )
        })
    }

    /// Saves the state of phase `index` as it ends (the next phase starts from it).
    pub fn save_phase<S: Into<PhaseState>>(&self, index: usize, snap: Snapshot<S>) -> Result<()> {
        match &self.store {
            Some(store) => lock(store).save(index, snap.state.into(), snap.particles),
            None => Ok(()),
        }
    }

    fn checkpointer<S: Into<PhaseState> + 'static>(
        &self,
        index: usize,
    ) -> Option<Checkpointer<'static, S>> {
        let store = self.store.clone()?;
        let every = lock(&store).file().every;
        Some(Checkpointer::new(
            every,
            Box::new(move |snap: Snapshot<S>| {
                lock(&store).save(index, snap.state.into(), snap.particles)
            }),
        ))
    }
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a phase of a measurement gets from its session.
pub struct Phase<'a, 'c, S> {
    pub range: Range<u64>,
    pub resume: Option<Snapshot<S>>,
    pub ckpt: Option<&'c mut Checkpointer<'static, S>>,
    pub tick: Tick<'a>,
}

/// A measurement's outcome that may have stopped early.
pub trait Stopped {
    fn stopped(&self) -> Option<Stop>;
}

impl Stopped for crate::measure::run::RunOutcome {
    fn stopped(&self) -> Option<Stop> {
        self.stopped.clone()
    }
}

impl Stopped for crate::measure::cloning::Cloning {
    fn stopped(&self) -> Option<Stop> {
        self.stopped.clone()
    }
}
