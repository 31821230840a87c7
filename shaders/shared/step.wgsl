// Pieces shared by the two step kernels: scratch layout, the label bookkeeping and the update
// x ← (M x + P v) + noise ξ (twin of step::update), four particles per invocation (block.wgsl).
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
    if (pmeta[p * 4u + 2u] != label) {
        pmeta[p * 4u + 2u] = label;
        pmeta[p * 4u + 3u] = j;
    }
}

fn set_labels(l: Lanes, best: vec4<u32>, j: u32) {
    if (l.valid.x) { set_label(l.p.x, best.x, j); }
    if (l.valid.y) { set_label(l.p.y, best.y, j); }
    if (l.valid.z) { set_label(l.p.z, best.z, j); }
    if (l.valid.w) { set_label(l.p.w, best.w, j); }
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

fn update(l: Lanes, j: u32) {
    let pi = j - prm.first;
    let moff = prm.off_m + pi * form_len(M_FORM, D);
    let poff = prm.off_p + pi * form_len(P_FORM, D);
    let noise = plan[prm.off_noise + pi];
    apply_rows(M_FORM, moff, true, 0u, ROW_A, l);
    let key = vec2<u32>(prm.key0, prm.key1);
    for (var i0 = 0u; i0 < D; i0 += RB) {
        var pv: array<vec4<f32>, RB>;
        if (P_FORM == FORM_DENSE) {
            pv = block(poff, D, 1u, i0, D, D, false, ROW_V, false, 0u, l);
        } else {
            for (var q = 0u; q < RB; q++) {
                let i = min(i0 + q, D - 1u);
                var c = plan[poff];
                if (P_FORM == FORM_DIAGONAL) {
                    c = plan[poff + i];
                }
                pv[q] = c * s4(ROW_V + i, l);
            }
        }
        var z0 = array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        var z1 = z0;
        var z2 = z0;
        var z3 = z0;
        if (noise != 0.0) {
            z0 = normals8(key, l.ld.x, j, i0);
            z1 = normals8(key, l.ld.y, j, i0);
            z2 = normals8(key, l.ld.z, j, i0);
            z3 = normals8(key, l.ld.w, j, i0);
        }
        for (var q = 0u; q < RB; q++) {
            let i = i0 + q;
            if (i < D) {
                let z = vec4<f32>(z0[q], z1[q], z2[q], z3[q]);
                set_x4(i, l, (s4(ROW_A + i, l) + pv[q]) + noise * z);
            }
        }
    }
}
