// Fused steps on a Gaussian-mixture plan, the on-chip variant (shared/onchip.wgsl): one particle
// per invocation, its x, B x / M x, v and the logits in private arrays of constant size D and K
// from the first to the last step of a dispatch. Global memory is read for the coefficients (the
// same address in every invocation, so a broadcast) and written for x, the label and, at the
// dispatch's end, the rows the recorder and the next dispatch read (ROW_PURITY, and ROW_V when the
// dispatch stops between an evaluation and its update). Twin of step::evaluate + step::update: the
// same sums in the same order as step_mixture.wgsl. Workgroups of OWG invocations (as many
// particles as the blocked kernel's), so each coefficient load is shared as widely.

// The logits, then the posteriors.
var<private> r: array<f32, K>;

fn evaluate_onchip(j: u32, key: vec2<u32>, id: vec2<u32>, lid: u32) -> Evaluated {
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
            a = fma(plan[row + c], y[c], a);
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
        purity = fma(q, q, purity);
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
            acc = fma(plan[wb + k * D + i], r[k], acc);
        }
        v[i] = acc;
    }
    return Evaluated(purity, best);
}

@compute @workgroup_size(OWG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    run_onchip(group_index(wid, nwg), lid);
}
