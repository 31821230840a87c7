//! The cost model of one particle-step: floating-point operations, normal draws and bytes moved,
//! counted from the plan's forms. Rates in `regimes bench` are the measured particle-steps per
//! second times these counts, so they say what the engine *had* to do, whatever it actually
//! executed (a faster kernel raises the rate, never the count).
//!
//! One Euler–Maruyama step of a particle (see [`crate::plan`]) is
//!
//! ```text
//! y = B x                      logits ℓ_k = bias_k + w_k·y      r = softmax(ℓ)
//! v = Wᵀ r                     x' = (M x + P v) + noise·ξ
//! ```
//!
//! with K centers (classes of a mixture, or training points of the empirical target) in
//! dimension d. Counting a multiply and an add as one flop each (the engines never fuse them):
//!
//! * each of B x, M x, P v costs d for a scalar or diagonal matrix (one multiply per coordinate)
//!   and 2d² for a dense one (d dot products of length d);
//! * the logits cost 2Kd + K: K dot products of length d, plus subtracting the running max;
//! * the softmax costs [`SOFTMAX_FLOPS`] = 2 per center: the exponential counted as a single flop
//!   (it is a polynomial of ~15 flops in [`crate::fmath`], but it is the conventional unit, and it
//!   keeps the count an operation count of the method, not of one implementation) plus adding it
//!   to the normaliser; the final division and the purity Σr² are O(K) and O(1) and left out;
//! * v = Wᵀ r costs 2Kd;
//! * the update combines three d-vectors: (Mx + Pv) + noise·ξ, 3d.
//!
//! The logits are evaluated once more at the final time point than there are steps; that one
//! evaluation per trajectory is left out (it is 1/steps of the work).
//!
//! Normals: d per particle-step, rounded up to a multiple of 4 (Philox gives four words per call,
//! Box–Muller turns them into four normals; the remainder of the last block is drawn and dropped).
//!
//! Bytes: the state is read and written once per step, 8d bytes (f32), plus every coefficient the
//! step reads — M, B, P, the centers and biases and the noise scale, and for the empirical target
//! the N×d training points — divided by the particles that share each load: a block of
//! [`CPU_SHARE`] particles on the CPU (each coefficient load feeds every SIMD lane of the block)
//! and a workgroup of [`GPU_SHARE`] on the GPU. These are logical bytes of the method, not a
//! measurement of DRAM traffic: a tile whose state stays in cache moves fewer.

use serde::Serialize;

use crate::linalg::Form;
use crate::plan::{Kind, Plan, form_len};

/// Particles that share each coefficient load on the CPU: the engine's SIMD block of lanes.
pub const CPU_SHARE: usize = 16;

/// Particles that share each coefficient load on the GPU: one workgroup.
pub const GPU_SHARE: usize = 64;

/// Flops per center of the softmax: the exponential (counted as one) and the running sum.
pub const SOFTMAX_FLOPS: u64 = 2;

/// What the cost of a step depends on: the plan's shape, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub kind: Kind,
    pub dim: usize,
    /// K: classes (mixture) or training points (empirical).
    pub centers: usize,
    pub m_form: Form,
    pub b_form: Form,
    pub p_form: Form,
}

impl Shape {
    pub fn of(plan: &Plan) -> Self {
        Shape {
            kind: plan.kind,
            dim: plan.dim,
            centers: plan.centers_count,
            m_form: plan.m_form,
            b_form: plan.b_form,
            p_form: plan.p_form,
        }
    }

    /// f32 values of coefficients a step reads: M, B, P, per-step centers (mixture) or the
    /// resident training points (empirical), the K biases and the noise scale.
    pub fn coefficient_floats(&self) -> usize {
        let (d, k) = (self.dim, self.centers);
        // Mixture centers change every step; training points are resident but read every step.
        form_len(self.m_form, d)
            + form_len(self.b_form, d)
            + form_len(self.p_form, d)
            + k * d
            + k
            + 1
    }
}

/// The cost of one particle-step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub flops: u64,
    pub normals: u64,
    pub bytes: f64,
}

/// Flops of applying a d×d matrix stored in `form` to a vector.
pub fn apply_flops(form: Form, d: usize) -> u64 {
    let d = d as u64;
    match form {
        Form::Scalar | Form::Diagonal => d,
        Form::Dense => 2 * d * d,
    }
}

/// The cost of one particle-step of `shape` when `share` particles share each coefficient load.
pub fn cost(shape: &Shape, share: usize) -> Cost {
    let (d, k) = (shape.dim as u64, shape.centers as u64);
    let linear = apply_flops(shape.b_form, shape.dim)
        + apply_flops(shape.m_form, shape.dim)
        + apply_flops(shape.p_form, shape.dim);
    let logits = 2 * k * d + k;
    let softmax = SOFTMAX_FLOPS * k;
    let weighted = 2 * k * d;
    let combine = 3 * d;
    let state = 8.0 * d as f64;
    let coefficients = 4.0 * shape.coefficient_floats() as f64 / share.max(1) as f64;
    Cost {
        flops: linear + logits + softmax + weighted + combine,
        normals: d.div_ceil(4) * 4,
        bytes: state + coefficients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(kind: Kind, dim: usize, centers: usize, m_form: Form) -> Shape {
        Shape {
            kind,
            dim,
            centers,
            m_form,
            b_form: Form::Scalar,
            p_form: Form::Scalar,
        }
    }

    #[test]
    fn two_class_scalar_plan_in_two_dimensions() {
        // d = 2, K = 2, M, B, P scalar:
        // B x, M x, P v: 2 + 2 + 2 = 6; logits 2·2·2 + 2 = 10; softmax 2·2 = 4; Wᵀr 2·2·2 = 8;
        // combine 3·2 = 6. Total 34.
        // Coefficients: M 1, B 1, P 1, W 2·2 = 4, bias 2, noise 1 = 10 floats = 40 bytes, / 16;
        // state 8·2 = 16 bytes.
        let c = cost(&shape(Kind::Mixture, 2, 2, Form::Scalar), 16);
        assert_eq!(c.flops, 34);
        assert_eq!(c.normals, 4);
        assert_eq!(c.bytes, 16.0 + 40.0 / 16.0);
    }

    #[test]
    fn two_class_dense_plan_in_three_dimensions() {
        // d = 3, K = 2, M dense: M x 2·9 = 18; B x 3; P v 3; logits 2·2·3 + 2 = 14; softmax 4;
        // Wᵀr 12; combine 9. Total 63.
        // Coefficients: M 9, B 1, P 1, W 6, bias 2, noise 1 = 20 floats = 80 bytes; state 24.
        let c = cost(&shape(Kind::Mixture, 3, 2, Form::Dense), 16);
        assert_eq!(c.flops, 63);
        assert_eq!(c.normals, 4);
        assert_eq!(c.bytes, 24.0 + 80.0 / 16.0);
        // A GPU workgroup of 64 shares each load four times more widely.
        assert_eq!(
            cost(&shape(Kind::Mixture, 3, 2, Form::Dense), 64).bytes,
            24.0 + 80.0 / 64.0
        );
    }

    #[test]
    fn empirical_plan_in_two_dimensions() {
        // d = 2, N = 5 training points, everything scalar: 6; logits 2·5·2 + 5 = 25; softmax 10;
        // Wᵀr 20; combine 6. Total 67.
        // Coefficients: M, B, P 3, points 10, bias 5, noise 1 = 19 floats = 76 bytes; state 16.
        let c = cost(&shape(Kind::Empirical, 2, 5, Form::Scalar), 16);
        assert_eq!(c.flops, 67);
        assert_eq!(c.normals, 4);
        assert_eq!(c.bytes, 16.0 + 76.0 / 16.0);
    }

    #[test]
    fn diagonal_costs_like_scalar_and_normals_round_up() {
        assert_eq!(apply_flops(Form::Diagonal, 5), 5);
        assert_eq!(apply_flops(Form::Dense, 5), 50);
        assert_eq!(
            cost(&shape(Kind::Mixture, 5, 2, Form::Diagonal), 16).normals,
            8
        );
        assert_eq!(
            cost(&shape(Kind::Mixture, 8, 2, Form::Scalar), 16).normals,
            8
        );
    }
}
