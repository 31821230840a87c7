// Fused steps on a Gaussian-mixture plan, the wide variant for large d: one workgroup of WWG
// invocations per particle, its coordinates spread over the invocations. Invocation lid owns the
// blocks of four coordinates b = lid + WWG·q (q < QW), i.e. coordinates 4b .. 4b + 3, held in
// private arrays of R = 4·QW floats: x, B x / M x (y), v, and the accumulator of a dense product
// (acc), from the first to the last step of a dispatch. The blocks of four are the Philox blocks
// of the noise, so coordinate i of particle p at step j draws the words every other kernel draws.
//
// Global memory is read for the coefficients (the same address in every workgroup, so a
// broadcast) and written for x, the label and, at the dispatch's end, the rows the recorder and
// the next dispatch read (ROW_PURITY, and ROW_V when the dispatch stops between an evaluation and
// its update), as in step_mixture_onchip.wgsl. Dense products go through workgroup memory: the
// input vector a tile of 4·WWG coordinates at a time (tile t holds every invocation's block
// q = t), each invocation summing its own output rows over ascending c from 0 (step::apply's
// order). The class logits are dot products over the whole particle: each invocation's partial
// over its coordinates, then a tree reduction in workgroup memory, four classes at a time, so they
// round differently from the CPU's single running sum (within the CPU ≡ GPU tolerances).

const R: u32 = 4u * QW;
const WTILE: u32 = 4u * WWG;

var<private> x: array<f32, R>;
var<private> y: array<f32, R>;
var<private> v: array<f32, R>;
var<private> acc: array<f32, R>;

// One tile of a dense product's input vector.
var<workgroup> tile: array<f32, WTILE>;
// The partial dot products of four classes, folded in place.
var<workgroup> red: array<vec4<f32>, WWG>;
// The K logits of the particle (written by invocation 0, read by all).
var<workgroup> lg: array<f32, K>;

struct Evaluated {
    purity: f32,
    best: u32,
}

// The coordinate of private slot s of invocation lid (D or more: padding, never stored).
fn coord(lid: u32, s: u32) -> u32 {
    return 4u * (lid + WWG * (s >> 2u)) + (s & 3u);
}

// dst = L src for a dense row-major L at `off` (twin of step::apply: each row's sum from 0 over
// ascending c). Called in uniform control flow (it has barriers).
fn dense_w(off: u32, src: ptr<private, array<f32, R>>, dst: ptr<private, array<f32, R>>, lid: u32) {
    for (var s = 0u; s < R; s++) {
        (*dst)[s] = 0.0;
    }
    for (var t = 0u; t < QW; t++) {
        workgroupBarrier();
        for (var r = 0u; r < 4u; r++) {
            tile[4u * lid + r] = (*src)[4u * t + r];
        }
        workgroupBarrier();
        let c0 = t * WTILE;
        let cols = min(WTILE, D - c0);
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                let row = off + i * D + c0;
                var a = (*dst)[s];
                for (var c = 0u; c < cols; c++) {
                    a = fma(plan[row + c], tile[c], a);
                }
                (*dst)[s] = a;
            }
        }
    }
}

// dst = L src for L in `form` at `off` (twin of step::apply).
fn apply_w(form: u32, off: u32, src: ptr<private, array<f32, R>>, dst: ptr<private, array<f32, R>>, lid: u32) {
    if (form == FORM_DENSE) {
        dense_w(off, src, dst, lid);
        return;
    }
    for (var s = 0u; s < R; s++) {
        let i = coord(lid, s);
        if (i < D) {
            var c = plan[off];
            if (form == FORM_DIAGONAL) {
                c = plan[off + i];
            }
            (*dst)[s] = c * (*src)[s];
        }
    }
}

// The sum over the workgroup of each invocation's `part` (a tree in workgroup memory), returned
// to every invocation. Called in uniform control flow.
fn reduce4(part: vec4<f32>, lid: u32) -> vec4<f32> {
    // Every invocation has read the previous sum before red is overwritten.
    workgroupBarrier();
    red[lid] = part;
    workgroupBarrier();
    for (var h = WWG / 2u; h > 0u; h >>= 1u) {
        if (lid < h) {
            red[lid] = red[lid] + red[lid + h];
        }
        workgroupBarrier();
    }
    return red[0];
}

fn evaluate_wide(j: u32, key: vec2<u32>, id: vec2<u32>, lid: u32) -> Evaluated {
    let pi = j - prm.first;
    let wb = prm.off_w + pi * K * D;
    let bb = prm.off_bias + pi * K;
    apply_w(B_FORM, prm.off_b + pi * form_len(B_FORM, D), &x, &y, lid);
    // Logits ℓ_k = bias_k + w_k·y, four classes at a time; running max and argmax (the same in
    // every invocation, which all read the reduced sums).
    var mx = 0.0;
    var best = 0u;
    for (var k0 = 0u; k0 < K; k0 += 4u) {
        var o: array<u32, 4>;
        for (var q = 0u; q < 4u; q++) {
            o[q] = wb + min(k0 + q, K - 1u) * D;
        }
        var part = vec4<f32>(0.0);
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                let w = vec4<f32>(plan[o[0] + i], plan[o[1] + i], plan[o[2] + i], plan[o[3] + i]);
                part = fma(w, vec4<f32>(y[s]), part);
            }
        }
        let sums = reduce4(part, lid);
        for (var q = 0u; q < 4u; q++) {
            let k = k0 + q;
            if (k < K) {
                let a = plan[bb + k] + sums[q];
                if (lid == 0u) {
                    lg[k] = a;
                }
                if (a > mx || k == 0u) {
                    mx = a;
                    best = k;
                }
            }
        }
    }
    workgroupBarrier();
    // Posteriors r_k = exp(ℓ_k − max) / Σ, recomputed where used (the same bits each time).
    var total = 0.0;
    for (var k = 0u; k < K; k++) {
        total += exp(lg[k] - mx);
    }
    let inv = 1.0 / total;
    var purity = 0.0;
    for (var k = 0u; k < K; k++) {
        let r = exp(lg[k] - mx) * inv;
        purity = fma(r, r, purity);
    }
    if (DRAWS) {
        // Inverse-CDF draw of the component (step::pick), then v = its offset c_k.
        let u = uniform01(rng_words(key, id, j, PICK_BLOCK).x);
        var cum = 0.0;
        var kk = K - 1u;
        var found = false;
        for (var k = 0u; k < K; k++) {
            cum += exp(lg[k] - mx) * inv;
            if (cum > u && !found) {
                kk = k;
                found = true;
            }
        }
        let ob = prm.off_offsets + pi * K * D + kk * D;
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                v[s] = plan[ob + i];
            }
        }
        return Evaluated(purity, best);
    }
    // v = Wᵀ r, each coordinate's sum over ascending k.
    for (var s = 0u; s < R; s++) {
        v[s] = 0.0;
    }
    for (var k = 0u; k < K; k++) {
        let r = exp(lg[k] - mx) * inv;
        let row = wb + k * D;
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                v[s] = fma(plan[row + i], r, v[s]);
            }
        }
    }
    return Evaluated(purity, best);
}

// x ← (M x + P v) + L ξ (twin of step::update).
fn update_wide(j: u32, key: vec2<u32>, id: vec2<u32>, lid: u32) {
    let pi = j - prm.first;
    let poff = prm.off_p + pi * form_len(P_FORM, D);
    let noff = prm.off_noise + pi * form_len(NOISE_FORM, D);
    apply_w(M_FORM, prm.off_m + pi * form_len(M_FORM, D), &x, &y, lid);
    if (P_FORM == FORM_DENSE) {
        dense_w(poff, &v, &acc, lid);
    }
    for (var q = 0u; q < QW; q++) {
        let b = lid + WWG * q;
        var z = vec4<f32>(0.0);
        if (STOCHASTIC && NOISE_FORM != FORM_DENSE && 4u * b < D) {
            z = normal4(key, id, j, b);
        }
        for (var r = 0u; r < 4u; r++) {
            let s = 4u * q + r;
            let i = 4u * b + r;
            if (i < D) {
                var pv: f32;
                if (P_FORM == FORM_DENSE) {
                    pv = acc[s];
                } else if (P_FORM == FORM_DIAGONAL) {
                    pv = plan[poff + i] * v[s];
                } else {
                    pv = plan[poff] * v[s];
                }
                if (NOISE_FORM == FORM_DENSE) {
                    y[s] = y[s] + pv;
                } else {
                    var c = plan[noff];
                    if (NOISE_FORM == FORM_DIAGONAL) {
                        c = plan[noff + i];
                    }
                    x[s] = (y[s] + pv) + c * z[r];
                }
            }
        }
    }
    if (NOISE_FORM == FORM_DENSE) {
        // ξ into v (spent), then x = (M x + P v) + L ξ.
        for (var q = 0u; q < QW; q++) {
            let b = lid + WWG * q;
            if (4u * b < D) {
                let z = normal4(key, id, j, b);
                for (var r = 0u; r < 4u; r++) {
                    v[4u * q + r] = z[r];
                }
            }
        }
        dense_w(noff, &v, &acc, lid);
        for (var s = 0u; s < R; s++) {
            x[s] = y[s] + acc[s];
        }
    }
}

@compute @workgroup_size(WWG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // One particle per workgroup: the whole workgroup returns together.
    let p = group_index(wid, nwg);
    if (p >= prm.n) {
        return;
    }
    let id = particle_id(p);
    let key = vec2<u32>(prm.key0, prm.key1);
    for (var s = 0u; s < R; s++) {
        let i = coord(lid, s);
        if (i < D) {
            x[s] = xget(i, p);
        }
    }
    if (prm.phase == 1u) {
        // The previous dispatch evaluated this point: its v is in scratch.
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                v[s] = sget(ROW_V + i, p);
            }
        }
    }
    var label = pmeta[p * META + 2u];
    var relabelled = false;
    var changed = pmeta[p * META + 3u];
    var purity = 0.0;
    var evaluated = false;
    var pending_v = false;
    for (var o = 0u; o < prm.ops; o++) {
        let op = prm.phase + o;
        let j = prm.first + (op >> 1u);
        if ((op & 1u) == 0u) {
            let e = evaluate_wide(j, key, id, lid);
            purity = e.purity;
            if (e.best != label) {
                label = e.best;
                changed = j;
                relabelled = true;
            }
            evaluated = true;
            pending_v = true;
        } else {
            update_wide(j, key, id, lid);
            pending_v = false;
        }
    }
    for (var s = 0u; s < R; s++) {
        let i = coord(lid, s);
        if (i < D) {
            xset(i, p, x[s]);
        }
    }
    if (lid == 0u) {
        if (relabelled) {
            pmeta[p * META + 2u] = label;
            pmeta[p * META + 3u] = changed;
        }
        if (evaluated) {
            sset(ROW_PURITY, p, purity);
        }
    }
    if (pending_v) {
        for (var s = 0u; s < R; s++) {
            let i = coord(lid, s);
            if (i < D) {
                sset(ROW_V + i, p, v[s]);
            }
        }
    }
}
