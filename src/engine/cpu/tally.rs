//! The CPU twin of `shaders/tally.wgsl`: class counts, last-change times, agreeing pairs and the
//! pair histogram.

use super::Particles;
use crate::plan::Plan;
use crate::stats::Tally;

/// Tally of a host copy of particles (also the reference for the GPU reduction).
pub fn tally_particles(plan: &Plan, p: &Particles) -> Tally {
    let mut t = Tally::new(plan.centers_count, plan.grid.steps + 1);
    for (&label, &changed) in p.label.iter().zip(&p.changed) {
        if let Some(c) = t.labels.get_mut(label as usize) {
            *c += 1;
        }
        if let Some(c) = t.last_change.get_mut(changed as usize) {
            *c += 1;
        }
    }
    let k = Tally::pair_classes(plan.centers_count);
    for pair in p.label.chunks_exact(2) {
        t.pairs += 1;
        t.pairs_agree += u64::from(pair[0] == pair[1]);
        let (a, b) = (pair[0] as usize, pair[1] as usize);
        if a < k && b < k {
            t.pair_labels[a * k + b] += 1;
        }
    }
    t
}
