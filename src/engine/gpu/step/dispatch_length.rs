//! How many time steps a step dispatch fuses. `--steps-per-dispatch N` given: N (fixed).
//! Absent: measured, per plan shape and variant, so that no dispatch outlives
//! [`TARGET_SECONDS`] (well under the ~1 s of the OS watchdogs that reset a GPU whose work runs
//! long; [`SOFTWARE_TARGET_SECONDS`] on a software adapter, which has no watchdog). Where the adapter offers timestamp queries (`Features::TIMESTAMP_QUERY`), the first
//! dispatches of the first advance of a shape run alone, [`PILOT_STEPS`] steps each, timed on the
//! device by a query at the start and end of their pass; elsewhere the wall time of the variant
//! chooser's probe dispatches (when it timed the shape) or of those first dispatches (submission
//! to completion: an upper bound) gives the time per step. Later dispatches fuse as many steps as
//! fit the target at that rate, scaled up to the batch's particles (never down: a smaller batch
//! is assumed to take as long); a batch more than [`RETIME_FACTOR`] times the timed one's
//! particles is timed anew, as a small batch's time is mostly fixed costs. Loop-limited drivers
//! and training sets evaluated in parts bound the length further ([`GpuEngine::ops_limit`]).
//! Results do not depend on the length: every kernel counts its ops from its dispatch's first
//! point.

use std::collections::HashMap;

use anyhow::{Result, anyhow};

use super::super::footprint::rows_per_tile;
use super::super::loop_budget::{LOOP_BUDGET, cuts_loops};
use super::super::shaders::WORKGROUP;
use super::super::{GpuEngine, is_software};
use super::costs::{eval_costs, step_costs};
use super::kernels::{blocked_group, tiled};
use super::variant::Variant;
use crate::plan::{Kind, Plan, Shape};

/// The longest a measured dispatch should run (seconds).
pub const TARGET_SECONDS: f64 = 0.25;

/// The same on a software adapter (lavapipe, SwiftShader), which runs on the host's threads
/// with no GPU watchdog to reset it: 0.25 s dispatches cost 4–10 % of the throughput there (gmm
/// and dense, d = 100, docs/performance.md), so a longer target, still no more than the ~1 s the
/// issue allows a dispatch (a stop request waits for the dispatch in flight).
pub const SOFTWARE_TARGET_SECONDS: f64 = 1.0;

/// Steps of each timed first dispatch.
pub(super) const PILOT_STEPS: usize = 2;

/// A batch more than this many times the particles of the timed one is timed anew.
pub(super) const RETIME_FACTOR: usize = 2;

/// Most steps a measured dispatch fuses.
pub const MAX_MEASURED_STEPS: usize = 1 << 16;

/// How the time per step was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Timestamp queries around the first dispatches of an advance.
    Timestamps,
    /// The wall time of the variant chooser's probe.
    Probe,
    /// The wall time of the first dispatches of an advance.
    Wall,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Source::Timestamps => "timestamp queries on the first dispatches",
            Source::Probe => "the wall time of the variant probe",
            Source::Wall => "the wall time of the first dispatches",
        }
    }
}

/// Seconds per step of `particles` particles of one shape and variant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rate {
    particles: usize,
    step_seconds: f64,
    source: Source,
}

impl Rate {
    /// Seconds per step of `n` particles: scaled up from the measured batch, never down.
    fn step_seconds(&self, n: usize) -> f64 {
        self.step_seconds * (n as f64 / self.particles.max(1) as f64).max(1.0)
    }
}

/// Steps per dispatch at `step_seconds` per step: as many as fit `target`, at least one.
pub fn measured_steps(step_seconds: f64, target: f64) -> usize {
    if step_seconds.is_finite() && step_seconds > 0.0 {
        ((target / step_seconds).floor() as usize).clamp(1, MAX_MEASURED_STEPS)
    } else {
        1
    }
}

/// The length of the step dispatches of the last advance, and how it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct DispatchLength {
    /// Ops per dispatch at most (2 per step: an evaluation and an update).
    pub ops: usize,
    /// How it was chosen, e.g. `measured by timestamp queries on the first dispatches: 1.2 ms
    /// per step of 8192 particles, target 250 ms`.
    pub how: String,
}

impl DispatchLength {
    /// One line: `37 steps per dispatch (measured …)`.
    pub fn describe(&self) -> String {
        let len = if self.ops >= 4 {
            format!("{} steps", self.ops / 2)
        } else if self.ops >= 2 {
            "1 step".to_string()
        } else {
            "one op (half a step)".to_string()
        };
        format!("{len} per dispatch ({})", self.how)
    }
}

/// What an engine measured: the time per step of each shape and variant it sized, and the last
/// length used.
#[derive(Default)]
pub(in crate::engine::gpu) struct Rates {
    rates: HashMap<(Shape, Variant), Rate>,
    last: Option<DispatchLength>,
}

/// A query set of two timestamps (start and end of a pass) and the buffer it resolves to.
pub(super) struct Timer {
    pub set: wgpu::QuerySet,
    pub resolve: wgpu::Buffer,
}

impl GpuEngine {
    /// Whether the adapter offers timestamp queries (and the device was opened with them).
    pub fn timestamp_queries(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Whether dispatches are timed by timestamp queries (offered, and not turned off).
    pub(super) fn uses_timestamps(&self) -> bool {
        self.options.timestamps && self.timestamp_queries()
    }

    /// A timer for the next dispatches, where timestamp queries are used.
    pub(super) fn timer(&self) -> Option<Timer> {
        self.uses_timestamps().then(|| Timer {
            set: self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("dispatch time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("dispatch time"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
        })
    }

    /// Seconds between a timer's two timestamps (its work submitted).
    pub(super) fn timer_seconds(&self, timer: &Timer) -> Result<f64> {
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&self.read_back(&timer.resolve, 16)?);
        let period = f64::from(self.queue.get_timestamp_period());
        let (a, b) = (ticks[0], ticks[1]);
        if b < a {
            return Err(anyhow!("gpu: timestamps ran backwards ({a} then {b})"));
        }
        Ok((b - a) as f64 * period * 1e-9)
    }

    /// Ops per step dispatch of `n` particles of `shape` in `variant`, under `limit`
    /// ([`Self::ops_limit`], with its reason): fixed where `--steps-per-dispatch` was given,
    /// else from the measured time per step; None while this shape has not been timed (its
    /// next dispatches are the timed first ones). Records the length ([`Self::last_dispatch_length`]).
    pub(super) fn dispatch_ops(
        &self,
        shape: &Shape,
        variant: Variant,
        n: usize,
        limit: (usize, Option<&'static str>),
    ) -> Option<usize> {
        let mut rates = self.rates.lock().expect("dispatch rates");
        let (ops, mut how) = match self.options.steps_per_dispatch {
            Some(s) => (2 * s, format!("given: --steps-per-dispatch {s}")),
            // A step at most either way: nothing to measure.
            None if limit.0 <= 2 => (
                limit.0,
                format!(
                    "not measured: {} allows no more",
                    limit.1.unwrap_or("the dispatch")
                ),
            ),
            None => {
                let rate = rates.rates.get(&(*shape, variant))?;
                // A batch much larger than the timed one is timed anew (scaling up a small
                // batch's time, which is mostly fixed costs, would cut dispatches too short).
                if n > RETIME_FACTOR * rate.particles {
                    return None;
                }
                let t = rate.step_seconds(n);
                let target = if is_software(&self.info) {
                    SOFTWARE_TARGET_SECONDS
                } else {
                    TARGET_SECONDS
                };
                let steps = measured_steps(t, target);
                (
                    2 * steps,
                    format!(
                        "measured by {}: {:.3} ms per step of {n} particles, target {:.0} ms",
                        rate.source.describe(),
                        t * 1e3,
                        target * 1e3
                    ),
                )
            }
        };
        let ops = if ops > limit.0 {
            if let Some(why) = limit.1 {
                how += &format!("; cut by {why}");
            }
            limit.0
        } else {
            ops
        };
        rates.last = Some(DispatchLength { ops, how });
        Some(ops)
    }

    /// Records `seconds` for `ops` ops of `n` particles of `shape` in `variant` (two ops a step),
    /// unless the shape has been timed already on as many particles or more.
    pub(super) fn note_rate(
        &self,
        shape: &Shape,
        variant: Variant,
        n: usize,
        ops: usize,
        seconds: f64,
        source: Source,
    ) {
        let mut rates = self.rates.lock().expect("dispatch rates");
        let rate = Rate {
            particles: n,
            step_seconds: seconds * 2.0 / ops.max(1) as f64,
            source,
        };
        let known = rates.rates.entry((*shape, variant)).or_insert(rate);
        if known.particles < n {
            *known = rate;
        }
    }

    /// The most ops a step dispatch may hold, and what bounds it (None: nothing but the
    /// measured sizing): one where an empirical evaluation is split in parts, and on a
    /// loop-limited driver no more than the budget allows; refuses a step, or a projection of
    /// `dirs` directions in the reduction, that alone exceeds it. A blocked kernel runs in
    /// workgroups of `wg` ([`Self::step_group`]).
    pub(super) fn ops_limit(
        &self,
        plan: &Plan,
        dirs: usize,
        variant: Variant,
        wg: usize,
    ) -> Result<(usize, Option<&'static str>)> {
        let whole = plan.kind == Kind::Mixture || self.training_split(plan)?.is_whole();
        if !whole {
            return Ok((1, Some("the training set's parts (one op per dispatch)")));
        }
        if cuts_loops(&self.info) {
            let (eval, update) = step_costs(plan, variant, whole, wg);
            if eval.max(update) > LOOP_BUDGET {
                return Err(self.loop_error("one step of this plan", eval.max(update)));
            }
            // A reduction window: each invocation folds a workgroup of particles, a projection
            // costing d per particle.
            let window = WORKGROUP as u64 * (plan.dim as u64 + 1);
            if dirs > 0 && window > LOOP_BUDGET {
                return Err(self.loop_error("a projection in the reduction", window));
            }
            let steps = LOOP_BUDGET / (eval + update + 2);
            let ops = if steps == 0 { 1 } else { 2 * steps as usize };
            return Ok((ops, Some("the driver's loop budget")));
        }
        Ok((usize::MAX, None))
    }

    /// Invocations per workgroup of `variant`'s step kernel for a batch of `n` particles: a
    /// blocked kernel's group sized to the batch ([`blocked_group`]), except where a loop-limited
    /// driver would then pass its budget (the smaller group's share of the tile loads of an
    /// evaluation, or of a part of one, is larger); [`WORKGROUP`] for the others (which size
    /// their workgroups themselves).
    pub(super) fn step_group(&self, plan: &Plan, variant: Variant, n: usize) -> Result<usize> {
        let wg = blocked_group(n);
        if variant != Variant::Blocked || wg == WORKGROUP {
            return Ok(WORKGROUP);
        }
        if !cuts_loops(&self.info) || plan.kind == Kind::Mixture || !tiled(&plan.shape()) {
            return Ok(wg);
        }
        let split = self.training_split(plan)?;
        let tile = rows_per_tile(&plan.shape());
        let tiles = split.parts.iter().map(|p| p.rows.len().div_ceil(tile));
        let (fixed, per_tile) = eval_costs(plan, wg);
        let part = fixed + tiles.max().unwrap_or(1) as u64 * per_tile;
        let (eval, update) = step_costs(plan, variant, split.is_whole(), wg);
        let fits = part.max(eval).max(update) <= LOOP_BUDGET;
        Ok(if fits { wg } else { WORKGROUP })
    }

    /// The length of the last advance's step dispatches and how it was chosen (`bench`).
    pub fn last_dispatch_length(&self) -> Option<DispatchLength> {
        self.rates.lock().expect("dispatch rates").last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_lengths_fit_the_target() {
        assert_eq!(measured_steps(0.01, 0.25), 25);
        assert_eq!(measured_steps(0.3, 0.25), 1);
        assert_eq!(measured_steps(0.0, 0.25), 1);
        assert_eq!(measured_steps(f64::NAN, 0.25), 1);
        assert_eq!(measured_steps(1e-12, 0.25), MAX_MEASURED_STEPS);
        let r = Rate {
            particles: 1000,
            step_seconds: 0.01,
            source: Source::Wall,
        };
        // Scaled up to more particles, never down to fewer.
        assert_eq!(r.step_seconds(4000), 0.04);
        assert_eq!(r.step_seconds(10), 0.01);
        let l = DispatchLength {
            ops: 74,
            how: "given".into(),
        };
        assert_eq!(l.describe(), "37 steps per dispatch (given)");
    }
}
