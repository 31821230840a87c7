// Final labels, last-change times, clone-pair agreement and the pair histogram with u32 atomics.
// counts layout: [labels (K) | last change (arg_points() time points) | pairs agreeing |
// pairs by (first label, second label), arg_pair_classes()² or nothing].

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
    let label = pmeta[p * META + 2u];
    let changed = pmeta[p * META + 3u];
    if (label < prm.k) {
        atomicAdd(&counts[label], 1u);
    }
    if (changed < arg_points()) {
        atomicAdd(&counts[prm.k + changed], 1u);
    }
    if ((p & 1u) == 0u && p + 1u < prm.n) {
        let other = pmeta[(p + 1u) * META + 2u];
        if (other == label) {
            atomicAdd(&counts[prm.k + arg_points()], 1u);
        }
        let kp = arg_pair_classes();
        if (label < kp && other < kp) {
            atomicAdd(&counts[prm.k + arg_points() + 1u + label * kp + other], 1u);
        }
    }
}
