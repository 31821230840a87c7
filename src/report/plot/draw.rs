//! Drawing a [`Figure`] on any plotters backend: axes and ranges from the data, the series in
//! their styles with error bars, markers, and a legend where it hides no data.

#[allow(unused_imports)]
use super::*;

/// Series colours (colour-blind friendly, after Okabe–Ito / Tableau).
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(120, 94, 240),
    RGBColor(90, 90, 90),
];

/// Marker-line colours.
pub(super) const MARKER_COLORS: [RGBColor; 4] = [
    RGBColor(60, 60, 60),
    RGBColor(150, 60, 60),
    RGBColor(60, 110, 60),
    RGBColor(60, 60, 150),
];

pub(super) fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// A padded range covering `values`; a sensible default when there are none.
pub(super) fn range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()).max(1e-300) {
        let w = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        return (lo - w, hi + w);
    }
    let p = (hi - lo) * pad;
    (lo - p, hi + p)
}

/// Pick the legend corner that hides the fewest points.
pub(super) fn legend_corner(
    series: &[Series],
    x: (f64, f64),
    y: (f64, f64),
) -> SeriesLabelPosition {
    let fx = |v: f64| (v - x.0) / (x.1 - x.0);
    let fy = |v: f64| (v - y.0) / (y.1 - y.0);
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    corners
        .into_iter()
        .min_by_key(|&(_, right, upper)| {
            series
                .iter()
                .flat_map(|s| s.points.iter().filter(|p| finite(p)))
                .filter(|&&(px, py)| {
                    let (u, v) = (fx(px), fy(py));
                    (if right { u > 0.55 } else { u < 0.45 })
                        && (if upper { v > 0.6 } else { v < 0.4 })
                })
                .count()
        })
        .map(|c| c.0)
        .unwrap_or(SeriesLabelPosition::UpperRight)
}

/// Lengths in figure units (1/96 inch) as backend pixels at `scale` pixels per unit.
#[derive(Clone, Copy)]
pub(super) struct Px(pub f64);

impl Px {
    pub(super) fn i(self, v: f64) -> i32 {
        (v * self.0).round() as i32
    }

    pub(super) fn u(self, v: f64) -> u32 {
        (v * self.0).round().max(1.0) as u32
    }

    pub(super) fn f(self, v: f64) -> f64 {
        v * self.0
    }
}

/// Draws `figure` on `root`, whose size is the figure's at `px` backend pixels per figure unit.
pub(super) fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    figure: &Figure,
    render: &Render,
    px: Px,
) -> Result<()> {
    register_font()?;
    let Figure {
        title,
        x_label,
        y_label,
        series,
        markers,
    } = *figure;
    let markers: Vec<&(String, f64)> = markers.iter().filter(|m| m.1.is_finite()).collect();
    // An x-band's error is in x: its range covers x ± error.
    let xs = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .enumerate()
                .filter(|(_, p)| finite(p))
                .flat_map(move |(i, p)| {
                    let e = if s.style == Style::XBand {
                        s.err(i).unwrap_or(0.0)
                    } else {
                        0.0
                    };
                    [p.0 - e, p.0 + e]
                })
        })
        .chain(markers.iter().map(|m| m.1));
    let (x0, x1) = match &render.categories {
        Some(c) => (-0.5, c.len().max(1) as f64 - 0.5),
        None => range(xs, 0.03),
    };
    let categories = render.categories.clone().unwrap_or_default();
    let x_format = |v: &f64| -> String {
        if render.categories.is_none() {
            return format!("{v}");
        }
        let k = v.round();
        match categories.get(k as usize) {
            Some(name) if (v - k).abs() < 1e-6 && k >= 0.0 => name.clone(),
            _ => String::new(),
        }
    };
    // Whole numbers only, without decimals (no "10.0"); ticks between them are left blank.
    let integer_format = |v: &f64| -> String {
        let k = v.round();
        if (v - k).abs() < 1e-9 * k.abs().max(1.0) {
            format!("{k:.0}")
        } else {
            String::new()
        }
    };
    let ys = series.iter().flat_map(|s| {
        s.points
            .iter()
            .enumerate()
            .filter(|(_, p)| finite(p))
            .flat_map(move |(i, p)| {
                let e = if s.style == Style::XBand {
                    0.0
                } else {
                    s.err(i).unwrap_or(0.0)
                };
                [p.1 - e, p.1 + e]
            })
    });
    let (y0, y1) = range(ys, 0.06);

    {
        root.fill(&WHITE).map_err(plot_err)?;
        let title = typeset(title);
        let title = title.as_str();
        let title_font = title_font(f64::from(root.dim_in_pixel().0), title, px);
        // The legend column: what a legend entry needs, right of the axes.
        let entries = legend_entries(series, &markers);
        let outside = render.legend_outside && !entries.is_empty();
        // With the legend outside, the title spans the whole figure.
        let root = if outside && !title.is_empty() {
            // A top margin, so that the title's ascenders are not cut.
            root.margin(px.i(8.0), 0, 0, 0)
                .titled(title, title_font.clone())
                .map_err(plot_err)?
        } else {
            root
        };
        let (root, legend_area) = if outside {
            let longest = entries
                .iter()
                .map(|e| e.0.chars().count())
                .max()
                .unwrap_or(0)
                .max(render.legend_chars.unwrap_or(0));
            let (w, _) = root.dim_in_pixel();
            let width = px.u(longest as f64 * 8.0 + 56.0).min(w / 2);
            let (a, b) = root.split_horizontally(w - width);
            (a, Some(b))
        } else {
            (root, None)
        };
        if let Some(area) = &legend_area {
            draw_legend(area, &entries, px)?;
        }
        let mut builder = ChartBuilder::on(&root);
        if !outside && !title.is_empty() {
            builder.caption(title, title_font);
        }
        let mut chart = builder
            .margin(px.i(18.0))
            .x_label_area_size(px.i(52.0))
            .y_label_area_size(px.i(72.0))
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(typeset(x_label))
            .y_desc(typeset(y_label))
            .axis_desc_style((FONT, px.f(16.0)))
            .label_style((FONT, px.f(13.0)).into_font().color(&RGBColor(60, 60, 60)))
            .axis_style(RGBColor(120, 120, 120).stroke_width(px.u(1.0)))
            .bold_line_style(RGBColor(225, 225, 225).stroke_width(px.u(1.0)))
            .light_line_style(RGBColor(246, 246, 246).stroke_width(px.u(1.0)))
            .set_all_tick_mark_size(px.i(5.0))
            .max_light_lines(4)
            .x_labels(if render.categories.is_some() {
                categories.len().max(1) * 2 + 1
            } else if render.integer_x {
                // No more ticks than whole numbers in the range: the step is then at least 1.
                ((x1 - x0).floor() as usize + 1).clamp(2, 8)
            } else {
                8
            })
            .y_labels(8);
        if render.categories.is_some() {
            mesh.x_label_formatter(&x_format);
        } else if render.integer_x {
            mesh.x_label_formatter(&integer_format);
        }
        mesh.draw().map_err(plot_err)?;

        let covers = covering(series);
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[s.color.unwrap_or(k) % PALETTE.len()];
            // Runs of consecutive finite points (a line breaks at NaN).
            let mut runs: Vec<Vec<(usize, (f64, f64))>> = vec![Vec::new()];
            for (i, p) in s.points.iter().enumerate() {
                if finite(p) {
                    runs.last_mut().unwrap().push((i, *p));
                } else if !runs.last().unwrap().is_empty() {
                    runs.push(Vec::new());
                }
            }
            runs.retain(|r| !r.is_empty());
            match s.style {
                Style::Line => {
                    for run in &runs {
                        // The ± band, split where the error is missing.
                        let mut band: Vec<(f64, f64, f64)> = Vec::new();
                        let mut flush = |band: &mut Vec<(f64, f64, f64)>| -> Result<()> {
                            if band.len() >= 2 {
                                let poly: Vec<(f64, f64)> = band
                                    .iter()
                                    .map(|&(x, y, e)| (x, y + e))
                                    .chain(band.iter().rev().map(|&(x, y, e)| (x, y - e)))
                                    .collect();
                                chart
                                    .draw_series(std::iter::once(Polygon::new(
                                        poly,
                                        color.mix(0.18).filled(),
                                    )))
                                    .map_err(plot_err)?;
                            }
                            band.clear();
                            Ok(())
                        };
                        for &(i, (x, y)) in run {
                            match s.err(i) {
                                Some(e) => band.push((x, y, e)),
                                None => flush(&mut band)?,
                            }
                        }
                        flush(&mut band)?;
                    }
                    for (r, run) in runs.iter().enumerate() {
                        let pts = run.iter().map(|&(_, p)| p);
                        // A line on top of an earlier one is dashed, so both stay visible.
                        let line = if covers[k] {
                            chart.draw_series(DashedLineSeries::new(
                                pts,
                                px.u(9.0),
                                px.u(6.0),
                                color.stroke_width(px.u(3.0)),
                            ))
                        } else {
                            chart.draw_series(LineSeries::new(pts, color.stroke_width(px.u(2.0))))
                        }
                        .map_err(plot_err)?;
                        if r == 0 && !s.label.is_empty() {
                            let dashed = covers[k];
                            line.label(typeset(&s.label)).legend(move |(x, y)| {
                                let st = color.stroke_width(px.u(2.0));
                                let end = (x + px.i(24.0), y);
                                if dashed {
                                    plotters::element::DashedPathElement::new(
                                        vec![(x, y), end],
                                        px.u(6.0),
                                        px.u(3.0),
                                        st,
                                    )
                                    .into_dyn()
                                } else {
                                    PathElement::new(vec![(x, y), end], st).into_dyn()
                                }
                            });
                        }
                    }
                }
                Style::XBand => {
                    let pts: Vec<(usize, (f64, f64))> = runs.concat();
                    for &(i, (x, _)) in &pts {
                        if let Some(e) = s.err(i).filter(|&e| e > 0.0) {
                            chart
                                .draw_series(std::iter::once(Rectangle::new(
                                    [(x - e, y0), (x + e, y1)],
                                    color.mix(0.2).filled(),
                                )))
                                .map_err(plot_err)?;
                        }
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(x, y0), (x, y1)],
                                color.stroke_width(px.u(2.0)),
                            )))
                            .map_err(plot_err)?;
                    }
                    let dots = chart
                        .draw_series(
                            pts.iter()
                                .map(|&(_, p)| marker(Style::Points, p, color, px)),
                        )
                        .map_err(plot_err)?;
                    if !pts.is_empty() && !s.label.is_empty() {
                        dots.label(typeset(&s.label)).legend(move |(x, y)| {
                            Rectangle::new(
                                [(x, y - px.i(6.0)), (x + px.i(24.0), y + px.i(6.0))],
                                color.mix(0.3).filled(),
                            )
                        });
                    }
                }
                Style::Scatter => {
                    let pts: Vec<(f64, f64)> = runs.concat().into_iter().map(|p| p.1).collect();
                    let dots = chart
                        .draw_series(
                            pts.iter()
                                .map(|&p| Circle::new(p, px.i(1.6), color.mix(0.6).filled())),
                        )
                        .map_err(plot_err)?;
                    if !pts.is_empty() && !s.label.is_empty() {
                        dots.label(typeset(&s.label)).legend(move |(x, y)| {
                            marker(Style::Points, (x + px.i(12.0), y), color, px)
                        });
                    }
                }
                Style::LinePoints => {
                    for run in &runs {
                        chart
                            .draw_series(LineSeries::new(
                                run.iter().map(|&(_, p)| p),
                                color.mix(0.7).stroke_width(px.u(1.5)),
                            ))
                            .map_err(plot_err)?;
                    }
                    let pts: Vec<(usize, (f64, f64))> = runs.concat();
                    error_bars(&mut chart, s, &pts, color, (x1 - x0) * 0.006, px)?;
                    let dots = chart
                        .draw_series(
                            pts.iter()
                                .map(|&(_, p)| marker(Style::Points, p, color, px)),
                        )
                        .map_err(plot_err)?;
                    if !pts.is_empty() && !s.label.is_empty() {
                        dots.label(typeset(&s.label)).legend(move |(x, y)| {
                            EmptyElement::at((x, y))
                                + PathElement::new(
                                    vec![(0, 0), (px.i(24.0), 0)],
                                    color.stroke_width(px.u(2.0)),
                                )
                                + Circle::new((px.i(12.0), 0), px.i(4.0), color.filled())
                        });
                    }
                }
                Style::Points | Style::Ring => {
                    let pts: Vec<(usize, (f64, f64))> = runs.concat();
                    error_bars(&mut chart, s, &pts, color, (x1 - x0) * 0.006, px)?;
                    let dots = chart
                        .draw_series(pts.iter().map(|&(_, p)| marker(s.style, p, color, px)))
                        .map_err(plot_err)?;
                    if !pts.is_empty() && !s.label.is_empty() {
                        let style = s.style;
                        dots.label(typeset(&s.label))
                            .legend(move |(x, y)| marker(style, (x + px.i(12.0), y), color, px));
                    }
                }
            }
        }

        // A marker that a later one nearly covers (a measured t_S on its theory) is drawn wider,
        // so it shows on both sides of the one drawn over it.
        let near = |a: f64, b: f64| (a - b).abs() <= 0.004 * (x1 - x0);
        for (k, (label, x)) in markers.iter().map(|m| (&m.0, m.1)).enumerate() {
            let color = MARKER_COLORS[k % MARKER_COLORS.len()];
            let covered = markers[k + 1..].iter().any(|m| near(m.1, x));
            let style = color.stroke_width(px.u(if covered { 5.0 } else { 2.0 }));
            let drawn = chart
                .draw_series(DashedLineSeries::new(
                    vec![(x, y0), (x, y1)],
                    px.u(7.0),
                    px.u(5.0),
                    style,
                ))
                .map_err(plot_err)?;
            if !label.is_empty() {
                drawn.label(typeset(label)).legend(move |(x, y)| {
                    plotters::element::DashedPathElement::new(
                        vec![(x, y), (x + px.i(24.0), y)],
                        px.u(6.0),
                        px.u(3.0),
                        style,
                    )
                });
            }
        }

        let labelled = series
            .iter()
            .any(|s| !s.label.is_empty() && s.points.iter().any(finite))
            || markers.iter().any(|m| !m.0.is_empty());
        if labelled && legend_area.is_none() {
            chart
                .configure_series_labels()
                .position(legend_corner(series, (x0, x1), (y0, y1)))
                .margin(px.i(12.0))
                .legend_area_size(px.i(30.0))
                .label_font((FONT, px.f(14.0)))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(())
}

/// Error bars of `s` at `pts` (index, point): a vertical stroke with caps `dx` wide each side.
fn error_bars<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    s: &Series,
    pts: &[(usize, (f64, f64))],
    color: RGBColor,
    dx: f64,
    px: Px,
) -> Result<()> {
    for &(i, (x, y)) in pts {
        if let Some(e) = s.err(i) {
            let st = color.mix(0.8).stroke_width(px.u(1.0));
            chart
                .draw_series([
                    PathElement::new(vec![(x, y - e), (x, y + e)], st),
                    PathElement::new(vec![(x - dx, y - e), (x + dx, y - e)], st),
                    PathElement::new(vec![(x - dx, y + e), (x + dx, y + e)], st),
                ])
                .map_err(plot_err)?;
        }
    }
    Ok(())
}

/// The title's font: a long title (parameters) shrinks to fit `width` pixels.
fn title_font(width: f64, title: &str, px: Px) -> TextStyle<'static> {
    let chars = title.chars().count().max(1) as f64;
    (FONT, (1.7 * width / chars).clamp(px.f(11.0), px.f(22.0)))
        .into_font()
        .color(&RGBColor(30, 30, 30))
}

/// Draws `panels` on `root`: the title across the top, then each panel (its title a smaller
/// heading) in an equal horizontal strip, one below the other.
pub(super) fn draw_panels<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    panels: &Panels,
    render: &Render,
    px: Px,
) -> Result<()> {
    register_font()?;
    root.fill(&WHITE).map_err(plot_err)?;
    let title = typeset(panels.title);
    let font = title_font(f64::from(root.dim_in_pixel().0), &title, px);
    let body = root
        .margin(px.i(8.0), 0, 0, 0)
        .titled(&title, font)
        .map_err(plot_err)?;
    let n = panels.panels.len().max(1);
    // One legend width for all, so that the panels' axes and legends line up.
    let longest = panels
        .panels
        .iter()
        .flat_map(|f| {
            let markers: Vec<&(String, f64)> = f.markers.iter().collect();
            legend_entries(f.series, &markers)
        })
        .map(|e| e.0.chars().count())
        .max();
    let render = &Render {
        legend_chars: longest,
        ..render.clone()
    };
    for (area, figure) in body.split_evenly((n, 1)).into_iter().zip(panels.panels) {
        draw_panel(area, figure, render, px)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}

/// One panel: a heading in a smaller font, then the figure without a title of its own.
fn draw_panel<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    figure: &Figure,
    render: &Render,
    px: Px,
) -> Result<()> {
    let heading = typeset(figure.title);
    let area = area
        .titled(
            &heading,
            (FONT, px.f(16.0)).into_font().color(&RGBColor(50, 50, 50)),
        )
        .map_err(plot_err)?;
    draw(
        area,
        &Figure {
            title: "",
            ..*figure
        },
        render,
        px,
    )
}

/// For each series, whether it is a line drawn over an earlier line with the same points
/// (within 1e-6 of the plotted range): it is then dashed, so that the one below shows.
pub(super) fn covering(series: &[Series]) -> Vec<bool> {
    let scale = series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| finite(p)).map(|p| p.1.abs()))
        .fold(0.0f64, f64::max)
        .max(1e-300);
    let same = |a: &Series, b: &Series| {
        a.points.len() == b.points.len()
            && a.points.iter().zip(&b.points).all(|(p, q)| {
                (p.0 - q.0).abs() <= 1e-9 * p.0.abs().max(1.0) && (p.1 - q.1).abs() <= 1e-6 * scale
            })
    };
    series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            s.style == Style::Line
                && series[..k]
                    .iter()
                    .any(|t| t.style == Style::Line && same(s, t))
        })
        .collect()
}

/// The marker of a point series: a filled dot, or a ring around where a dot would be.
pub(super) fn marker<C>(style: Style, at: C, color: RGBColor, px: Px) -> Circle<C, i32> {
    match style {
        Style::Ring => Circle::new(at, px.i(7.0), color.stroke_width(px.u(2.0))),
        _ => Circle::new(at, px.i(4.0), color.filled()),
    }
}

pub(super) fn legend_entries(
    series: &[Series],
    markers: &[&(String, f64)],
) -> Vec<(String, Sample, RGBColor)> {
    let mut out = vec![];
    let covers = covering(series);
    for (k, s) in series.iter().enumerate() {
        if s.label.is_empty() || !s.points.iter().any(finite) {
            continue;
        }
        let color = PALETTE[s.color.unwrap_or(k) % PALETTE.len()];
        let sample = match s.style {
            Style::Line if covers[k] => Sample::Dashed,
            Style::Line => Sample::Line,
            Style::Points | Style::Scatter => Sample::Dot,
            Style::LinePoints => Sample::LineDot,
            Style::Ring => Sample::Ring,
            Style::XBand => Sample::Band,
        };
        out.push((typeset(&s.label), sample, color));
    }
    for (k, m) in markers.iter().enumerate() {
        if !m.0.is_empty() {
            out.push((
                typeset(&m.0),
                Sample::Dashed,
                MARKER_COLORS[k % MARKER_COLORS.len()],
            ));
        }
    }
    out
}

/// The legend as a column of entries at the top of `area`.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, Sample, RGBColor)],
    px: Px,
) -> Result<()> {
    for (i, (label, sample, color)) in entries.iter().enumerate() {
        let y = px.i(30.0 + 22.0 * i as f64);
        let style = color.stroke_width(px.u(2.0));
        let (x0, mid, x1) = (px.i(6.0), px.i(18.0), px.i(30.0));
        match sample {
            Sample::Line => area
                .draw(&PathElement::new(vec![(x0, y), (x1, y)], style))
                .map_err(plot_err)?,
            Sample::Dot => area
                .draw(&marker(Style::Points, (mid, y), *color, px))
                .map_err(plot_err)?,
            Sample::Ring => area
                .draw(&marker(Style::Ring, (mid, y), *color, px))
                .map_err(plot_err)?,
            Sample::LineDot => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], style))
                    .map_err(plot_err)?;
                area.draw(&marker(Style::Points, (mid, y), *color, px))
                    .map_err(plot_err)?
            }
            Sample::Band => {
                area.draw(&Rectangle::new(
                    [(x0, y - px.i(7.0)), (x1, y + px.i(7.0))],
                    color.mix(0.2).filled(),
                ))
                .map_err(plot_err)?;
                area.draw(&PathElement::new(
                    vec![(mid, y - px.i(7.0)), (mid, y + px.i(7.0))],
                    style,
                ))
                .map_err(plot_err)?;
                area.draw(&marker(Style::Points, (mid, y), *color, px))
                    .map_err(plot_err)?
            }
            Sample::Dashed => area
                .draw(&plotters::element::DashedPathElement::new(
                    vec![(x0, y), (x1, y)],
                    px.u(6.0),
                    px.u(3.0),
                    style,
                ))
                .map_err(plot_err)?,
        }
        area.draw(&Text::new(
            label.clone(),
            (px.i(38.0), y - px.i(8.0)),
            (FONT, px.f(14.0)).into_font().color(&RGBColor(30, 30, 30)),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}
