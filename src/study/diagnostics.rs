//! What a collapse study's engine did beside its measurements: where the wall time went, and
//! how much of the empirical softmax exact pruning skipped. Shared by the study and the parts it
//! folds from slices.

use serde::Serialize;

/// Where the wall time of a collapse study goes, in seconds. The plan's coefficients are built
/// lazily, during the first trajectories.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PhaseSeconds {
    /// Training set, theory and plan set-up.
    pub setup: f64,
    pub trajectories: f64,
    pub clone_pairs: f64,
    pub excess_entropy: f64,
}

/// Exact pruning of the empirical softmax ([`crate::plan::prune`], CPU engine): products of a
/// block of 32 particles with a tile of 64 training points, as `[pruned, all]`, per phase of the
/// study and per side of the theory's t_C (the grid time of each step's evaluation).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct PrunedTiles {
    pub trajectories_above_t_c: [u64; 2],
    pub trajectories_below_t_c: [u64; 2],
    pub clone_pairs_above_t_c: [u64; 2],
    pub clone_pairs_below_t_c: [u64; 2],
}

impl PrunedTiles {
    /// Both counts summed (slices of one study).
    pub fn plus(self, o: &PrunedTiles) -> PrunedTiles {
        let add = |a: [u64; 2], b: [u64; 2]| [a[0] + b[0], a[1] + b[1]];
        PrunedTiles {
            trajectories_above_t_c: add(self.trajectories_above_t_c, o.trajectories_above_t_c),
            trajectories_below_t_c: add(self.trajectories_below_t_c, o.trajectories_below_t_c),
            clone_pairs_above_t_c: add(self.clone_pairs_above_t_c, o.clone_pairs_above_t_c),
            clone_pairs_below_t_c: add(self.clone_pairs_below_t_c, o.clone_pairs_below_t_c),
        }
    }

    /// An engine's per-step counts, split at t_C.
    pub(super) fn split(
        counts: &[[u64; 2]],
        grid: &crate::plan::Grid,
        t_c: f64,
    ) -> ([u64; 2], [u64; 2]) {
        let (mut above, mut below) = ([0; 2], [0; 2]);
        for (j, c) in counts.iter().enumerate().filter(|(j, _)| *j <= grid.steps) {
            let side = if grid.time(j) >= t_c {
                &mut above
            } else {
                &mut below
            };
            side[0] += c[0];
            side[1] += c[1];
        }
        (above, below)
    }

    /// "12.5 % above t_C, 80.1 % below" for each phase that evaluated any tile.
    pub(super) fn describe(&self) -> String {
        let pct = |c: [u64; 2]| {
            if c[1] == 0 {
                "—".to_string()
            } else {
                format!("{:.1} %", 100.0 * c[0] as f64 / c[1] as f64)
            }
        };
        format!(
            "trajectories {} above t_C, {} below; clone pairs {} above, {} below",
            pct(self.trajectories_above_t_c),
            pct(self.trajectories_below_t_c),
            pct(self.clone_pairs_above_t_c),
            pct(self.clone_pairs_below_t_c)
        )
    }
}
