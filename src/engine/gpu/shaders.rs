//! WGSL sources: a prelude generated from Rust (the constants both sides must agree on, and each
//! kernel's named arguments), then the shared files of `shaders/shared/`, then the kernel (one
//! kernel per file in `shaders/`).

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

/// Floats of workgroup memory per empirical tile.
pub const TILE_FLOATS: usize = 4096;

/// Words of `Params` whose meaning depends on the kernel (`aux0 ..` in WGSL).
pub const ARG_WORDS: usize = 5;

/// A kernel's named arguments: a Rust struct whose fields fill the kernel-specific words of
/// `Params` in order, and the WGSL accessors `arg_<field>()` generated from the same names, so
/// both sides name every word alike.
macro_rules! kernel_args {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default)]
        pub struct $name { $($(#[$fdoc])* pub $field: u32),* }

        impl KernelArgs for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];
            fn values(&self) -> Vec<u32> {
                vec![$(self.$field),*]
            }
        }
    };
}

/// The named arguments of one kernel (see [`kernel_args!`]).
pub trait KernelArgs {
    const NAMES: &'static [&'static str];
    fn values(&self) -> Vec<u32>;

    /// The kernel-specific words of `Params`.
    fn words(&self) -> [u32; ARG_WORDS] {
        let mut w = [0; ARG_WORDS];
        let v = self.values();
        w[..v.len()].copy_from_slice(&v);
        w
    }

    /// `fn arg_<name>() -> u32` for every argument.
    fn wgsl() -> String {
        Self::NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| format!("fn arg_{n}() -> u32 {{ return prm.aux{i}; }}\n"))
            .collect()
    }
}

kernel_args!(
    /// `start.wgsl`: offsets into the start plan.
    StartArgs {
        /// K×d class means.
        means,
        /// K cumulative weights.
        cum_weights,
        /// Cholesky factor of the start covariance.
        chol,
        /// Its form code.
        chol_form,
    }
);
kernel_args!(
    /// `step_mixture.wgsl` and `step_empirical.wgsl`.
    StepArgs {
        /// Scratch row of the purity Σr².
        purity_row,
        /// First scratch row of the K logits (mixture).
        logits_row,
        /// Training points per softmax tile (empirical).
        rows_per_tile,
        /// 1 when a tile goes through workgroup memory (empirical).
        tiled,
    }
);
kernel_args!(
    /// `reduce.wgsl`.
    ReduceArgs {
        /// Scratch row of the purity.
        purity_row,
        /// Number of projection directions.
        directions,
        /// Offset of this point's class counters.
        counts_offset,
        /// First quantity of this window of 64.
        first_quantity,
    }
);
kernel_args!(
    /// `branch.wgsl`.
    BranchArgs {
        /// Stream tag of the second clone.
        stream,
        /// Row stride of the destination.
        dst_stride,
    }
);
kernel_args!(
    /// `tally.wgsl`.
    TallyArgs {
        /// Time points of the grid (the last-change histogram's length).
        points,
        /// K when the K×K pair histogram is kept, else 0.
        pair_classes,
    }
);

/// A kernel: its name and the WGSL it is assembled from.
pub struct Kernel {
    pub name: &'static str,
    args: fn() -> String,
    pieces: &'static [&'static str],
}

fn no_args() -> String {
    String::new()
}

pub const START: Kernel = Kernel {
    name: "start",
    args: StartArgs::wgsl,
    pieces: &[COMMON, RNG, LINEAR, kernel!("start.wgsl")],
};
pub const STEP_MIXTURE: Kernel = Kernel {
    name: "step_mixture",
    args: StepArgs::wgsl,
    pieces: &[COMMON, RNG, LINEAR, STEP, kernel!("step_mixture.wgsl")],
};
pub const STEP_EMPIRICAL: Kernel = Kernel {
    name: "step_empirical",
    args: StepArgs::wgsl,
    pieces: &[COMMON, RNG, LINEAR, STEP, kernel!("step_empirical.wgsl")],
};
pub const REDUCE: Kernel = Kernel {
    name: "reduce",
    args: ReduceArgs::wgsl,
    pieces: &[COMMON, kernel!("reduce.wgsl")],
};
pub const TALLY: Kernel = Kernel {
    name: "tally",
    args: TallyArgs::wgsl,
    pieces: &[COMMON, kernel!("tally.wgsl")],
};
pub const BRANCH: Kernel = Kernel {
    name: "branch",
    args: BranchArgs::wgsl,
    pieces: &[COMMON, kernel!("branch.wgsl")],
};
pub const RNG_PROBE: Kernel = Kernel {
    name: "rng_probe",
    args: no_args,
    pieces: &[COMMON, RNG, kernel!("rng_probe.wgsl")],
};

/// The constants Rust and WGSL share, generated from the Rust values.
fn constants() -> String {
    use crate::linalg::Form;
    format!(
        "// Generated by src/engine/gpu/shaders.rs.\n\
         const WG: u32 = {wg}u;\n\
         const FORM_SCALAR: u32 = {s}u;\n\
         const FORM_DIAGONAL: u32 = {di}u;\n\
         const FORM_DENSE: u32 = {de}u;\n\
         const TILE_FLOATS: u32 = {tile}u;\n\
         const MAX_ROWS: u32 = {rows}u;\n",
        wg = super::WORKGROUP,
        s = super::form_code(Form::Scalar),
        di = super::form_code(Form::Diagonal),
        de = super::form_code(Form::Dense),
        tile = TILE_FLOATS,
        rows = crate::engine::cpu::step::SOFTMAX_ROWS,
    )
}

impl Kernel {
    /// The whole WGSL source: constants, shared files, argument accessors, the kernel.
    pub fn source(&self) -> String {
        let (shared, kernel) = self.pieces.split_at(self.pieces.len() - 1);
        let mut s = constants();
        s += &shared.join("\n");
        s += "\n// Arguments of this kernel (generated from its Rust struct).\n";
        s += &(self.args)();
        s += "\n";
        s += kernel[0];
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_fill_their_words_in_order_and_name_them_in_wgsl() {
        let a = ReduceArgs {
            purity_row: 7,
            directions: 2,
            counts_offset: 0,
            first_quantity: 64,
        };
        assert_eq!(a.words(), [7, 2, 0, 64, 0]);
        let w = ReduceArgs::wgsl();
        assert!(
            w.contains("fn arg_first_quantity() -> u32 { return prm.aux3; }"),
            "{w}"
        );
        for k in [
            START,
            STEP_MIXTURE,
            STEP_EMPIRICAL,
            REDUCE,
            TALLY,
            BRANCH,
            RNG_PROBE,
        ] {
            let src = k.source();
            assert!(src.contains("const WG: u32 = 64u;"), "{}", k.name);
            // No kernel reads a word by position.
            let body = k.pieces.last().unwrap();
            assert!(
                !body.contains("prm.aux"),
                "{} reads prm.aux directly",
                k.name
            );
        }
    }
}
