// Two adjacent clones of every particle (twin of CpuEngine::branch): particle p goes to 2p and
// 2p+1; the second gets `stream << 48` OR'ed into its rng id (stream in the high half of id_hi).
// Destination positions (stride arg_dst_stride()) in binding 6, destination meta in binding 7;
// arg_stream() = stream.

@group(0) @binding(6) var<storage, read_write> dst_x: array<f32>;
@group(0) @binding(7) var<storage, read_write> dst_meta: array<u32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let q = group_index(wid, nwg) * WG + lid;
    if (q >= 2u * prm.n) {
        return;
    }
    let p = q / 2u;
    for (var c = 0u; c < prm.d; c++) {
        dst_x[c * arg_dst_stride() + q] = xget(c, p);
    }
    var hi = pmeta[p * 4u + 1u];
    if ((q & 1u) == 1u) {
        hi = hi | (arg_stream() << 16u);
    }
    dst_meta[q * 4u] = pmeta[p * 4u];
    dst_meta[q * 4u + 1u] = hi;
    dst_meta[q * 4u + 2u] = pmeta[p * 4u + 2u];
    dst_meta[q * 4u + 3u] = pmeta[p * 4u + 3u];
}
