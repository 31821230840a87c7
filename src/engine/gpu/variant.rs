//! Step-kernel variants and the choice between them. `Blocked` (`step_mixture.wgsl`,
//! `step_empirical.wgsl`: four particles per invocation, temporaries in scratch rows) applies to
//! every plan; `OnChip` (`step_mixture_onchip.wgsl`, `step_empirical_onchip.wgsl`: one particle
//! per invocation, x and every temporary in private arrays across a dispatch, training tiles in
//! workgroup memory) to mixture plans of small d and K and to empirical plans of small d whose
//! training set one dispatch evaluates whole; `Wide` (`step_mixture_wide.wgsl`: a workgroup per
//! particle, its coordinates spread over the invocations, dot products by a tree reduction in
//! workgroup memory, dense products through workgroup tiles) to mixture plans of large d. Which is faster depends on the adapter, so at the
//! first use of a shape each applicable variant is timed on a probe dispatch and the fastest kept
//! for the process ([`Choice`]); `--gpu-variant` or `REGIMES_GPU_VARIANT` forces one.

use std::fmt;
use std::time::Instant;

use anyhow::{Result, bail};

use super::GpuEngine;
use super::batch::scratch_rows;
use super::buffers::bytes_of;
use super::layout::{Bindings, Params};
use super::shaders::WORKGROUP;
use super::training::Training;
use crate::plan::{Kind, Plan, Shape};

/// The environment variable that forces a variant (`auto`, `blocked`, `onchip`, `wide`).
pub const VARIANT_ENV: &str = "REGIMES_GPU_VARIANT";

/// Largest d and K of the on-chip variant: its private arrays (3·D + K floats, or 3·D + 64 for
/// the empirical target, whose K training points stream through workgroup memory) then stay
/// within what a GPU keeps in registers and L1 for one invocation.
pub const ONCHIP_MAX_DIM: usize = 128;
pub const ONCHIP_MAX_CENTERS: usize = 64;

/// Invocations (= particles) per workgroup of the on-chip variant (`OWG` in its WGSL): as many
/// particles as a workgroup of the blocked kernel, which share each coefficient load.
pub const ONCHIP_GROUP: usize = 256;

/// Largest K of the wide variant: its K logits live in workgroup memory (4 KiB), beside a tile
/// of 4·[`WIDE_GROUP_MAX`] coordinates and the reduction's 4·`WIDE_GROUP_MAX` partials: 12 KiB in
/// all, within the 16 KiB every adapter offers.
pub const WIDE_MAX_CENTERS: usize = 1024;

/// Most invocations per workgroup (= per particle) of the wide variant: the portable limit.
pub const WIDE_GROUP_MAX: usize = 256;

/// Invocations per workgroup of the wide variant at dimension `d` (`WWG`): one per block of four
/// coordinates, a power of two (the tree reduction) from 64 to 256 (`WIDE_GROUP_MAX`); past
/// d = 1024 each invocation owns several blocks (`wide_blocks`).
pub fn wide_group(d: usize) -> usize {
    d.div_ceil(4).next_power_of_two().clamp(64, WIDE_GROUP_MAX)
}

/// Blocks of four coordinates each invocation of the wide variant owns (`QW`): 16 at d = 16384.
pub fn wide_blocks(d: usize) -> usize {
    d.div_ceil(4).div_ceil(wide_group(d)).max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    Blocked,
    OnChip,
    Wide,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::Blocked, Variant::OnChip, Variant::Wide];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Blocked => "blocked",
            Variant::OnChip => "onchip",
            Variant::Wide => "wide",
        }
    }

    /// Whether this variant runs plans of this shape.
    pub fn applies(self, shape: &Shape) -> bool {
        match self {
            Variant::Blocked => true,
            Variant::OnChip => {
                shape.dim <= ONCHIP_MAX_DIM
                    && (shape.kind == Kind::Empirical || shape.centers <= ONCHIP_MAX_CENTERS)
            }
            Variant::Wide => {
                shape.kind == Kind::Mixture
                    && shape.dim > ONCHIP_MAX_DIM
                    && shape.centers <= WIDE_MAX_CENTERS
            }
        }
    }

    /// The plans this variant runs, in words (for the error of a forced variant that does not).
    pub fn scope(self) -> String {
        match self {
            Variant::Blocked => "every plan".into(),
            Variant::OnChip => format!(
                "mixture plans of d ≤ {ONCHIP_MAX_DIM} and K ≤ {ONCHIP_MAX_CENTERS}, empirical \
                 plans of d ≤ {ONCHIP_MAX_DIM}"
            ),
            Variant::Wide => {
                format!("mixture plans of d > {ONCHIP_MAX_DIM} and K ≤ {WIDE_MAX_CENTERS}")
            }
        }
    }

    /// The variants that run plans of this shape (on some device: [`GpuEngine`] may rule out the
    /// on-chip empirical kernel for a training set it evaluates in parts).
    pub fn applicable(shape: &Shape) -> Vec<Variant> {
        Self::ALL.into_iter().filter(|v| v.applies(shape)).collect()
    }

    /// Particles per workgroup, which sizes the dispatch grid.
    pub(super) fn group_particles(self) -> usize {
        match self {
            Variant::Blocked => super::shaders::GROUP_PARTICLES,
            Variant::OnChip => ONCHIP_GROUP,
            Variant::Wide => 1,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `auto` (None: chosen by measurement) or a forced variant.
pub fn parse_variant(s: &str) -> Result<Option<Variant>> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "blocked" => Ok(Some(Variant::Blocked)),
        "onchip" | "on-chip" => Ok(Some(Variant::OnChip)),
        "wide" => Ok(Some(Variant::Wide)),
        other => bail!("gpu: unknown kernel variant {other:?} (auto, blocked, onchip or wide)"),
    }
}

/// The variant forced by [`VARIANT_ENV`], if set.
pub fn variant_from_env() -> Result<Option<Variant>> {
    match std::env::var(VARIANT_ENV) {
        Ok(s) => parse_variant(&s).map_err(|e| e.context(format!("in ${VARIANT_ENV}"))),
        Err(_) => Ok(None),
    }
}

/// The variant a shape runs with, and how it was chosen.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub variant: Variant,
    pub how: How,
}

/// How a shape's variant was chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum How {
    /// By `--gpu-variant` or the environment.
    Forced,
    /// The only variant that runs the plan.
    OnlyOne,
    /// The fastest of the probe's timings: seconds per probe dispatch of each variant.
    Probed(Vec<(Variant, f64)>),
    /// The first applicable variant, untimed: the advances so far were too short for a probe to
    /// pay for itself (`PROBE_PAYOFF`); a longer advance of the shape probes.
    Unprobed,
}

impl Choice {
    /// The fastest of the timed variants (the first on a tie).
    pub fn fastest(timings: Vec<(Variant, f64)>) -> Choice {
        let variant = timings
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(Variant::Blocked, |t| t.0);
        Choice {
            variant,
            how: How::Probed(timings),
        }
    }

    /// One line: `onchip (forced)`, `blocked (the only one)`, `blocked (not probed: a short run)`
    /// or `onchip (probe: blocked 1.2 ms, onchip 0.4 ms)`.
    pub fn describe(&self) -> String {
        match &self.how {
            How::Forced => format!("{} (forced)", self.variant),
            How::OnlyOne => format!("{} (the only one)", self.variant),
            How::Unprobed => format!("{} (not probed: a short run)", self.variant),
            How::Probed(timings) => {
                let t: Vec<String> = timings
                    .iter()
                    .map(|(v, s)| format!("{v} {:.3} ms", s * 1e3))
                    .collect();
                format!("{} (probe: {})", self.variant, t.join(", "))
            }
        }
    }
}

/// Steps of a probe dispatch, and its timed repetitions per variant (the fastest counts).
const PROBE_STEPS: usize = 4;
const PROBE_REPS: usize = 3;

/// Probe particles at most: enough to fill a large GPU; a software adapter is timed on fewer.
pub(super) fn probe_particles(software: bool) -> usize {
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
        let software = super::is_software(&self.info);
        // The batch runs on to the end of the grid (in segments of a few steps): that is the
        // work a probe would speed up.
        let rest = plan
            .grid
            .steps
            .saturating_sub(from)
            .max(to.saturating_sub(from));
        let long = worth_probing(applicable.len(), n, rest, software);
        if let Some(c) = self
            .pipelines
            .steps
            .lock()
            .expect("step pipelines")
            .choices
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
        let mut cache = self.pipelines.steps.lock().expect("step pipelines");
        let entry = cache.choices.entry(key).or_insert_with(|| choice.clone());
        if entry.how == How::Unprobed {
            *entry = choice;
        }
        Ok(variant)
    }

    /// The variant chosen for each plan shape this engine's options have run, in a stable order.
    pub fn step_choices(&self) -> Vec<(Shape, Choice)> {
        let cache = self.pipelines.steps.lock().expect("step pipelines");
        let mut v: Vec<(Shape, Choice)> = cache
            .choices
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
        let cache = self.pipelines.steps.lock().expect("step pipelines");
        let described: Vec<String> = used
            .iter()
            .filter_map(|&s| cache.choices.get(&(s, self.options.variant)))
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
        let software = super::is_software(&self.info);
        let n = n.min(probe_particles(software)).div_ceil(WORKGROUP) * WORKGROUP;
        let d = plan.dim;
        let chunk = plan.chunk(plan.chunk_of(from))?;
        let last_in_chunk = chunk.first + plan.chunk_len.max(1) - 1;
        let mut last = (from + PROBE_STEPS).min(plan.grid.steps).min(last_in_chunk);
        for &v in variants {
            let ops = self.ops_limit(plan, 0, v)?.0;
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
        let layout = super::step::PointLayout::of(plan);
        let data = layout.upload(
            &chunk,
            from - chunk.first,
            last - chunk.first + 1,
            &mut params,
        );
        let coefficients =
            self.storage_init("probe plan", bytes_of(&data), wgpu::BufferUsages::empty());
        let x = self.storage_zeroed("probe x", (4 * d * n) as u64);
        let meta = self.storage_zeroed("probe meta", (16 * n) as u64);
        let scratch = self.storage_zeroed("probe scratch", (4 * scratch_rows(plan) * n) as u64);
        let pipelines = variants
            .iter()
            .map(|&v| self.step_pipeline(plan, v))
            .collect::<Result<Vec<_>>>()?;
        let mut best = vec![f64::INFINITY; variants.len()];
        for rep in 0..=PROBE_REPS {
            for (i, (&v, p)) in variants.iter().zip(&pipelines).enumerate() {
                let clock = Instant::now();
                let groups = n.div_ceil(v.group_particles());
                let bindings = Bindings {
                    xs: Some(&x),
                    pmeta: Some(&meta),
                    scratch: Some(&scratch),
                    plan: Some(&coefficients),
                    centers,
                    ..Bindings::default()
                };
                self.dispatch_alone(p, &params, bindings, groups);
                self.wait()?;
                if rep > 0 {
                    best[i] = best[i].min(clock.elapsed().as_secs_f64());
                }
            }
        }
        // Without timestamp queries the probe's wall time sizes the dispatches.
        if !self.uses_timestamps() {
            for (&v, &t) in variants.iter().zip(&best) {
                let source = super::dispatch_length::Source::Probe;
                self.note_rate(&plan.shape(), v, n, params.ops as usize, t, source);
            }
        }
        Ok(variants.iter().copied().zip(best).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::Form;

    fn shape(kind: Kind, dim: usize) -> Shape {
        Shape {
            kind,
            dim,
            centers: 2,
            m_form: Form::Scalar,
            b_form: Form::Scalar,
            p_form: Form::Scalar,
            noise_form: Form::Scalar,
            stochastic: true,
            draws: false,
        }
    }

    #[test]
    fn variants_parse_apply_and_choose_the_fastest() {
        assert_eq!(parse_variant("auto").unwrap(), None);
        assert_eq!(parse_variant("OnChip").unwrap(), Some(Variant::OnChip));
        assert_eq!(parse_variant("blocked").unwrap(), Some(Variant::Blocked));
        assert_eq!(parse_variant("wide").unwrap(), Some(Variant::Wide));
        assert!(parse_variant("fast").is_err());
        assert_eq!(
            Variant::applicable(&shape(Kind::Mixture, 100)),
            vec![Variant::Blocked, Variant::OnChip]
        );
        assert_eq!(
            Variant::applicable(&shape(Kind::Mixture, 1024)),
            vec![Variant::Blocked, Variant::Wide]
        );
        assert_eq!(
            Variant::applicable(&shape(Kind::Empirical, 10)),
            vec![Variant::Blocked, Variant::OnChip]
        );
        assert_eq!(
            Variant::applicable(&shape(Kind::Empirical, 4096)),
            vec![Variant::Blocked]
        );
        // The wide layout: a power-of-two workgroup, one block of four coordinates per
        // invocation up to d = 1024, then several.
        assert_eq!((wide_group(130), wide_blocks(130)), (64, 1));
        assert_eq!((wide_group(1024), wide_blocks(1024)), (256, 1));
        assert_eq!((wide_group(1030), wide_blocks(1030)), (256, 2));
        assert_eq!((wide_group(16384), wide_blocks(16384)), (256, 16));
        assert_eq!(
            Variant::applicable(&shape(Kind::Empirical, 784)),
            vec![Variant::Blocked]
        );
        let c = Choice::fastest(vec![(Variant::Blocked, 2e-3), (Variant::OnChip, 1e-3)]);
        assert_eq!(c.variant, Variant::OnChip);
        assert!(c.describe().starts_with("onchip (probe: blocked 2.000 ms"));
    }
}
