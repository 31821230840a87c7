// Fused steps on a Gaussian-mixture plan, the on-chip variant: one particle per invocation, its
// x, B x / M x, v and the logits in private arrays of constant size D and K from the first to
// the last step of a dispatch. Global memory is read for the coefficients (the same address in
// every invocation, so a broadcast) and written for x, the label and, at the dispatch's end, the
// rows the recorder and the next dispatch read (ROW_PURITY, and ROW_V when the dispatch stops
// between an evaluation and its update). Twin of step::evaluate + step::update: the same sums in
// the same order as step_mixture.wgsl. Workgroups of OWG invocations (as many particles as the
// blocked kernel's), so each coefficient load is shared as widely.

var<private> x: array<f32, D>;
// B x during an evaluation; M x (then M x + P v) during an update.
var<private> y: array<f32, D>;
// Wᵀ r, or the drawn offset; ξ once P v is spent (dense noise).
var<private> v: array<f32, D>;
var<private> r: array<f32, K>;

// y = L x for L in `form` at `off` (twin of step::apply; acc from 0 over ascending c).
fn apply_x(form: u32, off: u32) {
    for (var i = 0u; i < D; i++) {
        if (form == FORM_DENSE) {
            var acc = 0.0;
            let row = off + i * D;
            for (var c = 0u; c < D; c++) {
                acc += plan[row + c] * x[c];
            }
            y[i] = acc;
        } else if (form == FORM_DIAGONAL) {
            y[i] = plan[off + i] * x[i];
        } else {
            y[i] = plan[off] * x[i];
        }
    }
}

struct Evaluated {
    purity: f32,
    best: u32,
}

fn evaluate_onchip(j: u32, key: vec2<u32>, id: vec2<u32>) -> Evaluated {
    let pi = j - prm.first;
    let wb = prm.off_w + pi * K * D;
    let bb = prm.off_bias + pi * K;
    apply_x(B_FORM, prm.off_b + pi * form_len(B_FORM, D));
    // Logits ℓ_k = bias_k + w_k·y, running max and argmax.
    var mx = 0.0;
    var best = 0u;
    for (var k = 0u; k < K; k++) {
        var a = plan[bb + k];
        let row = wb + k * D;
        for (var c = 0u; c < D; c++) {
            a += plan[row + c] * y[c];
        }
        r[k] = a;
        if (a > mx || k == 0u) {
            mx = a;
            best = k;
        }
    }
    var total = 0.0;
    for (var k = 0u; k < K; k++) {
        let e = exp(r[k] - mx);
        r[k] = e;
        total += e;
    }
    let inv = 1.0 / total;
    var purity = 0.0;
    for (var k = 0u; k < K; k++) {
        let q = r[k] * inv;
        r[k] = q;
        purity += q * q;
    }
    if (DRAWS) {
        // Inverse-CDF draw of the component (step::pick), then v = its offset c_k.
        let u = uniform01(rng_words(key, id, j, PICK_BLOCK).x);
        var cum = 0.0;
        var kk = K - 1u;
        var found = false;
        for (var k = 0u; k < K; k++) {
            cum += r[k];
            if (cum > u && !found) {
                kk = k;
                found = true;
            }
        }
        let ob = prm.off_offsets + pi * K * D + kk * D;
        for (var i = 0u; i < D; i++) {
            v[i] = plan[ob + i];
        }
        return Evaluated(purity, best);
    }
    // v = Wᵀ r, each coordinate's sum over ascending k.
    for (var i = 0u; i < D; i++) {
        var acc = 0.0;
        for (var k = 0u; k < K; k++) {
            acc += plan[wb + k * D + i] * r[k];
        }
        v[i] = acc;
    }
    return Evaluated(purity, best);
}

// x ← (M x + P v) + L ξ (twin of step::update).
fn update_onchip(j: u32, key: vec2<u32>, id: vec2<u32>) {
    let pi = j - prm.first;
    let poff = prm.off_p + pi * form_len(P_FORM, D);
    let noff = prm.off_noise + pi * form_len(NOISE_FORM, D);
    apply_x(M_FORM, prm.off_m + pi * form_len(M_FORM, D));
    for (var i0 = 0u; i0 < D; i0 += 4u) {
        var z = vec4<f32>(0.0);
        if (STOCHASTIC && NOISE_FORM != FORM_DENSE) {
            z = normal4(key, id, j, i0 / 4u);
        }
        for (var q = 0u; q < 4u; q++) {
            let i = i0 + q;
            if (i < D) {
                var pv: f32;
                if (P_FORM == FORM_DENSE) {
                    pv = 0.0;
                    let row = poff + i * D;
                    for (var c = 0u; c < D; c++) {
                        pv += plan[row + c] * v[c];
                    }
                } else if (P_FORM == FORM_DIAGONAL) {
                    pv = plan[poff + i] * v[i];
                } else {
                    pv = plan[poff] * v[i];
                }
                if (NOISE_FORM == FORM_DENSE) {
                    y[i] = y[i] + pv;
                } else {
                    var c = plan[noff];
                    if (NOISE_FORM == FORM_DIAGONAL) {
                        c = plan[noff + i];
                    }
                    x[i] = (y[i] + pv) + c * z[q];
                }
            }
        }
    }
    if (NOISE_FORM == FORM_DENSE) {
        // ξ into v (spent), then x = (M x + P v) + L ξ.
        for (var b = 0u; b * 4u < D; b++) {
            let z = normal4(key, id, j, b);
            for (var q = 0u; q < 4u; q++) {
                if (b * 4u + q < D) {
                    v[b * 4u + q] = z[q];
                }
            }
        }
        for (var i = 0u; i < D; i++) {
            var acc = 0.0;
            let row = noff + i * D;
            for (var c = 0u; c < D; c++) {
                acc += plan[row + c] * v[c];
            }
            x[i] = y[i] + acc;
        }
    }
}

@compute @workgroup_size(OWG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    if (g * OWG >= prm.n) {
        return;
    }
    // Padding invocations compute particle n − 1 and store nothing, so every index is in bounds.
    let p0 = g * OWG + lid;
    let p = min(p0, prm.n - 1u);
    let id = particle_id(p);
    let key = vec2<u32>(prm.key0, prm.key1);
    for (var i = 0u; i < D; i++) {
        x[i] = xget(i, p);
    }
    if (prm.phase == 1u) {
        // The previous dispatch evaluated this point: its v is in scratch.
        for (var i = 0u; i < D; i++) {
            v[i] = sget(ROW_V + i, p);
        }
    }
    var label = pmeta[p * 4u + 2u];
    var relabelled = false;
    var changed = pmeta[p * 4u + 3u];
    var purity = 0.0;
    var evaluated = false;
    var pending_v = false;
    for (var o = 0u; o < prm.ops; o++) {
        let op = prm.phase + o;
        let j = prm.first + (op >> 1u);
        if ((op & 1u) == 0u) {
            let e = evaluate_onchip(j, key, id);
            purity = e.purity;
            if (e.best != label) {
                label = e.best;
                changed = j;
                relabelled = true;
            }
            evaluated = true;
            pending_v = true;
        } else {
            update_onchip(j, key, id);
            pending_v = false;
        }
    }
    if (p0 >= prm.n) {
        return;
    }
    for (var i = 0u; i < D; i++) {
        xset(i, p, x[i]);
    }
    if (relabelled) {
        pmeta[p * 4u + 2u] = label;
        pmeta[p * 4u + 3u] = changed;
    }
    if (evaluated) {
        sset(ROW_PURITY, p, purity);
    }
    if (pending_v) {
        for (var i = 0u; i < D; i++) {
            sset(ROW_V + i, p, v[i]);
        }
    }
}
