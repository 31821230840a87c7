//! The samples figure (`run --save-samples`): what the generated points look like, coloured by
//! the label the engine gave them — the density of their projection on the class direction, and
//! a scatter on their top two principal components.

use anyhow::Result;
use nalgebra::{DMatrix, DVector, SymmetricEigen};

use super::{Figure, OutDir, Panels, Render, Series, Style, write_panels};

/// Samples as the engine returns them.
pub struct SampleSet<'a> {
    /// Row-major, `rows` × `dim`.
    pub x: &'a [f32],
    pub rows: usize,
    pub dim: usize,
    /// Each row's label, or [`crate::engine::NO_LABEL`].
    pub labels: &'a [u32],
    /// The unit class direction m̂, where the target has one.
    pub class_dir: Option<&'a DVector<f64>>,
}

/// Labels drawn in colours of their own; the rest are drawn together in grey.
const SHOWN_LABELS: usize = 7;
/// Points of the scatter (every k-th sample): more hide each other.
const SCATTER_POINTS: usize = 3000;
/// Bins of the projection's density.
const BINS: usize = 60;

/// The label groups: the most frequent labels (ascending), then "other labels" and "no label".
fn groups(labels: &[u32]) -> (Vec<(String, usize)>, Vec<usize>) {
    let none = crate::engine::NO_LABEL;
    let mut counts: std::collections::BTreeMap<u32, usize> = Default::default();
    for &l in labels {
        *counts.entry(l).or_default() += 1;
    }
    let mut by_count: Vec<(u32, usize)> = counts
        .iter()
        .filter(|(l, _)| **l != none)
        .map(|(&l, &c)| (l, c))
        .collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut shown: Vec<u32> = by_count.iter().take(SHOWN_LABELS).map(|p| p.0).collect();
    shown.sort_unstable();
    let mut names: Vec<(String, usize)> = shown
        .iter()
        .enumerate()
        .map(|(k, l)| (format!("label {l}"), k))
        .collect();
    let other = names.len();
    let has_other = by_count.len() > shown.len();
    if has_other {
        names.push(("other labels".into(), 7));
    }
    let no_label = names.len();
    if counts.contains_key(&none) {
        names.push(("no label".into(), 7));
    }
    let group = labels
        .iter()
        .map(|l| match shown.iter().position(|s| s == l) {
            Some(k) => k,
            None if *l == none => no_label,
            None => other,
        })
        .collect();
    (names, group)
}

/// The top two principal directions of the samples (from at most about 2·10⁸ / d² of them,
/// evenly strided, so that a large d stays fast), by decreasing variance.
fn principal_directions(s: &SampleSet) -> Vec<DVector<f64>> {
    let d = s.dim;
    let budget = (2e8 / (d * d).max(1) as f64) as usize;
    let n = s.rows.min(budget.clamp(500, 20_000));
    if n < 2 || d == 0 {
        return vec![];
    }
    let stride = s.rows / n;
    let mut m = DMatrix::from_fn(n, d, |i, j| f64::from(s.x[i * stride * d + j]));
    let mean = m.row_mean();
    for mut row in m.row_iter_mut() {
        row -= &mean;
    }
    let cov = m.transpose() * &m / (n - 1) as f64;
    let eig = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    order
        .into_iter()
        .take(2)
        .map(|k| eig.eigenvectors.column(k).into_owned())
        .collect()
}

fn project(s: &SampleSet, i: usize, v: &DVector<f64>) -> f64 {
    s.x[i * s.dim..(i + 1) * s.dim]
        .iter()
        .zip(v.iter())
        .map(|(&a, &b)| f64::from(a) * b)
        .sum()
}

/// Writes `stem.svg`, `stem.png` and `stem.data.csv`: the density of x·m̂ (or of the first
/// principal component where the target has no class direction) per label, and the samples on
/// their top two principal components (every k-th of them, at most `SCATTER_POINTS`).
pub fn write_samples_figure(
    out: &OutDir,
    stem: &str,
    title: &str,
    s: &SampleSet,
    render: &Render,
) -> Result<()> {
    if s.rows == 0 || s.dim == 0 {
        return Ok(());
    }
    let (names, group) = groups(s.labels);
    let pcs = principal_directions(s);
    let (axis, axis_name) = match (s.class_dir, pcs.first()) {
        // (m/‖m‖ written out: the embedded font cannot put a hat on m.)
        (Some(m), _) => (m.clone(), "x·m/‖m‖ (projection on the class direction)"),
        (None, Some(p)) => (p.clone(), "projection on the first principal component"),
        (None, None) => return Ok(()),
    };
    // The density of the projection, per label: a fraction of all samples per unit.
    let proj: Vec<f64> = (0..s.rows).map(|i| project(s, i, &axis)).collect();
    let (lo, hi) = proj
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let width = ((hi - lo) / BINS as f64).max(f64::MIN_POSITIVE);
    let mut counts = vec![vec![0usize; BINS]; names.len()];
    let mut totals = vec![0usize; names.len()];
    for (i, &p) in proj.iter().enumerate() {
        let b = (((p - lo) / width) as usize).min(BINS - 1);
        counts[group[i]][b] += 1;
        totals[group[i]] += 1;
    }
    let density: Vec<Series> = names
        .iter()
        .zip(&counts)
        .zip(&totals)
        .map(|(((name, color), c), total)| Series {
            label: format!("{name}: {total} samples"),
            points: c
                .iter()
                .enumerate()
                .map(|(b, &k)| {
                    (
                        lo + (b as f64 + 0.5) * width,
                        k as f64 / (s.rows as f64 * width),
                    )
                })
                .collect(),
            error: None,
            style: Style::Line,
            color: Some(*color),
        })
        .collect();
    let projection_title = format!("Density of {axis_name} per label");
    let scatter: Vec<Series>;
    let scatter_title;
    let mut panels = vec![Figure {
        title: &projection_title,
        x_label: axis_name,
        y_label: "fraction of samples per unit",
        series: &density,
        markers: &[],
    }];
    if pcs.len() == 2 {
        let step = s.rows.div_ceil(SCATTER_POINTS).max(1);
        let mut points: Vec<Vec<(f64, f64)>> = vec![vec![]; names.len()];
        for i in (0..s.rows).step_by(step) {
            points[group[i]].push((project(s, i, &pcs[0]), project(s, i, &pcs[1])));
        }
        scatter = names
            .iter()
            .zip(points)
            .filter(|(_, p)| !p.is_empty())
            .map(|((name, color), p)| Series {
                label: format!("{name} ({} shown)", p.len()),
                points: p,
                error: None,
                style: Style::Scatter,
                color: Some(*color),
            })
            .collect();
        scatter_title = format!("Every {step}th sample on the top two principal components");
        panels.push(Figure {
            title: if step == 1 {
                "The samples on their top two principal components"
            } else {
                &scatter_title
            },
            x_label: "first principal component",
            y_label: "second principal component",
            series: &scatter,
            markers: &[],
        });
    }
    write_panels(
        out,
        stem,
        &Panels {
            title,
            panels: &panels,
        },
        render,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_the_frequent_labels_and_gather_the_rest() {
        let none = crate::engine::NO_LABEL;
        let mut labels: Vec<u32> = (0..10).flat_map(|l| vec![l; 10 - l as usize]).collect();
        labels.push(none);
        let (names, group) = groups(&labels);
        let n: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(
            n,
            [
                "label 0",
                "label 1",
                "label 2",
                "label 3",
                "label 4",
                "label 5",
                "label 6",
                "other labels",
                "no label"
            ]
        );
        assert_eq!(group[0], 0);
        assert_eq!(group[labels.len() - 2], 7, "label 9 is among the others");
        assert_eq!(group[labels.len() - 1], 8);
    }

    /// Two classes ±m along the first axis, spread wider along the second than the third: the
    /// principal directions are the first axis, then the second.
    #[test]
    fn principal_directions_find_the_widest_axes() {
        let rows = 400;
        let mut x = vec![];
        let mut labels = vec![];
        for i in 0..rows {
            let c = (i % 2) as u32;
            let sign = if c == 0 { 1.0 } else { -1.0 };
            let t = i as f32 * 0.37;
            x.extend([
                4.0 * sign + 0.1 * t.sin(),
                2.0 * t.cos(),
                0.3 * (1.7 * t).sin(),
            ]);
            labels.push(c);
        }
        let s = SampleSet {
            x: &x,
            rows,
            dim: 3,
            labels: &labels,
            class_dir: None,
        };
        let pcs = principal_directions(&s);
        assert!(pcs[0][0].abs() > 0.99, "{}", pcs[0]);
        assert!(pcs[1][1].abs() > 0.99, "{}", pcs[1]);
    }
}
