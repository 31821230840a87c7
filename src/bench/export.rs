//! The model of a workload as `.npy` files, so that an outside implementation (the NumPy
//! reference in `benches/reference/`) runs exactly the same model: U, Q and the drift
//! A = (I + Q)U as d×d f64 matrices, the class mean m, the training points of the empirical
//! workload, and `meta.json` with the run's sizes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{SIGMA, Spec, T_MAX, Workload};
use crate::io::encode_npy;
use crate::model::Target;
use crate::report::OutDir;

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

/// Writes the workload into `<workload>/` of the output directory `out` (atomically, each file
/// listed in its manifest); returns the files written.
pub fn export(spec: &Spec, out: &OutDir) -> Result<Vec<PathBuf>> {
    spec.validate()?;
    let model = spec.model()?;
    let d = spec.dim;
    let sub = spec.workload.name();
    let mut files = vec![];
    let mut write = |name: &str, bytes: Vec<u8>| -> Result<()> {
        let name = format!("{sub}/{name}");
        files.push(
            out.write_bytes(&name, &bytes)
                .with_context(|| format!("--export-model: cannot write {name}"))?,
        );
        Ok(())
    };
    // nalgebra is column-major; .npy is written row-major (C order).
    let matrix = |name: &str, m: nalgebra::DMatrix<f64>| {
        encode_npy(name, &[m.nrows(), m.ncols()], m.transpose().as_slice())
    };
    let p = &model.process;
    write("u.npy", matrix("u.npy", p.u.to_dense())?)?;
    write("q.npy", matrix("q.npy", p.q.to_dense())?)?;
    write("a.npy", matrix("a.npy", p.a.to_dense())?)?;
    if let Target::Empirical(e) = &model.target {
        write("train.npy", matrix("train.npy", e.points.clone())?)?;
    }
    write("m.npy", encode_npy("m.npy", &[d], spec.mean().as_slice())?)?;
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
    write(
        "meta.json",
        (serde_json::to_string_pretty(&meta)? + "\n").into_bytes(),
    )?;
    Ok(files)
}
