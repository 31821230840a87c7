// The on-chip step kernels' shared parts (step_mixture_onchip.wgsl, step_empirical_onchip.wgsl):
// one particle per invocation, its x, B x / M x and v in private arrays of constant size D from
// the first to the last step of a dispatch; the update x ← (M x + P v) + L ξ (twin of
// step::update); and the dispatch's loop (`run_onchip`), which loads x (and v when the dispatch
// starts with an update) once, alternates the kernel's `evaluate_onchip` with `update_onchip`,
// and stores x, the label, the purity and (when the dispatch stops between an evaluation and its
// update) v once at the end. Padding invocations compute particle n − 1 and store nothing, so
// every index is in bounds and every invocation reaches a kernel's barriers.

var<private> x: array<f32, D>;
// B x during an evaluation; M x (then M x + P v) during an update.
var<private> y: array<f32, D>;
// Wᵀ r, or the drawn offset or training point; ξ once P v is spent (dense noise).
var<private> v: array<f32, D>;

// The training point the particle holds on a plan that draws once (pmeta word 4, NO_LABEL before
// its first evaluation), loaded with x and stored back at the end if an evaluation drew it
// (`drew`). Only the empirical kernel reads or sets it.
var<private> drawn: u32;
var<private> drew: bool;

struct Evaluated {
    purity: f32,
    best: u32,
}

// y = L x for L in `form` at `off` (twin of step::apply; acc from 0 over ascending c).
fn apply_x(form: u32, off: u32) {
    for (var i = 0u; i < D; i++) {
        if (form == FORM_DENSE) {
            var acc = 0.0;
            let row = off + i * D;
            for (var c = 0u; c < D; c++) {
                acc = fma(plan[row + c], x[c], acc);
            }
            y[i] = acc;
        } else if (form == FORM_DIAGONAL) {
            y[i] = plan[off + i] * x[i];
        } else {
            y[i] = plan[off] * x[i];
        }
    }
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
                        pv = fma(plan[row + c], v[c], pv);
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
                acc = fma(plan[row + c], v[c], acc);
            }
            x[i] = y[i] + acc;
        }
    }
}

// The dispatch of workgroup g (OWG particles), invocation lid.
fn run_onchip(g: u32, lid: u32) {
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
    var label = pmeta[p * META + 2u];
    var relabelled = false;
    var changed = pmeta[p * META + 3u];
    drawn = pmeta[p * META + 4u];
    drew = false;
    var purity = 0.0;
    var evaluated = false;
    var pending_v = false;
    for (var o = 0u; o < prm.ops; o++) {
        let op = prm.phase + o;
        let j = prm.first + (op >> 1u);
        if ((op & 1u) == 0u) {
            let e = evaluate_onchip(j, key, id, lid);
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
        pmeta[p * META + 2u] = label;
        pmeta[p * META + 3u] = changed;
    }
    if (drew) {
        pmeta[p * META + 4u] = drawn;
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
