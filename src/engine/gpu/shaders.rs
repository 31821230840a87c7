//! WGSL sources: a prelude generated from Rust (the constants both sides must agree on, and each
//! kernel's named arguments), then the shared files of `shaders/shared/`, then the kernel (one
//! kernel per file in `shaders/`). The step kernels are specialised per plan shape
//! ([`StepShape`]): their dimension, center count and forms are constants of the prelude.

use crate::engine::cpu::step::SOFTMAX_ROWS;
use crate::linalg::Form;
use crate::plan::{Kind, Plan};

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
const MULHILO16: &str = shared!("mulhilo16.wgsl");
const MULHILO64: &str = shared!("mulhilo64.wgsl");
const BLOCK: &str = shared!("block.wgsl");
const STEP: &str = shared!("step.wgsl");

/// Floats of workgroup memory per empirical tile.
pub const TILE_FLOATS: usize = 4096;

/// Particles per invocation of the step kernels (the components of a vec4).
pub const PARTICLES_PER_INVOCATION: usize = 4;

/// Particles per workgroup of the step kernels.
pub const GROUP_PARTICLES: usize = super::WORKGROUP * PARTICLES_PER_INVOCATION;

/// Output rows per register block of the step kernels' products (block.wgsl; a multiple of 4,
/// the normals' block).
pub const ROW_BLOCK: usize = 8;

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
/// The step kernels read their sizes and forms from the constants of a [`StepShape`].
pub const STEP_MIXTURE: Kernel = Kernel {
    name: "step_mixture",
    args: no_args,
    pieces: &[COMMON, RNG, BLOCK, STEP, kernel!("step_mixture.wgsl")],
};
pub const STEP_EMPIRICAL: Kernel = Kernel {
    name: "step_empirical",
    args: no_args,
    pieces: &[COMMON, RNG, BLOCK, STEP, kernel!("step_empirical.wgsl")],
};

/// What a step pipeline is specialised for: the plan's kind, sizes and forms. Pipelines are
/// cached per shape, so a run compiles its step kernel once, and the compiler sees constant loop
/// bounds and no branches on forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepShape {
    pub empirical: bool,
    pub dim: usize,
    /// K: classes (mixture) or training points (empirical).
    pub centers: usize,
    pub m_form: Form,
    pub b_form: Form,
    pub p_form: Form,
}

impl std::hash::Hash for StepShape {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let forms = [self.m_form, self.b_form, self.p_form].map(super::form_code);
        (self.empirical, self.dim, self.centers, forms).hash(h);
    }
}

impl StepShape {
    pub fn of(plan: &Plan) -> Self {
        StepShape {
            empirical: plan.kind == Kind::Empirical,
            dim: plan.dim,
            centers: plan.centers_count,
            m_form: plan.m_form,
            b_form: plan.b_form,
            p_form: plan.p_form,
        }
    }

    /// Training points per softmax tile: the CPU's block for d ≤ 64, so both engines round
    /// alike there, and no more than a tile of workgroup memory holds.
    pub fn rows_per_tile(&self) -> usize {
        (TILE_FLOATS / self.dim.max(1)).clamp(1, SOFTMAX_ROWS)
    }

    /// Whether a tile of training points goes through workgroup memory.
    pub fn tiled(&self) -> bool {
        self.dim <= TILE_FLOATS
    }

    pub fn kernel(&self) -> &'static Kernel {
        if self.empirical {
            &STEP_EMPIRICAL
        } else {
            &STEP_MIXTURE
        }
    }

    /// The specialisation constants (WGSL), generated from the Rust values.
    pub fn constants(&self) -> String {
        format!(
            "const D: u32 = {d}u;\n\
             const K: u32 = {k}u;\n\
             const M_FORM: u32 = {m}u;\n\
             const B_FORM: u32 = {b}u;\n\
             const P_FORM: u32 = {p}u;\n\
             const PB: u32 = {pb}u;\n\
             const GP: u32 = {gp}u;\n\
             const RB: u32 = {rb}u;\n\
             const KB: u32 = {kb}u;\n\
             const ROWS: u32 = {rows}u;\n\
             const TILED: bool = {tiled};\n",
            d = self.dim,
            k = self.centers,
            m = super::form_code(self.m_form),
            b = super::form_code(self.b_form),
            p = super::form_code(self.p_form),
            pb = PARTICLES_PER_INVOCATION,
            gp = GROUP_PARTICLES,
            rb = ROW_BLOCK,
            kb = self.centers.clamp(1, ROW_BLOCK),
            rows = self.rows_per_tile(),
            tiled = self.tiled(),
        )
    }
}
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
        rows = SOFTMAX_ROWS,
    )
}

impl Kernel {
    /// The whole WGSL source: constants (plus `specialised`, a [`StepShape`]'s), shared files
    /// (with Philox's wide multiply from native 64-bit integers when `int64`), argument
    /// accessors, the kernel.
    pub fn source_with(&self, specialised: &str, int64: bool) -> String {
        let (shared, kernel) = self.pieces.split_at(self.pieces.len() - 1);
        let mut s = constants();
        s += specialised;
        s += &shared.join("\n");
        if shared.contains(&RNG) {
            s += if int64 { MULHILO64 } else { MULHILO16 };
        }
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
        let shape = StepShape {
            empirical: false,
            dim: 3,
            centers: 2,
            m_form: Form::Dense,
            b_form: Form::Scalar,
            p_form: Form::Diagonal,
        };
        assert!(shape.constants().contains("const D: u32 = 3u;"));
        for k in [
            START,
            STEP_MIXTURE,
            STEP_EMPIRICAL,
            REDUCE,
            TALLY,
            BRANCH,
            RNG_PROBE,
        ] {
            let src = k.source_with(&shape.constants(), false);
            assert_eq!(
                src.contains("fn mulhilo"),
                k.pieces.contains(&RNG),
                "{}",
                k.name
            );
            assert!(k.source_with("", true).contains("u64(a)") == k.pieces.contains(&RNG));
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
