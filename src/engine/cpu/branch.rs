//! The CPU twin of `shaders/branch.wgsl`: every particle becomes two clones that share its
//! position and history; the second's id carries the stream tag, so the two draw independent noise
//! from here on. A clone has drawn no training point yet ([`Particles::drawn`]): each draws its
//! own at the branch point, independently.

use super::{NO_LABEL, Particles};
use crate::rng;

/// Particles 2i and 2i + 1 of the result are the clones of particle i.
pub fn branch_particles(p: &Particles, stream: u16) -> Particles {
    let d = p.dim;
    let n = p.len();
    let mut out = Particles {
        dim: d,
        x: Vec::with_capacity(2 * n * d),
        ids: Vec::with_capacity(2 * n),
        label: Vec::with_capacity(2 * n),
        changed: Vec::with_capacity(2 * n),
        drawn: vec![NO_LABEL; 2 * n],
    };
    for i in 0..n {
        let row = &p.x[i * d..(i + 1) * d];
        out.x.extend_from_slice(row);
        out.x.extend_from_slice(row);
        out.ids.push(p.ids[i]);
        out.ids.push(rng::with_stream(p.ids[i], stream));
        out.label.extend([p.label[i]; 2]);
        out.changed.extend([p.changed[i]; 2]);
    }
    out
}
