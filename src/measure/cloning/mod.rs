//! The cloning experiment (docs/mathematics.md §7.2, §8.2, §8.3): a trajectory is branched at time t into two clones that
//! finish with independent noise; φ(t) is the probability that both end with the same label
//! (same class on a mixture — speciation; same nearest training point on the empirical target —
//! clone collapse). The posterior purity Σ r² at the branch point estimates the same probability
//! without clones, exactly for an exact score.

mod branch;
mod crossing;
mod experiment;

pub use branch::{Branch, add_pairs, class_pairs};
pub use crossing::{
    Crossing, crossing, crossing_estimate, crossing_of, crossing_parts, crossing_with_error,
};
pub use experiment::{
    CloneFlight, CloneRound, CloneState, Cloning, Pairs, clone_pairs, clone_pairs_from,
};
