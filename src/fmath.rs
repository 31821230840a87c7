//! f32 transcendental functions as fixed sequences of +, −, ×, ÷ and bit operations, with no
//! data-dependent branches: a SIMD lane runs exactly the scalar sequence, so the vectorised CPU
//! kernels equal the scalar reference bit for bit on every target. `shaders/shared/rng.wgsl` twins
//! `ln_unit` and `cos_sin_turns` on the GPU (the GPU's softmax uses its builtin `exp`). The polynomials are those of Cephes and musl (about 1 ulp).

/// Natural log of x in (0, 1] (the Box–Muller radius). musl's `logf` without its special cases.
#[inline(always)]
pub fn ln_unit(x: f32) -> f32 {
    let mut ix = x.to_bits();
    ix = ix.wrapping_add(0x3f80_0000 - 0x3f35_04f3);
    let k = (ix >> 23) as i32 - 0x7f;
    ix = (ix & 0x007f_ffff) + 0x3f35_04f3;
    let f = f32::from_bits(ix) - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (0.400_009_72 + w * 0.242_790_79);
    let t2 = z * (0.666_666_6 + w * 0.284_987_87);
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let dk = k as f32;
    s * (hfsq + r) + dk * 9.058_001e-6 - hfsq + f + dk * 0.693_138_1
}

/// [`exp`] is exactly 0 below this.
pub const EXP_ZERO_BELOW: f32 = -87.33;

/// e^x for x ≤ 88 (softmax weights, x ≤ 0 there); 0 below [`EXP_ZERO_BELOW`], where e^x is no
/// longer a normal float. Cephes `expf`: x = n ln 2 + r with |r| ≤ ½ ln 2, then a degree-7 polynomial.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let n = (x * std::f32::consts::LOG2_E)
        .round_ties_even()
        .clamp(-126.0, 127.0);
    // Every step one fused multiply-add (`mul_add`: one rounding on every target, the FMA
    // instruction where there is one), which halves the operations of the softmax's exps.
    let r = n.mul_add(2.121_944_4e-4, n.mul_add(-0.693_359_4, x));
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    // 2ⁿ from the bits of n + 127 + 2²³, whose low mantissa bits hold n + 127 exactly (a float to
    // int cast would not vectorise on AVX2).
    let two_n = f32::from_bits((n + 8_388_735.0).to_bits() << 23);
    let e = (p.mul_add(r * r, r) + 1.0) * two_n;
    if x < EXP_ZERO_BELOW { 0.0 } else { e }
}

/// (cos 2πu, sin 2πu) for u in [0, 1) (the Box–Muller angle). The reduction to a quarter turn is
/// exact in turns (4u − round(4u)), so only the angle within [−π/4, π/4] is rounded.
#[inline(always)]
pub fn cos_sin_turns(u: f32) -> (f32, f32) {
    let a = 4.0 * u;
    let n = a.round_ties_even();
    let x = (a - n) * std::f32::consts::FRAC_PI_2;
    let z = x * x;
    let s = x + x * z * (-1.666_665_5e-1 + z * (8.332_161e-3 + z * -1.951_529_6e-4));
    let c = 1.0 - 0.5 * z + z * z * (4.166_664_6e-2 + z * (-1.388_731_6e-3 + z * 2.443_315_7e-5));
    // Rotate by n ∈ {0, …, 4} quarter turns: (c, s) → (−s, c) → (−c, −s) → (s, −c) → (c, s),
    // with float compares (they vectorise; casts to int do not on AVX2).
    let (c1, s1) = if n == 1.0 || n == 3.0 {
        (-s, c)
    } else {
        (c, s)
    };
    if n == 2.0 || n == 3.0 {
        (-c1, -s1)
    } else {
        (c1, s1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f32.
    fn ulps(a: f32, b: f32) -> u32 {
        let key = |x: f32| {
            let i = x.to_bits() as i32;
            if i < 0 { i32::MIN - i } else { i }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn ln_unit_is_within_one_ulp_of_f64() {
        let mut worst = 0;
        for i in 1..=(1u32 << 24) {
            let x = i as f32 / 16_777_216.0;
            let want = (f64::from(x)).ln() as f32;
            worst = worst.max(ulps(ln_unit(x), want));
        }
        assert!(worst <= 1, "ln_unit: {worst} ulp");
        assert_eq!(ln_unit(1.0), 0.0);
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64_and_underflows_to_zero() {
        let mut worst = 0;
        for i in 0..2_000_000 {
            let x = -87.0 + 95.0 * i as f32 / 2_000_000.0;
            let want = f64::from(x).exp() as f32;
            worst = worst.max(ulps(exp(x), want));
        }
        assert!(worst <= 2, "exp: {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-90.0), 0.0);
        assert_eq!(exp(-1e30), 0.0);
    }

    #[test]
    fn cos_sin_turns_is_accurate_on_every_box_muller_angle() {
        let mut worst = 0.0f64;
        for i in 0..(1u32 << 24) {
            let u = i as f32 / 16_777_216.0;
            let (c, s) = cos_sin_turns(u);
            let theta = std::f64::consts::TAU * f64::from(u);
            worst = worst
                .max((f64::from(c) - theta.cos()).abs())
                .max((f64::from(s) - theta.sin()).abs());
        }
        assert!(worst < 1.2e-7, "cos_sin_turns: absolute error {worst:e}");
    }
}
