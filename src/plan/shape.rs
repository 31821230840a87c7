//! The shape of a plan: what a step's cost and the compiled kernels depend on.

use super::{Kind, form_len};
use crate::linalg::Form;

/// What the cost of a step and the compiled step kernels depend on: the plan's kind, sizes and
/// forms, nothing else ([`super::Plan::shape`]). The GPU caches a step pipeline per shape; the cost
/// model (`bench::cost`) counts a step from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub kind: Kind,
    pub dim: usize,
    /// K: classes (mixture) or training points (empirical).
    pub centers: usize,
    pub m_form: Form,
    pub b_form: Form,
    pub p_form: Form,
    /// The noise factor's form (a scalar for Euler–Maruyama).
    pub noise_form: Form,
    /// Whether each step adds noise (the SDE schemes).
    pub stochastic: bool,
    /// Whether each step draws a component (the exact scheme) instead of averaging.
    pub draws: bool,
    /// Whether each step corrects its predictor with a second evaluation (Heun).
    pub corrects: bool,
}

impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let forms = [self.m_form, self.b_form, self.p_form, self.noise_form].map(|f| f as u8);
        let flags = (self.stochastic, self.draws, self.corrects);
        (self.kind as u8, self.dim, self.centers, forms, flags).hash(h);
    }
}

impl Shape {
    /// f32 values of coefficients a step reads: M, B, P, per-step centers (mixture) or the
    /// resident training points (empirical), the drawn offsets (exact mixture), the K biases
    /// and the noise factor; Heun's corrector besides (M', P', the centers and biases of t_{j+1}).
    pub fn coefficient_floats(&self) -> usize {
        let (d, k) = (self.dim, self.centers);
        let corrector = if self.corrects {
            form_len(self.m_form, d) + form_len(self.p_form, d) + k * d + k
        } else {
            0
        };
        // Mixture centers change every step; training points are resident but read every step.
        form_len(self.m_form, d)
            + form_len(self.b_form, d)
            + form_len(self.p_form, d)
            + form_len(self.noise_form, d)
            + k * d
            + if self.draws && self.kind == Kind::Mixture {
                k * d
            } else {
                0
            }
            + k
            + corrector
    }
}
