// Philox4x32-10 and the Box–Muller transform: the twin of src/rng.rs, bit-identical on the integer
// side. `mulhilo` (the 32×32→64-bit product) comes from mulhilo64.wgsl where the adapter offers
// 64-bit integers, else from mulhilo16.wgsl (16-bit halves); the words are the same either way.
// Counter layout [id_lo, id_hi, step, block], key [seed_lo, seed_hi]; one block = four normals.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;
const INIT_STEP: u32 = 0xFFFFFFFFu;
const PICK_BLOCK: u32 = 0xFFFFFFFFu;

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = mulhilo(PHILOX_M0, c.x);
        let p1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

// Uniform in (0, 1].
fn uniform_open0(x: u32) -> f32 {
    return f32((x >> 8u) + 1u) * (1.0 / 16777216.0);
}

// Uniform in [0, 1).
fn uniform01(x: u32) -> f32 {
    return f32(x >> 8u) * (1.0 / 16777216.0);
}

// Natural log for x in (0, 1] (normal floats), accurate to about one ulp like the CPU's `ln`.
// The builtin `log` of some drivers (lavapipe) has an absolute error near 1e-7, which is a large
// relative error of log(u) for u near 1, so the Box–Muller radius would differ from the CPU's.
// Algorithm and constants of FreeBSD/musl logf.
fn log_accurate(x: f32) -> f32 {
    var ix = bitcast<u32>(x);
    if (ix == 0x3f800000u) {
        return 0.0;
    }
    ix = ix + (0x3f800000u - 0x3f3504f3u);
    let k = i32(ix >> 23u) - 0x7f;
    ix = (ix & 0x007fffffu) + 0x3f3504f3u;
    let f = bitcast<f32>(ix) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (0.40000972151756287 + w * 0.24279078841209412);
    let t2 = z * (0.6666666269302368 + w * 0.2849878668785095);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = f32(k);
    return s * (hfsq + r) + dk * 9.05800061445916e-06 - hfsq + f + dk * 0.6931381225585938;
}

// (cos 2πu, sin 2πu) for u in [0, 1): twin of fmath::cos_sin_turns. The reduction to a quarter
// turn is exact in turns, then Cephes polynomials on [−π/4, π/4]; drivers' sin/cos of 2πu would
// round the angle first (and lavapipe's are less accurate).
fn cos_sin_turns(u: f32) -> vec2<f32> {
    let a = 4.0 * u;
    let n = round(a);
    let x = (a - n) * 1.5707964;
    let z = x * x;
    let s = x + x * z * (-0.16666655 + z * (0.008332161 + z * -0.00019515296));
    let c = 1.0 - 0.5 * z + z * z * (0.041666646 + z * (-0.0013887316 + z * 0.000024433157));
    var cs = vec2<f32>(c, s);
    if (n == 1.0 || n == 3.0) {
        cs = vec2<f32>(-s, c);
    }
    if (n == 2.0 || n == 3.0) {
        cs = -cs;
    }
    return cs;
}

fn box_muller(a: u32, b: u32) -> vec2<f32> {
    let r = sqrt(-2.0 * log_accurate(uniform_open0(a)));
    return r * cos_sin_turns(uniform01(b));
}

// Raw words for (id, step, block); id = (lo, hi).
fn rng_words(key: vec2<u32>, id: vec2<u32>, step: u32, block: u32) -> vec4<u32> {
    return philox(vec4<u32>(id.x, id.y, step, block), key);
}

fn normal4(key: vec2<u32>, id: vec2<u32>, step: u32, block: u32) -> vec4<f32> {
    let w = rng_words(key, id, step, block);
    let a = box_muller(w.x, w.y);
    let b = box_muller(w.z, w.w);
    return vec4<f32>(a.x, a.y, b.x, b.y);
}
