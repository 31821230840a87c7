//! The outcome of the clone pairs at one branch time, and the pair histograms by label or class.

use serde::Serialize;

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

    /// The branch by class, when its histogram counts classes ([`Pairs::classes`](super::experiment::Pairs::classes)): a pair
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
pub(super) fn histograms(saved: Vec<Vec<u64>>, points: usize) -> Vec<Vec<u64>> {
    if saved.len() == points {
        saved
    } else {
        vec![vec![]; points]
    }
}
