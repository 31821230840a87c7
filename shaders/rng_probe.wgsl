// Test kernel: Philox words and normals for given (key, counter) sets, to compare with src/rng.rs.
// Input in pmeta: 6 words per probe [key0, key1, c0, c1, c2, c3]; words out in words_out
// (binding 7), normals out in normals_out (binding 6), 4 each.

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = group_index(wid, nwg) * WG + lid;
    if (i >= prm.n) {
        return;
    }
    let key = vec2<u32>(pmeta[i * 6u], pmeta[i * 6u + 1u]);
    let id = vec2<u32>(pmeta[i * 6u + 2u], pmeta[i * 6u + 3u]);
    let w = rng_words(key, id, pmeta[i * 6u + 4u], pmeta[i * 6u + 5u]);
    let z = normal4(key, id, pmeta[i * 6u + 4u], pmeta[i * 6u + 5u]);
    for (var q = 0u; q < 4u; q++) {
        words_out[i * 4u + q] = w[q];
        normals_out[i * 4u + q] = z[q];
    }
}
