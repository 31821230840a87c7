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
/// a density in t with ±1 s.e. (binomial) error bars. A bin is a run of whole grid cells (no
/// aliasing), about 1/40 of the times up to the 99.5th percentile wide, so where the grid's
/// steps widen (collapse's default grid above 2 t_C) the bins widen with them and stay fine
/// below (collapse_times.csv holds every node).
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
    let bins = grid_bins(&inputs.grid, &hist, lo, hi);
    let n = ct.count as f64;
    let series = [Series {
        label: format!("t̂_C of {} trajectories (±1 s.e.)", ct.count),
        points: bins
            .iter()
            .map(|b| (0.5 * (b.lo + b.hi), b.fraction / b.width()))
            .collect(),
        error: Some(
            bins.iter()
                .map(|b| (b.fraction * (1.0 - b.fraction) / n).sqrt() / b.width())
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

/// A bar of the collapse-time histogram: the cells of whole grid nodes from `lo` to `hi`.
#[derive(Debug)]
struct Bin {
    lo: f64,
    hi: f64,
    fraction: f64,
}

impl Bin {
    fn width(&self) -> f64 {
        self.hi - self.lo
    }
}

/// Bins of whole grid cells over the nodes from `lo` to `hi` (`hist`: the fraction at each
/// node, ascending in t). A node stands for the cell between the midpoints to its neighbours
/// (t̂_C is a node, so a bin that cut a cell would alias with the grid); neighbouring cells
/// join until a bin is at least 1/40 of `hi − lo` wide.
fn grid_bins(grid: &crate::plan::Grid, hist: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Bin> {
    // Node j is at t_j, descending in j: a cell's edge is the midpoint to the neighbouring
    // node on that side, whose place the mirror of the other neighbour takes at the grid's ends.
    let n = grid.steps;
    let edge = |j: usize, up: bool| -> f64 {
        let (near, far) = if up {
            (j.checked_sub(1), (j + 1).min(n))
        } else {
            ((j < n).then_some(j + 1), j.saturating_sub(1))
        };
        let t = grid.node(j);
        0.5 * (t + near.map_or(2.0 * t - grid.node(far), |k| grid.node(k)))
    };
    let mut fraction = vec![0.0; n + 1];
    for &(t, f) in hist {
        fraction[grid.index_of(t)] += f;
    }
    let target = (hi - lo) / 40.0;
    let (first, last) = (grid.index_of(lo), grid.index_of(hi));
    let mut bins: Vec<Bin> = vec![];
    let mut open: Option<Bin> = None;
    for j in (last..=first).rev() {
        let bin = open.get_or_insert(Bin {
            lo: edge(j, false),
            hi: 0.0,
            fraction: 0.0,
        });
        bin.hi = edge(j, true);
        bin.fraction += fraction[j];
        if bin.width() >= target * (1.0 - 1e-9) || j == last {
            bins.extend(open.take());
        }
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Grid, Spacing};

    /// Bins are runs of whole cells: contiguous, at least 1/40 of the range wide (but the last),
    /// holding every fraction; on a uniform grid all of one width, on a widening grid fine
    /// where the steps are fine.
    #[test]
    fn bins_follow_the_grid_cells() {
        let uniform = Grid::new(10.0, 1000).unwrap();
        // Steps of 0.01 up to 0.6, then growing by 1.5 a step.
        let mut widening: Vec<f64> = (1..=60).map(|k| 0.01 * k as f64).collect();
        for k in 1..10 {
            widening.push(widening[widening.len() - 1] + 0.01 * 1.5f64.powi(k));
        }
        let nodes = Spacing::Nodes(widening.iter().rev().copied().collect());
        let widening = Grid::spaced(10.0, 1000, &nodes).unwrap();
        for (grid, fine) in [(&uniform, 0.04), (&widening, 0.04)] {
            let hist: Vec<(f64, f64)> = (0..grid.steps)
                .rev()
                .map(|j| grid.node(j))
                .filter(|t| *t <= 1.5)
                .map(|t| (t, 0.01))
                .collect();
            let (lo, hi) = (hist[0].0, hist[hist.len() - 1].0);
            let bins = grid_bins(grid, &hist, lo, hi);
            let total: f64 = bins.iter().map(|b| b.fraction).sum();
            let want: f64 = hist.iter().map(|h| h.1).sum();
            assert!((total - want).abs() < 1e-12, "{total} vs {want}");
            assert!(bins.windows(2).all(|w| (w[0].hi - w[1].lo).abs() < 1e-12));
            let target = (hi - lo) / 40.0;
            let last = bins.len() - 1;
            assert!(
                bins[..last]
                    .iter()
                    .all(|b| b.width() >= target * (1.0 - 1e-9))
            );
            assert!((bins[0].width() - fine).abs() < 1e-9, "{:?}", bins[0]);
            if std::ptr::eq(grid, &uniform) {
                assert!(bins[..last].iter().all(|b| (b.width() - fine).abs() < 1e-9));
            } else {
                // Above 0.6 the steps grow: so do the bins, to single cells of 0.2–0.3.
                assert!(bins.iter().filter(|b| b.lo > 0.6).count() >= 5, "{bins:?}");
                assert!(bins[last].width() > 0.25, "{bins:?}");
            }
        }
    }
}
