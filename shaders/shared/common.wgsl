// Bindings and layout shared by every kernel (one bind group layout for all pipelines).
//
// Particle state is coordinate-major ("structure of arrays"): coordinate c of particle p lives at
// xs[c * stride + p], so neighbouring invocations touch neighbouring words. Scratch rows use the
// same layout. `pmeta` holds four words per particle: id_lo, id_hi, label, changed.


struct Params {
    n: u32,
    stride: u32,
    d: u32,
    k: u32,
    key0: u32,
    key1: u32,
    phase: u32,
    ops: u32,
    to: u32,
    m_form: u32,
    b_form: u32,
    p_form: u32,
    first: u32,
    off_m: u32,
    off_b: u32,
    off_p: u32,
    off_w: u32,
    off_bias: u32,
    off_noise: u32,
    aux0: u32,
    aux1: u32,
    aux2: u32,
    aux3: u32,
    aux4: u32,
}


@group(0) @binding(0) var<uniform> prm: Params;
@group(0) @binding(1) var<storage, read_write> xs: array<f32>;
@group(0) @binding(2) var<storage, read_write> pmeta: array<u32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(4) var<storage, read> plan: array<f32>;
@group(0) @binding(5) var<storage, read> centers: array<f32>;

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn xget(c: u32, p: u32) -> f32 {
    return xs[c * prm.stride + p];
}

fn xset(c: u32, p: u32, v: f32) {
    xs[c * prm.stride + p] = v;
}

fn sget(r: u32, p: u32) -> f32 {
    return scratch[r * prm.stride + p];
}

fn sset(r: u32, p: u32, v: f32) {
    scratch[r * prm.stride + p] = v;
}

fn particle_id(p: u32) -> vec2<u32> {
    return vec2<u32>(pmeta[p * 4u], pmeta[p * 4u + 1u]);
}

fn form_len(form: u32, d: u32) -> u32 {
    if (form == FORM_SCALAR) {
        return 1u;
    } else if (form == FORM_DIAGONAL) {
        return d;
    }
    return d * d;
}
