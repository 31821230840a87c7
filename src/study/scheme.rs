//! The default scheme, `auto`: the exact reverse transition wherever it applies, on a grid of
//! the study's own times, and Euler–Maruyama elsewhere.
//!
//! The exact transition ([`crate::plan::integrator::Bridge`]) has no discretisation bias at any
//! Δt for data with one shared covariance, which covers every Gaussian mixture and training set
//! this program builds: between two nodes it samples the reverse law itself, so a study needs
//! nodes only where it measures. `auto` is resolved here, once, into the config the study runs
//! and its summary records (scheme, steps and grid written out), so the fingerprint names what
//! ran and replaying the recorded config with explicit flags gives the same numbers.

use anyhow::Result;

use super::{EXACT_STEPS, Kind};
use crate::config::Config;
use crate::config::build::{self, Built};
use crate::plan::{Grid, Plan, Scheme, Spacing, Steps};

/// Collapse under `auto`: t̂_C is the node at which a trajectory commits to a training point,
/// so trajectories need a resolution in time where they commit; the clone pairs and the
/// excess entropy need none with the exact transition. The grid keeps the old default's
/// Δt = T/1000 from 0 up to [`COLLAPSE_SPAN`]·t_C (t_C of the theory, or T/4 without one) and
/// widens above by [`COLLAPSE_WIDEN`] per step up to T/[`EXACT_STEPS`]. Below the
/// top of the fine nodes every trajectory's last change is found at the node the old grid
/// finds it (its labels at the fine nodes are the old grid's, in law), so the distribution of
/// t̂_C there, its median and the median's interval are the old ones whenever the interval
/// lies below the top (biroli, d = 8, N = 200: the median is 1.35 t_C, the 90 % quantile
/// 3.4 t_C; d = 32, N = 1000: 1.15 and 1.8 t_C); above it the resolution coarsens gradually,
/// the summary's `resolution` says by how much and the study warns when the median's interval
/// reaches there.
pub const COLLAPSE_SPAN: f64 = 2.0;
/// The growth of collapse's steps above the fine ones.
pub const COLLAPSE_WIDEN: f64 = 1.25;
/// The fine step of collapse's grid, as a fraction of T: the old default of 1000 steps.
pub const COLLAPSE_STEPS: usize = 1000;

/// The default grid of the default scheme: where the user set neither `steps` nor `grid` (a
/// flag or a config file; a preset's steps are Euler–Maruyama's and do not count), `auto`
/// chooses its own grid, so the steps become `auto` for [`resolve`]. `given` says whether the
/// user set a key; every front end resolves its layers through here.
pub fn default_grid(mut cfg: Config, given: impl Fn(&str) -> bool) -> Config {
    if cfg.scheme == Scheme::Auto && !given("steps") && !given("grid") {
        cfg.steps = Steps::Auto;
    }
    cfg
}

/// The config with the scheme `auto` resolved (any other scheme is returned untouched): `exact`
/// where it applies, else Euler–Maruyama. Where the steps are `auto` (the command line's
/// default when neither the scheme, the steps nor the grid is given), exact runs on
/// [`EXACT_STEPS`] uniform nodes plus what the study measures (speciation: its default branch
/// times; explicit branch, record and entropy times are always nodes), for `collapse` with the
/// old Δt where t̂_C is resolved ([`COLLAPSE_SPAN`]); steps given as a number stand.
pub fn resolve(mut cfg: Config, kind: Kind) -> Result<Config> {
    if cfg.scheme != Scheme::Auto {
        return Ok(cfg);
    }
    let built = build::build(&cfg)?;
    // Building the model and the one-step exact plan are each a few uninterruptible
    // decompositions (0.3–0.8 s at d = 512): a stop between them is seen here.
    crate::stop::unless_stopped()?;
    let exact = exact_applies(&cfg, &built);
    crate::stop::unless_stopped()?;
    if !exact {
        // `--steps auto` then chooses Euler–Maruyama's steps for its bias.
        cfg.scheme = Scheme::EulerMaruyama;
        return Ok(cfg);
    }
    cfg.scheme = Scheme::Exact;
    if cfg.steps != Steps::Auto {
        return Ok(cfg);
    }
    match kind {
        Kind::Collapse => {
            if cfg.grid == Spacing::Uniform {
                cfg.steps = Steps::Count(EXACT_STEPS);
                cfg.grid = Spacing::Nodes(collapse_nodes(&cfg, &built));
            } else {
                cfg.steps = Steps::Count(COLLAPSE_STEPS);
            }
        }
        _ => {
            cfg.steps = Steps::Count(EXACT_STEPS);
            if kind == Kind::Speciation
                && cfg.grid == Spacing::Uniform
                && cfg.branch_times.is_none()
                // (auto: each round's times are added to the uniform nodes as it goes.)
                && cfg.train_file.is_none()
            {
                cfg.grid = Spacing::Nodes(speciation_nodes(&cfg, &built)?);
            }
        }
    }
    Ok(cfg)
}

/// Whether the exact transition applies: the target has one shared covariance (every mixture
/// and training set here) and the process bridges (a schedule's propagators are inverted), i.e.
/// its plan builds on a one-step grid.
fn exact_applies(cfg: &Config, built: &Built) -> bool {
    Grid::new(cfg.t_max, 1)
        .and_then(|g| Plan::new(&built.mixture_model(), g, Scheme::Exact, cfg.start))
        .is_ok()
}

/// The fine nodes of [`COLLAPSE_STEPS`] below [`COLLAPSE_SPAN`]·t_C and steps widening by
/// [`COLLAPSE_WIDEN`] above, to at most T/[`EXACT_STEPS`] (see there).
fn collapse_nodes(cfg: &Config, built: &Built) -> Vec<f64> {
    let theory = crate::theory::theory(
        &built.process,
        &built.mixture,
        Some(cfg.n_train_or_default()),
        cfg.t_max,
        0.0,
    );
    let t_ref = theory.t_c.unwrap_or(cfg.t_max / 4.0);
    let top = (COLLAPSE_SPAN * t_ref).min(cfg.t_max);
    let dt = cfg.t_max / COLLAPSE_STEPS as f64;
    let fine: Vec<f64> = (1..COLLAPSE_STEPS)
        .map(|k| cfg.t_max * k as f64 / COLLAPSE_STEPS as f64)
        .take_while(|t| *t <= top + 0.5 * dt)
        .collect();
    // Above: steps growing by COLLAPSE_WIDEN up to the uniform EXACT_STEPS' length.
    let mut t = fine.last().copied().unwrap_or(0.0);
    let longest = cfg.t_max / EXACT_STEPS as f64;
    let widening = (1..).map_while(|i| {
        t += (dt * COLLAPSE_WIDEN.powi(i)).min(longest);
        (t < cfg.t_max - 0.5 * dt).then_some(t)
    });
    let coarse: Vec<f64> = widening.collect();
    merged(cfg.t_max, fine.into_iter().chain(coarse))
}

/// The inner nodes of [`EXACT_STEPS`] uniform steps.
fn uniform_inner(t_max: f64) -> impl Iterator<Item = f64> {
    let n = EXACT_STEPS;
    (1..n).map(move |k| t_max * (n - k) as f64 / n as f64)
}

/// Nodes inside (0, T), descending, a node within 1e-9·T of another dropped.
fn merged(t_max: f64, nodes: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = nodes.filter(|t| *t > 0.0 && *t < t_max).collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * t_max);
    v
}

/// The uniform nodes of [`EXACT_STEPS`] steps and speciation's default branch times (so that
/// they are measured where they are, not at the nearest of 20 nodes).
fn speciation_nodes(cfg: &Config, built: &Built) -> Result<Vec<f64>> {
    let theory = crate::theory::theory(&built.process, &built.mixture, None, cfg.t_max, 0.0);
    let mode_times = super::speciation::mode_speciation_times(cfg, built)?;
    let branch = super::speciation::default_branch_times(theory.t_s, &mode_times, cfg.t_max);
    let nodes = merged(cfg.t_max, uniform_inner(cfg.t_max).chain(branch));
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps or a grid the user gave stand; a preset's steps do not; another scheme keeps its.
    #[test]
    fn the_default_scheme_takes_its_own_grid_unless_one_is_given() {
        let preset = Config::preset("quick").unwrap();
        assert_eq!(default_grid(preset.clone(), |_| false).steps, Steps::Auto);
        for key in ["steps", "grid"] {
            let c = default_grid(preset.clone(), |k| k == key);
            assert_eq!(c.steps, preset.steps, "{key}");
        }
        let em = Config {
            scheme: Scheme::EulerMaruyama,
            ..preset.clone()
        };
        assert_eq!(default_grid(em, |_| false).steps, preset.steps);
    }

    fn auto() -> Config {
        Config {
            steps: Steps::Auto,
            ..Config::preset("biroli").unwrap()
        }
    }

    #[test]
    fn auto_runs_exact_on_a_shared_covariance_mixture_with_the_studys_times_as_nodes() {
        let r = resolve(auto(), Kind::Speciation).unwrap();
        assert_eq!(
            (r.scheme, r.steps),
            (Scheme::Exact, Steps::Count(EXACT_STEPS))
        );
        let Spacing::Nodes(nodes) = &r.grid else {
            panic!("speciation's default branch times as nodes: {}", r.grid)
        };
        // 19 uniform inner nodes (T = 10, Δt = 0.5) and the branch times f·t_S off them.
        let t_s = 0.5 * 16f64.ln();
        assert!(nodes.iter().any(|t| (t - t_s).abs() < 1e-9), "{nodes:?}");
        assert!(nodes.iter().any(|t| (t - 0.5).abs() < 1e-12), "{nodes:?}");
        assert_eq!(nodes.len(), 19 + 8, "{nodes:?}"); // the 8 branch times f·t_S are off-grid
        let run = resolve(auto(), Kind::Run).unwrap();
        assert_eq!(
            (run.steps, run.grid),
            (Steps::Count(EXACT_STEPS), Spacing::Uniform)
        );
        // A training set (collapse): exact, with the old Δt = 0.01 where t̂_C is resolved.
        let c = resolve(auto(), Kind::Collapse).unwrap();
        assert_eq!(
            (c.scheme, c.steps),
            (Scheme::Exact, Steps::Count(EXACT_STEPS))
        );
        let Spacing::Nodes(nodes) = &c.grid else {
            panic!("collapse's nodes: {}", c.grid)
        };
        // N = 1000, d = 16: t_C = 0.27, so Δt = 0.01 up to 0.54, then steps growing by 1.25
        // to at most 0.5.
        let fine: Vec<&f64> = nodes.iter().filter(|t| **t < 0.53).collect();
        assert!(
            fine.windows(2).all(|w| (w[0] - w[1] - 0.01).abs() < 1e-9),
            "{nodes:?}"
        );
        let above: Vec<&f64> = nodes.iter().filter(|t| **t > 0.55 && **t < 2.0).collect();
        assert!(
            (5..20).contains(&above.len())
                && above
                    .windows(2)
                    .all(|w| w[0] - w[1] > 0.0101 && w[0] - w[1] <= 0.5),
            "{nodes:?}"
        );
        assert!((70..100).contains(&nodes.len()), "{nodes:?}");
        // Steps given as a number (or a grid) stand; coupled modalities and schedules bridge.
        let given = resolve(
            Config {
                steps: Steps::Count(300),
                ..auto()
            },
            Kind::Speciation,
        )
        .unwrap();
        assert_eq!(
            (given.scheme, given.steps, given.grid),
            (Scheme::Exact, Steps::Count(300), Spacing::Uniform)
        );
        for coupling in [
            "additive:0.5",
            "rotating:0.5,3",
            "additive:step:0.2,1.5,0.6",
        ] {
            let cfg = Config {
                coupling: Some(coupling.parse().unwrap()),
                ..auto()
            };
            assert_eq!(resolve(cfg, Kind::Run).unwrap().scheme, Scheme::Exact);
        }
    }

    #[test]
    fn explicit_schemes_are_left_as_they_are() {
        for scheme in [
            Scheme::EulerMaruyama,
            Scheme::ProbabilityFlow,
            Scheme::Exact,
            Scheme::Exponential,
            Scheme::ExponentialFlow,
            Scheme::Heun,
        ] {
            for steps in [Steps::Auto, Steps::Count(1000)] {
                let cfg = Config {
                    scheme,
                    steps,
                    ..auto()
                };
                for kind in Kind::ALL {
                    assert_eq!(resolve(cfg.clone(), kind).unwrap(), cfg, "{scheme:?}");
                }
            }
        }
    }

    #[test]
    fn auto_falls_back_to_euler_maruyama_where_the_bridge_fails() {
        // No target of this program lacks the bridge; a plan that refuses it is the criterion.
        let mut cfg = auto();
        let built = build::build(&cfg).unwrap();
        assert!(exact_applies(&cfg, &built));
        cfg.t_max = f64::NAN; // no grid, no bridge
        assert!(!exact_applies(&cfg, &built));
    }
}
