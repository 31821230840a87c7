//! The per-particle arithmetic of one plan step, in f32: the CPU twin of the WGSL kernels in
//! `shaders/`. Loops run in the same order as on the GPU (coordinates and centers ascending) so
//! that both engines agree to round-off.

use crate::linalg::Form;
use crate::plan::{Plan, PointView, StartPlan};
use crate::rng;

/// Per-thread scratch space, sized once.
pub struct Scratch {
    y: Vec<f32>,
    logits: Vec<f32>,
    /// `Wᵀ r`, the responsibility-weighted center, filled by [`evaluate`].
    pub v: Vec<f32>,
    z: Vec<f32>,
    mx: Vec<f32>,
}

impl Scratch {
    pub fn new(plan: &Plan) -> Self {
        let d = plan.dim;
        Scratch {
            y: vec![0.0; d],
            logits: vec![0.0; plan.centers_count],
            v: vec![0.0; d],
            z: vec![0.0; d.div_ceil(4) * 4],
            mx: vec![0.0; d],
        }
    }
}

/// `out = L x` for a matrix stored in `form` (scalar, diagonal, or dense row-major).
pub fn apply(form: Form, coeffs: &[f32], x: &[f32], out: &mut [f32]) {
    let d = x.len();
    match form {
        Form::Scalar => out
            .iter_mut()
            .zip(x)
            .for_each(|(o, xi)| *o = coeffs[0] * xi),
        Form::Diagonal => out
            .iter_mut()
            .zip(x)
            .zip(coeffs)
            .for_each(|((o, xi), c)| *o = c * xi),
        Form::Dense => {
            for (i, o) in out.iter_mut().enumerate() {
                let row = &coeffs[i * d..(i + 1) * d];
                let mut acc = 0.0f32;
                for (c, xi) in row.iter().zip(x) {
                    acc += c * xi;
                }
                *o = acc;
            }
        }
    }
}

/// Index of the mixture component picked by uniform u (first cumulative weight above u).
pub fn pick(cumulative: &[f32], u: f32) -> usize {
    cumulative
        .iter()
        .position(|&c| u < c)
        .unwrap_or(cumulative.len() - 1)
}

/// Draws particle `id` from the start distribution into x.
pub fn start(start: &StartPlan, key: [u32; 2], id: u64, x: &mut [f32], s: &mut Scratch) {
    let d = x.len();
    let u = rng::uniform(rng::words(key, id, rng::INIT_STEP, rng::PICK_BLOCK)[0]);
    let k = pick(&start.cumulative, u);
    rng::fill_normals(key, id, rng::INIT_STEP, &mut s.z[..d]);
    apply(start.chol_form, &start.chol, &s.z[..d], x);
    for (xi, mi) in x.iter_mut().zip(&start.means[k * d..(k + 1) * d]) {
        *xi += mi;
    }
}

/// Logits at one time point: returns (argmax label, purity Σ r²) and leaves `Wᵀ r` in `s.v`.
pub fn evaluate(plan: &Plan, pt: &PointView, x: &[f32], s: &mut Scratch) -> (u32, f32) {
    let d = plan.dim;
    apply(plan.b_form, pt.b, x, &mut s.y);
    let mut best = 0usize;
    for (k, l) in s.logits.iter_mut().enumerate() {
        let row = &pt.w[k * d..(k + 1) * d];
        let mut acc = pt.bias[k];
        for (w, y) in row.iter().zip(&s.y) {
            acc += w * y;
        }
        *l = acc;
    }
    let mut max = f32::NEG_INFINITY;
    for (k, &l) in s.logits.iter().enumerate() {
        if l > max {
            max = l;
            best = k;
        }
    }
    let mut total = 0.0f32;
    for l in s.logits.iter_mut() {
        *l = (*l - max).exp();
        total += *l;
    }
    let inv = 1.0 / total;
    let mut purity = 0.0f32;
    s.v.iter_mut().for_each(|v| *v = 0.0);
    for (k, e) in s.logits.iter().enumerate() {
        let r = e * inv;
        purity += r * r;
        for (v, w) in s.v.iter_mut().zip(&pt.w[k * d..(k + 1) * d]) {
            *v += r * w;
        }
    }
    (best as u32, purity)
}

/// One step from time point j: `x ← M x + P v + noise ξ`, with v from [`evaluate`].
pub fn update(
    plan: &Plan,
    pt: &PointView,
    key: [u32; 2],
    id: u64,
    j: usize,
    x: &mut [f32],
    s: &mut Scratch,
) {
    let d = plan.dim;
    apply(plan.m_form, pt.m, x, &mut s.mx);
    apply(plan.p_form, pt.p, &s.v, &mut s.y);
    if pt.noise != 0.0 {
        rng::fill_normals(key, id, j as u32, &mut s.z[..d]);
    } else {
        s.z.iter_mut().for_each(|z| *z = 0.0);
    }
    for (((xi, mx), pv), z) in x.iter_mut().zip(&s.mx).zip(&s.y).zip(&s.z) {
        *xi = (mx + pv) + pt.noise * z;
    }
}
