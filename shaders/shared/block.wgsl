// Register blocks for the step kernels, which are specialised per plan shape: the prelude fixes
// D (dimension), K (classes or training points), M_FORM, B_FORM, P_FORM, PB = 4 particles per
// invocation, GP = WG·PB particles per workgroup and RB = 8 rows per register block.
//
// An invocation owns the four particles g·GP + lid + WG·k (k = 0..3), held as the components of
// a vec4, so every coefficient it loads feeds four particles and every coordinate it loads feeds
// RB output rows: the products are register-blocked RB rows × PB particles, the inner loop does
// RB + PB loads for PB·RB multiply-adds (the one-particle loop did two loads per multiply-add).
// Loads of padding particles (beyond n) read particle n − 1 (`ld`), so every index is in bounds
// by construction; their stores are dropped (`valid`).

struct Lanes {
    p: vec4<u32>,
    ld: vec4<u32>,
    valid: vec4<bool>,
}

fn lanes(g: u32, lid: u32) -> Lanes {
    let p = vec4<u32>(g * GP + lid) + vec4<u32>(0u, WG, 2u * WG, 3u * WG);
    return Lanes(p, min(p, vec4<u32>(prm.n - 1u)), p < vec4<u32>(prm.n));
}

fn x4(c: u32, l: Lanes) -> vec4<f32> {
    let b = c * prm.stride;
    return vec4<f32>(xs[b + l.ld.x], xs[b + l.ld.y], xs[b + l.ld.z], xs[b + l.ld.w]);
}

fn s4(r: u32, l: Lanes) -> vec4<f32> {
    let b = r * prm.stride;
    return vec4<f32>(scratch[b + l.ld.x], scratch[b + l.ld.y], scratch[b + l.ld.z], scratch[b + l.ld.w]);
}

fn set_x4(c: u32, l: Lanes, v: vec4<f32>) {
    let b = c * prm.stride;
    if (l.valid.x) { xs[b + l.p.x] = v.x; }
    if (l.valid.y) { xs[b + l.p.y] = v.y; }
    if (l.valid.z) { xs[b + l.p.z] = v.z; }
    if (l.valid.w) { xs[b + l.p.w] = v.w; }
}

fn set_s4(r: u32, l: Lanes, v: vec4<f32>) {
    let b = r * prm.stride;
    if (l.valid.x) { scratch[b + l.p.x] = v.x; }
    if (l.valid.y) { scratch[b + l.p.y] = v.y; }
    if (l.valid.z) { scratch[b + l.p.z] = v.z; }
    if (l.valid.w) { scratch[b + l.p.w] = v.w; }
}

// Coordinate c of the input vector: x (from_x) or scratch row base + c. Callers pass constants,
// so the branch folds away once the function is inlined.
fn in4(from_x: bool, base: u32, c: u32, l: Lanes) -> vec4<f32> {
    if (from_x) {
        return x4(c, l);
    }
    return s4(base + c, l);
}

// Rows i0 .. i0 + RB of A·v for the four particles, where A[i][c] = plan[off + i·rs + c·cs]
// (rs, cs = D, 1 for a row-major matrix; 1, D for the transpose of row-major centers), i < rows,
// c < cols, each row's sum starting at plan[bias + i] (biased) or 0 and running over ascending c
// in fused multiply-adds (acc = fma(a, v, acc)) like the CPU's mul_add dot products. WGSL's fma
// may be computed unfused: lavapipe (Mesa 22.3) does, hardware GPUs fuse. Rows past `rows` repeat the last row and must not be stored. The
// loops over q have constant bounds, so compilers unroll them and keep acc in registers.
fn block(off: u32, rs: u32, cs: u32, i0: u32, rows: u32, cols: u32, from_x: bool, base: u32,
         biased: bool, bias: u32, l: Lanes) -> array<vec4<f32>, RB> {
    var o: array<u32, RB>;
    var acc: array<vec4<f32>, RB>;
    for (var q = 0u; q < RB; q++) {
        let i = min(i0 + q, rows - 1u);
        o[q] = off + i * rs;
        acc[q] = vec4<f32>(0.0);
        if (biased) {
            acc[q] = vec4<f32>(plan[bias + i]);
        }
    }
    for (var c = 0u; c < cols; c++) {
        let v = in4(from_x, base, c, l);
        let cc = c * cs;
        for (var q = 0u; q < RB; q++) {
            acc[q] = fma(vec4<f32>(plan[o[q] + cc]), v, acc[q]);
        }
    }
    return acc;
}

// The same for KB = min(K, RB) rows: the mixture's logits, so that two classes do not pay for
// a block of RB.
fn block_k(off: u32, i0: u32, l: Lanes, bias: u32) -> array<vec4<f32>, KB> {
    var o: array<u32, KB>;
    var acc: array<vec4<f32>, KB>;
    for (var q = 0u; q < KB; q++) {
        let i = min(i0 + q, K - 1u);
        o[q] = off + i * D;
        acc[q] = vec4<f32>(plan[bias + i]);
    }
    for (var c = 0u; c < D; c++) {
        let v = s4(ROW_A + c, l);
        for (var q = 0u; q < KB; q++) {
            acc[q] = fma(vec4<f32>(plan[o[q] + c]), v, acc[q]);
        }
    }
    return acc;
}

// Scratch rows dst .. dst + D = L·v for L in `form` at `off` (twin of step::apply).
fn apply_rows(form: u32, off: u32, from_x: bool, base: u32, dst: u32, l: Lanes) {
    if (form == FORM_DENSE) {
        for (var i0 = 0u; i0 < D; i0 += RB) {
            let a = block(off, D, 1u, i0, D, D, from_x, base, false, 0u, l);
            for (var q = 0u; q < RB; q++) {
                if (i0 + q < D) {
                    set_s4(dst + i0 + q, l, a[q]);
                }
            }
        }
        return;
    }
    for (var i = 0u; i < D; i++) {
        var c = plan[off];
        if (form == FORM_DIAGONAL) {
            c = plan[off + i];
        }
        set_s4(dst + i, l, c * in4(from_x, base, i, l));
    }
}
