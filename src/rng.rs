//! Counter-based random numbers: Philox4x32-10 and the Box–Muller transform.
//!
//! This is the CPU twin of `shaders/shared/rng.wgsl`; both must stay bit-identical on the integer
//! side. A draw is keyed by `(seed, particle rng id, step, coordinate block)`, so any particle can
//! be replayed alone and results never depend on thread count, batch size or backend.
//!
//! Counter layout: `[id_lo, id_hi, step, block]`, key `[seed_lo, seed_hi]`. The high 16 bits of
//! `id_hi` carry the *stream* (0 for a trajectory, others for clones), see [`rng_id`].
//! Each block yields four standard normals for coordinates `4·block .. 4·block+3`.

use crate::fmath;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Step index used for the draws of the initial condition.
pub const INIT_STEP: u32 = u32::MAX;
/// Coordinate block used for the uniform that picks a mixture component.
pub const PICK_BLOCK: u32 = u32::MAX;

/// Bits of the rng id below the stream: the particle index (the stream is the top 16 bits).
pub const STREAM_SHIFT: u32 = 48;

/// The particle-index bits of an rng id.
pub const INDEX_MASK: u64 = (1 << STREAM_SHIFT) - 1;

/// The 64-bit rng id of particle `index` in stream `stream` (clones use streams ≥ 1).
pub fn rng_id(index: u64, stream: u16) -> u64 {
    debug_assert!(index <= INDEX_MASK, "particle index exceeds 2^48");
    with_stream(index, stream)
}

/// An rng id with `stream` OR'ed into its stream bits (the second clone of a branch).
pub fn with_stream(id: u64, stream: u16) -> u64 {
    id | (u64::from(stream) << STREAM_SHIFT)
}

#[inline(always)]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = u64::from(a) * u64::from(b);
    ((p >> 32) as u32, p as u32)
}

/// Philox4x32 with 10 rounds.
#[inline(always)]
pub fn philox(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (counter, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// Uniform in (0, 1]: never zero, so `ln` is finite.
#[inline]
pub fn uniform_open0(x: u32) -> f32 {
    ((x >> 8) + 1) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in [0, 1).
#[inline]
pub fn uniform(x: u32) -> f32 {
    (x >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Two standard normals from two words (Box–Muller), in f32 with the branch-free functions of
/// [`fmath`] that the GPU twins, so a SIMD lane computes exactly this.
#[inline(always)]
pub fn box_muller(a: u32, b: u32) -> [f32; 2] {
    let r = (-2.0 * fmath::ln_unit(uniform_open0(a))).sqrt();
    let (c, s) = fmath::cos_sin_turns(uniform(b));
    [r * c, r * s]
}

/// The key of a run's seed.
#[inline]
pub fn key(seed: u64) -> [u32; 2] {
    [seed as u32, (seed >> 32) as u32]
}

/// Raw words for `(id, step, block)`.
#[inline]
pub fn words(key: [u32; 2], id: u64, step: u32, block: u32) -> [u32; 4] {
    philox([id as u32, (id >> 32) as u32, step, block], key)
}

/// Four standard normals for coordinates `4·block ..` of particle `id` at `step`.
#[inline]
pub fn normal4(key: [u32; 2], id: u64, step: u32, block: u32) -> [f32; 4] {
    let w = words(key, id, step, block);
    let [z0, z1] = box_muller(w[0], w[1]);
    let [z2, z3] = box_muller(w[2], w[3]);
    [z0, z1, z2, z3]
}

/// Philox4x32-10 on `L` counters at once (SIMD lanes hold different particles): rounds outer,
/// lanes inner, so the compiler vectorises the lanes; each lane's words equal [`philox`]'s.
#[inline(always)]
pub fn philox_lanes<const L: usize>(counter: [[u32; L]; 4], key: [u32; 2]) -> [[u32; L]; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        for l in 0..L {
            let (hi0, lo0) = mulhilo(M0, c0[l]);
            let (hi1, lo1) = mulhilo(M1, c2[l]);
            (c0[l], c1[l], c2[l], c3[l]) = (hi1 ^ c1[l] ^ k[0], lo1, hi0 ^ c3[l] ^ k[1], lo0);
        }
    }
    [c0, c1, c2, c3]
}

/// [`normal4`] for `L` particles at once: `ids` split in low and high words.
#[inline(always)]
pub fn normal4_lanes<const L: usize>(
    key: [u32; 2],
    id_lo: &[u32; L],
    id_hi: &[u32; L],
    step: u32,
    block: u32,
) -> [[f32; L]; 4] {
    let w = philox_lanes([*id_lo, *id_hi, [step; L], [block; L]], key);
    let mut z = [[0.0; L]; 4];
    for l in 0..L {
        [z[0][l], z[1][l]] = box_muller(w[0][l], w[1][l]);
        [z[2][l], z[3][l]] = box_muller(w[2][l], w[3][l]);
    }
    z
}

/// Fill `out` (length d) with the standard normals of `(id, step)`.
pub fn fill_normals(key: [u32; 2], id: u64, step: u32, out: &mut [f32]) {
    for (block, chunk) in out.chunks_mut(4).enumerate() {
        let z = normal4(key, id, step, block as u32);
        chunk.copy_from_slice(&z[..chunk.len()]);
    }
}

/// A host-side stream of f64 normals and uniforms for building models (random U, Q, means,
/// training sets). It is Philox too, keyed by the seed and a purpose tag, so model construction
/// is reproducible and independent of the particle streams.
pub struct HostRng {
    key: [u32; 2],
    purpose: u64,
    counter: u32,
    spare: Vec<f64>,
}

impl HostRng {
    /// `purpose` separates independent uses of one seed (e.g. "training set" vs "rotation").
    pub fn new(seed: u64, purpose: &str) -> Self {
        // FNV-1a of the purpose tag, kept below 2^48 so it is a valid id in stream 0xFFFF.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in purpose.bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        HostRng {
            key: key(seed),
            purpose: rng_id(h & INDEX_MASK, 0xFFFF),
            counter: 0,
            spare: Vec::new(),
        }
    }

    fn next_words(&mut self) -> [u32; 4] {
        let w = words(self.key, self.purpose, 0, self.counter);
        self.counter = self.counter.wrapping_add(1);
        w
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        let w = self.next_words();
        let bits = (u64::from(w[0]) << 21) ^ u64::from(w[1] >> 11);
        (bits & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal in f64.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.pop() {
            return z;
        }
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare.push(r * theta.sin());
        r * theta.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
    #[test]
    fn philox_known_answers() {
        assert_eq!(
            philox([0, 0, 0, 0], [0, 0]),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
        assert_eq!(
            philox([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]
        );
        assert_eq!(
            philox(
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0]
            ),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn lanes_equal_the_scalar_generator_bit_for_bit() {
        const L: usize = 16;
        for seed in [0u64, 7, u64::MAX, 0x1234_5678_9abc_def0] {
            let k = key(seed);
            let ids: [u64; L] = std::array::from_fn(|l| rng_id(l as u64 * 977 + 3, (l % 3) as u16));
            let lo = ids.map(|id| id as u32);
            let hi = ids.map(|id| (id >> 32) as u32);
            for (step, block) in [(0, 0), (5, 3), (INIT_STEP, PICK_BLOCK), (999, 24)] {
                let w = philox_lanes([lo, hi, [step; L], [block; L]], k);
                let z = normal4_lanes(k, &lo, &hi, step, block);
                for (l, &id) in ids.iter().enumerate() {
                    let want = words(k, id, step, block);
                    assert_eq!([w[0][l], w[1][l], w[2][l], w[3][l]], want);
                    let want = normal4(k, id, step, block).map(f32::to_bits);
                    assert_eq!([z[0][l], z[1][l], z[2][l], z[3][l]].map(f32::to_bits), want);
                }
            }
        }
    }

    /// The transform of every possible word pair is finite and the normals have the right
    /// moments (10⁶ draws: mean and variance within 5 standard errors).
    #[test]
    fn normals_are_standard() {
        let k = key(11);
        let (mut s1, mut s2, mut s4) = (0.0f64, 0.0f64, 0.0f64);
        let n = 250_000u64;
        for id in 0..n {
            for z in normal4(k, id, 1, 0) {
                assert!(z.is_finite());
                let z = f64::from(z);
                s1 += z;
                s2 += z * z;
                s4 += z * z * z * z;
            }
        }
        let m = (4 * n) as f64;
        let (mean, var) = (s1 / m, s2 / m);
        assert!(mean.abs() < 5.0 / m.sqrt(), "mean {mean}");
        assert!((var - 1.0).abs() < 5.0 * (2.0 / m).sqrt(), "variance {var}");
        assert!(
            (s4 / m - 3.0).abs() < 5.0 * (96.0 / m).sqrt(),
            "fourth moment {}",
            s4 / m
        );
        // Extremes: the smallest uniform gives the largest radius, still finite.
        assert!(box_muller(0, 0)[0].is_finite() && box_muller(u32::MAX, u32::MAX)[0].is_finite());
    }

    #[test]
    fn streams_and_steps_differ() {
        let k = key(7);
        assert_ne!(
            normal4(k, rng_id(3, 0), 5, 0),
            normal4(k, rng_id(3, 1), 5, 0)
        );
        assert_ne!(normal4(k, 3, 5, 0), normal4(k, 3, 6, 0));
        assert_ne!(normal4(k, 3, 5, 0), normal4(k, 3, 5, 1));
    }
}
