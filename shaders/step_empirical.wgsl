// Fused steps on an empirical plan: the N training points (resident in `centers`) are streamed
// through workgroup memory in tiles shared by the 64 particles of a workgroup, with an online
// (one-pass) softmax over tiles. The CPU twin (engine::kernel, engine::lanes) uses the same online
// softmax in blocks of MAX_ROWS rows (equal tiles for d ≤ 64), but the GPU's builtin exp is not the
// CPU's polynomial, so the two agree to round-off, not bit for bit. Tiles go through workgroup
// memory when arg_tiled() (d·rows ≤ TILE_FLOATS), else rows are read from global memory.

var<workgroup> tile: array<f32, TILE_FLOATS>;

fn center(r: u32, t0: u32, i: u32) -> f32 {
    if (arg_tiled() != 0u) {
        return tile[r * prm.d + i];
    }
    return centers[(t0 + r) * prm.d + i];
}

fn evaluate_empirical(p: u32, j: u32, valid: bool, lid: u32) {
    let d = prm.d;
    let nn = prm.k;
    let pi = j - prm.first;
    let boff = prm.off_b + pi * form_len(prm.b_form, d);
    let bb = prm.off_bias + pi * nn;
    let rmax = arg_rows_per_tile();
    if (valid) {
        for (var i = 0u; i < d; i++) {
            sset(ROW_A + i, p, apply_row(prm.b_form, boff, i, true, 0u, p));
        }
    }
    var m = 0.0;
    var s = 0.0;
    var q = 0.0;
    var best = 0u;
    var started = false;
    var ls: array<f32, MAX_ROWS>;
    for (var t0 = 0u; t0 < nn; t0 += rmax) {
        let rows = min(rmax, nn - t0);
        if (arg_tiled() != 0u) {
            workgroupBarrier();
            for (var e = lid; e < rows * d; e += WG) {
                tile[e] = centers[t0 * d + e];
            }
            workgroupBarrier();
        }
        if (valid) {
            var tmax = 0.0;
            var targ = 0u;
            for (var r = 0u; r < rows; r++) {
                var acc = plan[bb + t0 + r];
                for (var i = 0u; i < d; i++) {
                    acc += center(r, t0, i) * sget(ROW_A + i, p);
                }
                ls[r] = acc;
                if (r == 0u || acc > tmax) {
                    tmax = acc;
                    targ = t0 + r;
                }
            }
            var scale = 1.0;
            if (!started) {
                m = tmax;
                best = targ;
                scale = 0.0;
                started = true;
            } else if (tmax > m) {
                scale = exp(m - tmax);
                m = tmax;
                best = targ;
            }
            s = s * scale;
            q = q * scale * scale;
            for (var r = 0u; r < rows; r++) {
                let e = exp(ls[r] - m);
                ls[r] = e;
                s += e;
                q += e * e;
            }
            for (var i = 0u; i < d; i++) {
                var acc = 0.0;
                if (scale != 0.0) {
                    acc = sget(row_v() + i, p) * scale;
                }
                for (var r = 0u; r < rows; r++) {
                    acc += ls[r] * center(r, t0, i);
                }
                sset(row_v() + i, p, acc);
            }
        }
    }
    if (valid) {
        let inv = 1.0 / s;
        for (var i = 0u; i < d; i++) {
            sset(row_v() + i, p, sget(row_v() + i, p) * inv);
        }
        sset(arg_purity_row(), p, q * inv * inv);
        set_label(p, best, j);
    }
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = group_index(wid, nwg) * WG + lid;
    let valid = p < prm.n;
    for (var op = prm.op0; op < prm.op1; op++) {
        let j = op >> 1u;
        if ((op & 1u) == 0u) {
            evaluate_empirical(p, j, valid, lid);
        } else if (valid) {
            update(p, j);
        }
    }
}
