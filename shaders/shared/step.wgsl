// Pieces shared by the two step kernels: scratch layout, the label bookkeeping and the update
// x ← M x + P v + noise ξ (twin of kernel::update).
//
// Scratch rows: ROW_A .. +d (B x, then M x), ROW_V .. +d (Wᵀ r), then kernel-specific rows
// (arg_purity_row(), and arg_logits_row() for the mixture).
//
// A dispatch runs "ops" op0 .. op1: op 2j evaluates the logits at time point j, op 2j+1 moves the
// particle from j to j+1. The host splits runs at recorder points, plan uploads and the
// steps-per-dispatch knob; v stays in scratch between an evaluation and its update.

const ROW_A: u32 = 0u;

fn row_v() -> u32 {
    return prm.d;
}

fn set_label(p: u32, label: u32, j: u32) {
    if (pmeta[p * 4u + 2u] != label) {
        pmeta[p * 4u + 2u] = label;
        pmeta[p * 4u + 3u] = j;
    }
}

fn update(p: u32, j: u32) {
    let d = prm.d;
    let pi = j - prm.first;
    let moff = prm.off_m + pi * form_len(prm.m_form, d);
    let poff = prm.off_p + pi * form_len(prm.p_form, d);
    let noise = plan[prm.off_noise + pi];
    for (var i = 0u; i < d; i++) {
        sset(ROW_A + i, p, apply_row(prm.m_form, moff, i, true, 0u, p));
    }
    let key = vec2<u32>(prm.key0, prm.key1);
    let id = particle_id(p);
    let blocks = (d + 3u) / 4u;
    for (var blk = 0u; blk < blocks; blk++) {
        var z = vec4<f32>(0.0);
        if (noise != 0.0) {
            z = normal4(key, id, j, blk);
        }
        for (var q = 0u; q < 4u; q++) {
            let i = blk * 4u + q;
            if (i < d) {
                let py = apply_row(prm.p_form, poff, i, false, row_v(), p);
                xset(i, p, (sget(ROW_A + i, p) + py) + noise * z[q]);
            }
        }
    }
}
