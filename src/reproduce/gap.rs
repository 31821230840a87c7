//! gap: the spectral gap min Re λ((I + Q)U) against the strength s of the optimal Q
//! (`--q optimal:s`) for several spectra of U, beside the reversible gap λ_min(U) and the bound
//! Tr(U)/d that no Q can beat (the trace of A is Tr(U)). The optimal Q reaches the bound at s = 1
//! (Lelièvre, Nier, Pavliotis 2013).

use anyhow::Result;
use serde_json::json;

use super::{Check, Lab};
use crate::config::Config;
use crate::engine::Engine;
use crate::model::{QSpec, USpec};
use crate::report::{Figure, Series};

pub fn run<E: Engine>(lab: &mut Lab<E>) -> Result<serde_json::Value> {
    let d = if lab.quick { 8 } else { 32 };
    let spectra = [
        ("geomspace 0.2…5", USpec::Geomspace(0.2, 5.0)),
        ("linspace 1…10", USpec::Linspace(1.0, 10.0)),
        ("geomspace 0.01…1", USpec::Geomspace(0.01, 1.0)),
        ("rotated 0.2…5", USpec::Rotated(0.2, 5.0)),
    ];
    let strengths: Vec<f64> = (0..=40).map(|i| i as f64 / 20.0).collect();
    let mut series = vec![];
    let mut rows = vec![];
    let mut data = vec![];
    for (index, (name, u)) in spectra.into_iter().enumerate() {
        let mut curve = vec![];
        let (mut reversible, mut bound, mut at_one, mut highest) = (0.0, 0.0, 0.0, 0.0f64);
        for &s in &strengths {
            let q = if s == 0.0 {
                QSpec::Zero
            } else {
                QSpec::Optimal(s)
            };
            let cfg = Config {
                dim: d,
                u: u.clone(),
                q,
                ..lab.base.clone()
            };
            let t = lab.theory(cfg)?.theory;
            let (gap, b) = (t.spectral_gap, t.gap_bound);
            if s == 0.0 {
                reversible = t.spectral_gap_reversible;
                lab.check(Check::near(
                    format!("{name}: gap at Q = 0 is λ_min(U)"),
                    gap,
                    reversible,
                    1e-9 * reversible,
                ));
            }
            if (s - 1.0).abs() < 1e-12 {
                at_one = gap;
            }
            bound = b;
            highest = highest.max(gap / b);
            curve.push((s, gap / b));
            rows.push(vec![index as f64, s, gap, t.spectral_gap_reversible, b]);
        }
        lab.check(Check::near(
            format!("{name}: optimal Q (s = 1) reaches Tr(U)/d"),
            at_one,
            bound,
            1e-6 * bound,
        ));
        lab.check(Check::at_most(
            format!("{name}: no strength beats Tr(U)/d (max gap / bound)"),
            highest,
            1.0 + 1e-9,
        ));
        series.push(Series::line(format!("U: {name}"), curve));
        data.push(json!({
            "spectrum": name,
            "reversible_gap": reversible,
            "bound": bound,
            "gap_at_optimal": at_one,
        }));
    }
    lab.out.write_csv(
        "gap.csv",
        &[
            "spectrum",
            "strength",
            "spectral_gap",
            "reversible_gap",
            "bound",
        ],
        rows,
    )?;
    let markers = [("optimal strength s = 1".to_string(), 1.0)];
    lab.figure(
        "gap",
        "Spectral gap of (I + Q)U relative to the bound Tr(U)/d, against the strength s of the \
         optimal Q (Q = s·Q_opt), for four spectra of U in d dimensions: λ_min(U)/(Tr(U)/d) at \
         s = 0, the bound reached at s = 1, never exceeded. The rotated spectrum has the gaps of \
         its diagonal twin (the gap does not depend on the basis), so their curves coincide.",
        Figure {
            title: &format!("Spectral gap against the strength of Q (d = {d})"),
            x_label: "strength s of the optimal Q",
            y_label: "gap / (Tr(U)/d)",
            series: &series,
            markers: &markers,
        },
    )?;
    Ok(json!({ "dim": d, "spectra": data }))
}
