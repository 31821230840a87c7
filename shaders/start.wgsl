// Draws particles from the start plan (twin of start, src/engine/cpu/start.rs). The start plan
// sits in `plan`: means (K×d) at arg_means(), cumulative weights (K) at arg_cum_weights(),
// Cholesky factor at arg_chol() in form arg_chol_form(). The normals go to scratch rows 0..d
// first, as the CPU fills its z buffer.

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let p = group_index(wid, nwg) * WG + lid;
    if (p >= prm.n) {
        return;
    }
    let d = prm.d;
    let key = vec2<u32>(prm.key0, prm.key1);
    let id = particle_id(p);
    let u = uniform01(rng_words(key, id, INIT_STEP, PICK_BLOCK).x);
    var comp = prm.k - 1u;
    for (var c = 0u; c < prm.k; c++) {
        if (u < plan[arg_cum_weights() + c]) {
            comp = c;
            break;
        }
    }
    let blocks = (d + 3u) / 4u;
    for (var blk = 0u; blk < blocks; blk++) {
        let z = normal4(key, id, INIT_STEP, blk);
        for (var q = 0u; q < 4u; q++) {
            let i = blk * 4u + q;
            if (i < d) {
                sset(i, p, z[q]);
            }
        }
    }
    for (var i = 0u; i < d; i++) {
        let v = apply_row(arg_chol_form(), arg_chol(), i, false, 0u, p);
        xset(i, p, v + plan[arg_means() + comp * d + i]);
    }
}
