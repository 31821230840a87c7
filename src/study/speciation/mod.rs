//! `regimes speciation`: the cloning experiment on the mixture target, beside the theory. Its
//! variants (the configured mixture, coupled modes with a label each, labelled training points)
//! share the clone pairs and differ in what the summary reads from them ([`Variant`]).

mod auto;
mod data;
mod figure;
mod mixture;
mod phi;
mod summary;

use anyhow::Result;

use super::keys::Read;
pub use super::modes::{ModePhi, ModePoint};
use super::{Inputs, Kind, Parts, Session, Study};
use crate::config::BranchTimes;
use crate::config::build::Built;
use crate::config::keys::Section;
use crate::engine::Engine;
use crate::measure::cloning::Branch;
use crate::report::OutDir;
use crate::theory::{self, Theory};
pub use data::Labelled;
pub use phi::{PhiPoint, measured_points, write_phi_csv};
pub use summary::Speciation;

/// What a speciation study measures φ on, and so what its summary holds.
pub enum Variant {
    /// The configured mixture: φ over its classes, a measured t_S for two symmetric classes.
    Mixture,
    /// Coupled modalities with a label per mode: besides, φ per mode; each mode's theoretical
    /// t_S.
    Modes(Vec<Option<f64>>),
    /// Labelled training points (`--train-file`, `--train-labels`): φ by class and by point.
    Labelled(Box<Labelled>),
}

/// What the clone experiment needs besides its engine.
pub struct Setup {
    built: Built,
    plan: crate::plan::Plan,
    theory: Theory,
    /// Grid indices of the branch points.
    pub steps: Vec<usize>,
    /// The study's clone pairs (all shards).
    pub pairs: u64,
    pub variant: Variant,
    /// With `--branch-times auto`: the model, for the plans of its later rounds (`steps` are
    /// those of its coarse pass).
    auto: Option<crate::model::Model>,
}

impl Setup {
    /// The branches of a folded clone experiment (merged shards).
    pub fn branches(&self, state: crate::measure::cloning::CloneState) -> Vec<Branch> {
        crate::measure::cloning::Cloning::from_state(&self.plan, &self.steps, state).branches
    }
}

/// `regimes speciation`.
pub struct SpeciationStudy;

impl Study for SpeciationStudy {
    const KIND: Kind = Kind::Speciation;
    const READS: &'static [Read] = &[
        Read::All(Section::Model),
        Read::Key("train-file"),
        Read::Key("train-labels"),
        Read::Key("seed"),
        Read::Key("steps"),
        Read::Key("t-max"),
        Read::Key("scheme"),
        Read::Key("grid"),
        Read::Key("start"),
        Read::Key("pairs"),
        Read::Key("branch-times"),
        Read::All(Section::Engine),
        Read::All(Section::Figure),
    ];
    type Setup = Setup;
    type Output = Speciation;

    fn setup(inputs: &Inputs, session: &mut Session) -> Result<Setup> {
        let cfg = &inputs.cfg;
        let (built, plan, theory, labelled, model) = match &cfg.train_file {
            Some(_) => {
                let d = data::data_setup(inputs, session)?;
                (d.built, d.plan, d.theory, Some(d.labelled), d.model)
            }
            None => {
                let (built, plan, theory) = inputs.mixture_setup(session)?;
                let model = built.mixture_model();
                (built, plan, theory, None, model)
            }
        };
        let mode_times = mode_speciation_times(cfg, &built)?;
        let auto = cfg.branch_times == Some(BranchTimes::Auto);
        if auto {
            auto::check_request(inputs, session)?;
        }
        let (times, plan) = match &cfg.branch_times {
            // The config's times are nodes already (Inputs::new).
            Some(BranchTimes::At(times)) => (times.clone(), plan),
            // auto: its first, coarse pass at the default times.
            None | Some(BranchTimes::Auto) => {
                let times = default_branch_times(theory.t_s, &mode_times, cfg.t_max);
                // Measured at, not at the nearest node: on a coarse grid that would be a
                // crossing interpolated across whole steps.
                let grid = plan.grid.with_times(&times)?;
                let plan = if grid.steps == plan.grid.steps {
                    plan
                } else {
                    crate::plan::Plan::new(&model, grid, cfg.scheme, cfg.start)?
                };
                (times, plan)
            }
        };
        let steps = branch_points(&plan.grid, &times);
        Ok(Setup {
            built,
            plan,
            theory,
            steps,
            pairs: inputs.pairs(20_000),
            auto: auto.then_some(model),
            variant: match labelled {
                Some(l) => Variant::Labelled(Box::new(l)),
                None if mode_times.is_empty() => Variant::Mixture,
                None => Variant::Modes(mode_times),
            },
        })
    }

    fn measure<E: Engine>(
        inputs: &Inputs,
        s: &Setup,
        engine: &E,
        session: &mut Session,
    ) -> Result<Parts> {
        if let Some(model) = &s.auto {
            return auto::measure(inputs, s, model, engine, session);
        }
        let classes = match &s.variant {
            Variant::Labelled(l) => Some(&l.classes[..]),
            _ => None,
        };
        let cloning =
            session.clone_pairs(inputs, 0, (engine, &s.plan), (s.pairs, &s.steps), classes)?;
        Ok(Parts {
            clones: Some(cloning.state),
            ..Parts::default()
        })
    }

    /// The clone experiment's result from its folded pairs (its own, or merged from slices).
    fn summarise(inputs: &Inputs, s: &Setup, parts: &Parts) -> Result<Speciation> {
        let (branches, pair_steps, refinement) = match &parts.rounds {
            Some(rounds) => {
                let steps = rounds.iter().map(|r| r.state.done * r.pair_steps).sum();
                (
                    auto::branches(rounds),
                    steps,
                    Some(auto::refinement(s, rounds)),
                )
            }
            None => {
                let state = parts.clone_pairs()?;
                let per_pair = pair_steps(&s.steps, s.plan.grid.steps);
                (s.branches(state.clone()), state.done * per_pair, None)
            }
        };
        let pairs = branches.iter().map(|b| b.pairs).max().unwrap_or(0);
        let summary = match &s.variant {
            Variant::Mixture => mixture::mixture_summary(inputs, s, branches, &[]),
            Variant::Modes(times) => mixture::mixture_summary(inputs, s, branches, times),
            Variant::Labelled(l) => data::data_summary(s, l, branches),
        };
        Ok(Speciation {
            pair_steps,
            refinement,
            // auto: the refined times' pairs (the coarse pass has fewer).
            pairs: if parts.rounds.is_some() {
                pairs
            } else {
                summary.pairs
            },
            ..summary
        })
    }

    fn write(
        inputs: &Inputs,
        s: &Setup,
        r: &Speciation,
        _: &Parts,
        out: &OutDir,
        partial: Option<&str>,
    ) -> Result<()> {
        figure::write_outputs(inputs, s, out, r, partial)
    }

    /// (auto: unknown until it has measured; each round shows its own progress.)
    fn work(inputs: &Inputs, s: &Setup) -> u64 {
        if s.auto.is_some() {
            return 0;
        }
        let range = inputs.range(s.pairs);
        (range.end - range.start) * pair_steps(&s.steps, s.plan.grid.steps)
    }

    fn done(inputs: &Inputs, s: &Setup, parts: &Parts) -> f64 {
        let range = inputs.range(s.pairs);
        if let Some(rounds) = &parts.rounds {
            // Rounds end where they stopped: the last one's share is what is missing.
            return rounds
                .last()
                .map_or(0.0, |r| super::fraction(r.state.done, r.pairs));
        }
        let done = parts.clones.as_ref().map_or(0, |c| c.done);
        super::fraction(done, range.end - range.start)
    }

    fn table(r: &Speciation) -> String {
        summary::table(r)
    }
}

/// Grid indices of the branch times (nearest node; the last step's end, t = 0, excluded),
/// ascending and distinct.
fn branch_points(grid: &crate::plan::Grid, times: &[f64]) -> Vec<usize> {
    let mut j: Vec<usize> = times
        .iter()
        .map(|&t| grid.index_of(t).min(grid.steps - 1))
        .collect();
    j.sort_unstable();
    j.dedup();
    j
}

/// Particle-steps of one clone pair: its trunk to the last branch point, and two clones from
/// each branch point to the end.
pub fn pair_steps(branch_steps: &[usize], steps: usize) -> u64 {
    let trunk = branch_steps.iter().max().copied().unwrap_or(0);
    (trunk + branch_steps.iter().map(|&j| 2 * (steps - j)).sum::<usize>()) as u64
}

/// Each mode's theoretical t_S where per-mode φ is observable, else none. Per-mode φ is
/// observable only when each mode carries a label: a shared label commits once, at the joint
/// t_S, and a mode-regrouped φ is the joint φ.
pub(super) fn mode_speciation_times(
    cfg: &crate::config::Config,
    built: &crate::config::build::Built,
) -> Result<Vec<Option<f64>>> {
    let Some(c) = cfg.coupling.as_ref().filter(|_| cfg.mode_labels()) else {
        return Ok(vec![]);
    };
    Ok(theory::modes::mode_theory(
        &built.process,
        &built.mixture,
        c,
        cfg.mode_labels(),
        cfg.n_train_or_default(),
        cfg.t_max,
    )?
    .iter()
    .map(|m| m.t_s)
    .collect())
}

/// Branch times bracketing t_S (and each mode's t_S for coupled modalities), or spread over the
/// horizon when there is no theory.
pub(crate) fn default_branch_times(
    t_s: Option<f64>,
    mode_t_s: &[Option<f64>],
    t_max: f64,
) -> Vec<f64> {
    let known: Vec<f64> = t_s
        .iter()
        .chain(mode_t_s.iter().flatten())
        .copied()
        .collect();
    if known.is_empty() {
        return (1..=8).map(|k| t_max * k as f64 / 9.0).collect();
    }
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(l, h), &t| (l.min(t), h.max(t)));
    if mode_t_s.is_empty() || hi <= lo * 1.05 {
        return [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 2.0]
            .iter()
            .map(|f| f * hi)
            .collect();
    }
    // Several modes: an even spread from below the earliest to past the latest.
    let (a, b) = (0.6 * lo, (1.6 * hi).min(t_max));
    (0..12).map(|k| a + (b - a) * k as f64 / 11.0).collect()
}
