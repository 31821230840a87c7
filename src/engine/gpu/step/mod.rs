//! The step: the kernels that advance particles through time, and their host side. Each file
//! owns one concept and its state; definitions below, the engine on top:
//!
//! * `variant.rs` — the step-kernel variants (blocked, on-chip, wide) and what each runs;
//! * `kernels.rs` — the step kernels' `Kernel`s, arguments and per-shape constants;
//! * `costs.rs` — their loop cost on a loop-limited driver (`loop_budget.rs`);
//! * `points.rs` — the coefficients a dispatch uploads per time point;
//! * `training.rs` — the empirical target's training points on the device (resident state);
//! * `pipelines.rs` — the step pipelines, built per shape and variant (cache);
//! * `dispatch_length.rs` — how many steps a dispatch fuses (measured rates);
//! * `choice.rs` — which variant a shape runs with (probe, cached choices, shapes used);
//! * `advance.rs` — `advance`: the dispatches, their groups, the reductions.

mod advance;
mod choice;
mod costs;
mod dispatch_length;
mod kernels;
mod pipelines;
mod points;
mod training;
mod variant;

pub use dispatch_length::{
    DispatchLength, MAX_MEASURED_STEPS, SOFTWARE_TARGET_SECONDS, TARGET_SECONDS,
};
pub use variant::{
    Choice, How, ONCHIP_GROUP, VARIANT_ENV, Variant, parse_variant, variant_from_env, wide_group,
};

pub(super) use choice::{Choices, probe_particles};
pub(super) use dispatch_length::Rates;
pub(super) use pipelines::StepPipelines;
pub(super) use training::Resident;

#[cfg(test)]
pub(super) use kernels::{
    STEP_EMPIRICAL, STEP_EMPIRICAL_ONCHIP, STEP_MIXTURE, STEP_MIXTURE_ONCHIP, STEP_MIXTURE_WIDE,
    constants,
};
