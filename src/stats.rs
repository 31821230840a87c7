//! Mergeable statistics (docs/mathematics.md §8.1). Every type here is a monoid: partials from tiles, blocks,
//! engines or shards combine exactly, and folding them in a fixed order gives the same bits
//! whatever the thread count or batch size.

use serde::{Deserialize, Serialize};

/// Count, mean and centred second moment of a vector-valued quantity (Welford, Chan merge).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub mean: Vec<f64>,
    pub m2: Vec<f64>,
}

impl Moments {
    pub fn new(dim: usize) -> Self {
        Moments {
            count: 0,
            mean: vec![0.0; dim],
            m2: vec![0.0; dim],
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Add one observation (Welford).
    pub fn push(&mut self, x: impl IntoIterator<Item = f64>) {
        self.count += 1;
        let n = self.count as f64;
        for ((mean, m2), v) in self.mean.iter_mut().zip(&mut self.m2).zip(x) {
            let delta = v - *mean;
            *mean += delta / n;
            *m2 += delta * (v - *mean);
        }
    }

    /// Combine with another partial (Chan et al.).
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        for i in 0..self.mean.len() {
            let delta = other.mean[i] - self.mean[i];
            self.mean[i] += delta * nb / n;
            self.m2[i] += other.m2[i] + delta * delta * na * nb / n;
        }
        self.count += other.count;
    }

    /// Unbiased variance of component i.
    pub fn variance(&self, i: usize) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            self.m2[i] / (self.count - 1) as f64
        }
    }

    /// Standard error of the mean of component i.
    pub fn stderr(&self, i: usize) -> f64 {
        (self.variance(i) / self.count as f64).sqrt()
    }
}

/// What is reduced over particles at one time point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointStats {
    /// Per-coordinate moments of x.
    pub coords: Moments,
    /// Moments of the projections of x on the probe directions.
    pub projections: Moments,
    /// Particles per argmax class (mixture component or nearest training point).
    pub classes: Vec<u64>,
    /// Moments of the posterior purity Σ_k r_k², the exact-score estimate of the probability that
    /// two clones branched here end in the same class.
    pub purity: Moments,
}

impl PointStats {
    pub fn new(dim: usize, directions: usize, classes: usize) -> Self {
        PointStats {
            coords: Moments::new(dim),
            projections: Moments::new(directions),
            classes: vec![0; classes],
            purity: Moments::new(1),
        }
    }

    pub fn merge(&mut self, other: &PointStats) {
        self.coords.merge(&other.coords);
        self.projections.merge(&other.projections);
        for (a, b) in self.classes.iter_mut().zip(&other.classes) {
            *a += b;
        }
        self.purity.merge(&other.purity);
    }
}

/// Per-particle label bookkeeping reduced at the end of a segment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// Particles per final label.
    pub labels: Vec<u64>,
    /// Particles per time point of their last label change (index into the grid).
    pub last_change: Vec<u64>,
    /// Pairs (2i, 2i+1) whose final labels agree; meaningful for branched batches.
    pub pairs_agree: u64,
    pub pairs: u64,
    /// Pairs by (first label, second label), row-major K×K, when K ≤ [`PAIR_CLASSES_MAX`]
    /// (empty otherwise): which classes a clone pair split into, e.g. to ask whether it agrees
    /// on one mode of coupled modalities.
    pub pair_labels: Vec<u64>,
}

/// The most classes whose pair histogram a tally keeps.
pub const PAIR_CLASSES_MAX: usize = 16;

impl Tally {
    pub fn new(classes: usize, points: usize) -> Self {
        Tally {
            labels: vec![0; classes],
            last_change: vec![0; points],
            pairs_agree: 0,
            pairs: 0,
            pair_labels: vec![0; Self::pair_classes(classes).pow(2)],
        }
    }

    /// K when the tally keeps the K×K pair histogram, else 0.
    pub fn pair_classes(classes: usize) -> usize {
        if classes <= PAIR_CLASSES_MAX {
            classes
        } else {
            0
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        for (a, b) in self.labels.iter_mut().zip(&other.labels) {
            *a += b;
        }
        for (a, b) in self.last_change.iter_mut().zip(&other.last_change) {
            *a += b;
        }
        self.pairs_agree += other.pairs_agree;
        self.pairs += other.pairs;
        for (a, b) in self.pair_labels.iter_mut().zip(&other.pair_labels) {
            *a += b;
        }
    }
}

/// The Wilson score interval of a binomial proportion k/n at `z` standard deviations: unlike
/// the Wald interval p ± z√(p(1−p)/n) it is never degenerate at p = 0 or 1. None when n = 0.
pub fn wilson(k: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    (n > 0).then(|| {
        let (n, p) = (n as f64, k as f64 / n as f64);
        let z2 = z * z;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        ((centre - half).max(0.0), (centre + half).min(1.0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_intervals_match_the_binomial_away_from_the_edges_and_stay_open_at_them() {
        let (lo, hi) = wilson(5000, 10_000, 1.0).unwrap();
        let wald = (0.25f64 / 10_000.0).sqrt();
        assert!(((hi - lo) / 2.0 - wald).abs() < 1e-3 * wald);
        let (lo, hi) = wilson(100, 100, 1.0).unwrap();
        assert!(
            (hi - 1.0).abs() < 1e-12 && lo > 0.98 && lo < 0.995,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0, 100, 1.0).unwrap();
        assert!(lo.abs() < 1e-12 && hi > 0.005 && hi < 0.02, "{lo} {hi}");
        assert_eq!(wilson(0, 0, 1.0), None);
    }

    #[test]
    fn chan_merge_equals_sequential() {
        let data: Vec<f64> = (0..100)
            .map(|i| ((i * 37) % 11) as f64 * 0.3 - 1.0)
            .collect();
        let mut all = Moments::new(1);
        data.iter().for_each(|&x| all.push([x]));
        let mut a = Moments::new(1);
        let mut b = Moments::new(1);
        data[..37].iter().for_each(|&x| a.push([x]));
        data[37..].iter().for_each(|&x| b.push([x]));
        a.merge(&b);
        assert_eq!(a.count, 100);
        assert!((a.mean[0] - all.mean[0]).abs() < 1e-12);
        assert!((a.m2[0] - all.m2[0]).abs() < 1e-9);
        let mean = data.iter().sum::<f64>() / 100.0;
        let var = data.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 99.0;
        assert!((all.variance(0) - var).abs() < 1e-12);
    }
}
