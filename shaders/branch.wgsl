// Two adjacent clones of every particle (twin of branch_particles, src/engine/cpu/branch.rs):
// particle p goes to 2p and 2p+1; the second gets the stream OR'ed into the stream bits of its rng
// id (rng::with_stream: bits 48.., so STREAM_SHIFT_HI bits up in id_hi). Destination positions
// (stride arg_dst_stride()) in dst_x (binding 6), destination meta in dst_meta (binding 7);
// arg_stream() = stream. Neither clone holds a drawn training point (the meta's last word is
// NO_LABEL): each draws its own at the branch point, independently.

@compute @workgroup_size(WG)
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
    var hi = pmeta[p * META + 1u];
    if ((q & 1u) == 1u) {
        hi = hi | (arg_stream() << STREAM_SHIFT_HI);
    }
    dst_meta[q * META] = pmeta[p * META];
    dst_meta[q * META + 1u] = hi;
    dst_meta[q * META + 2u] = pmeta[p * META + 2u];
    dst_meta[q * META + 3u] = pmeta[p * META + 3u];
    dst_meta[q * META + 4u] = NO_LABEL;
}
