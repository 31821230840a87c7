//! The CPU twin of `shaders/tally.wgsl`: class counts, last-change times and agreeing pairs.

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
    for pair in p.label.chunks_exact(2) {
        t.pairs += 1;
        t.pairs_agree += u64::from(pair[0] == pair[1]);
    }
    t
}
