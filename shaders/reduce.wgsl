// Statistics at a recorder point. One workgroup folds its 64 particles: invocation t takes the
// quantity q = arg_first_quantity() + t (d coordinates, then projections on the directions, then purity; the
// host dispatches one window of 64 quantities at a time) and folds the particles of its workgroup
// in order by Welford's update in f32 (a Chan merge of singletons). Partials are written per workgroup and folded on the host in workgroup order in
// f64; class counts use integer atomics. No float atomics anywhere.
// `plan` holds the directions (dirs×d); arg_purity_row() = purity row, arg_directions() = directions count,
// arg_counts_offset() = offset of this point's class counters.
// Partial layout per workgroup: [count, (mean, m2) per quantity].

fn quantity(q: u32, p: u32) -> f32 {
    let d = prm.d;
    if (q < d) {
        return xget(q, p);
    }
    if (q < d + arg_directions()) {
        let off = (q - d) * d;
        var acc = 0.0;
        for (var c = 0u; c < d; c++) {
            acc += plan[off + c] * xget(c, p);
        }
        return acc;
    }
    return sget(arg_purity_row(), p);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = group_index(wid, nwg);
    let p0 = g * WG;
    if (p0 >= prm.n) {
        return;
    }
    let count = min(WG, prm.n - p0);
    let nq = prm.d + arg_directions() + 1u;
    let per = 1u + 2u * nq;
    let base = g * per;
    if (lid == 0u && arg_first_quantity() == 0u) {
        partials[base] = f32(count);
    }
    let q = arg_first_quantity() + lid;
    if (q < nq) {
        var mean = 0.0;
        var m2 = 0.0;
        for (var t = 0u; t < count; t++) {
            let v = quantity(q, p0 + t);
            let delta = v - mean;
            mean += delta / f32(t + 1u);
            m2 += delta * (v - mean);
        }
        partials[base + 1u + 2u * q] = mean;
        partials[base + 2u + 2u * q] = m2;
    }
    if (lid < count && arg_first_quantity() == 0u) {
        let label = pmeta[(p0 + lid) * META + 2u];
        if (label < prm.k) {
            atomicAdd(&counts[arg_counts_offset() + label], 1u);
        }
    }
}
