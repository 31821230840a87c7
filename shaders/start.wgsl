// Draws particles from the start plan (twin of start, src/engine/cpu/start.rs). The start plan
// sits in `plan`: cumulative weights (K) at 0, Cholesky factor at arg_chol() in
// form arg_chol_form(); the K×d class means are in `centers`, which holds means arg_base() ..
// arg_end(). The normals go to scratch rows 0..d first, as the CPU fills its z buffer.
//
// Means larger than a storage binding (the exact start of a large training set) come in several
// dispatches: the first (arg_draw() = 1) draws the component, the normals and x = L z, adding the
// mean if its component is bound, and keeps the component in scratch row d (exact f32, K < 2^24);
// each later one adds the means of its binding. Either way x = L z + mean, one rounding.

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
    var comp = prm.k - 1u;
    if (arg_draw() == 0u) {
        comp = u32(sget(d, p));
        if (comp >= arg_base() && comp < arg_end()) {
            let m = (comp - arg_base()) * d;
            for (var i = 0u; i < d; i++) {
                xset(i, p, xget(i, p) + centers[m + i]);
            }
        }
        return;
    }
    let key = vec2<u32>(prm.key0, prm.key1);
    let id = particle_id(p);
    let u = uniform01(rng_words(key, id, INIT_STEP, PICK_BLOCK).x);
    // The first c with u < cum[c] (else K − 1), by bisection: the cumulative weights never
    // decrease, so this is the CPU's linear search, in log K loop iterations.
    var lo = 0u;
    var hi = prm.k - 1u;
    while (lo < hi) {
        let mid = (lo + hi) / 2u;
        if (u < plan[mid]) {
            hi = mid;
        } else {
            lo = mid + 1u;
        }
    }
    comp = lo;
    sset(d, p, f32(comp));
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
    let bound = comp >= arg_base() && comp < arg_end();
    let m = (comp - arg_base()) * d;
    for (var i = 0u; i < d; i++) {
        let v = apply_row(arg_chol_form(), arg_chol(), i, false, 0u, p);
        if (bound) {
            xset(i, p, v + centers[m + i]);
        } else {
            xset(i, p, v);
        }
    }
}
