//! The one bind-group layout every pipeline shares, written once: the `Params` uniform (binding 0)
//! and the storage bindings 1–7. The tables below generate the Rust side (the `Params` struct,
//! the named [`Bindings`], the wgpu layout entries) and the WGSL side (`struct Params` and the
//! `@group(0) @binding(i) var …` declarations of the prelude, [`declarations`]).

/// Metadata words per particle (`META` in the kernels): rng id lo, id hi, label, last change, and
/// the training point a plan that draws once holds ([`Particles::drawn`](crate::engine::Particles::drawn);
/// [`NO_LABEL`](crate::engine::NO_LABEL) before the particle's first evaluation). The held point
/// is particle state like the label: it lives with the label, an exact u32 that start, branch,
/// upload and download carry without a scratch row.
pub(in crate::engine::gpu) const META_WORDS: usize = 5;
/// Words of `Params` whose meaning depends on the kernel (`aux0 ..` in WGSL).
pub const ARG_WORDS: usize = 5;

/// The WGSL name of kernel-specific word `i` of `Params`.
pub(super) fn arg_word(i: usize) -> String {
    format!("aux{i}")
}

/// The `Params` uniform: one u32 per field, then [`ARG_WORDS`] words whose meaning depends on the
/// kernel (its named arguments, [`super::shaders::KernelArgs`]).
macro_rules! params {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// The uniform block of every kernel (`struct Params` of the prelude).
        #[repr(C)]
        #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(super) struct Params {
            $($(#[$doc])* pub $field: u32,)*
            /// The kernel's named arguments ([`super::shaders::KernelArgs`]).
            pub args: [u32; ARG_WORDS],
        }

        /// The fields of [`Params`] before the kernel's words, in order.
        const PARAM_FIELDS: &[&str] = &[$(stringify!($field)),*];
    };
}

params! {
    n,
    stride,
    d,
    k,
    key0,
    key1,
    /// Step kernels: the first op's parity (0 evaluate, 1 update) and the number of ops, counted
    /// from point `first`, so no op index grows with the run.
    phase,
    ops,
    m_form,
    b_form,
    p_form,
    first,
    off_m,
    off_b,
    off_p,
    off_w,
    off_bias,
    off_noise,
    /// The exact scheme's per-step offsets of a mixture (0 when unused).
    off_offsets,
    /// Heun's corrector ([`crate::plan::Corrector`]): M', P', the centers and biases of
    /// t_{j+1} (0 when unused).
    off_cm,
    off_cp,
    off_cw,
    off_cbias,
}

/// How the kernels may access a storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Read,
    ReadWrite,
}

/// A storage binding: its access and its WGSL variable `(name, type)`, or None where each kernel
/// names its own ([`super::shaders::Kernel::outputs`]).
struct Slot {
    access: Access,
    var: Option<(&'static str, &'static str)>,
}

/// The variables of the two output bindings of a kernel, `(name, type)`, None where unused.
pub(super) type Outputs = [Option<(&'static str, &'static str)>; 2];

/// The storage bindings 1, 2, …: a field of [`Bindings`] each, in binding order.
macro_rules! bindings {
    (@var $field:ident $wgsl:literal) => { Some((stringify!($field), $wgsl)) };
    (@var $field:ident) => { None };
    ($($(#[$doc:meta])* $field:ident: $access:ident $(($wgsl:literal))?),* $(,)?) => {
        /// The buffers of one dispatch by binding; None binds a dummy.
        #[derive(Default)]
        pub(super) struct Bindings<'a> {
            $($(#[$doc])* pub $field: Option<&'a wgpu::Buffer>,)*
        }

        impl<'a> Bindings<'a> {
            /// The buffers of bindings 1, 2, … in order.
            pub fn slots(&self) -> [Option<&'a wgpu::Buffer>; STORAGE.len()] {
                [$(self.$field),*]
            }
        }

        const STORAGE: &[Slot] = &[$(Slot {
            access: Access::$access,
            var: bindings!(@var $field $($wgsl)?),
        }),*];
    };
}

bindings! {
    /// 1: particle coordinates, coordinate-major (`xs[c·stride + p]`).
    xs: ReadWrite("array<f32>"),
    /// 2: `META` words per particle: id lo, id hi, label, last change, drawn training point.
    pmeta: ReadWrite("array<u32>"),
    /// 3: per-particle scratch rows, laid out as `xs`.
    scratch: ReadWrite("array<f32>"),
    /// 4: coefficients (plan points, start plan or projection directions).
    plan: Read("array<f32>"),
    /// 5: training points of the empirical target.
    centers: Read("array<f32>"),
    /// 6 and 7: the kernel's outputs, named by each kernel (branch: the clones' x and meta;
    /// reduce: partials and class counts; tally: —, counts; rng_probe: normals, words).
    out_a: ReadWrite,
    out_b: ReadWrite,
}

/// Storage bindings of the layout (1 ..= this).
pub(super) const STORAGE_BINDINGS: usize = STORAGE.len();

/// The WGSL `struct Params` and the declarations of every binding a kernel with these `outputs`
/// uses.
pub(super) fn declarations(outputs: &Outputs) -> String {
    let mut s = String::from("struct Params {\n");
    for f in PARAM_FIELDS {
        s += &format!("    {f}: u32,\n");
    }
    for i in 0..ARG_WORDS {
        s += &format!("    {}: u32,\n", arg_word(i));
    }
    s += "}\n\n@group(0) @binding(0) var<uniform> prm: Params;\n";
    let mut own = outputs.iter();
    for (i, slot) in STORAGE.iter().enumerate() {
        let var = match slot.var {
            Some(v) => Some(v),
            None => own.next().copied().flatten(),
        };
        if let Some((name, ty)) = var {
            let access = match slot.access {
                Access::Read => "read",
                Access::ReadWrite => "read_write",
            };
            s += &format!(
                "@group(0) @binding({}) var<storage, {access}> {name}: {ty};\n",
                i + 1
            );
        }
    }
    s
}

/// Bytes of one `Params` block, the size of binding 0.
pub(super) fn params_size() -> wgpu::BufferSize {
    wgpu::BufferSize::new(std::mem::size_of::<Params>() as u64).expect("Params is not empty")
}

/// The wgpu layout of the same bindings. `Params` is bound with a dynamic offset, so one buffer
/// holds the parameters of many dispatches and one bind group serves them all
/// ([`super::buffers::ParamBlocks`]).
pub(super) fn bind_group_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    let buffer = |binding: u32, ty, dynamic: bool| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: dynamic,
            min_binding_size: dynamic.then(params_size),
        },
        count: None,
    };
    let mut entries = vec![buffer(0, wgpu::BufferBindingType::Uniform, true)];
    for (i, slot) in STORAGE.iter().enumerate() {
        let read_only = slot.access == Access::Read;
        entries.push(buffer(
            i as u32 + 1,
            wgpu::BufferBindingType::Storage { read_only },
            false,
        ));
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("regimes"),
        entries: &entries,
    })
}

/// One tiny buffer per storage binding, bound where a kernel does not use the binding.
pub(super) fn dummies(device: &wgpu::Device) -> Vec<wgpu::Buffer> {
    (1..=STORAGE_BINDINGS)
        .map(|b| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("dummy {b}")),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_bindings_are_declared_as_the_host_lays_them_out() {
        // The uniform is all u32 words, a multiple of 16 bytes (WGSL's uniform layout).
        let words = PARAM_FIELDS.len() + ARG_WORDS;
        assert_eq!(std::mem::size_of::<Params>(), 4 * words);
        assert_eq!(std::mem::size_of::<Params>() % 16, 0);
        let s = declarations(&[Some(("partials", "array<f32>")), None]);
        assert_eq!(s.matches(": u32,").count(), words, "{s}");
        assert!(s.contains("    off_cbias: u32,\n    aux0: u32,"), "{s}");
        assert!(s.contains("@group(0) @binding(2) var<storage, read_write> pmeta: array<u32>;"));
        assert!(s.contains("@group(0) @binding(5) var<storage, read> centers: array<f32>;"));
        assert!(s.contains("@group(0) @binding(6) var<storage, read_write> partials: array<f32>;"));
        assert!(!s.contains("@binding(7)"), "{s}");
        assert_eq!(STORAGE_BINDINGS, 7);
    }
}
