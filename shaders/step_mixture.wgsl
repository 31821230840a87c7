// Fused steps on a Gaussian-mixture plan (per-step centers W_j in the plan buffer), four
// particles per invocation in register blocks (shared/block.wgsl). Twin of step::evaluate +
// step::update: the same sums in the same order.

// Heun (CORRECTS): x at the step's start, kept through the predictor.
const ROW_X0: u32 = ROW_LOGITS + K;

// The logits at point j (or, `corrector`, those of t_{j+1} that Heun's corrector of the step
// from j reads, which leave the labels and the purity alone), and v = Wᵀ r.
fn evaluate_mixture(l: Lanes, j: u32, corrector: bool) {
    let pi = j - prm.first;
    let boff = prm.off_b + pi * form_len(B_FORM, D);
    var wb = prm.off_w + pi * K * D;
    var bb = prm.off_bias + pi * K;
    if (corrector) {
        wb = prm.off_cw + pi * K * D;
        bb = prm.off_cbias + pi * K;
    }
    apply_rows(B_FORM, boff, true, 0u, ROW_A, l);
    // Logits ℓ_k = bias_k + w_k·y, KB classes at a time; running max and argmax per particle.
    var mx = vec4<f32>(0.0);
    var best = vec4<u32>(0u);
    for (var k0 = 0u; k0 < K; k0 += KB) {
        let a = block_k(wb, k0, l, bb);
        for (var q = 0u; q < KB; q++) {
            let k = k0 + q;
            if (k < K) {
                set_s4(ROW_LOGITS + k, l, a[q]);
                let take = (a[q] > mx) | vec4<bool>(k == 0u);
                mx = select(mx, a[q], take);
                best = select(best, vec4<u32>(k), take);
            }
        }
    }
    var total = vec4<f32>(0.0);
    for (var k = 0u; k < K; k++) {
        let e = exp(s4(ROW_LOGITS + k, l) - mx);
        set_s4(ROW_LOGITS + k, l, e);
        total += e;
    }
    let inv = 1.0 / total;
    var purity = vec4<f32>(0.0);
    for (var k = 0u; k < K; k++) {
        let r = s4(ROW_LOGITS + k, l) * inv;
        set_s4(ROW_LOGITS + k, l, r);
        purity = fma(r, r, purity);
    }
    if (DRAWS) {
        // Inverse-CDF draw of the component (step::pick), then v = its offset c_k.
        let u = draw_uniforms(l, j);
        var cum = vec4<f32>(0.0);
        var kk = vec4<u32>(K - 1u);
        var found = vec4<bool>(false);
        for (var k = 0u; k < K; k++) {
            cum += s4(ROW_LOGITS + k, l);
            let hit = (cum > u) & !found;
            kk = select(kk, vec4<u32>(k), hit);
            found = found | hit;
        }
        take_rows(0u, prm.off_offsets + pi * K * D, kk, l);
        set_s4(ROW_PURITY, l, purity);
        set_labels(l, best, j);
        return;
    }
    // v = Wᵀ r: A[i][k] = w_k[i], RB coordinates at a time.
    for (var i0 = 0u; i0 < D; i0 += RB) {
        let a = block(wb, 1u, D, i0, D, K, false, ROW_LOGITS, false, 0u, l);
        for (var q = 0u; q < RB; q++) {
            if (i0 + q < D) {
                set_s4(ROW_V + i0 + q, l, a[q]);
            }
        }
    }
    if (!corrector) {
        set_s4(ROW_PURITY, l, purity);
        set_labels(l, best, j);
    }
}

// Heun's corrector of the step from j (step::update): with the predictor x̃ in x, x₀ in ROW_X0
// and v' = W'ᵀ r(x̃) in ROW_V, x ← (M' x̃ + P' v') + ½x₀.
fn correct(l: Lanes, j: u32) {
    let pi = j - prm.first;
    apply_rows(M_FORM, prm.off_cm + pi * form_len(M_FORM, D), true, 0u, ROW_A, l);
    let poff = prm.off_cp + pi * form_len(P_FORM, D);
    for (var i0 = 0u; i0 < D; i0 += RB) {
        let pv = apply_p(poff, i0, l);
        for (var q = 0u; q < RB; q++) {
            let i = i0 + q;
            if (i < D) {
                set_x4(i, l, (s4(ROW_A + i, l) + pv[q]) + 0.5 * s4(ROW_X0 + i, l));
            }
        }
    }
}

// A step from j: the update, or Heun's predictor and corrector.
fn step(l: Lanes, j: u32) {
    if (!CORRECTS) {
        update(l, j);
        return;
    }
    for (var i = 0u; i < D; i++) {
        set_s4(ROW_X0 + i, l, x4(i, l));
    }
    update(l, j);
    evaluate_mixture(l, j, true);
    correct(l, j);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    if (g * GP >= prm.n) {
        return;
    }
    let l = lanes(g, lid);
    for (var o = 0u; o < prm.ops; o++) {
        let op = prm.phase + o;
        let j = prm.first + (op >> 1u);
        if ((op & 1u) == 0u) {
            evaluate_mixture(l, j, false);
        } else {
            step(l, j);
        }
    }
}
