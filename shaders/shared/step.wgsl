// Pieces shared by the two step kernels: scratch layout, the label bookkeeping, the exact
// scheme's draw and the update x ← (M x + P v) + L ξ (twin of step::update), four particles per
// invocation (block.wgsl).
//
// Scratch rows: ROW_A .. +D (B x, then M x), ROW_V .. +D (Wᵀ r), ROW_PURITY, then ROW_LOGITS ..
// (K logits of the mixture, or one tile's MAX_ROWS logits of the empirical target).
//
// A dispatch runs prm.ops "ops" starting at phase prm.phase of point prm.first: op 2j evaluates
// the logits at time point j, op 2j+1 moves the particle from j to j+1. The op index counts from
// the dispatch's first point, so it stays small however long the run. The host splits runs at
// recorder points, plan uploads and the steps-per-dispatch knob; v stays in scratch between an
// evaluation and its update.

const ROW_A: u32 = 0u;
const ROW_V: u32 = D;
const ROW_PURITY: u32 = 2u * D;
const ROW_LOGITS: u32 = 2u * D + 1u;

fn set_label(p: u32, label: u32, j: u32) {
    if (pmeta[p * META + 2u] != label) {
        pmeta[p * META + 2u] = label;
        pmeta[p * META + 3u] = j;
    }
}

fn set_labels(l: Lanes, best: vec4<u32>, j: u32) {
    if (l.valid.x) { set_label(l.p.x, best.x, j); }
    if (l.valid.y) { set_label(l.p.y, best.y, j); }
    if (l.valid.z) { set_label(l.p.z, best.z, j); }
    if (l.valid.w) { set_label(l.p.w, best.w, j); }
}

// Largest f32 below 1 (step::BELOW_ONE): a conditional uniform stays in [0, 1).
const BELOW_ONE: f32 = 0.99999994;

// A quiet NaN (the purity of an evaluation that holds its draw, as the CPU reports it). Through a
// variable: a NaN constant expression is a shader-creation error.
fn nan() -> f32 {
    var bits = 0x7fc00000u;
    return bitcast<f32>(bits);
}

// The uniform that draws the four particles' classes at point j on a mixture: word 0 of
// step::draw_uniforms (a class is picked in one pass over all classes).
fn draw_uniforms(l: Lanes, j: u32) -> vec4<f32> {
    let key = vec2<u32>(prm.key0, prm.key1);
    return vec4<f32>(
        uniform01(rng_words(key, particle_id(l.ld.x), j, PICK_BLOCK).x),
        uniform01(rng_words(key, particle_id(l.ld.y), j, PICK_BLOCK).x),
        uniform01(rng_words(key, particle_id(l.ld.z), j, PICK_BLOCK).x),
        uniform01(rng_words(key, particle_id(l.ld.w), j, PICK_BLOCK).x),
    );
}

// Both uniforms of step::draw_uniforms for the four particles at point j, from one Philox call
// each: `tile` (word 0) decides the tile of training points over the streaming pass
// (step::draw_tile), `within` (word 1) the point inside the chosen tile. Picking the point with
// the tile chain's own rescaled uniform would lean the draw to the tiles' last points.
struct DrawUniforms {
    tile: vec4<f32>,
    within: vec4<f32>,
}

fn draw_uniform_pairs(l: Lanes, j: u32) -> DrawUniforms {
    let key = vec2<u32>(prm.key0, prm.key1);
    let x = rng_words(key, particle_id(l.ld.x), j, PICK_BLOCK);
    let y = rng_words(key, particle_id(l.ld.y), j, PICK_BLOCK);
    let z = rng_words(key, particle_id(l.ld.z), j, PICK_BLOCK);
    let w = rng_words(key, particle_id(l.ld.w), j, PICK_BLOCK);
    return DrawUniforms(
        vec4<f32>(uniform01(x.x), uniform01(y.x), uniform01(z.x), uniform01(w.x)),
        vec4<f32>(uniform01(x.y), uniform01(y.y), uniform01(z.y), uniform01(w.y)),
    );
}

// The training points the four particles hold on a plan that draws once (pmeta word 4, NO_LABEL
// where a particle has drawn none yet).
fn held_points(l: Lanes) -> vec4<u32> {
    return vec4<u32>(pmeta[l.ld.x * META + 4u], pmeta[l.ld.y * META + 4u],
                     pmeta[l.ld.z * META + 4u], pmeta[l.ld.w * META + 4u]);
}

// Keeps the points the lanes that did not hold one drew (`picked`) as their held points.
fn hold_points(l: Lanes, picked: vec4<u32>, held: vec4<bool>) {
    if (l.valid.x && !held.x) { pmeta[l.p.x * META + 4u] = picked.x; }
    if (l.valid.y && !held.y) { pmeta[l.p.y * META + 4u] = picked.y; }
    if (l.valid.z && !held.z) { pmeta[l.p.z * META + 4u] = picked.z; }
    if (l.valid.w && !held.w) { pmeta[l.p.w * META + 4u] = picked.w; }
}

// Scratch rows ROW_V .. + D = row k of the row-major rows at `rows` of `src` (0 plan, 1
// centers), per particle: the drawn V_k.
fn take_rows(src: u32, rows: u32, k: vec4<u32>, l: Lanes) {
    for (var i = 0u; i < D; i++) {
        var v: vec4<f32>;
        if (src == 0u) {
            v = vec4<f32>(plan[rows + k.x * D + i], plan[rows + k.y * D + i],
                          plan[rows + k.z * D + i], plan[rows + k.w * D + i]);
        } else {
            v = vec4<f32>(centers[k.x * D + i], centers[k.y * D + i],
                          centers[k.z * D + i], centers[k.w * D + i]);
        }
        set_s4(ROW_V + i, l, v);
    }
}

// Normals of coordinates i0 .. i0 + 8 of one particle (blocks i0/4 and i0/4 + 1; RB = 8).
fn normals8(key: vec2<u32>, p: u32, j: u32, i0: u32) -> array<f32, 8> {
    let id = particle_id(p);
    let a = normal4(key, id, j, i0 / 4u);
    var b = vec4<f32>(0.0);
    if (i0 + 4u < D) {
        b = normal4(key, id, j, i0 / 4u + 1u);
    }
    return array<f32, 8>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
}

// Rows i0 .. i0 + RB of P v (v in ROW_V) for P in P_FORM at `poff`.
fn apply_p(poff: u32, i0: u32, l: Lanes) -> array<vec4<f32>, RB> {
    if (P_FORM == FORM_DENSE) {
        return block(poff, D, 1u, i0, D, D, false, ROW_V, false, 0u, l);
    }
    var pv: array<vec4<f32>, RB>;
    for (var q = 0u; q < RB; q++) {
        let i = min(i0 + q, D - 1u);
        var c = plan[poff];
        if (P_FORM == FORM_DIAGONAL) {
            c = plan[poff + i];
        }
        pv[q] = c * s4(ROW_V + i, l);
    }
    return pv;
}

fn update(l: Lanes, j: u32) {
    let pi = j - prm.first;
    let moff = prm.off_m + pi * form_len(M_FORM, D);
    let poff = prm.off_p + pi * form_len(P_FORM, D);
    let noff = prm.off_noise + pi * form_len(NOISE_FORM, D);
    apply_rows(M_FORM, moff, true, 0u, ROW_A, l);
    let key = vec2<u32>(prm.key0, prm.key1);
    for (var i0 = 0u; i0 < D; i0 += RB) {
        let pv = apply_p(poff, i0, l);
        if (NOISE_FORM == FORM_DENSE) {
            // M x + P v into ROW_A; L ξ is added once all of ξ is drawn.
            for (var q = 0u; q < RB; q++) {
                let i = i0 + q;
                if (i < D) {
                    set_s4(ROW_A + i, l, s4(ROW_A + i, l) + pv[q]);
                }
            }
            continue;
        }
        var z0 = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        var z1 = z0;
        var z2 = z0;
        var z3 = z0;
        if (STOCHASTIC) {
            z0 = normals8(key, l.ld.x, j, i0);
            z1 = normals8(key, l.ld.y, j, i0);
            z2 = normals8(key, l.ld.z, j, i0);
            z3 = normals8(key, l.ld.w, j, i0);
        }
        for (var q = 0u; q < RB; q++) {
            let i = i0 + q;
            if (i < D) {
                let z = vec4<f32>(z0[q], z1[q], z2[q], z3[q]);
                var c = plan[noff];
                if (NOISE_FORM == FORM_DIAGONAL) {
                    c = plan[noff + i];
                }
                set_x4(i, l, (s4(ROW_A + i, l) + pv[q]) + c * z);
            }
        }
    }
    if (NOISE_FORM == FORM_DENSE) {
        // ξ into ROW_V (v is spent), then x = (M x + P v) + L ξ.
        for (var b = 0u; b * 4u < D; b++) {
            let zx = normal4(key, particle_id(l.ld.x), j, b);
            let zy = normal4(key, particle_id(l.ld.y), j, b);
            let zz = normal4(key, particle_id(l.ld.z), j, b);
            let zw = normal4(key, particle_id(l.ld.w), j, b);
            for (var r = 0u; r < 4u; r++) {
                if (b * 4u + r < D) {
                    set_s4(ROW_V + b * 4u + r, l, vec4<f32>(zx[r], zy[r], zz[r], zw[r]));
                }
            }
        }
        for (var i0 = 0u; i0 < D; i0 += RB) {
            let a = block(noff, D, 1u, i0, D, D, false, ROW_V, false, 0u, l);
            for (var q = 0u; q < RB; q++) {
                if (i0 + q < D) {
                    set_x4(i0 + q, l, s4(ROW_A + i0 + q, l) + a[q]);
                }
            }
        }
    }
}
