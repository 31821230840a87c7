//! The collapse study's files: its CSVs, saved samples and figures (excess entropy, clone
//! collapse, clones by class, the histogram of per-trajectory collapse times).

use anyhow::Result;

use super::{Collapse, Setup};
use crate::linalg::Linear;
use crate::measure::entropy::EntropyRow;
use crate::report::{Figure, OutDir, Series, Style};
use crate::study::speciation::{PhiPoint, measured_points, write_phi_csv};
use crate::study::{Inputs, Parts};
use crate::theory::collapse::Rem;

/// The collapse study's CSVs, samples and plot.
pub(super) fn write_outputs(
    inputs: &Inputs,
    s: &Setup,
    result: &Collapse,
    parts: &Parts,
    dir: &OutDir,
    partial: Option<&str>,
) -> Result<()> {
    let d = s.data.points.ncols();
    {
        dir.write_csv(
            "collapse_times.csv",
            &["t", "fraction"],
            result
                .collapse_times
                .histogram
                .iter()
                .map(|b| vec![b.t, b.fraction]),
        )?;
        dir.write_csv(
            "excess_entropy.csv",
            &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
            result
                .excess_entropy
                .iter()
                .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
        )?;
        // No theory of φ_C: its CSV has no theory column.
        write_phi_csv(dir, "clone_collapse.csv", &result.clone_collapse, false)?;
        if let Some(class) = &result.clone_same_class {
            write_phi_csv(dir, "clone_same_class.csv", class, false)?;
        }
        for m in result.modes.iter().flatten() {
            dir.write_csv(
                &format!("excess_entropy_{}.csv", m.name),
                &["t", "f_over_alpha", "stderr", "f_over_alpha_theory"],
                m.excess_entropy
                    .iter()
                    .map(|e| vec![e.t, e.f_over_alpha, e.stderr, e.f_over_alpha_theory]),
            )?;
        }
        if let Some(samples) = &parts.samples {
            crate::study::write_samples(dir, &inputs.cfg, samples, d)?;
        }
        let markers: Vec<(String, f64)> = result
            .t_c_theory
            .map(|t| ("t_C theory (REM)".to_string(), t))
            .into_iter()
            .chain(result.t_c_measured.map(|t| ("median t̂_C".to_string(), t)))
            .collect();
        let (clones, clone_errors) =
            measured_points(result.clone_collapse.iter().map(|p| (p.t, p.phi, p.stderr)));
        // Different quantities on different axes: the excess entropy, and the clone-collapse
        // fraction. The REM theory is drawn on a dense grid (sharp at t_C, where it bends).
        let alpha = (s.data.points.nrows() as f64).ln() / d as f64;
        let p = &s.built.process;
        let times: Vec<f64> = result.excess_entropy.iter().map(|e| e.t).collect();
        let grid = crate::study::curve_times(
            &times,
            &result.t_c_theory.into_iter().collect::<Vec<_>>(),
            p,
        );
        // The summary's REM (the file's sample covariance with --train-file), not the target's.
        let rem = |rem: &Rem, alpha: f64| -> Vec<(f64, f64)> {
            grid.iter()
                .map(|&t| (t, (1.0 - rem.alpha_at(t) / alpha).max(0.0)))
                .collect()
        };
        let measured = |label: String, rows: &[EntropyRow]| Series {
            label,
            points: rows.iter().map(|e| (e.t, e.f_over_alpha)).collect(),
            error: Some(rows.iter().map(|e| e.stderr).collect()),
            style: Style::Points,
            color: None,
        };
        let mut entropy = vec![
            measured(
                "f^e/α from exact samples (±1 s.e.)".into(),
                &result.excess_entropy,
            ),
            Series::line("Gaussian REM theory", rem(&s.rem, alpha)).colored(0),
        ];
        // Each mode on its own process: its measurement and REM theory share a colour.
        let modes = inputs.cfg.coupling.as_ref().map(|c| c.modes());
        for (j, (m, mode)) in result
            .modes
            .iter()
            .flatten()
            .zip(modes.iter().flatten())
            .enumerate()
        {
            entropy.push(
                measured(format!("{} mode (±1 s.e.)", m.name), &m.excess_entropy).colored(2 + j),
            );
            if let Some(mp) = crate::model::coupling::mode_process(p, mode)? {
                let half = Linear::Scalar(s.built.mixture.cov.diagonal()[0], d / 2);
                entropy.push(
                    Series::line(
                        format!("REM theory, {} mode", m.name),
                        rem(&Rem::new(&mp, &half), m.alpha),
                    )
                    .colored(2 + j),
                );
            }
        }
        crate::study::write_figure(
            inputs,
            dir,
            "collapse",
            &Figure {
                title: &crate::study::title(
                    "Excess entropy f^e/α: collapse onto the training set",
                    inputs,
                    &format!("N = {}", result.n_train),
                    partial,
                ),
                x_label: "time t",
                y_label: "f^e/α",
                series: &entropy,
                markers: &markers,
            },
        )?;
        write_histogram(inputs, dir, result, &markers, partial)?;
        let clone_series = [Series {
            label: "clone-collapse φ_C (±1 s.e.)".into(),
            points: clones,
            error: Some(clone_errors),
            style: Style::Points,
            color: Some(2),
        }];
        crate::study::write_figure(
            inputs,
            dir,
            "clone_collapse",
            &Figure {
                title: &crate::study::title(
                    "Clone-collapse fraction φ_C",
                    inputs,
                    &format!("N = {}", result.n_train),
                    partial,
                ),
                x_label: "branch time t",
                y_label: "φ_C",
                series: &clone_series,
                markers: &markers,
            },
        )?;
        if let Some(class) = &result.clone_same_class {
            write_same_class(inputs, dir, result, class, &clone_series, partial)?;
        }
    }
    Ok(())
}

/// With --train-labels: the fraction of clone pairs ending on training points of the same
/// class beside the fraction ending on the same point (a pair on one point is in one class, so
/// it is the lower curve), with the data's between-class t_S.
fn write_same_class(
    inputs: &Inputs,
    dir: &OutDir,
    result: &Collapse,
    class: &[PhiPoint],
    same_point: &[Series],
    partial: Option<&str>,
) -> Result<()> {
    let (points, errors) = measured_points(class.iter().map(|p| (p.t, p.phi, p.stderr)));
    let mut series = vec![Series {
        label: "same class (±1 s.e.)".into(),
        points,
        error: Some(errors),
        style: Style::Points,
        color: Some(0),
    }];
    series.extend(same_point.iter().map(|s| Series {
        label: "same training point φ_C (±1 s.e.)".into(),
        ..s.clone()
    }));
    let markers: Vec<(String, f64)> = result
        .data
        .as_ref()
        .and_then(|d| d.t_s_between)
        .map(|t| ("t_S between the classes (data)".to_string(), t))
        .into_iter()
        .chain(
            result
                .t_c_theory
                .map(|t| ("t_C theory (REM)".to_string(), t)),
        )
        .collect();
    crate::study::write_figure(
        inputs,
        dir,
        "clone_same_class",
        &Figure {
            title: &crate::study::title(
                "Clone pairs ending in the same class",
                inputs,
                &format!("N = {}", result.n_train),
                partial,
            ),
            x_label: "branch time t",
            y_label: "fraction of clone pairs",
            series: &series,
            markers: &markers,
        },
    )
}

/// The per-trajectory collapse times as a histogram: the fraction of trajectories per bin, as
/// a density in t with ±1 s.e. (binomial) error bars. Each bin holds the same number of grid
/// times (no aliasing), about 40 bins over the times up to the 99.5th percentile
/// (collapse_times.csv holds them all).
fn write_histogram(
    inputs: &Inputs,
    dir: &OutDir,
    result: &Collapse,
    markers: &[(String, f64)],
    partial: Option<&str>,
) -> Result<()> {
    let ct = &result.collapse_times;
    let mut hist: Vec<(f64, f64)> = ct.histogram.iter().map(|b| (b.t, b.fraction)).collect();
    hist.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = hist.iter().map(|b| b.1).sum();
    let (Some(&(lo, _)), true) = (hist.first(), ct.count > 0 && total > 0.0) else {
        return Ok(());
    };
    let mut cumulative = 0.0;
    let hi = hist
        .iter()
        .find(|b| {
            cumulative += b.1;
            cumulative >= 0.995 * total
        })
        .map_or(lo, |b| b.0);
    // Whole (longest) grid steps per bin: t̂_C is a node, so finer bins alias with the grid.
    let dt = inputs.grid.max_dt();
    let per_bin = ((hi - lo) / (40.0 * dt)).ceil().max(1.0);
    let width = per_bin * dt;
    let start = lo - 0.5 * dt;
    let bins = (((hi - start) / width).floor() as usize + 1).max(1);
    let mut fraction = vec![0.0; bins];
    for &(t, f) in &hist {
        if let Some(slot) = fraction.get_mut(((t - start) / width).floor().max(0.0) as usize) {
            *slot += f;
        }
    }
    let n = ct.count as f64;
    let series = [Series {
        label: format!("t̂_C of {} trajectories (±1 s.e.)", ct.count),
        points: (0..bins)
            .map(|k| (start + (k as f64 + 0.5) * width, fraction[k] / width))
            .collect(),
        error: Some(
            fraction
                .iter()
                .map(|&f| (f * (1.0 - f) / n).sqrt() / width)
                .collect(),
        ),
        style: Style::Points,
        color: Some(0),
    }];
    crate::study::write_figure(
        inputs,
        dir,
        "collapse_times",
        &Figure {
            title: &crate::study::title(
                "Per-trajectory collapse times t̂_C",
                inputs,
                &format!("N = {}", result.n_train),
                partial,
            ),
            x_label: "t̂_C (last change of the nearest training point)",
            y_label: "density",
            series: &series,
            markers,
        },
    )
}
