//! φ at the branch times as points, CSV rows and plot series (shared with `collapse` and `run`).

use anyhow::Result;
use serde::Serialize;

use crate::measure::cloning::Branch;
use crate::report::OutDir;

/// φ at one branch time, measured by clones and by the posterior purity, beside F(s(t)).
/// Statistics over no pairs are null.
#[derive(Clone, Debug, Serialize)]
pub struct PhiPoint {
    pub t: f64,
    /// Fraction of clone pairs that agree.
    pub phi: Option<f64>,
    /// Half-width of φ's Wilson score interval at one standard deviation.
    pub stderr: Option<f64>,
    /// Exact-score estimate mean Σ r² at the branch point (no clones needed).
    pub phi_posterior: Option<f64>,
    pub phi_posterior_stderr: Option<f64>,
    /// F(s(t)) for two symmetric classes, else null.
    pub phi_theory: Option<f64>,
    pub pairs: u64,
}

impl PhiPoint {
    pub fn new(b: &Branch, theory: Option<f64>) -> Self {
        let posterior = b.purity.count > 0;
        PhiPoint {
            t: b.t,
            phi: b.measured().map(|m| m.0),
            stderr: b.measured().map(|m| m.1),
            phi_posterior: posterior.then(|| b.purity.mean[0]),
            phi_posterior_stderr: (b.purity.count > 1).then(|| b.purity.stderr(0)),
            phi_theory: theory,
            pairs: b.pairs,
        }
    }
}

/// The measured points of a series of (t, value, its standard error), for a plot: points without
/// a value are left out.
pub fn measured_points(
    points: impl Iterator<Item = (f64, Option<f64>, Option<f64>)>,
) -> (Vec<(f64, f64)>, Vec<f64>) {
    points
        .filter_map(|(t, v, e)| Some(((t, v?), e.unwrap_or(0.0))))
        .unzip()
}

/// Writes φ points as CSV, with a `phi_theory` column when the quantity has a theory (`nan`
/// where a point has none).
pub fn write_phi_csv(out: &OutDir, name: &str, points: &[PhiPoint], theory: bool) -> Result<()> {
    let mut header = vec![
        "t",
        "phi",
        "stderr",
        "phi_posterior",
        "phi_posterior_stderr",
    ];
    if theory {
        header.push("phi_theory");
    }
    out.write_csv(
        name,
        &header,
        points.iter().map(|p| {
            let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
            let mut row = vec![
                p.t,
                v(p.phi),
                v(p.stderr),
                v(p.phi_posterior),
                v(p.phi_posterior_stderr),
            ];
            if theory {
                row.push(v(p.phi_theory));
            }
            row
        }),
    )?;
    Ok(())
}
