//! steering: t_S and t_C, theory and simulation, across rotations Q for an anisotropic U
//! (geomspace 0.2…5) with the class direction along U's stiffest or softest eigenvector — the
//! central comparison of the non-reversible paper (Lu & Tang 2026). A rotation mixes the class
//! direction with the others: it delays speciation of a stiff class direction and advances that
//! of a soft one.

use anyhow::Result;
use serde_json::json;

use super::{Lab, crossing_with_error, measured, phi_points, t_s_check};
use crate::config::Config;
use crate::engine::Engine;
use crate::model::{MeanSpec, QSpec, USpec};
use crate::report::{Figure, Series};
use crate::theory::f_at_speciation;

pub fn run<E: Engine>(lab: &mut Lab<E>) -> Result<serde_json::Value> {
    let (d, n, particles) = if lab.quick {
        (8, 1000, 300)
    } else {
        (32, 20_000, 2000)
    };
    let pairs = lab.pairs();
    let base = Config {
        dim: d,
        u: USpec::Geomspace(0.2, 5.0),
        n_train: n,
        t_max: 5.0,
        steps: 2000,
        pairs: Some(pairs),
        ..lab.base.clone()
    };
    let strengths = [0.0, 0.5, 1.0, 2.0];
    let strategies: Vec<(String, QSpec)> = strengths
        .iter()
        .map(|&s| {
            let q = if s == 0.0 {
                QSpec::Zero
            } else {
                QSpec::Optimal(s)
            };
            (format!("optimal:{s}"), q)
        })
        .chain([1.0, 3.0].map(|q| (format!("toward-soft:{q}"), QSpec::TowardSoft(q))))
        .collect();
    lab.note(&format!(
        "d = {d}, N = {n}, {pairs} pairs, {} rotations",
        strategies.len()
    ));
    lab.announce(
        (pairs as f64 * 2000.0 * 8.0 + particles as f64 * 2000.0 * n as f64 / 16.0)
            * d as f64
            * 2.0
            * strategies.len() as f64,
    )?;
    let mut rows = vec![];
    let mut series = vec![];
    let mut data = vec![];
    for (c, (mean_name, mean)) in [("stiff", MeanSpec::Stiff), ("soft", MeanSpec::Soft)]
        .into_iter()
        .enumerate()
    {
        let mut t_s_points = vec![];
        let mut t_c_points = vec![];
        for (i, (q_name, q)) in strategies.iter().enumerate() {
            let cfg = Config {
                mean: mean.clone(),
                q: q.clone(),
                ..base.clone()
            };
            let r = lab.speciation(cfg.clone())?;
            let m = crossing_with_error(&phi_points(&r), f_at_speciation());
            lab.check(t_s_check(
                &format!("t_S {mean_name} class, Q = {q_name}"),
                m,
                r.t_s_theory,
                0.0025,
            ));
            let c = lab.collapse(Config {
                particles: Some(particles),
                pairs: Some(50),
                entropy_times: Some(vec![1.0]),
                entropy_samples: 100,
                ..cfg
            })?;
            let t_c = c.t_c_theory.unwrap_or(f64::NAN);
            if i < strengths.len() {
                let s = strengths[i];
                if let Some((t, se)) = m {
                    t_s_points.push((s, t, se));
                }
                if let (Some(t), Some(se)) = (c.t_c_measured, c.collapse_times.stderr) {
                    t_c_points.push((s, t, se));
                }
            }
            rows.push((
                vec![mean_name.to_string(), q_name.to_string()],
                vec![
                    r.t_s_theory.unwrap_or(f64::NAN),
                    m.map_or(f64::NAN, |m| m.0),
                    m.map_or(f64::NAN, |m| m.1),
                    t_c,
                    c.t_c_measured.unwrap_or(f64::NAN),
                ],
            ));
            data.push(json!({
                "mean": mean_name,
                "q": q_name,
                "t_s_theory": r.t_s_theory,
                "t_s_measured": m.map(|m| m.0),
                "t_s_stderr": m.map(|m| m.1),
                "t_c_theory": c.t_c_theory,
                "t_c_median": c.t_c_measured,
                "spectral_gap": r.theory.spectral_gap,
            }));
        }
        // Theory on a fine grid of strengths.
        let mut t_s_line = vec![];
        let mut t_c_line = vec![];
        for k in 0..=20 {
            let s = k as f64 / 10.0;
            let q = if s == 0.0 {
                QSpec::Zero
            } else {
                QSpec::Optimal(s)
            };
            let t = lab
                .theory(Config {
                    mean: mean.clone(),
                    q,
                    ..base.clone()
                })?
                .theory;
            t_s_line.push((s, t.t_s.unwrap_or(f64::NAN)));
            t_c_line.push((s, t.t_c.unwrap_or(f64::NAN)));
        }
        series.push(Series::line(format!("t_S theory, {mean_name} class"), t_s_line).colored(c));
        series.push(measured(format!("t_S measured, {mean_name} class"), &t_s_points).colored(c));
        let t_c_color = 2 + c;
        series.push(
            Series::line(format!("t_C theory (REM), {mean_name} class"), t_c_line)
                .colored(t_c_color),
        );
        series.push(
            measured(format!("median t̂_C, {mean_name} class"), &t_c_points).colored(t_c_color),
        );
    }
    lab.out.write_csv_named(
        "steering.csv",
        (
            &["mean", "q"],
            &[
                "t_s_theory",
                "t_s_measured",
                "t_s_stderr",
                "t_c_theory",
                "t_c_median",
            ],
        ),
        rows,
    )?;
    lab.figure(
        "steering",
        &format!(
            "Speciation and collapse times against the strength s of the optimal Q (Q = s·Q_opt) \
             for U = geomspace 0.2…5 in d = {d}, with the class direction along U's stiffest or \
             softest eigenvector: theory (lines) and simulation (points, ±1 s.e.; t̂_C is the \
             median per-trajectory collapse time with N = {n}). The rotation delays speciation \
             of the stiff class and advances that of the soft one; the toward-soft rotations are \
             in steering.csv and summary.json."
        ),
        Figure {
            title: &format!("Steering with Q: t_S and t_C, anisotropic U (d = {d})"),
            x_label: "strength s of the optimal Q",
            y_label: "time t",
            series: &series,
            markers: &[],
        },
    )?;
    Ok(json!({ "dim": d, "n_train": n, "runs": data }))
}
