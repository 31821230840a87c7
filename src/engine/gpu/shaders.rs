//! WGSL sources, assembled at build time by concatenating the shared files of `shaders/shared/`
//! in front of each kernel (one kernel per file in `shaders/`).

macro_rules! shared {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/shaders/shared/",
            $name
        ))
    };
}

macro_rules! kernel {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name))
    };
}

const COMMON: &str = shared!("common.wgsl");
const RNG: &str = shared!("rng.wgsl");
const LINEAR: &str = shared!("linear.wgsl");
const STEP: &str = shared!("step.wgsl");

/// The kernels, each as (name, pieces to concatenate).
pub const START: (&str, &[&str]) = ("start", &[COMMON, RNG, LINEAR, kernel!("start.wgsl")]);
pub const STEP_MIXTURE: (&str, &[&str]) = (
    "step_mixture",
    &[COMMON, RNG, LINEAR, STEP, kernel!("step_mixture.wgsl")],
);
pub const STEP_EMPIRICAL: (&str, &[&str]) = (
    "step_empirical",
    &[COMMON, RNG, LINEAR, STEP, kernel!("step_empirical.wgsl")],
);
pub const REDUCE: (&str, &[&str]) = ("reduce", &[COMMON, kernel!("reduce.wgsl")]);
pub const TALLY: (&str, &[&str]) = ("tally", &[COMMON, kernel!("tally.wgsl")]);
pub const BRANCH: (&str, &[&str]) = ("branch", &[COMMON, kernel!("branch.wgsl")]);
pub const RNG_PROBE: (&str, &[&str]) = ("rng_probe", &[COMMON, RNG, kernel!("rng_probe.wgsl")]);

/// Floats of workgroup memory per empirical tile (must match TILE_FLOATS in step_empirical.wgsl).
pub const TILE_FLOATS: usize = 4096;

pub fn source(pieces: &[&str]) -> String {
    pieces.join("\n")
}
