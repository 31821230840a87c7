//! The grid the clone pairs run on. A pair reads its branch point (the posterior purity there)
//! and its two final labels, nothing between. Under the exact scheme each step samples the
//! reverse transition itself, so the law of what a pair reads does not depend on the nodes
//! between its branch point and t = 0: the pairs run on the branch times, at the times asked,
//! and [`CLONE_NODES`] uniform nodes below the latest (78 particle-steps a pair with the
//! default branch times, instead of 380–1800). Other schemes keep the study's grid, whose Δt their bias depends on.
//!
//! Why not the branch times alone: measured, φ_C then exceeds the posterior Σr² by 0.024 at
//! 2 t_C (biroli, d = 8, N = 200, 5 000 pairs, seeds 4–6) against 0.010–0.013 on steps of
//! 0.01–0.05 (t_C/4 here), so a step as long as the gaps between branch times is not as exact
//! in f32 as it is in law.

use anyhow::Result;

use crate::model::Model;
use crate::plan::{Grid, Plan, Scheme, Spacing, Start};

/// Uniform steps of the clone pairs' grid up to the latest branch time: with collapse's
/// default branch times (t_C/4 … 4 t_C) its nodes are the multiples of t_C/4.
pub const CLONE_NODES: usize = 16;

/// The clone pairs' own plan, with `branch_times` (inside (0, T)) among its nodes, and their
/// points on it, or None where they run on the study's `plan` at `branch_steps` (a scheme other
/// than exact).
pub(super) fn clone_plan(
    model: &Model,
    plan: &Plan,
    start: Start,
    branch_times: &[f64],
) -> Result<Option<(Plan, Vec<usize>)>> {
    let t_max = plan.grid.t_max;
    let inside = branch_times.iter().all(|t| *t > 0.0 && *t < t_max);
    if plan.scheme != Scheme::Exact || branch_times.is_empty() || !inside {
        return Ok(None);
    }
    let latest = branch_times.iter().copied().fold(0.0, f64::max);
    let h = latest / CLONE_NODES as f64;
    // A uniform node within 1e-9·T of a branch time is that branch time.
    let tol = 1e-9 * t_max;
    let uniform = (1..CLONE_NODES)
        .map(|k| k as f64 * h)
        .filter(|t| branch_times.iter().all(|b| (b - t).abs() > tol));
    let nodes: Vec<f64> = branch_times.iter().copied().chain(uniform).collect();
    let grid = Grid::spaced(t_max, 1, &Spacing::Nodes(nodes))?;
    let mut steps: Vec<usize> = branch_times.iter().map(|&t| grid.index_of(t)).collect();
    steps.sort_unstable();
    steps.dedup();
    Ok(Some((Plan::new(model, grid, Scheme::Exact, start)?, steps)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, build};
    use crate::model::Target;

    #[test]
    fn exact_clone_pairs_run_on_the_branch_times_and_a_few_uniform_nodes() {
        let cfg = Config {
            dim: 4,
            n_train: Some(50),
            ..Config::preset("biroli").unwrap()
        };
        let built = build::build(&cfg).unwrap();
        let model = Model {
            process: built.process.clone(),
            target: Target::Empirical(build::training_set(&cfg, &built).unwrap()),
        };
        let study = |scheme| Plan::new(&model, Grid::new(10.0, 100).unwrap(), scheme, cfg.start);
        let exact = study(Scheme::Exact).unwrap();
        let (own, steps) = clone_plan(&model, &exact, cfg.start, &[0.5, 2.0, 0.123, 0.5])
            .unwrap()
            .unwrap();
        let nodes: Vec<f64> = (0..=own.grid.steps).map(|j| own.grid.node(j)).collect();
        // The branch times and 15 multiples of 2/16, of which 0.5 is one.
        assert_eq!(nodes.len(), 2 + 2 + 15);
        let at = |j: usize| own.grid.node(j);
        assert_eq!(
            steps.iter().map(|&j| at(j)).collect::<Vec<_>>(),
            [2.0, 0.5, 0.123]
        );
        assert_eq!((at(1), at(2)), (2.0, 1.875));
        assert!(
            nodes
                .windows(2)
                .skip(1)
                .all(|w| w[0] - w[1] <= 0.125 + 1e-12)
        );
        // Other schemes keep the study's grid; so does a branch time outside (0, T).
        let em = study(Scheme::EulerMaruyama).unwrap();
        assert!(
            clone_plan(&model, &em, cfg.start, &[0.5])
                .unwrap()
                .is_none()
        );
        assert!(
            clone_plan(&model, &exact, cfg.start, &[10.0])
                .unwrap()
                .is_none()
        );
    }
}
