//! `--branch-times auto`: t_S measured where it is, not where a fixed grid of branch times
//! happens to bracket it. A coarse pass at the default times with an eighth of the pairs finds
//! the crossing of F(1); each round then branches all the pairs at two new times either side of
//! the latest crossing, the first pair [`WIDTH`] of the coarse pass's errors apart from it, each
//! later pair half as far, until the crossing lies between the last round's times and the
//! interpolation across them adds at most half the noise's part to t_S, or [`MAX_ROUNDS`] rounds
//! ran. Each round runs on its own grid (the base grid with its two times as nodes) and its own
//! pairs (indices after the earlier rounds'), so the same command gives the same bits; a shard
//! or a checkpoint alone could not know the earlier rounds, so neither is offered.

use std::ops::Range;

use anyhow::{Result, ensure};

use super::summary::{Refinement, RefinementRound};
use super::{Setup, Variant, branch_points, pair_steps};
use crate::engine::Engine;
use crate::measure::cloning::{Branch, CloneRound, Crossing, Pairs, clone_pairs_from};
use crate::plan::Plan;
use crate::study::{Inputs, Parts, Session};

/// The coarse pass measures this fraction of the pairs (1/PILOT_SHARE).
pub const PILOT_SHARE: u64 = 8;
/// Refinement rounds after the coarse pass, at most: each costs about 0.4 of a six-time grid's
/// pair-steps on `lu-tang` (two times near t_S), the coarse pass 0.2.
pub const MAX_ROUNDS: usize = 2;
/// The first round's times lie this many of the coarse crossing's errors either side of it
/// (the truth falls between them unless the coarse error is 2.5 times off).
pub const WIDTH: f64 = 2.5;

/// Refuses what auto cannot reproduce: a slice of the pairs (`--shard`, `--devices`) or a
/// checkpoint (each round's times follow from what the earlier rounds measured).
pub(super) fn check_request(inputs: &Inputs, session: &Session) -> Result<()> {
    ensure!(
        inputs.shard.is_none() && inputs.device.is_none() && !session.checkpointing(),
        "branch-times: auto chooses each round's times from what the earlier rounds measured, \
         which a shard, a device's slice or a resumed checkpoint cannot see; run it whole, or \
         give the times (--branch-times T1,T2,...) to shard, split or checkpoint"
    );
    Ok(())
}

/// The clone pairs of `--branch-times auto`, round by round.
pub(super) fn measure<E: Engine>(
    inputs: &Inputs,
    s: &Setup,
    model: &crate::model::Model,
    engine: &E,
    session: &mut Session,
) -> Result<Parts> {
    check_request(inputs, session)?;
    let cfg = &inputs.cfg;
    let classes = match &s.variant {
        Variant::Labelled(l) => Some(&l.classes[..]),
        _ => None,
    };
    let seeded = Pairs {
        seed: cfg.seed,
        batch: cfg.batch,
        classes,
    };
    let pilot = (s.pairs / PILOT_SHARE).max(1);
    let mut rounds = vec![run_round(
        inputs,
        engine,
        session,
        seeded,
        (&s.plan, &s.steps),
        0..pilot,
    )?];
    let mut next = pilot;
    let mut half: Option<f64> = None;
    for _ in 0..MAX_ROUNDS {
        if session.stopped.is_some() {
            break;
        }
        let Some(c) = crossing(s, &branches(&rounds)) else {
            break;
        };
        if rounds.len() > 1 && converged(&c, &rounds) {
            break;
        }
        let h = half.map_or(WIDTH * c.error(), |h| h / 2.0);
        half = Some(h);
        let times = [(c.t - h).max(0.5 * c.t), (c.t + h).min(cfg.t_max)];
        let grid = inputs.grid.with_times(&times)?;
        let plan = Plan::new(model, grid, cfg.scheme, cfg.start)?;
        let steps = branch_points(&plan.grid, &times);
        let range = next..next + s.pairs;
        rounds.push(run_round(
            inputs,
            engine,
            session,
            seeded,
            (&plan, &steps),
            range,
        )?);
        next += s.pairs;
    }
    Ok(Parts {
        rounds: Some(rounds),
        ..Parts::default()
    })
}

/// One round: the pairs `range` branched at the grid points `steps` of `plan`.
fn run_round<E: Engine>(
    inputs: &Inputs,
    engine: &E,
    session: &mut Session,
    seeded: Pairs,
    (plan, steps): (&Plan, &[usize]),
    range: Range<u64>,
) -> Result<CloneRound> {
    let per_pair = pair_steps(steps, plan.grid.steps);
    let pairs = range.end - range.start;
    let cloning = inputs.with_progress(pairs * per_pair, "clone pairs", |tick| {
        clone_pairs_from(engine, plan, seeded, range, steps, None, None, tick)
    })?;
    session.stopped(cloning.stopped.clone());
    Ok(CloneRound {
        times: steps.iter().map(|&j| plan.grid.node(j)).collect(),
        steps: steps.to_vec(),
        pair_steps: per_pair,
        pairs,
        state: cloning.state,
    })
}

/// The branches of all rounds by descending time (as one round's are), less those that a later
/// round with at least as many pairs supersedes: those between its two times or within its
/// width of them. Between, a noisier φ would be the bracket's end; just beside, the neighbour
/// its curvature is read from, whose noise the second divided difference amplifies by
/// (width / distance)² — from three widths away the curvature's noise adds about a third of the
/// statistical error, from one width as much again.
pub(super) fn branches(rounds: &[CloneRound]) -> Vec<Branch> {
    let span = |r: &CloneRound| {
        let lo = r.times.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = r.times.iter().copied().fold(lo, f64::max);
        (2.0 * lo - hi, 2.0 * hi - lo)
    };
    let mut all: Vec<Branch> = vec![];
    for (k, r) in rounds.iter().enumerate() {
        let superseded = |t: f64| {
            rounds[k + 1..].iter().any(|later| {
                let (lo, hi) = span(later);
                later.state.done >= r.state.done && lo < t && t < hi
            })
        };
        all.extend(r.branches().into_iter().filter(|b| !superseded(b.t)));
    }
    all.sort_by(|a, b| b.t.total_cmp(&a.t));
    all
}

/// The measured crossing of F(1) where the variant has one (two symmetric classes, two
/// labelled classes).
fn crossing(s: &Setup, branches: &[Branch]) -> Option<Crossing> {
    match &s.variant {
        Variant::Mixture | Variant::Modes(_) => super::mixture::measured_crossing(s, branches),
        Variant::Labelled(l) => super::data::measured_crossing(s, l, branches),
    }
}

/// The goal: the crossing between the last round's times, and their interpolation adding at
/// most half the noise's part.
fn converged(c: &Crossing, rounds: &[CloneRound]) -> bool {
    let last = &rounds[rounds.len() - 1].times;
    let (lo, hi) = last
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &t| {
            (l.min(t), h.max(t))
        });
    lo < c.t && c.t < hi && c.interpolation <= 0.5 * c.statistical
}

/// The rounds as the summary reports them, with the t_S each had measured by its end.
pub(super) fn refinement(s: &Setup, rounds: &[CloneRound]) -> Refinement {
    let mut out = vec![];
    let mut last = None;
    for k in 1..=rounds.len() {
        let c = crossing(s, &branches(&rounds[..k]));
        let r = &rounds[k - 1];
        let mut times = r.times.clone();
        times.sort_by(f64::total_cmp);
        out.push(RefinementRound {
            times,
            pairs: r.state.done,
            pair_steps: r.state.done * r.pair_steps,
            t_s: c.map(|c| c.t),
            t_s_stderr: c.map(|c| c.error()),
            t_s_statistical: c.map(|c| c.statistical),
            t_s_interpolation: c.map(|c| c.interpolation),
        });
        last = c;
    }
    Refinement {
        rounds: out,
        converged: rounds.len() > 1 && last.is_some_and(|c| converged(&c, rounds)),
    }
}
