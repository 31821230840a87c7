//! The φ(t) figure and the per-mode CSV files of a speciation study.

use anyhow::Result;

use super::Setup;
use super::phi::{measured_points, write_phi_csv};
use super::summary::Speciation;
use crate::report::{Figure, OutDir, Series, Style};
use crate::study::Inputs;

pub(super) fn write_outputs(
    inputs: &Inputs,
    setup: &Setup,
    out: &OutDir,
    r: &Speciation,
    partial: Option<&str>,
) -> Result<()> {
    write_phi_csv(out, "phi.csv", &r.phi, true)?;
    crate::study::theory::write_s_curve(out, &r.theory)?;
    for m in r.modes.iter().flatten() {
        out.write_csv(
            &format!("phi_{}.csv", m.name),
            &["t", "phi", "stderr", "phi_theory"],
            m.phi.iter().map(|p| {
                let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
                vec![p.t, v(p.phi), v(p.stderr), v(p.phi_theory)]
            }),
        )?;
    }
    let (clones, clone_errors) = measured_points(r.phi.iter().map(|p| (p.t, p.phi, p.stderr)));
    let (posterior, _) = measured_points(r.phi.iter().map(|p| (p.t, p.phi_posterior, None)));
    let mut series = vec![
        Series {
            label: "φ from clones (±1 s.e.)".into(),
            points: clones,
            error: Some(clone_errors),
            style: Style::Points,
            color: None,
        },
        Series {
            label: "posterior Σ r² at the branch".into(),
            points: posterior,
            error: None,
            style: Style::Ring,
            color: None,
        },
    ];
    // Theory on a dense grid over the measured times (and a little beyond).
    let built = &setup.built;
    let times: Vec<f64> = r.phi.iter().map(|p| p.t).collect();
    let knots: Vec<f64> = r.t_s_theory.into_iter().collect();
    let grid = crate::study::curve_times(&times, &knots, &built.process);
    if let Some(m) = crate::theory::symmetric_two_class(&built.mixture) {
        let (p, c) = (&built.process, &built.mixture.cov);
        series.push(Series::line(
            "theory F(s(t))",
            grid.iter()
                .map(|&t| {
                    (
                        t,
                        crate::theory::cloning_probability(crate::theory::snr(p, m, c, t)),
                    )
                })
                .collect(),
        ));
    }
    let modes = inputs.cfg.coupling.as_ref().map(|c| c.modes());
    // Each mode's measurement and theory share a colour.
    for (j, (m, mode)) in r
        .modes
        .iter()
        .flatten()
        .zip(modes.iter().flatten())
        .enumerate()
    {
        let (points, errors) = measured_points(m.phi.iter().map(|p| (p.t, p.phi, p.stderr)));
        series.push(Series {
            label: format!("φ on the {} mode (±1 s.e.)", m.name),
            points,
            error: Some(errors),
            style: Style::Points,
            color: Some(3 + j),
        });
        if let Some(curve) = crate::study::modes::mode_phi_curve(built, mode, &grid) {
            series
                .push(Series::line(format!("theory on the {} mode", m.name), curve).colored(3 + j));
        }
    }
    let mut markers = vec![];
    for m in r.modes.iter().flatten() {
        if let Some(t) = m.t_s_theory {
            markers.push((format!("t_S {} theory", m.name), t));
        }
    }
    // With modes, the joint t_S is one of theirs: the modes' markers say it.
    if let (Some(t), None) = (r.t_s_theory, &r.modes) {
        markers.push(("t_S theory".to_string(), t));
    }
    // A measured t_S is where φ crosses F(1): a dot there with its ±1 s.e. band in t, drawn
    // under the theory's dashed marker so that both show.
    let f1 = crate::theory::f_at_speciation();
    let band = |label: String, t: f64, e: Option<f64>, color: usize| Series {
        label,
        points: vec![(t, f1)],
        error: Some(vec![e.unwrap_or(f64::NAN)]),
        style: Style::XBand,
        color: Some(color),
    };
    if let Some(t) = r.t_s_measured {
        series.push(band(
            "t_S measured (φ = F(1), ±1 s.e.)".into(),
            t,
            r.t_s_measured_stderr,
            6,
        ));
    }
    for (j, m) in r.modes.iter().flatten().enumerate() {
        if let Some(t) = m.t_s_measured {
            series.push(band(
                format!("t_S {} measured (±1 s.e.)", m.name),
                t,
                m.t_s_measured_stderr,
                3 + j,
            ));
        }
    }
    crate::study::write_figure(
        inputs,
        out,
        "phi",
        &Figure {
            title: &crate::study::title(
                "Cloning probability φ(t)",
                inputs,
                &format!("{} pairs", r.pairs),
                partial,
            ),
            x_label: "branch time t",
            y_label: "φ",
            series: &series,
            markers: &markers,
        },
    )?;
    Ok(())
}
