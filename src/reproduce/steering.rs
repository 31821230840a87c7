//! steering: t_S and t_C, theory and simulation, across rotations Q for an anisotropic U
//! (geomspace 0.2…5) with the class direction along U's stiffest or softest eigenvector — the
//! central comparison of the non-reversible paper (Lu & Tang 2026). A rotation mixes the class
//! direction with the others: it advances speciation of a stiff class direction (a larger t_S:
//! earlier in generation, which runs t from T down to 0) and delays that of a soft one. Beside
//! them, `regimes steer`'s Q (the largest theory t_S within ‖Q‖_F ≤ 2) for each class
//! direction, with its simulation check.

use anyhow::Result;
use serde_json::json;

use super::{Lab, measured, t_s_check};
use crate::config::Config;
use crate::engine::Engine;
use crate::model::{MeanSpec, QSpec, USpec};
use crate::report::{Figure, Series, Style};
use crate::theory::steer::{SteerOptions, q_npy, steer_strategies};

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
        n_train: Some(n),
        t_max: 5.0,
        steps: crate::plan::Steps::Count(2000),
        pairs: Some(pairs),
        ..lab.base.clone()
    };
    let strengths = [0.0, 0.5, 1.0, 2.0];
    let soft_strengths = [1.0, 3.0];
    // (name, Q, family, strength): family 0 = s·Q_opt, 1 = toward-soft:q.
    let strategies: Vec<(String, QSpec, usize, f64)> = strengths
        .iter()
        .map(|&s| {
            let q = if s == 0.0 {
                QSpec::Zero
            } else {
                QSpec::Optimal(s)
            };
            (format!("optimal:{s}"), q, 0, s)
        })
        .chain(soft_strengths.map(|q| (format!("toward-soft:{q}"), QSpec::TowardSoft(q), 1, q)))
        .collect();
    let budget = 2.0;
    lab.note(&format!(
        "d = {d}, N = {n}, {pairs} pairs, {} rotations",
        strategies.len()
    ));
    lab.announce(
        (pairs as f64 * 2000.0 * 8.0 + particles as f64 * 2000.0 * n as f64 / 16.0)
            * d as f64
            * 2.0
            * (strategies.len() + 1) as f64,
    )?;
    let mut rows = vec![];
    // One figure per family: s·Q_opt, toward-soft:q.
    let mut series: [Vec<Series>; 2] = [vec![], vec![]];
    let mut data = vec![];
    let mut steered = vec![];
    for (c, (mean_name, mean)) in [("stiff", MeanSpec::Stiff), ("soft", MeanSpec::Soft)]
        .into_iter()
        .enumerate()
    {
        // Measured (strength, t, s.e.) per family.
        let mut t_s_points = [vec![], vec![]];
        let mut t_c_points = [vec![], vec![]];
        // The steered Q of this class direction, written for --q file:, run like the others.
        let s = {
            let cfg = Config {
                mean: mean.clone(),
                q: QSpec::Zero,
                ..base.clone()
            };
            let built = crate::config::build::build(&cfg)?;
            let opts = SteerOptions {
                budget,
                tc_tolerance: None,
                n_train: n,
                iterations: if lab.quick { 100 } else { 400 },
                t_max: cfg.t_max,
                seed: cfg.seed,
            };
            steer_strategies(
                &built.process.u,
                &built.mixture,
                built.class_dir.as_ref(),
                None,
                &opts,
            )?
        };
        let q_file = lab
            .out
            .write_bytes(&format!("steered_q_{mean_name}.npy"), &q_npy(&s.steered.q)?)?;
        let runs = strategies.iter().cloned().chain(std::iter::once((
            format!("steered (‖Q‖_F ≤ {budget})"),
            QSpec::File(q_file),
            2,
            f64::NAN,
        )));
        for (q_name, q, family, strength) in runs {
            let cfg = Config {
                mean: mean.clone(),
                q: q.clone(),
                ..base.clone()
            };
            let r = lab.speciation(cfg.clone())?;
            let m = r.t_s_measured.zip(r.t_s_measured_stderr);
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
            // Q = 0 starts both families.
            let families = match (family, strength == 0.0) {
                (0, true) => vec![0, 1],
                (f, _) if f < 2 => vec![f],
                _ => vec![],
            };
            for f in families {
                if let Some((t, se)) = m {
                    t_s_points[f].push((strength, t, se));
                }
                // The median's bar is its order-statistic interval (the larger side), not the
                // mean's standard error.
                if let (Some(t), Some([lo, hi])) = (c.t_c_measured, c.t_c_measured_interval) {
                    t_c_points[f].push((strength, t, (t - lo).max(hi - t)));
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
        steered.push(json!({ "mean": mean_name, "steering": s }));
        // Theory on a fine grid of strengths, for both families: steps of top/100 up to
        // top/5, where t_S bends sharply (its slowest direction changes), then top/40.
        for (family, top) in [(0, 2.0), (1, 3.0)] {
            let mut t_s_line = vec![];
            let mut t_c_line = vec![];
            let fine = (0..20).map(|k| top * k as f64 / 100.0);
            for x in fine.chain((8..=40).map(|k| top * k as f64 / 40.0)) {
                let q = match (family, x == 0.0) {
                    (_, true) => QSpec::Zero,
                    (0, _) => QSpec::Optimal(x),
                    _ => QSpec::TowardSoft(x),
                };
                let t = lab
                    .theory(Config {
                        mean: mean.clone(),
                        q,
                        ..base.clone()
                    })?
                    .theory;
                t_s_line.push((x, t.t_s.unwrap_or(f64::NAN)));
                t_c_line.push((x, t.t_c.unwrap_or(f64::NAN)));
            }
            let out = &mut series[family];
            out.push(Series::line(format!("t_S theory, {mean_name} class"), t_s_line).colored(c));
            out.push(
                measured(
                    format!("t_S measured, {mean_name} class"),
                    &t_s_points[family],
                )
                .colored(c),
            );
            out.push(
                Series::line(format!("t_C theory (REM), {mean_name} class"), t_c_line)
                    .colored(2 + c),
            );
            // The medians t̂_C of both classes often coincide (grid resolution, and t_C hardly
            // depends on the class direction): the soft class's are rings, so a stiff point at
            // the same place shows inside.
            let t_c = measured(
                format!("median t̂_C, {mean_name} class"),
                &t_c_points[family],
            )
            .colored(2 + c);
            out.push(if c == 1 {
                Series {
                    style: Style::Ring,
                    ..t_c
                }
            } else {
                t_c
            });
        }
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
    let [optimal_series, soft_series] = series;
    let common = format!(
        "for U = geomspace 0.2…5 in d = {d}, with the class direction along U's stiffest or \
         softest eigenvector: theory (lines) and simulation (points; t_S ±1 s.e. of the crossing, φ's noise and the \
         interpolation; t̂_C is the median per-trajectory collapse time with N = {n}, its bar the \
         larger side of the median's distribution-free ±1σ interval, the order statistics at \
         ranks n/2 ∓ √n/2; the soft class's are rings, so coinciding medians both show)"
    );
    lab.figure(
        "steering",
        &format!(
            "Speciation and collapse times against the strength s of the optimal Q (Q = s·Q_opt) \
             {common}. The rotation advances speciation of the stiff class (a larger t_S: \
             earlier in generation, which runs t from T down to 0) and delays that of the soft \
             one. The steered Q of `regimes steer` (‖Q‖_F ≤ {budget}) is in \
             steering.csv, summary.json and steered_q_*.npy."
        ),
        Figure {
            title: &format!("Steering with Q = s·Q_opt: t_S and t_C, anisotropic U (d = {d})"),
            x_label: "strength s of the optimal Q",
            y_label: "time t",
            series: &optimal_series,
            markers: &[],
        },
    )?;
    lab.figure(
        "steering_toward_soft",
        &format!(
            "The same against the strength q of the toward-soft rotation \
             (Q = q(m̂vᵀ − vm̂ᵀ), v U's softest direction orthogonal to m̂) {common}."
        ),
        Figure {
            title: &format!("Steering with toward-soft:q: t_S and t_C (d = {d})"),
            x_label: "strength q of toward-soft:q",
            y_label: "time t",
            series: &soft_series,
            markers: &[],
        },
    )?;
    Ok(json!({ "dim": d, "n_train": n, "runs": data, "steered": steered }))
}
