// Accessors shared by every kernel. `struct Params` and the bindings (one bind group layout for
// all pipelines: prm, xs, pmeta, scratch, plan, centers, and each kernel's outputs 6 and 7) are
// declared by the generated prelude, from the tables of src/engine/gpu/layout.rs.
//
// Particle state is coordinate-major ("structure of arrays"): coordinate c of particle p lives at
// xs[c * stride + p], so neighbouring invocations touch neighbouring words. Scratch rows use the
// same layout. `pmeta` holds META (5) words per particle: id_lo, id_hi, label, changed, drawn (the
// training point a plan that draws once holds, NO_LABEL before the particle's first evaluation;
// src/engine/gpu/batch.rs).

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
    return vec2<u32>(pmeta[p * META], pmeta[p * META + 1u]);
}

fn form_len(form: u32, d: u32) -> u32 {
    if (form == FORM_SCALAR) {
        return 1u;
    } else if (form == FORM_DIAGONAL) {
        return d;
    }
    return d * d;
}
