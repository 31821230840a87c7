//! The plan's coefficients in chunks of time points: built on demand, rounded once to f32, and
//! cached while the plan is small (see [`super::CACHE_BYTES`]).

use std::sync::Arc;

use anyhow::{Result, bail};

use super::{Chunk, Kind, Plan, form_len};
use crate::linalg::Form;

impl Plan {
    /// Force a chunk length (tests of chunking; long runs on small memory).
    pub fn with_chunk_len(mut self, len: usize) -> Self {
        self.chunk_len = len.clamp(1, self.grid.steps + 1);
        *self.cache.lock().expect("plan cache") = vec![None; self.chunk_count()];
        self
    }

    /// Floats of coefficients per time point.
    pub fn point_floats(&self) -> usize {
        let (d, k) = (self.dim, self.centers_count);
        let w = if self.kind == Kind::Mixture { k * d } else { 0 };
        let offsets = if self.mixture_offsets() { k * d } else { 0 };
        let gram = if self.kind == Kind::Empirical { d } else { 0 };
        form_len(self.m_form, d)
            + form_len(self.b_form, d)
            + form_len(self.p_form, d)
            + form_len(self.noise_form, d)
            + w
            + offsets
            + gram
            + k
    }

    /// Whether the chunks carry per-step offsets (the exact scheme on a mixture).
    pub(super) fn mixture_offsets(&self) -> bool {
        self.kind == Kind::Mixture && self.scheme.draws_component()
    }

    pub fn chunk_count(&self) -> usize {
        (self.grid.steps + 1).div_ceil(self.chunk_len)
    }

    /// The chunk holding time point j.
    pub fn chunk_of(&self, j: usize) -> usize {
        j / self.chunk_len
    }

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

    pub(super) fn build_chunk(&self, c: usize) -> Result<Chunk> {
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
        }
        let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
        let arrays = [&ch.m, &ch.b, &ch.p, &ch.w, &ch.bias, &ch.noise, &ch.offsets];
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
}
