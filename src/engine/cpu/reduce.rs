//! The CPU twin of `shaders/reduce.wgsl`: one particle's contribution to the statistics of a
//! recorded time point.

use crate::stats::PointStats;

/// Adds one particle's observation at a recorded point.
pub fn record(stats: &mut PointStats, x: &[f32], directions: &[f32], label: u32, purity: f32) {
    let d = x.len();
    stats.coords.push(x.iter().map(|&v| f64::from(v)));
    if !directions.is_empty() {
        stats.projections.push(directions.chunks(d).map(|u| {
            u.iter()
                .zip(x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum()
        }));
    }
    if let Some(c) = stats.classes.get_mut(label as usize) {
        *c += 1;
    }
    stats.purity.push([f64::from(purity)]);
}
