//! Step-kernel variants and the choice between them. `Blocked` (`step_mixture.wgsl`,
//! `step_empirical.wgsl`: four particles per invocation, temporaries in scratch rows) applies to
//! every plan; `OnChip` (`step_mixture_onchip.wgsl`, `step_empirical_onchip.wgsl`: one particle
//! per invocation, x and every temporary in private arrays across a dispatch, training tiles in
//! workgroup memory) to mixture plans of small d and K and to empirical plans of small d whose
//! training set one dispatch evaluates whole; `Wide` (`step_mixture_wide.wgsl`: a workgroup per
//! particle, its coordinates spread over the invocations, dot products by a tree reduction in
//! workgroup memory, dense products through workgroup tiles) to mixture plans of large d. Which is faster depends on the adapter, so at the
//! first use of a shape each applicable variant is timed on a probe dispatch and the fastest kept
//! for the process ([`Choice`], `choice.rs`); `--gpu-variant` or `REGIMES_GPU_VARIANT` forces
//! one. Definitions only here.

use std::fmt;

use anyhow::{Result, bail};

use crate::plan::{Kind, Shape};

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
            // Heun's corrector is in the blocked kernel only.
            Variant::OnChip => {
                !shape.corrects
                    && shape.dim <= ONCHIP_MAX_DIM
                    && (shape.kind == Kind::Empirical || shape.centers <= ONCHIP_MAX_CENTERS)
            }
            Variant::Wide => {
                !shape.corrects
                    && shape.kind == Kind::Mixture
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
                 plans of d ≤ {ONCHIP_MAX_DIM} (not heun)"
            ),
            Variant::Wide => format!(
                "mixture plans of d > {ONCHIP_MAX_DIM} and K ≤ {WIDE_MAX_CENTERS} (not heun)"
            ),
        }
    }

    /// The variants that run plans of this shape (on some device: `GpuEngine` may rule out the
    /// on-chip empirical kernel for a training set it evaluates in parts).
    pub fn applicable(shape: &Shape) -> Vec<Variant> {
        Self::ALL.into_iter().filter(|v| v.applies(shape)).collect()
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
            corrects: false,
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
