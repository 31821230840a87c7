//! The coefficients a step dispatch uploads per time point, and where `Params` finds them.

use super::super::layout::Params;
use crate::plan::{Chunk, Kind, Plan, form_len};

/// Floats per time point of the coefficients a step dispatch uploads: M, B, P, the mixture's
/// centers W (the empirical target's are resident), the K biases, the noise factor and the
/// exact mixture's offsets; Heun's corrector besides (M', P', W', bias').
pub(super) struct PointLayout {
    m: usize,
    b: usize,
    p: usize,
    w: usize,
    k: usize,
    noise: usize,
    offsets: usize,
    corrector: [usize; 4],
}

impl PointLayout {
    pub(super) fn of(plan: &Plan) -> Self {
        let d = plan.dim;
        PointLayout {
            m: form_len(plan.m_form, d),
            b: form_len(plan.b_form, d),
            p: form_len(plan.p_form, d),
            w: if plan.kind == Kind::Empirical {
                0
            } else {
                plan.centers_count * d
            },
            k: plan.centers_count,
            noise: form_len(plan.noise_form, d),
            offsets: if plan.kind == Kind::Mixture && plan.scheme.draws_component() {
                plan.centers_count * d
            } else {
                0
            },
            corrector: if plan.scheme.corrects() {
                let k = plan.centers_count;
                [form_len(plan.m_form, d), form_len(plan.p_form, d), k * d, k]
            } else {
                [0; 4]
            },
        }
    }

    pub(super) fn bytes(&self) -> u64 {
        let corrector: usize = self.corrector.iter().sum();
        (4 * (self.m + self.b + self.p + self.w + self.k + self.noise + self.offsets + corrector))
            as u64
    }

    /// The coefficients of chunk points `a..b` and the step words of `Params` locating them.
    pub(super) fn upload(
        &self,
        chunk: &Chunk,
        a: usize,
        b: usize,
        params: &mut Params,
    ) -> Vec<f32> {
        let mut data: Vec<f32> = Vec::with_capacity((b - a) * self.bytes() as usize / 4);
        let mut push = |v: &[f32], len: usize| {
            let off = data.len() as u32;
            data.extend_from_slice(&v[a * len..b * len]);
            off
        };
        params.off_m = push(&chunk.m, self.m);
        params.off_b = push(&chunk.b, self.b);
        params.off_p = push(&chunk.p, self.p);
        params.off_w = if self.w > 0 {
            push(&chunk.w, self.w)
        } else {
            0
        };
        params.off_bias = push(&chunk.bias, self.k);
        params.off_noise = push(&chunk.noise, self.noise);
        params.off_offsets = if self.offsets > 0 {
            push(&chunk.offsets, self.offsets)
        } else {
            0
        };
        if self.corrector[0] > 0 {
            let (c, [m, p, w, k]) = (&chunk.corrector, self.corrector);
            params.off_cm = push(&c.m, m);
            params.off_cp = push(&c.p, p);
            params.off_cw = push(&c.w, w);
            params.off_cbias = push(&c.bias, k);
        }
        data
    }
}
