//! The coefficients as the engines read them: chunks of time points in f32 (built from the
//! plan's f64 points, cached while small), and the view of one point in a chunk, with Heun's
//! corrector as a point of its own.

use std::sync::Arc;

use anyhow::{Result, bail};

use super::Plan;
use crate::linalg::Form;

/// Coefficients of the time points `first .. first + len`, each array time-point major.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub first: usize,
    pub len: usize,
    /// M_j in `m_form` layout (identity at j = n, never used).
    pub m: Vec<f32>,
    /// B_j in `b_form` layout.
    pub b: Vec<f32>,
    /// P_j in `p_form` layout.
    pub p: Vec<f32>,
    /// Per-step centers (mixture, K×d each); empty for the empirical target (use `Plan::centers`).
    pub w: Vec<f32>,
    /// Logit biases, K per time point.
    pub bias: Vec<f32>,
    /// Noise factor L_j in `noise_form` layout (√(2Δt) for Euler–Maruyama; 0 for the ODEs and at
    /// j = n).
    pub noise: Vec<f32>,
    /// Exact scheme on a mixture: the offsets c_k of the drawn component, K×d per time point;
    /// empty otherwise.
    pub offsets: Vec<f32>,
    /// Empirical target: the diagonal of G_j = B_j E_j (the logits' quadratic form), d per time
    /// point, where G_j is diagonal (zeros where it is not: nothing is pruned there); empty
    /// otherwise. It bounds the logits for pruning ([`super::prune`]).
    pub gram: Vec<f32>,
    /// Heun's corrector ([`Corrector`]) per time point; empty for the other schemes.
    pub corrector: Corrector,
}

/// Heun's corrector of the step from t_j: M'_j (in `m_form`), P'_j (in `p_form`) and the logits of
/// t_{j+1} (centers W'_j, K×d, and biases, K), laid out like their namesakes in [`Chunk`].
#[derive(Clone, Debug, Default)]
pub struct Corrector {
    pub m: Vec<f32>,
    pub p: Vec<f32>,
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The coefficients of one time point, borrowed from a chunk.
#[derive(Clone, Copy, Debug)]
pub struct PointView<'a> {
    pub m: &'a [f32],
    pub b: &'a [f32],
    pub p: &'a [f32],
    /// Centers (K×d): per step for mixtures, the resident training set for the empirical target.
    pub w: &'a [f32],
    pub bias: &'a [f32],
    /// The noise factor L_j in the plan's `noise_form`.
    pub noise: &'a [f32],
    /// The rows a drawing scheme picks from: per-step offsets (exact mixture) or the centers.
    pub offsets: &'a [f32],
    /// The diagonal of G_j (empirical target; zeros where G_j is dense), or empty.
    pub gram: &'a [f32],
    /// Heun's corrector of the step from this point: M', P', W', bias' as the point view
    /// [`PointView::corrector`] builds; empty slices for the other schemes.
    pub corrector: [&'a [f32]; 4],
}

impl<'a> PointView<'a> {
    /// Heun's corrector as a point of its own: the logits of t_{j+1} with M' and P' (the
    /// engines evaluate it at the predictor x̃ and add ½x); None for the other schemes.
    pub fn corrector(&self) -> Option<PointView<'a>> {
        let [m, p, w, bias] = self.corrector;
        (!m.is_empty()).then_some(PointView {
            m,
            p,
            w,
            bias,
            offsets: w,
            corrector: [&[]; 4],
            ..*self
        })
    }
}

/// Floats that a matrix of this form takes in dimension d.
pub fn form_len(form: Form, d: usize) -> usize {
    match form {
        Form::Scalar => 1,
        Form::Diagonal => d,
        Form::Dense => d * d,
    }
}

impl Plan {
    /// Chunk c, from the cache or freshly built.
    pub fn chunk(&self, c: usize) -> Result<Arc<Chunk>> {
        if self.cache_enabled
            && let Some(hit) = &self.cache.lock().expect("plan cache")[c]
        {
            return Ok(hit.clone());
        }
        let built = Arc::new(self.build_chunk(c)?);
        if self.cache_enabled {
            self.cache.lock().expect("plan cache")[c] = Some(built.clone());
        }
        Ok(built)
    }

    fn build_chunk(&self, c: usize) -> Result<Chunk> {
        let first = c * self.chunk_len;
        let len = self.chunk_len.min(self.grid.steps + 1 - first);
        let mut ch = Chunk {
            first,
            len,
            m: vec![],
            b: vec![],
            p: vec![],
            w: vec![],
            bias: vec![],
            noise: vec![],
            offsets: vec![],
            gram: vec![],
            corrector: Corrector::default(),
        };
        for j in first..first + len {
            let pt = self.point(j)?;
            ch.m.extend(pt.m.in_form(self.m_form).to_f32());
            ch.b.extend(pt.b.in_form(self.b_form).to_f32());
            ch.p.extend(pt.p.in_form(self.p_form).to_f32());
            if let Some(w) = &pt.w {
                ch.w.extend(w.transpose().iter().map(|&x| x as f32));
            }
            ch.bias.extend(pt.bias.iter().map(|&x| x as f32));
            ch.noise.extend(pt.noise.in_form(self.noise_form).to_f32());
            if let Some(o) = &pt.offsets {
                ch.offsets.extend(o.transpose().iter().map(|&x| x as f32));
            }
            match &pt.gram {
                Some(g) if g.form() != Form::Dense => {
                    ch.gram.extend(g.diagonal().iter().map(|&x| x as f32));
                }
                Some(_) => ch.gram.extend(std::iter::repeat_n(0.0, self.dim)),
                None => {}
            }
            if let Some((m, p, w, bias)) = &pt.corrector {
                let c = &mut ch.corrector;
                c.m.extend(m.in_form(self.m_form).to_f32());
                c.p.extend(p.in_form(self.p_form).to_f32());
                c.w.extend(w.transpose().iter().map(|&x| x as f32));
                c.bias.extend(bias.iter().map(|&x| x as f32));
            }
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        let c = &ch.corrector;
        let arrays = [
            &ch.m,
            &ch.b,
            &ch.p,
            &ch.w,
            &ch.bias,
            &ch.noise,
            &ch.offsets,
            &c.m,
            &c.p,
            &c.w,
            &c.bias,
        ];
        if !arrays.iter().all(|v| finite(v)) {
            bail!(
                "plan: non-finite coefficients between t = {:.4} and t = {:.4} (the model is too ill-conditioned \
                 for f32 there; use fewer dimensions, a milder U or a smaller t-max)",
                self.grid.time(first),
                self.grid.time(first + len - 1)
            );
        }
        Ok(ch)
    }

    /// Coefficients of time point j, which must lie in `chunk`.
    pub fn view<'a>(&'a self, chunk: &'a Chunk, j: usize) -> PointView<'a> {
        let i = j - chunk.first;
        debug_assert!(i < chunk.len);
        let (d, k) = (self.dim, self.centers_count);
        let slice = |v: &'a [f32], n: usize| &v[i * n..(i + 1) * n];
        PointView {
            m: slice(&chunk.m, form_len(self.m_form, d)),
            b: slice(&chunk.b, form_len(self.b_form, d)),
            p: slice(&chunk.p, form_len(self.p_form, d)),
            w: if chunk.w.is_empty() {
                &self.centers
            } else {
                slice(&chunk.w, k * d)
            },
            bias: slice(&chunk.bias, k),
            noise: slice(&chunk.noise, form_len(self.noise_form, d)),
            gram: if chunk.gram.is_empty() {
                &[]
            } else {
                slice(&chunk.gram, d)
            },
            offsets: if chunk.offsets.is_empty() {
                if chunk.w.is_empty() {
                    &self.centers
                } else {
                    slice(&chunk.w, k * d)
                }
            } else {
                slice(&chunk.offsets, k * d)
            },
            corrector: if chunk.corrector.m.is_empty() {
                [&[]; 4]
            } else {
                let c = &chunk.corrector;
                [
                    slice(&c.m, form_len(self.m_form, d)),
                    slice(&c.p, form_len(self.p_form, d)),
                    slice(&c.w, k * d),
                    slice(&c.bias, k),
                ]
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::DVector;

    use super::*;
    use crate::linalg::Linear;
    use crate::model::{Mixture, Model, Process, Target};
    use crate::plan::{Grid, Scheme, Start};

    fn reversible_identity(d: usize) -> Process {
        Process::new(Linear::identity(d), Linear::Scalar(0.0, d)).unwrap()
    }

    #[test]
    fn chunks_tile_the_grid_and_do_not_change_coefficients() {
        let d = 2;
        let model = Model {
            process: reversible_identity(d),
            target: Target::Mixture(Mixture::two_class(DVector::from_element(d, 1.0), 1.0)),
        };
        let grid = Grid::new(3.0, 10).unwrap();
        let whole = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact).unwrap();
        let one = whole.chunk(0).unwrap();
        assert_eq!((one.first, one.len), (0, 11));
        for len in [1, 3, 4, 11] {
            let cut = Plan::new(&model, grid.clone(), Scheme::EulerMaruyama, Start::Exact)
                .unwrap()
                .with_chunk_len(len);
            assert_eq!(cut.chunk_count(), 11usize.div_ceil(len));
            let mut next = 0;
            for c in 0..cut.chunk_count() {
                let ch = cut.chunk(c).unwrap();
                assert_eq!(ch.first, next);
                for j in ch.first..ch.first + ch.len {
                    assert_eq!(cut.chunk_of(j), c);
                    let (a, b) = (cut.view(&ch, j), whole.view(&one, j));
                    assert_eq!((a.m, a.w, a.bias, a.noise), (b.m, b.w, b.bias, b.noise));
                }
                next += ch.len;
            }
            assert_eq!(next, 11);
        }
    }
}
