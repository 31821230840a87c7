// Fused steps on a Gaussian-mixture plan (per-step centers W_j in the plan buffer), one particle
// per invocation. Twin of kernel::evaluate + kernel::update, same loop order.
// arg_purity_row() = purity row, arg_logits_row() = first of K logits rows.

fn evaluate_mixture(p: u32, j: u32) {
    let d = prm.d;
    let kk = prm.k;
    let pi = j - prm.first;
    let boff = prm.off_b + pi * form_len(prm.b_form, d);
    let wb = prm.off_w + pi * kk * d;
    let bb = prm.off_bias + pi * kk;
    let lrow = arg_logits_row();
    for (var i = 0u; i < d; i++) {
        sset(ROW_A + i, p, apply_row(prm.b_form, boff, i, true, 0u, p));
    }
    var mx = 0.0;
    var best = 0u;
    for (var k = 0u; k < kk; k++) {
        var acc = plan[bb + k];
        let row = wb + k * d;
        for (var i = 0u; i < d; i++) {
            acc += plan[row + i] * sget(ROW_A + i, p);
        }
        sset(lrow + k, p, acc);
        if (k == 0u || acc > mx) {
            mx = acc;
            best = k;
        }
    }
    var total = 0.0;
    for (var k = 0u; k < kk; k++) {
        let e = exp(sget(lrow + k, p) - mx);
        sset(lrow + k, p, e);
        total += e;
    }
    let inv = 1.0 / total;
    var purity = 0.0;
    for (var k = 0u; k < kk; k++) {
        let r = sget(lrow + k, p) * inv;
        sset(lrow + k, p, r);
        purity += r * r;
    }
    for (var i = 0u; i < d; i++) {
        var v = 0.0;
        for (var k = 0u; k < kk; k++) {
            v += sget(lrow + k, p) * plan[wb + k * d + i];
        }
        sset(row_v() + i, p, v);
    }
    sset(arg_purity_row(), p, purity);
    set_label(p, best, j);
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = group_index(wid, nwg) * WG + lid;
    if (p >= prm.n) {
        return;
    }
    for (var op = prm.op0; op < prm.op1; op++) {
        let j = op >> 1u;
        if ((op & 1u) == 0u) {
            evaluate_mixture(p, j);
        } else {
            update(p, j);
        }
    }
}
