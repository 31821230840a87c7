//! The step kernels (`shaders/step_mixture.wgsl`, `step_empirical.wgsl`, their on-chip variants
//! `step_mixture_onchip.wgsl` and `step_empirical_onchip.wgsl`, the wide variant
//! `step_mixture_wide.wgsl`; CPU twins `engine/cpu/step.rs` and `engine/cpu/lanes.rs`): their
//! `Kernel`s, the empirical kernel's named arguments, and the specialisation constants of a plan
//! [`Shape`]. Definitions only: the host side of a step is [`super::advance`].

use super::super::footprint::rows_per_tile;
use super::super::layout::ARG_WORDS;
use super::super::shaders::{
    BLOCK, COMMON, Kernel, KernelArgs, ONCHIP, PARTICLES_PER_INVOCATION, RNG, ROW_BLOCK, STEP,
    TILE_FLOATS, WORKGROUP, form_code, kernel_args, kernel_file, no_args,
};
use super::variant::{ONCHIP_GROUP, Variant, wide_blocks, wide_group};
use crate::plan::{Kind, Shape};

kernel_args! {
    /// The rows one dispatch of `step_empirical` evaluates (global training-point indices).
    EmpiricalArgs {
        /// Index of the first point of the bound `centers` buffer.
        base,
        /// First point of the part (a multiple of the tile).
        begin,
        /// One past its last point.
        end,
        /// [`FIRST`] | [`LAST`]: whether the part starts or ends an evaluation; | [`HOLD`] on a
        /// plan that draws once; | [`RECORDED`] where the dispatch's last point is recorded.
        flags,
    }
}

/// The part starts an evaluation (computes B x, draws the uniform, resets the softmax state).
pub(super) const FIRST: u32 = 1;
/// The part ends an evaluation (normalises, writes purity and labels).
pub(super) const LAST: u32 = 2;
/// The plan draws once ([`crate::plan::Draws::Once`], `HOLD_FLAG` in the kernels): a particle
/// that holds its drawn training point (its metadata's last word) computes only its label. A flag
/// rather than a constant of the shape: the same pipeline serves both, the held test is per
/// particle anyway, and a uniform branch costs nothing.
pub(super) const HOLD: u32 = 4;
/// The dispatch's last evaluation is at a point the recorder reads: a particle that holds its
/// point evaluates the posterior there (the purity Σr²), keeping the point (twin of the CPU's
/// `recorded` evaluation, [`crate::engine::cpu::step::evaluate`]).
pub(super) const RECORDED: u32 = 8;

/// `args` (an [`EmpiricalArgs`] in words) with [`RECORDED`] set.
pub(super) fn recorded(mut args: [u32; ARG_WORDS]) -> [u32; ARG_WORDS] {
    // Words in the order of the fields: base, begin, end, flags.
    args[3] |= RECORDED;
    args
}

pub(in crate::engine::gpu) const STEP_MIXTURE: Kernel = Kernel {
    name: "step_mixture",
    args: no_args,
    pieces: &[COMMON, RNG, BLOCK, STEP, kernel_file!("step_mixture.wgsl")],
    outputs: [None, None],
};
pub(in crate::engine::gpu) const STEP_EMPIRICAL: Kernel = Kernel {
    name: "step_empirical",
    args: EmpiricalArgs::wgsl,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        kernel_file!("step_empirical.wgsl"),
    ],
    outputs: [None, None],
};

/// The on-chip variant of the mixture step (`variant.rs`); it reuses the shared pieces' names
/// (scratch rows, form codes) but none of the register blocks.
pub(in crate::engine::gpu) const STEP_MIXTURE_ONCHIP: Kernel = Kernel {
    name: "step_mixture_onchip",
    args: no_args,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        ONCHIP,
        kernel_file!("step_mixture_onchip.wgsl"),
    ],
    outputs: [None, None],
};

/// The wide variant of the mixture step (`variant.rs`): a workgroup per particle, for large d.
/// Its own private arrays and workgroup memory; the shared pieces give the scratch rows, form
/// codes and Philox.
pub(in crate::engine::gpu) const STEP_MIXTURE_WIDE: Kernel = Kernel {
    name: "step_mixture_wide",
    args: no_args,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        kernel_file!("step_mixture_wide.wgsl"),
    ],
    outputs: [None, None],
};

/// The on-chip variant of the empirical step: tiles of training points in workgroup memory
/// shared by the workgroup's particles, each particle's state in private arrays.
pub(in crate::engine::gpu) const STEP_EMPIRICAL_ONCHIP: Kernel = Kernel {
    name: "step_empirical_onchip",
    args: EmpiricalArgs::wgsl,
    pieces: &[
        COMMON,
        RNG,
        BLOCK,
        STEP,
        ONCHIP,
        kernel_file!("step_empirical_onchip.wgsl"),
    ],
    outputs: [None, None],
};

/// Coordinates per row of a tile of the on-chip empirical kernel (`TW`): the whole point where
/// [`rows_per_tile`] points fit workgroup memory, else slices of this many.
pub(super) fn onchip_tile_width(shape: &Shape) -> usize {
    shape.dim.clamp(1, TILE_FLOATS / rows_per_tile(shape))
}

/// Whether a tile of training points goes through workgroup memory (d ≤ 64). Larger points are
/// read from `centers` by every invocation: on lavapipe 64-row tiles read so beat the smaller
/// tiles workgroup memory holds (d = 100: 866 vs 486 particle-steps/s; d = 784: 3.7×), as
/// each tile rereads and rewrites Wᵀe in scratch; untested on hardware GPUs.
pub(super) fn tiled(shape: &Shape) -> bool {
    shape.dim * rows_per_tile(shape) <= TILE_FLOATS
}

/// The step kernel of a shape. Pipelines are cached per shape, so a run compiles its step kernel
/// once, and the compiler sees constant loop bounds and no branches on forms.
pub(super) fn kernel(shape: &Shape, variant: Variant) -> &'static Kernel {
    match (shape.kind, variant) {
        (Kind::Empirical, Variant::Blocked) => &STEP_EMPIRICAL,
        (Kind::Empirical, Variant::OnChip) => &STEP_EMPIRICAL_ONCHIP,
        (Kind::Mixture, Variant::Blocked) => &STEP_MIXTURE,
        (Kind::Mixture, Variant::OnChip) => &STEP_MIXTURE_ONCHIP,
        (Kind::Mixture, Variant::Wide) => &STEP_MIXTURE_WIDE,
        // Never chosen (`Variant::applies`); the blocked kernel keeps the match total.
        (Kind::Empirical, Variant::Wide) => &STEP_EMPIRICAL,
    }
}

/// Fewest invocations per workgroup of a blocked step kernel: one SIMD row of a software
/// adapter's 8 lanes (AVX2), 32 particle slots.
pub(super) const MIN_GROUP: usize = 8;

/// Workgroups a small batch aims to spread over (more than half as many, the group being a power
/// of two), so that every thread of a software adapter (which runs a workgroup on one thread) has
/// work on a small machine.
const SPREAD: usize = 4;

/// Invocations per workgroup of the blocked step kernels (`WG`, four particles each) for a batch
/// of `n` particles: [`WORKGROUP`], or for a small batch the smallest power of two from
/// [`MIN_GROUP`] at or above n / (4·[`SPREAD`]), so it spreads over more than SPREAD / 2
/// workgroups (the last of them partly full). A workgroup computes all its 4·WG
/// particle slots whether or not they hold particles, so a batch of 100 in one workgroup of 256
/// slots did 2.6 times its work on one thread (2 particles of a clone pair: 128 times). Each
/// particle's arithmetic is the same in any group, so the group changes no bit.
pub(super) fn blocked_group(n: usize) -> usize {
    n.div_ceil(PARTICLES_PER_INVOCATION * SPREAD)
        .next_power_of_two()
        .clamp(MIN_GROUP, WORKGROUP)
}

/// Particles per workgroup of `variant`'s kernel, blocked ones in groups of `wg` invocations:
/// what sizes the dispatch grid.
pub(super) fn group_particles(variant: Variant, wg: usize) -> usize {
    match variant {
        Variant::Blocked => wg * PARTICLES_PER_INVOCATION,
        Variant::OnChip => ONCHIP_GROUP,
        Variant::Wide => 1,
    }
}

/// The specialisation constants (WGSL) of a shape, with `wg` invocations per workgroup of a
/// blocked kernel (`GP` = 4·`wg` particles), generated from the Rust values.
pub(in crate::engine::gpu) fn constants(shape: &Shape, wg: usize) -> String {
    format!(
        "const D: u32 = {d}u;\n\
         const K: u32 = {k}u;\n\
         const M_FORM: u32 = {m}u;\n\
         const B_FORM: u32 = {b}u;\n\
         const P_FORM: u32 = {p}u;\n\
         const NOISE_FORM: u32 = {noise}u;\n\
         const STOCHASTIC: bool = {stochastic};\n\
         const DRAWS: bool = {draws};\n\
         const CORRECTS: bool = {corrects};\n\
         const PB: u32 = {pb}u;\n\
         const GP: u32 = {gp}u;\n\
         const RB: u32 = {rb}u;\n\
         const KB: u32 = {kb}u;\n\
         const ROWS: u32 = {rows}u;\n\
         const TILED: bool = {tiled};\n\
         const OWG: u32 = {owg}u;\n\
         const TW: u32 = {tw}u;\n\
         const WWG: u32 = {wwg}u;\n\
         const QW: u32 = {qw}u;\n\
         const HOLD_FLAG: u32 = {hold}u;\n\
         const RECORDED_FLAG: u32 = {recorded}u;\n",
        d = shape.dim,
        k = shape.centers,
        m = form_code(shape.m_form),
        b = form_code(shape.b_form),
        p = form_code(shape.p_form),
        noise = form_code(shape.noise_form),
        stochastic = shape.stochastic,
        draws = shape.draws,
        corrects = shape.corrects,
        pb = PARTICLES_PER_INVOCATION,
        gp = wg * PARTICLES_PER_INVOCATION,
        rb = ROW_BLOCK,
        kb = shape.centers.clamp(1, ROW_BLOCK),
        rows = rows_per_tile(shape),
        tiled = tiled(shape),
        owg = ONCHIP_GROUP,
        tw = onchip_tile_width(shape),
        wwg = wide_group(shape.dim),
        qw = wide_blocks(shape.dim),
        hold = HOLD,
        recorded = RECORDED,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_spread_over_small_groups() {
        // (particles, invocations per workgroup): 100 particles in four groups of 32 slots, a
        // clone pair in one of 32, large batches in the full workgroup.
        for (n, wg) in [
            (1, 8),
            (2, 8),
            (100, 8),
            (130, 16),
            (512, 32),
            (1024, 64),
            (1 << 20, 64),
        ] {
            assert_eq!(blocked_group(n), wg, "{n}");
            let groups = n.div_ceil(group_particles(Variant::Blocked, wg));
            assert!(2 * groups > SPREAD.min(n.div_ceil(4 * MIN_GROUP)), "{n}");
        }
        assert_eq!(group_particles(Variant::OnChip, 8), ONCHIP_GROUP);
    }
}
