//! The choice of a step-kernel variant per plan shape ([`Variant`]): forced, the only one that
//! runs the plan, or timed on a probe dispatch at the first use of a shape whose run pays for the
//! probe; the choices cached for the process and the shapes a study used.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Result, bail};

use super::super::buffers::bytes_of;
use super::super::footprint::scratch_rows;
use super::super::layout::META_WORDS;
use super::super::layout::{Bindings, Params};
use super::super::shaders::WORKGROUP;
use super::super::{GpuEngine, is_software};
use super::dispatch_length::Source;
use super::kernels::group_particles;
use super::points::PointLayout;
use super::training::Training;
use super::variant::{Choice, How, Variant, variant_from_env};
use crate::plan::{Kind, Plan, Shape};

/// The variant of each shape, keyed also by the variant forced (reconfigured engines share it).
pub(in crate::engine::gpu) type Choices = HashMap<(Shape, Option<Variant>), Choice>;

/// Steps of a probe dispatch, and its timed repetitions per variant (the fastest counts).
const PROBE_STEPS: usize = 4;
const PROBE_REPS: usize = 3;

/// Probe particles at most: enough to fill a large GPU; a software adapter is timed on fewer.
pub(in crate::engine::gpu) fn probe_particles(software: bool) -> usize {
    if software { 4096 } else { 1 << 18 }
}

/// A batch is worth probing when its particle-steps to the end of the grid are at least this
/// many times the probe's own (every variant, every repetition): a short run, whose probe would
/// cost more than any variant could save, runs the first applicable variant untimed (and skips
/// the other variants' pipeline compiles, seconds on a software adapter).
pub const PROBE_PAYOFF: usize = 8;

/// Whether `n` particles over `steps` steps are work enough to probe `variants`.
fn worth_probing(variants: usize, n: usize, steps: usize, software: bool) -> bool {
    let probe_n = n.min(probe_particles(software)).div_ceil(WORKGROUP) * WORKGROUP;
    let probe = variants * (PROBE_REPS + 1) * probe_n * PROBE_STEPS;
    n.saturating_mul(steps) >= PROBE_PAYOFF * probe
}

impl GpuEngine {
    /// The variants that run `plan` on this device: those of its shape, less the on-chip empirical
    /// kernel where the training set is evaluated in parts (several bindings or dispatches) or a
    /// step of it exceeds a loop-limited driver's budget.
    pub(super) fn variants_for(&self, plan: &Plan) -> Result<Vec<Variant>> {
        let mut v = Variant::applicable(&plan.shape());
        if plan.kind == Kind::Empirical
            && v.contains(&Variant::OnChip)
            && !(self.training_split(plan)?.is_whole()
                && self.fits_loop_budget(plan, Variant::OnChip))
        {
            v.retain(|&x| x != Variant::OnChip);
        }
        // A mixture step some variant cannot run on a loop-limited driver leaves it to those that
        // can (a dense d = 1024 step: the wide kernel, not the blocked one); if none can, the
        // blocked kernel stays, to refuse the plan with the loop budget's error.
        if plan.kind == Kind::Mixture {
            let fitting: Vec<Variant> = v
                .iter()
                .copied()
                .filter(|&x| self.fits_loop_budget(plan, x))
                .collect();
            v = if fitting.is_empty() {
                vec![Variant::Blocked]
            } else {
                fitting
            };
        }
        Ok(v)
    }

    /// The variant plans of this shape run with: chosen at the first use of the shape (forced, or
    /// timed on a probe batch of up to `n` particles starting at point `from`, with the training
    /// set of an empirical plan, when the batch's steps to the end of the grid pay for the probe),
    /// then cached. A cached choice that does not run this plan on this engine (a reconfigured one
    /// with a smaller binding limit) gives way to the first that does (the blocked kernel, unless a
    /// loop-limited driver rules it out); an unprobed one is probed by the first long advance.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step_variant(
        &self,
        plan: &Plan,
        from: usize,
        to: usize,
        n: usize,
        base: &Params,
        training: Option<&Training>,
    ) -> Result<Variant> {
        let shape = plan.shape();
        {
            let mut used = self.used.lock().expect("used shapes");
            if !used.contains(&shape) {
                used.push(shape);
            }
        }
        let applicable = self.variants_for(plan)?;
        let key = (shape, self.options.variant);
        let software = is_software(&self.info);
        // The batch runs on to the end of the grid (in segments of a few steps): that is the
        // work a probe would speed up.
        let rest = plan
            .grid
            .steps
            .saturating_sub(from)
            .max(to.saturating_sub(from));
        let long = worth_probing(applicable.len(), n, rest, software);
        if let Some(c) = self
            .choices
            .lock()
            .expect("variant choices")
            .get(&key)
            .filter(|c| !(c.how == How::Unprobed && long))
        {
            let runs = applicable.contains(&c.variant)
                || (c.how == How::Forced
                    && plan.kind == Kind::Mixture
                    && c.variant.applies(&shape));
            return Ok(if runs { c.variant } else { applicable[0] });
        }
        let choice = match self.options.variant {
            // Forced by the options (`--gpu-variant`) on a shape it does not run: an error. Forced
            // by the environment, it runs the plans it applies to and the rest choose as usual
            // (so a whole test suite runs under each variant in turn).
            Some(v) if !v.applies(&shape) && variant_from_env().ok().flatten() != Some(v) => {
                bail!(
                    "gpu: the {v} kernel variant was forced but does not run this plan ({}, d = \
                     {}, K = {}); it runs {}",
                    match shape.kind {
                        Kind::Mixture => "mixture",
                        Kind::Empirical => "empirical",
                    },
                    shape.dim,
                    shape.centers,
                    v.scope()
                )
            }
            // Forced on a mixture plan it runs but not within a loop-limited driver's budget: it
            // runs, to be refused with the budget's error (not silently replaced).
            Some(v)
                if applicable.contains(&v) || (plan.kind == Kind::Mixture && v.applies(&shape)) =>
            {
                Choice {
                    variant: v,
                    how: How::Forced,
                }
            }
            _ if applicable.len() > 1 && long => {
                Choice::fastest(self.probe_variants(plan, &applicable, from, n, base, training)?)
            }
            _ if applicable.len() > 1 => Choice {
                variant: applicable[0],
                how: How::Unprobed,
            },
            // The only one: the blocked kernel, or the one that fits a loop-limited driver.
            _ => Choice {
                variant: applicable[0],
                how: How::OnlyOne,
            },
        };
        let variant = choice.variant;
        let mut cache = self.choices.lock().expect("variant choices");
        let entry = cache.entry(key).or_insert_with(|| choice.clone());
        if entry.how == How::Unprobed {
            *entry = choice;
        }
        Ok(variant)
    }

    /// The variant chosen for each plan shape this engine's options have run, in a stable order.
    pub fn step_choices(&self) -> Vec<(Shape, Choice)> {
        let cache = self.choices.lock().expect("variant choices");
        let mut v: Vec<(Shape, Choice)> = cache
            .iter()
            .filter(|((_, f), _)| *f == self.options.variant)
            .map(|((s, _), c)| (*s, c.clone()))
            .collect();
        v.sort_by_key(|(s, _)| (s.kind as u8, s.dim, s.centers, format!("{s:?}")));
        v
    }

    /// Forgets the shapes advanced so far ([`Self::used_variants`]).
    pub fn clear_used(&self) {
        self.used.lock().expect("used shapes").clear();
    }

    /// What a study's summary records as `gpu_variant`: the choice of each plan shape advanced
    /// since [`Self::clear_used`], in first-use order ([`Choice::describe`], `; `-separated), None
    /// if none was.
    pub fn used_variants(&self) -> Option<String> {
        let used = self.used.lock().expect("used shapes");
        let cache = self.choices.lock().expect("variant choices");
        let described: Vec<String> = used
            .iter()
            .filter_map(|&s| cache.get(&(s, self.options.variant)))
            .map(Choice::describe)
            .collect();
        (!described.is_empty()).then(|| described.join("; "))
    }

    /// Seconds per probe dispatch of each variant: zeroed particles (the values do not change
    /// the work), the coefficients of the plan's points from `from` (and an empirical plan's
    /// training set, evaluated whole), the fastest of a few repetitions after a warm-up,
    /// alternating variants so drift hits all alike.
    fn probe_variants(
        &self,
        plan: &Plan,
        variants: &[Variant],
        from: usize,
        n: usize,
        base: &Params,
        training: Option<&Training>,
    ) -> Result<Vec<(Variant, f64)>> {
        let software = is_software(&self.info);
        // Each variant in the workgroups the batch will run it in.
        let groups = variants
            .iter()
            .map(|&v| self.step_group(plan, v, n))
            .collect::<Result<Vec<_>>>()?;
        let n = n.min(probe_particles(software)).div_ceil(WORKGROUP) * WORKGROUP;
        let d = plan.dim;
        let chunk = plan.chunk(plan.chunk_of(from))?;
        let last_in_chunk = chunk.first + plan.chunk_len.max(1) - 1;
        let mut last = (from + PROBE_STEPS).min(plan.grid.steps).min(last_in_chunk);
        for (&v, &wg) in variants.iter().zip(&groups) {
            let ops = self.ops_limit(plan, 0, v, wg)?.0;
            last = last.min(from + (ops.saturating_sub(1)) / 2);
        }
        let mut params = Params {
            n: n as u32,
            stride: n as u32,
            phase: 0,
            ops: (2 * (last - from) + 1) as u32,
            first: from as u32,
            ..*base
        };
        // The first part of the evaluation: the whole training set where on-chip applies.
        let mut centers = None;
        if let Some(t) = training {
            let (binding, args) = t.parts(true)[0];
            params.args = args;
            centers = Some(&t.buffers()[binding]);
        }
        let layout = PointLayout::of(plan);
        let data = layout.upload(
            &chunk,
            from - chunk.first,
            last - chunk.first + 1,
            &mut params,
        );
        let coefficients =
            self.storage_init("probe plan", bytes_of(&data), wgpu::BufferUsages::empty());
        let x = self.storage_zeroed("probe x", (4 * d * n) as u64);
        let meta = self.storage_zeroed("probe meta", (4 * META_WORDS * n) as u64);
        let scratch = self.storage_zeroed("probe scratch", (4 * scratch_rows(plan) * n) as u64);
        let pipelines = variants
            .iter()
            .zip(&groups)
            .map(|(&v, &wg)| self.step_pipeline(plan, v, wg))
            .collect::<Result<Vec<_>>>()?;
        let mut best = vec![f64::INFINITY; variants.len()];
        for rep in 0..=PROBE_REPS {
            for (i, (&v, p)) in variants.iter().zip(&pipelines).enumerate() {
                let clock = Instant::now();
                let grid = n.div_ceil(group_particles(v, groups[i]));
                let bindings = Bindings {
                    xs: Some(&x),
                    pmeta: Some(&meta),
                    scratch: Some(&scratch),
                    plan: Some(&coefficients),
                    centers,
                    ..Bindings::default()
                };
                self.dispatch_alone(p, &params, bindings, grid);
                self.wait()?;
                if rep > 0 {
                    best[i] = best[i].min(clock.elapsed().as_secs_f64());
                }
            }
        }
        // Without timestamp queries the probe's wall time sizes the dispatches.
        if !self.uses_timestamps() {
            for (&v, &t) in variants.iter().zip(&best) {
                let source = Source::Probe;
                self.note_rate(&plan.shape(), v, n, params.ops as usize, t, source);
            }
        }
        Ok(variants.iter().copied().zip(best).collect())
    }
}
