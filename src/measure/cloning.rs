//! The cloning experiment (docs/mathematics.md §7.2, §8.2, §8.3): a trajectory is branched at time t into two clones that
//! finish with independent noise; φ(t) is the probability that both end with the same label
//! (same class on a mixture — speciation; same nearest training point on the empirical target —
//! clone collapse). The posterior purity Σ r² at the branch point estimates the same probability
//! without clones, exactly for an exact score.

use std::ops::Range;

use anyhow::{Result, anyhow, ensure};
use serde::{Deserialize, Serialize};

use super::checkpoint::{Checkpointer, Resumable, Snapshot};
use super::{Tick, advance, batch_size};
use crate::engine::{Engine, Particles, Recorder};
use crate::plan::Plan;
use crate::rng::rng_id;
use crate::stats::{Moments, PointStats};
use crate::stop::Stop;

/// The outcome at one branch time.
#[derive(Clone, Debug, Serialize)]
pub struct Branch {
    pub t: f64,
    /// Grid index of the branch point.
    pub step: usize,
    pub pairs: u64,
    pub agree: u64,
    /// Posterior purity Σ r² at the branch point (mean, count, M2).
    pub purity: Moments,
    /// Pairs by (first clone's label, second's), K×K row-major; empty when K is large
    /// ([`crate::stats::Tally::pair_labels`]).
    #[serde(skip)]
    pub pair_labels: Vec<u64>,
}

impl Branch {
    /// Measured φ = fraction of clone pairs that agree.
    pub fn phi(&self) -> f64 {
        self.agree as f64 / self.pairs as f64
    }

    /// Standard error of φ: the half-width of its Wilson score interval at one standard
    /// deviation (the binomial √(φ(1−φ)/n) away from 0 and 1, and never 0 at them).
    pub fn stderr(&self) -> f64 {
        crate::stats::wilson(self.agree, self.pairs, 1.0)
            .map_or(f64::NAN, |(lo, hi)| (hi - lo) / 2.0)
    }

    /// (φ, its standard error), or None when no pair completed.
    pub fn measured(&self) -> Option<(f64, f64)> {
        (self.pairs > 0).then(|| (self.phi(), self.stderr()))
    }

    /// The branch by class, when its histogram counts classes ([`Pairs::classes`]): a pair
    /// agrees when both clones end on points of the same class.
    pub fn by_class(&self) -> Option<Branch> {
        let k = (self.pair_labels.len() as f64).sqrt().round() as usize;
        (k > 0).then(|| self.regrouped(&(0..k).collect::<Vec<_>>()))?
    }

    /// The branch seen through a coarser label, `group[class]`: a pair agrees when its two
    /// classes fall in the same group. None without the pair histogram.
    pub fn regrouped(&self, group: &[usize]) -> Option<Branch> {
        let k = group.len();
        if self.pair_labels.len() != k * k {
            return None;
        }
        let agree = (0..k * k)
            .filter(|i| group[i / k] == group[i % k])
            .map(|i| self.pair_labels[i])
            .sum();
        Some(Branch {
            agree,
            pair_labels: vec![],
            ..self.clone()
        })
    }
}

/// Adds a tally's pair histogram into an accumulator (which starts empty).
pub fn add_pairs(acc: &mut Vec<u64>, pairs: &[u64]) {
    acc.resize(pairs.len().max(acc.len()), 0);
    for (a, b) in acc.iter_mut().zip(pairs) {
        *a += b;
    }
}

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

/// What a clone experiment has folded so far (see [`super::checkpoint`]): the trunks'
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
    let sizer = super::Sizer::new(size, super::BATCH_ALIGN / 2, first, batch.is_some());
    let segment = ckpt.as_ref().map_or(super::SEGMENT, |c| c.segment());
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
    let stopped = super::batch_loop(
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
                        let seg = (segment, &mut boundary as super::Boundary<E::Batch>);
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
                        let seg = (segment, &mut boundary as super::Boundary<E::Batch>);
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

/// The K×K histogram of clone pairs (labels 2i, 2i+1) by the classes of their labels, K the
/// number of classes; a label without a class (none yet) is left out.
pub fn class_pairs(labels: &[u32], classes: &[u32]) -> Vec<u64> {
    let k = classes.iter().max().map_or(0, |&m| m as usize + 1);
    let mut h = vec![0u64; k * k];
    for pair in labels.chunks_exact(2) {
        let class = |l: u32| classes.get(l as usize).map(|&c| c as usize);
        if let (Some(a), Some(b)) = (class(pair[0]), class(pair[1])) {
            h[a * k + b] += 1;
        }
    }
    h
}

/// The per-branch pair histograms of a saved state (empty ones when it has none).
fn histograms(saved: Vec<Vec<u64>>, points: usize) -> Vec<Vec<u64>> {
    if saved.len() == points {
        saved
    } else {
        vec![vec![]; points]
    }
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

/// Where φ(t) crosses `level` (φ decreases with t), by interpolation between the branch times
/// that bracket it ([`crossing_estimate`]); the largest such time if there are several.
pub fn crossing(branches: &[Branch], level: f64) -> Option<f64> {
    let points: Vec<(f64, f64, f64)> = branches.iter().map(|b| (b.t, b.phi(), 0.0)).collect();
    crossing_estimate(&points, level, None).map(|c| c.t)
}

/// [`crossing_estimate`] without a shape, as (t, total error).
pub fn crossing_with_error(points: &[(f64, f64, f64)], level: f64) -> Option<(f64, f64)> {
    crossing_estimate(points, level, None).map(|c| (c.t, c.error()))
}

/// A measured crossing time and its error budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Crossing {
    pub t: f64,
    /// From φ's noise at the two bracketing times, taken as fully correlated (the pairs of all
    /// branch times share their trunks, which correlates them positively: the sum bounds it).
    pub statistical: f64,
    /// The interpolation's own error, from the curvature over the bracket measured with the
    /// neighbouring points (see [`crossing_estimate`]).
    pub interpolation: f64,
}

impl Crossing {
    /// The total error: both parts in quadrature.
    pub fn error(&self) -> f64 {
        self.statistical.hypot(self.interpolation)
    }
}

/// Where the measured (t, φ, s.e.) `points` cross `level`, with its error budget; the largest
/// crossing if φ crosses several times.
///
/// Interpolating φ linearly between branch times is biased by φ's curvature (on `lu-tang` with
/// branch times 0.5 apart by 5 standard errors at 10⁵ pairs). With a `shape` g(t) (the theory's
/// φ), the residual φ − g is interpolated linearly instead and the crossing solved on
/// g + residual: exact where the theory is, and where it is not its residual is far flatter
/// than φ. The interpolation error is what the curvature of the interpolated quantity over the
/// bracket moves the root by, |c (t−t₁)(t−t₀) / φ̂'(t)|, c the second divided difference
/// through the bracket and a neighbour (the larger of the two neighbours'), doubled since c is
/// measured beside the bracket; with no neighbour,
/// the distance to the plain linear root with a shape, or the whole bracket without one.
pub fn crossing_estimate(
    points: &[(f64, f64, f64)],
    level: f64,
    shape: Option<&dyn Fn(f64) -> f64>,
) -> Option<Crossing> {
    let mut by_time: Vec<(f64, f64, f64)> = points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    by_time.sort_by(|a, b| b.0.total_cmp(&a.0));
    let k = by_time
        .windows(2)
        .position(|w| (w[0].1 - level) * (w[1].1 - level) <= 0.0 && w[0].1 != w[1].1)?;
    let g = |t: f64| shape.map_or(0.0, |f| f(t));
    let residual = |(t, p, _): (f64, f64, f64)| p - g(t);
    let ((t1, p1, e1), (t0, p0, e0)) = (by_time[k], by_time[k + 1]); // t1 > t0
    let (r1, r0) = (residual(by_time[k]), residual(by_time[k + 1]));
    ensure_finite(r1 + r0)?;
    let tau = t0 - t1;
    // φ̂(t) − level: the shape plus the interpolated residual; p₁ − level and p₀ − level at the
    // ends, of opposite signs.
    let h = |t: f64| g(t) + r1 + (r0 - r1) * (t - t1) / tau - level;
    let (mut lo, mut hi) = (t0, t1);
    let lo_sign = (p0 - level).signum();
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if h(mid).signum() == lo_sign {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let t = 0.5 * (lo + hi);
    let eps = 1e-5 * (t1 - t0);
    let slope = (h(t + eps) - h(t - eps)) / (2.0 * eps);
    let w1 = (t - t0) / (t1 - t0);
    let statistical = (w1 * e1 + (1.0 - w1) * e0) / slope.abs();
    let curvature_shift = |n: usize| -> Option<f64> {
        let point = by_time.get(n).copied()?;
        let (tn, rn) = (point.0, residual(point));
        // Second divided difference of the residual through (t₁, t₀, t_n).
        let d1 = (r0 - r1) / tau;
        let d2 = if tn > t1 {
            (d1 - (r1 - rn) / (t1 - tn)) / (t0 - tn)
        } else {
            ((rn - r0) / (tn - t0) - d1) / (tn - t1)
        };
        // Doubled: the curvature is measured beside the bracket, not in it (on a curve whose
        // shape is 5 % off in t, 0.5 apart, the shift alone covered 60 % of the bias).
        Some(2.0 * (d2 * (t - t1) * (t - t0) / slope).abs())
    };
    let neighbours = [
        k.checked_sub(1).and_then(curvature_shift),
        curvature_shift(k + 2),
    ];
    let interpolation = match neighbours.iter().flatten().copied().reduce(f64::max) {
        Some(shift) => shift,
        None if shape.is_some() => (t - (t1 + (level - p1) * tau / (p0 - p1))).abs(),
        None => (t1 - t).max(t - t0),
    };
    Some(Crossing {
        t,
        statistical,
        interpolation,
    })
}

fn ensure_finite(x: f64) -> Option<()> {
    x.is_finite().then_some(())
}

/// Where the measured φ of `branches` crosses `level`, with its total error.
pub fn crossing_of(branches: &[Branch], level: f64) -> Option<(f64, f64)> {
    crossing_parts(branches, level, None).map(|c| (c.t, c.error()))
}

/// Where the measured φ of `branches` crosses `level`, with its error budget; interpolated
/// with the theory's φ(t) as its shape when there is one ([`crossing_estimate`]).
pub fn crossing_parts(
    branches: &[Branch],
    level: f64,
    theory: Option<&dyn Fn(f64) -> f64>,
) -> Option<Crossing> {
    let points: Vec<(f64, f64, f64)> = branches
        .iter()
        .filter_map(|b| b.measured().map(|(p, e)| (b.t, p, e)))
        .collect();
    crossing_estimate(&points, level, theory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::theory::{cloning_probability as f, f_at_speciation};

    /// φ = F(s(t)) for an OU mode of variance-1 classes ±m: s = m²e^{−2t}/(1 − (1 − σ²)e^{−2t})
    /// with σ² = 0.1 (curved in ln s), crossing F(1) where s = 1.
    fn curve(t: f64) -> f64 {
        let e = (-2.0 * t).exp();
        f(4.0 * e / (1.0 - 0.9 * e))
    }

    #[test]
    fn a_shape_removes_the_bias_of_a_coarse_bracket_and_its_error_covers_the_rest() {
        // s = 1: 4e = 1 − 0.9e → e = 1/4.9.
        let truth = 0.5 * 4.9f64.ln();
        let level = f_at_speciation();
        // A theory 5 % off in time: the shape, not the truth.
        let off = |t: f64| curve(1.05 * t);
        for h in [0.1, 0.25, 0.5] {
            let points: Vec<(f64, f64, f64)> = (1..=12)
                .map(|k| k as f64 * h)
                .map(|t| (t, curve(t), 0.0))
                .collect();
            let linear = crossing_estimate(&points, level, None).unwrap();
            let c = crossing_estimate(&points, level, Some(&off)).unwrap();
            let exact = crossing_estimate(&points, level, Some(&curve)).unwrap();
            eprintln!(
                "h = {h}: {:.5} ± {:.5}, linear in φ {:.5} ± {:.5}, truth {truth:.5}",
                c.t, c.interpolation, linear.t, linear.interpolation
            );
            assert_eq!(c.statistical, 0.0);
            assert!((exact.t - truth).abs() < 1e-9, "{exact:?}");
            assert!((c.t - truth).abs() <= c.interpolation, "{c:?} vs {truth}");
            assert!(
                (c.t - truth).abs() < 0.3 * (linear.t - truth).abs(),
                "h = {h}"
            );
            assert!(c.interpolation < 0.5 * (linear.t - truth).abs(), "h = {h}");
        }
    }

    #[test]
    fn the_statistical_error_follows_the_noise_at_the_bracket() {
        let level = f_at_speciation();
        let points: Vec<(f64, f64, f64)> = [0.5, 0.75, 1.0, 1.25]
            .iter()
            .map(|&t| (t, curve(t), 0.003))
            .collect();
        let c = crossing_estimate(&points, level, Some(&curve)).unwrap();
        // Shifting both bracketing φ up by their s.e. moves the crossing by about the
        // statistical error (fully correlated noise).
        let shifted: Vec<(f64, f64, f64)> =
            points.iter().map(|p| (p.0, p.1 + 0.003, p.2)).collect();
        let d = crossing_estimate(&shifted, level, Some(&curve)).unwrap();
        let moved = (d.t - c.t).abs();
        assert!(
            (moved - c.statistical).abs() < 0.05 * c.statistical,
            "{moved} vs {}",
            c.statistical
        );
        // No crossing: None; two points and no shape: the bracket is the error.
        assert!(crossing_estimate(&points[..1], level, None).is_none());
        let edge = [(0.5, 1.0, 0.0), (1.0, 0.6, 0.01)];
        let e = crossing_estimate(&edge, level, None).unwrap();
        assert!(e.t > 0.5 && e.t < 1.0 && e.interpolation >= (e.t - 0.5).min(1.0 - e.t));
    }
}
