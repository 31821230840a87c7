//! The clone experiment itself: trunks run to each branch point, two clones from there to
//! t = 0, folded batch by batch, checkpointed and resumed between segments.

use std::ops::Range;

use anyhow::{Result, anyhow, ensure};
use serde::{Deserialize, Serialize};

use super::branch::{Branch, add_pairs, class_pairs, histograms};
use crate::engine::{Engine, Particles, Recorder};
use crate::measure::checkpoint::{Checkpointer, Resumable, Snapshot};
use crate::measure::{Tick, advance, batch_size};
use crate::plan::Plan;
use crate::rng::rng_id;
use crate::stats::PointStats;
use crate::stop::Stop;

/// Branches `pairs` trajectories at each grid point of `steps` and runs both clones to t = 0.
/// The trunk is run once; clones at the i-th branch point use stream i + 1.
pub fn clone_pairs<E: Engine>(
    engine: &E,
    plan: &Plan,
    seed: u64,
    pairs: u64,
    steps: &[usize],
    batch: Option<usize>,
    tick: Tick,
) -> Result<Cloning> {
    let seeded = Pairs {
        seed,
        batch,
        classes: None,
    };
    clone_pairs_from(engine, plan, seeded, 0..pairs, steps, None, None, tick)
}

/// The seed and requested batch size of a clone experiment, and the class of each label when
/// pairs are also to be counted by class (training points of a labelled data set).
#[derive(Clone, Copy, Debug)]
pub struct Pairs<'a> {
    pub seed: u64,
    pub batch: Option<usize>,
    /// With classes, [`Branch::pair_labels`] counts pairs by (class, class) instead of label.
    pub classes: Option<&'a [u32]>,
}

/// What a clone experiment has folded so far (see [`crate::measure::checkpoint`]): the trunks'
/// statistics at the branch points and the agreeing pairs of the completed batches, and the
/// batch in flight, if any.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloneState {
    /// The first pair index not folded in.
    pub next: u64,
    /// The trunks' statistics, one per branch point (ascending grid index).
    pub stats: Vec<PointStats>,
    /// Agreeing pairs per branch point.
    pub agree: Vec<u64>,
    /// The pair histogram per branch point ([`Branch::pair_labels`]).
    #[serde(default)]
    pub pair_labels: Vec<Vec<u64>>,
    pub done: u64,
    pub flight: Option<CloneFlight>,
}

/// A batch of pairs `next..next + len` caught between two segments: its trunk at `trunk_step`
/// with the branch points before `branch` done, and, when caught while the clones of `branch`
/// ran, those clones at `clones_step`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloneFlight {
    pub branch: usize,
    pub trunk_step: usize,
    pub trunk: usize,
    pub stats: Vec<PointStats>,
    pub agree: Vec<u64>,
    #[serde(default)]
    pub pair_labels: Vec<Vec<u64>>,
    pub clones: Option<(usize, usize)>,
}

/// [`clone_pairs`] on the pairs `range` (a shard of the study), starting from a snapshot when
/// given and saving snapshots through `ckpt`.
#[allow(clippy::too_many_arguments)]
pub fn clone_pairs_from<E: Engine>(
    engine: &E,
    plan: &Plan,
    Pairs {
        seed,
        batch,
        classes,
    }: Pairs,
    range: Range<u64>,
    steps: &[usize],
    resume: Option<Snapshot<CloneState>>,
    mut ckpt: Option<&mut Checkpointer<CloneState>>,
    tick: Tick,
) -> Result<Cloning> {
    let n = plan.grid.steps;
    let mut points = steps.to_vec();
    points.sort_unstable();
    points.dedup();
    ensure!(
        points.len() < u16::MAX as usize,
        "branch-times: too many branch points"
    );
    ensure!(
        points.iter().all(|&j| j < n),
        "branch-times: every branch time must be after t = 0"
    );
    let mut trunk_rec = Recorder::new(plan, points.clone(), vec![]);
    let mut agree = vec![0u64; points.len()];
    let mut pairs = vec![vec![]; points.len()];
    let mut done = 0u64;
    let mut next = range.start;
    // The batch in flight at the snapshot.
    struct Flight {
        branch: usize,
        trunk_step: usize,
        trunk: Particles,
        rec: Recorder,
        agree: Vec<u64>,
        pairs: Vec<Vec<u64>>,
        clones: Option<(usize, Particles)>,
    }
    let mut flight: Option<Flight> = None;
    if let Some(snap) = resume {
        let state = snap.state;
        let mut sets = snap.particles.into_iter().map(Some).collect::<Vec<_>>();
        let mut take = |i: usize| -> Result<Particles> {
            sets.get_mut(i)
                .and_then(Option::take)
                .ok_or_else(|| anyhow!("checkpoint: particle set {i} is missing"))
        };
        let fits = |stats: &[PointStats], agree: &[u64]| {
            stats.len() == points.len() && agree.len() == points.len()
        };
        ensure!(
            fits(&state.stats, &state.agree) && (range.start..=range.end).contains(&state.next),
            "checkpoint: its statistics do not match this study's branch points"
        );
        trunk_rec.stats = state.stats;
        agree = state.agree;
        pairs = histograms(state.pair_labels, points.len());
        done = state.done;
        next = state.next;
        if let Some(f) = state.flight {
            let trunk = take(f.trunk)?;
            let clones = f
                .clones
                .map(|(step, i)| take(i).map(|p| (step, p)))
                .transpose()?;
            ensure!(
                fits(&f.stats, &f.agree)
                    && f.branch < points.len()
                    && f.trunk_step <= points[f.branch]
                    && trunk.dim == plan.dim
                    && trunk.len() as u64 <= range.end - next
                    && clones.as_ref().is_none_or(|(s, c)| {
                        *s <= n && c.len() == 2 * trunk.len() && f.trunk_step == points[f.branch]
                    }),
                "checkpoint: the batch in flight does not fit this study"
            );
            let mut rec = trunk_rec.clone();
            rec.stats = f.stats;
            flight = Some(Flight {
                branch: f.branch,
                trunk_step: f.trunk_step,
                trunk,
                rec,
                agree: f.agree,
                pairs: histograms(f.pair_labels, points.len()),
                clones,
            });
        }
    }
    // Clones double the particles on the engine: half a batch of trunks.
    let size = (batch_size(engine, plan, batch) / 2).max(1);
    let first = engine.first_batch(plan) / 2;
    let sizer = crate::measure::Sizer::new(
        size,
        crate::measure::BATCH_ALIGN / 2,
        first,
        batch.is_some(),
    );
    let segment = ckpt
        .as_ref()
        .map_or(crate::measure::SEGMENT, |c| c.segment());
    let flight_end = next + flight.as_ref().map_or(0, |f| f.trunk.len() as u64);
    let flight_range = flight.is_some().then_some(next..flight_end);
    let ranges = flight_range
        .into_iter()
        .chain(sizer.ranges(flight_end..range.end));
    // A snapshot: the completed batches, and the batch in flight from `start` if any.
    type Folded<'a> = (&'a [PointStats], &'a [u64], &'a [Vec<u64>], u64);
    type InFlight<'a> = (
        usize,
        usize,
        Particles,
        &'a Recorder,
        &'a [u64],
        &'a [Vec<u64>],
    );
    let snapshot = |(stats, agree, pairs, done): Folded,
                    at: u64,
                    flight: Option<InFlight>,
                    clones: Option<(usize, Particles)>| {
        let mut particles = vec![];
        let flight = flight.map(|(branch, trunk_step, trunk, rec, agree, pairs)| {
            particles.push(trunk);
            let clones = clones.map(|(step, c)| {
                particles.push(c);
                (step, 1)
            });
            CloneFlight {
                branch,
                trunk_step,
                trunk: 0,
                stats: rec.stats.clone(),
                agree: agree.to_vec(),
                pair_labels: pairs.to_vec(),
                clones,
            }
        });
        Snapshot {
            state: CloneState {
                next: at,
                stats: stats.to_vec(),
                agree: agree.to_vec(),
                pair_labels: pairs.to_vec(),
                done,
                flight,
            },
            particles,
        }
    };
    // What the completed batches folded: the trunks' recorder, agreeing pairs, histograms.
    struct Acc {
        rec: Recorder,
        agree: Vec<u64>,
        pairs: Vec<Vec<u64>>,
        done: u64,
    }
    let mut acc = Acc {
        rec: trunk_rec,
        agree,
        pairs,
        done,
    };
    let stopped = crate::measure::batch_loop(
        ranges,
        &mut acc,
        &mut ckpt,
        |a, at| {
            let folded = (&a.rec.stats[..], &a.agree[..], &a.pairs[..], a.done);
            snapshot(folded, at, None, None)
        },
        |batch_range, acc, ckpt| {
            let start = batch_range.start;
            let count = batch_range.end - start;
            let (clock, fresh) = (std::time::Instant::now(), flight.is_none());
            // Fold into copies, so a batch that fails half-way leaves no trace.
            let (branch, mut at, mut trunk, mut rec, mut batch_agree, mut batch_pairs, mut clones) =
                match flight.take() {
                    Some(f) => {
                        let clones = match f.clones {
                            Some((step, c)) => Some((step, engine.load(plan, seed, &c)?)),
                            None => None,
                        };
                        let trunk = engine.load(plan, seed, &f.trunk)?;
                        (
                            f.branch,
                            f.trunk_step,
                            trunk,
                            f.rec,
                            f.agree,
                            f.pairs,
                            clones,
                        )
                    }
                    None => {
                        let ids: Vec<u64> = batch_range.map(|i| rng_id(i, 0)).collect();
                        let trunk = engine.start(plan, seed, &ids)?;
                        let rec = acc.rec.clone();
                        (0, 0, trunk, rec, acc.agree.clone(), acc.pairs.clone(), None)
                    }
                };
            let folded = (&acc.rec.stats[..], &acc.agree[..], &acc.pairs[..], acc.done);
            let result = (|| -> Result<()> {
                for (i, &j) in points.iter().enumerate().skip(branch) {
                    if clones.is_none() {
                        let mut boundary = |step: usize, steps: u64, b: &E::Batch, r: &Recorder| {
                            if let Some(c) = ckpt.as_deref_mut()
                                && c.due(steps)
                            {
                                let fl = (
                                    i,
                                    step,
                                    engine.read(b)?,
                                    r,
                                    &batch_agree[..],
                                    &batch_pairs[..],
                                );
                                c.save(snapshot(folded, start, Some(fl), None))?;
                            }
                            Ok(())
                        };
                        let seg = (segment, &mut boundary as crate::measure::Boundary<E::Batch>);
                        advance(
                            engine,
                            plan,
                            &mut trunk,
                            (at, j),
                            &mut rec,
                            count,
                            tick,
                            seg,
                        )?;
                        at = j;
                        clones = Some((j, engine.branch(&trunk, (i + 1) as u16)?));
                    }
                    let Some((from, mut c)) = clones.take() else {
                        unreachable!("clones were just branched")
                    };
                    {
                        let (trunk, rec, batch_pairs) = (&trunk, &rec, &batch_pairs);
                        let mut boundary = |step: usize, steps: u64, b: &E::Batch, _: &Recorder| {
                            if let Some(ck) = ckpt.as_deref_mut()
                                && ck.due(steps)
                            {
                                let fl = (
                                    i,
                                    j,
                                    engine.read(trunk)?,
                                    rec,
                                    &batch_agree[..],
                                    &batch_pairs[..],
                                );
                                let cl = Some((step, engine.read(b)?));
                                ck.save(snapshot(folded, start, Some(fl), cl))?;
                            }
                            Ok(())
                        };
                        let none = &mut Recorder::none(plan);
                        let seg = (segment, &mut boundary as crate::measure::Boundary<E::Batch>);
                        advance(engine, plan, &mut c, (from, n), none, 2 * count, tick, seg)?;
                    }
                    let tally = engine.tally(plan, &c)?;
                    batch_agree[i] += tally.pairs_agree;
                    match classes {
                        Some(classes) => {
                            let labels = engine.read(&c)?.label;
                            add_pairs(&mut batch_pairs[i], &class_pairs(&labels, classes));
                        }
                        None => add_pairs(&mut batch_pairs[i], &tally.pair_labels),
                    }
                }
                Ok(())
            })();
            if let Err(e) = result {
                return Ok(Err(Stop::from_error(&e)));
            }
            acc.rec = rec;
            acc.agree = batch_agree;
            acc.pairs = batch_pairs;
            acc.done += count;
            // A resumed batch in flight ran part of its steps: its rate is not a batch's.
            if fresh {
                sizer.observe(count, clock.elapsed().as_secs_f64());
            }
            Ok(Ok(()))
        },
    )?;
    let Acc {
        rec: trunk_rec,
        agree,
        pairs,
        done,
    } = acc;
    let state = CloneState {
        next: range.end,
        stats: trunk_rec.stats,
        agree,
        pair_labels: pairs,
        done,
        flight: None,
    };
    let mut cloning = Cloning::from_state(plan, &points, state);
    cloning.stopped = stopped;
    Ok(cloning)
}

/// The clone experiment's outcome: one entry per branch point, and why it stopped early if it did
/// (the pairs counted are those completed).
pub struct Cloning {
    pub branches: Vec<Branch>,
    pub stopped: Option<Stop>,
    /// The folded statistics (what a shard holds).
    pub state: CloneState,
}

impl Cloning {
    /// The branches of a completed state at the grid points of `plan`.
    pub fn from_state(plan: &Plan, steps: &[usize], state: CloneState) -> Cloning {
        let mut points = steps.to_vec();
        points.sort_unstable();
        points.dedup();
        let pairs = histograms(state.pair_labels.clone(), points.len());
        let branches = points
            .iter()
            .zip(&state.agree)
            .zip(&state.stats)
            .zip(pairs)
            .map(|(((&j, &agree), stats), pair_labels)| Branch {
                t: plan.grid.node(j),
                step: j,
                pairs: state.done,
                agree,
                purity: stats.purity.clone(),
                pair_labels,
            })
            .collect();
        Cloning {
            branches,
            stopped: None,
            state,
        }
    }
}

impl Resumable for CloneState {
    fn next(&self) -> u64 {
        self.next
    }
}

/// One round of a clone experiment whose branch times are chosen as it goes (speciation's
/// `--branch-times auto`): its branch times and their grid indices (ascending index, so
/// descending time) on its own grid, the particle-steps of one of its pairs, and what it folded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CloneRound {
    pub times: Vec<f64>,
    pub steps: Vec<usize>,
    pub pair_steps: u64,
    /// The pairs it was to measure (`state.done` completed).
    pub pairs: u64,
    pub state: CloneState,
}

impl CloneRound {
    /// Its branches.
    pub fn branches(&self) -> Vec<Branch> {
        let pairs = histograms(self.state.pair_labels.clone(), self.times.len());
        (self.times.iter().zip(&self.steps))
            .zip(&self.state.agree)
            .zip(&self.state.stats)
            .zip(pairs)
            .map(|((((&t, &step), &agree), stats), pair_labels)| Branch {
                t,
                step,
                pairs: self.state.done,
                agree,
                purity: stats.purity.clone(),
                pair_labels,
            })
            .collect()
    }
}
