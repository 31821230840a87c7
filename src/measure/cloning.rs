//! The cloning experiment (docs/mathematics.md §7.2, §8.2, §8.3): a trajectory is branched at time t into two clones that
//! finish with independent noise; φ(t) is the probability that both end with the same label
//! (same class on a mixture — speciation; same nearest training point on the empirical target —
//! clone collapse). The posterior purity Σ r² at the branch point estimates the same probability
//! without clones, exactly for an exact score.

use anyhow::{Result, ensure};
use serde::Serialize;

use super::{Tick, advance, batch_size, for_each_batch};
use crate::engine::{Engine, Recorder};
use crate::plan::Plan;
use crate::rng::rng_id;
use crate::stats::Moments;

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

    /// Binomial standard error of φ.
    pub fn stderr(&self) -> f64 {
        binomial_stderr(self.phi(), self.pairs)
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

/// The standard error of a fraction p of n trials.
pub fn binomial_stderr(p: f64, n: u64) -> f64 {
    (p * (1.0 - p) / n as f64).sqrt()
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
    let mut pair_labels = vec![vec![]; points.len()];
    let mut done = 0u64;
    // Clones double the particles on the engine: half a batch of trunks.
    let size = (batch_size(engine, plan, batch) / 2).max(1);
    let stopped = for_each_batch(pairs, size, |range| {
        let ids: Vec<u64> = range.map(|i| rng_id(i, 0)).collect();
        // Fold into copies, so a batch that fails half-way leaves no trace.
        let mut rec = trunk_rec.clone();
        let mut batch_agree = agree.clone();
        let mut batch_pairs = pair_labels.clone();
        let mut trunk = engine.start(plan, seed, &ids)?;
        let mut at = 0;
        for (i, &j) in points.iter().enumerate() {
            let count = ids.len() as u64;
            advance(engine, plan, &mut trunk, (at, j), &mut rec, count, tick)?;
            at = j;
            let mut clones = engine.branch(&trunk, (i + 1) as u16)?;
            let none = &mut Recorder::none(plan);
            advance(engine, plan, &mut clones, (j, n), none, 2 * count, tick)?;
            let tally = engine.tally(plan, &clones)?;
            batch_agree[i] += tally.pairs_agree;
            let hist: &mut Vec<u64> = &mut batch_pairs[i];
            hist.resize(tally.pair_labels.len(), 0);
            for (a, b) in hist.iter_mut().zip(&tally.pair_labels) {
                *a += b;
            }
        }
        trunk_rec = rec;
        agree = batch_agree;
        pair_labels = batch_pairs;
        done += ids.len() as u64;
        Ok(())
    });
    let branches = points
        .iter()
        .zip(agree)
        .zip(pair_labels)
        .zip(&trunk_rec.stats)
        .map(|(((&j, agree), pair_labels), stats)| Branch {
            t: plan.grid.time(j),
            step: j,
            pairs: done,
            agree,
            purity: stats.purity.clone(),
            pair_labels,
        })
        .collect();
    Ok(Cloning { branches, stopped })
}

/// The clone experiment's outcome: one entry per branch point, and why it stopped early if it did
/// (the pairs counted are those completed).
pub struct Cloning {
    pub branches: Vec<Branch>,
    pub stopped: Option<String>,
}

/// Where φ(t) crosses `level` (φ decreases with t), by linear interpolation between the branch
/// times that bracket it; the largest such time if there are several.
pub fn crossing(branches: &[Branch], level: f64) -> Option<f64> {
    let mut by_time: Vec<(f64, f64)> = branches.iter().map(|b| (b.t, b.phi())).collect();
    by_time.sort_by(|a, b| b.0.total_cmp(&a.0));
    by_time.windows(2).find_map(|w| {
        let ((t1, p1), (t0, p0)) = (w[0], w[1]); // t1 > t0
        ((p1 - level) * (p0 - level) <= 0.0 && p1 != p0)
            .then(|| t1 + (level - p1) * (t0 - t1) / (p0 - p1))
    })
}
