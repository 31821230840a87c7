//! The grid the clone pairs run on. A pair reads its branch point (the posterior purity there)
//! and its two final labels, nothing between. Under the exact scheme each step samples the
//! reverse transition itself, so the law of what a pair reads does not depend on the nodes
//! between its branch point and t = 0: the pairs run on the branch times alone, at the times
//! asked (five steps of a trunk and at most five per clone, instead of hundreds). Other schemes
//! keep the study's grid, whose Δt their bias depends on.

use anyhow::Result;

use crate::model::Model;
use crate::plan::{Grid, Plan, Scheme, Spacing, Start};

/// The clone pairs' own plan, with `branch_times` (inside (0, T)) as its nodes and their
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
    let grid = Grid::spaced(t_max, 1, &Spacing::Nodes(branch_times.to_vec()))?;
    // Nodes 1..steps − 1 are the branch times, descending (grid indices ascending).
    let steps: Vec<usize> = (1..grid.steps).collect();
    Ok(Some((Plan::new(model, grid, Scheme::Exact, start)?, steps)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, build};
    use crate::model::Target;

    #[test]
    fn exact_clone_pairs_run_on_the_branch_times_alone() {
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
        assert_eq!(nodes, [10.0, 2.0, 0.5, 0.123, 0.0]);
        assert_eq!(steps, [1, 2, 3]);
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
