//! speciation-gmm: the cloning probability φ against t/t_S for two classes ±m (‖m‖² = d,
//! σ = 1, U = I, Q = 0, T = 10, Δt = 0.01) at growing d, beside F(s(t)) (Biroli et al. 2024).
//! With U = I, s(t) = d e^{−2t} and t_S = ½ ln d, so the curves steepen with d around t/t_S = 1.

use anyhow::Result;
use serde_json::json;

use super::{Check, Lab, measured, phi_points, t_s_check};
use crate::config::Config;
use crate::engine::Engine;
use crate::report::{Figure, Series};
use crate::theory::cloning_probability;

pub fn run<E: Engine>(lab: &mut Lab<E>) -> Result<serde_json::Value> {
    let dims: &[usize] = if lab.quick {
        &[16, 64]
    } else {
        &[256, 1024, 4096, 16384]
    };
    let pairs = lab.pairs();
    // The exact reverse transition has no step bias: a coarse grid, the branch times as nodes.
    let exact = matches!(
        lab.base.scheme,
        crate::plan::Scheme::Exact | crate::plan::Scheme::Auto
    );
    let steps = lab.steps.unwrap_or(if exact { 20 } else { 1000 });
    let dt = 10.0 / steps as f64;
    let fractions = [0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.5, 2.0];
    // Work: the trunk (at most the whole grid), then two clones from t_j = f·t_S down to 0 for
    // each branch point, at Δt = 0.01; each particle-step costs about d.
    let work: f64 = dims
        .iter()
        .map(|&d| {
            let t_s = 0.5 * (d as f64).ln();
            let clones: f64 = fractions.iter().map(|f| 2.0 * f * t_s / dt).sum();
            pairs as f64 * (steps as f64 + clones) * d as f64
        })
        .sum();
    lab.note(&format!(
        "{pairs} clone pairs per branch time, d = {dims:?}"
    ));
    lab.announce(work)?;
    let mut series = vec![];
    let mut rows = vec![];
    let mut data = vec![];
    for (k, &d) in dims.iter().enumerate() {
        let t_s = 0.5 * (d as f64).ln();
        let cfg = Config {
            dim: d,
            pairs: Some(pairs),
            t_max: 10.0,
            steps: crate::plan::Steps::Count(steps),
            branch_times: Some(crate::config::BranchTimes::At(
                fractions.iter().map(|f| f * t_s).collect(),
            )),
            ..lab.base.clone()
        };
        let started = std::time::Instant::now();
        let r = lab.speciation(cfg)?;
        lab.note(&format!(
            "d = {d}: {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        let points = phi_points(&r);
        let scaled: Vec<(f64, f64, f64)> = points.iter().map(|p| (p.0 / t_s, p.1, p.2)).collect();
        series.push(measured(format!("d = {d}, clones (±1 s.e.)"), &scaled).colored(k));
        let theory = |x: f64| cloning_probability((d as f64).powf(1.0 - x));
        series.push(
            Series::line(
                format!("d = {d}, theory F(s)"),
                (0..=120)
                    .map(|i| 0.4 + 1.7 * i as f64 / 120.0)
                    .map(|x| (x, theory(x)))
                    .collect(),
            )
            .colored(k),
        );
        let measured_t_s = r.t_s_measured.zip(r.t_s_measured_stderr);
        lab.check(t_s_check(
            &format!("t_S d={d}"),
            measured_t_s,
            r.t_s_theory,
            if exact { 0.0 } else { dt },
        ));
        // Every point against F(s(t)): the largest deviation in standard errors, beyond half a
        // percent of Euler–Maruyama bias at Δt = 0.01.
        let z = points
            .iter()
            .map(|&(t, phi, se)| {
                let th = cloning_probability(d as f64 * (-2.0 * t).exp());
                ((phi - th).abs() - 0.005).max(0.0) / se.max(1e-3)
            })
            .fold(0.0, f64::max);
        lab.check(Check::at_most(
            format!("max |φ − F(s)| / s.e. d={d}"),
            z,
            4.5,
        ));
        for &(t, phi, se) in &points {
            rows.push(vec![
                d as f64,
                t,
                t / t_s,
                phi,
                se,
                cloning_probability(d as f64 * (-2.0 * t).exp()),
            ]);
        }
        data.push(json!({
            "d": d,
            "t_s_theory": r.t_s_theory,
            "t_s_measured": measured_t_s.map(|m| m.0),
            "t_s_stderr": measured_t_s.map(|m| m.1),
            "pairs": pairs,
        }));
    }
    lab.out.write_csv(
        "phi.csv",
        &["d", "t", "t_over_t_s", "phi", "stderr", "phi_theory"],
        rows,
    )?;
    let markers = [("t = t_S".to_string(), 1.0)];
    lab.figure(
        "phi",
        "Cloning probability φ against t/t_S for growing d: measured (points, ±1 s.e.) and \
         F(s(t)) with s = d^{1 − t/t_S} (lines). The transition sharpens as d grows.",
        Figure {
            title: "Speciation: φ(t/t_S) for two classes, ‖m‖² = d",
            x_label: "t / t_S",
            y_label: "φ (clones in the same class)",
            series: &series,
            markers: &markers,
        },
    )?;
    Ok(json!({ "dims": data }))
}
