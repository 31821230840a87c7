//! The model of a workload as `.npy` files, so that an outside implementation (the NumPy
//! reference in `benches/reference/`) runs exactly the same model: U, Q and the drift
//! A = (I + Q)U as d×d f64 matrices, the class mean m, the training points of the empirical
//! workload, and `meta.json` with the run's sizes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::{SIGMA, Spec, T_MAX, Workload};
use crate::io::write_npy_f64;
use crate::model::Target;

#[derive(Serialize)]
struct Meta {
    workload: Workload,
    dim: usize,
    particles: u64,
    steps: usize,
    n_train: Option<usize>,
    seed: u64,
    t_max: f64,
    /// Within-class standard deviation (C = σ²I).
    sigma: f64,
}

/// Writes the workload into `dir/<workload>/` (created); returns the files written.
pub fn export(spec: &Spec, dir: &Path) -> Result<Vec<PathBuf>> {
    spec.validate()?;
    let model = spec.model()?;
    let d = spec.dim;
    let out = dir.join(spec.workload.name());
    std::fs::create_dir_all(&out)
        .with_context(|| format!("--export-model: cannot create {}", out.display()))?;
    let mut files = vec![];
    let mut matrix = |name: &str, m: nalgebra::DMatrix<f64>| -> Result<()> {
        let path = out.join(name);
        // nalgebra is column-major; .npy is written row-major (C order).
        write_npy_f64(&path, &[m.nrows(), m.ncols()], m.transpose().as_slice())?;
        files.push(path);
        Ok(())
    };
    let p = &model.process;
    matrix("u.npy", p.u.to_dense())?;
    matrix("q.npy", p.q.to_dense())?;
    matrix("a.npy", p.a.to_dense())?;
    if let Target::Empirical(e) = &model.target {
        matrix("train.npy", e.points.clone())?;
    }
    let m = out.join("m.npy");
    write_npy_f64(&m, &[d], spec.mean().as_slice())?;
    files.push(m);
    let meta = Meta {
        workload: spec.workload,
        dim: d,
        particles: spec.particles,
        steps: spec.steps,
        n_train: spec.n_train(),
        seed: spec.seed,
        t_max: T_MAX,
        sigma: SIGMA,
    };
    let path = out.join("meta.json");
    std::fs::write(&path, serde_json::to_string_pretty(&meta)? + "\n")
        .with_context(|| format!("--export-model: cannot write {}", path.display()))?;
    files.push(path);
    Ok(files)
}
