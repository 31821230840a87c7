//! Line and point plots as SVG (plotters' SVG backend, no font files needed) and PNG (the bitmap
//! backend with DejaVu Sans embedded in the binary through ab_glyph: no fontconfig, no system
//! fonts).

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::OutDir;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    /// A line through the points; `error` is drawn as a shaded ± band.
    #[default]
    Line,
    /// Markers at the points; `error` is drawn as ± error bars.
    Points,
    /// Hollow rings, larger than `Points` markers: a filled point at the same place stays
    /// visible inside (a second estimate of the same quantity); `error` as ± error bars.
    Ring,
}

/// One curve of a plot. Points with a non-finite coordinate are skipped (a line is broken there).
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Half-widths of the ± band / error bars, one per point (non-finite = none at that point).
    pub error: Option<Vec<f64>>,
    pub style: Style,
    /// Palette index; None = the series' position (theory and measurement of one case share a
    /// colour when they share an index).
    pub color: Option<usize>,
}

impl Series {
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            error: None,
            style: Style::Line,
            color: None,
        }
    }

    pub fn points(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            error: None,
            style: Style::Points,
            color: None,
        }
    }

    pub fn with_error(mut self, error: Vec<f64>) -> Series {
        self.error = Some(error);
        self
    }

    pub fn colored(mut self, index: usize) -> Series {
        self.color = Some(index);
        self
    }

    fn err(&self, i: usize) -> Option<f64> {
        self.error
            .as_ref()
            .and_then(|e| e.get(i).copied())
            .filter(|e| e.is_finite())
            .map(f64::abs)
    }
}

const WIDTH: u32 = 860;
const HEIGHT: u32 = 540;
const FONT: &str = "sans-serif";

/// Series colours (colour-blind friendly, after Okabe–Ito / Tableau).
const PALETTE: [RGBColor; 8] = [
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
const MARKER_COLORS: [RGBColor; 4] = [
    RGBColor(60, 60, 60),
    RGBColor(150, 60, 60),
    RGBColor(60, 110, 60),
    RGBColor(60, 60, 150),
];

fn finite(p: &(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// A padded range covering `values`; a sensible default when there are none.
fn range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
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
fn legend_corner(series: &[Series], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
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

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("cannot draw plot: {e:?}")
}

/// A plot's content: its title, axes, curves and labelled vertical markers.
pub struct Figure<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
    pub markers: &'a [(String, f64)],
}

/// How a figure is drawn beyond its content: its size, and a categorical x axis.
#[derive(Clone, Debug, Default)]
pub struct Render {
    /// Width and height in pixels (SVG user units); None = 860 × 540.
    pub size: Option<(u32, u32)>,
    /// Names of the x positions 0, 1, 2, … (a non-numeric swept key): the axis shows the names
    /// at those positions and nothing between them.
    pub categories: Option<Vec<String>>,
    /// The legend in a column right of the axes, where it hides no data (else in the corner
    /// of the axes that hides the fewest points).
    pub legend_outside: bool,
}

impl Render {
    fn dims(&self) -> (u32, u32) {
        // A legend column needs room beside the axes.
        let default = if self.legend_outside {
            (WIDTH + 240, HEIGHT)
        } else {
            (WIDTH, HEIGHT)
        };
        self.size.unwrap_or(default)
    }
}

/// Render a figure to an SVG document, sized and labelled as `render` says.
pub fn render_svg_with(figure: &Figure, render: &Render) -> Result<String> {
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, render.dims()).into_drawing_area(),
        figure,
        render,
    )?;
    Ok(svg)
}

/// Render a figure to PNG bytes (RGB, 8 bits), sized and labelled as `render` says.
pub fn render_png_with(figure: &Figure, render: &Render) -> Result<Vec<u8>> {
    let (w, h) = render.dims();
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
        figure,
        render,
    )?;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut wr| wr.write_image_data(&rgb))
        .map_err(|e| anyhow!("cannot encode PNG: {e}"))?;
    Ok(bytes)
}

/// Render a plot to an SVG document. `markers` are labelled vertical dashed lines (e.g. a
/// theoretical t_S); non-finite markers are skipped.
pub fn render_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    markers: &[(String, f64)],
) -> Result<String> {
    let figure = Figure {
        title,
        x_label,
        y_label,
        series,
        markers,
    };
    render_svg_with(&figure, &Render::default())
}

/// Render a plot to PNG bytes (RGB, 8 bits).
pub fn render_png(figure: &Figure) -> Result<Vec<u8>> {
    render_png_with(figure, &Render::default())
}

/// Text is laid out (SVG) and drawn (PNG) with fonts registered by name: DejaVu Sans, compiled in.
fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    anyhow::ensure!(ok, "cannot load the embedded font");
    Ok(())
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    figure: &Figure,
    render: &Render,
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
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| finite(p)).map(|p| p.0))
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
    let ys = series.iter().flat_map(|s| {
        s.points
            .iter()
            .enumerate()
            .filter(|(_, p)| finite(p))
            .flat_map(move |(i, p)| {
                let e = s.err(i).unwrap_or(0.0);
                [p.1 - e, p.1 + e]
            })
    });
    let (y0, y1) = range(ys, 0.06);

    {
        root.fill(&WHITE).map_err(plot_err)?;
        let title = typeset(title);
        let title = title.as_str();
        // A long title (parameters) shrinks to fit the width.
        let title_font = {
            let w = f64::from(root.dim_in_pixel().0);
            let chars = title.chars().count().max(1) as f64;
            (FONT, (1.7 * w / chars).clamp(11.0, 22.0))
                .into_font()
                .color(&RGBColor(30, 30, 30))
        };
        // The legend column: what a legend entry needs, right of the axes.
        let entries = legend_entries(series, &markers);
        let outside = render.legend_outside && !entries.is_empty();
        // With the legend outside, the title spans the whole figure.
        let root = if outside {
            root.titled(title, title_font.clone()).map_err(plot_err)?
        } else {
            root
        };
        let (root, legend_area) = if outside {
            let longest = entries
                .iter()
                .map(|e| e.0.chars().count())
                .max()
                .unwrap_or(0);
            let (w, _) = root.dim_in_pixel();
            let width = ((longest as u32) * 8 + 56).min(w / 2);
            let (a, b) = root.split_horizontally(w - width);
            (a, Some(b))
        } else {
            (root, None)
        };
        if let Some(area) = &legend_area {
            draw_legend(area, &entries)?;
        }
        let mut builder = ChartBuilder::on(&root);
        if !outside {
            builder.caption(title, title_font);
        }
        let mut chart = builder
            .margin(18)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot_err)?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(typeset(x_label))
            .y_desc(typeset(y_label))
            .axis_desc_style((FONT, 16))
            .label_style((FONT, 13).into_font().color(&RGBColor(60, 60, 60)))
            .axis_style(RGBColor(120, 120, 120))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(246, 246, 246))
            .max_light_lines(4)
            .x_labels(if render.categories.is_some() {
                categories.len().max(1) * 2 + 1
            } else {
                8
            })
            .y_labels(8);
        if render.categories.is_some() {
            mesh.x_label_formatter(&x_format);
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
                                9,
                                6,
                                color.stroke_width(3),
                            ))
                        } else {
                            chart.draw_series(LineSeries::new(pts, color.stroke_width(2)))
                        }
                        .map_err(plot_err)?;
                        if r == 0 && !s.label.is_empty() {
                            let dashed = covers[k];
                            line.label(typeset(&s.label)).legend(move |(x, y)| {
                                let st = color.stroke_width(2);
                                if dashed {
                                    plotters::element::DashedPathElement::new(
                                        vec![(x, y), (x + 24, y)],
                                        6,
                                        3,
                                        st,
                                    )
                                    .into_dyn()
                                } else {
                                    PathElement::new(vec![(x, y), (x + 24, y)], st).into_dyn()
                                }
                            });
                        }
                    }
                }
                Style::Points | Style::Ring => {
                    let pts: Vec<(usize, (f64, f64))> = runs.concat();
                    // Error bars: a vertical stroke with short caps.
                    let dx = (x1 - x0) * 0.006;
                    for &(i, (x, y)) in &pts {
                        if let Some(e) = s.err(i) {
                            let st = color.mix(0.8).stroke_width(1);
                            chart
                                .draw_series([
                                    PathElement::new(vec![(x, y - e), (x, y + e)], st),
                                    PathElement::new(vec![(x - dx, y - e), (x + dx, y - e)], st),
                                    PathElement::new(vec![(x - dx, y + e), (x + dx, y + e)], st),
                                ])
                                .map_err(plot_err)?;
                        }
                    }
                    let dots = chart
                        .draw_series(pts.iter().map(|&(_, p)| marker(s.style, p, color)))
                        .map_err(plot_err)?;
                    if !pts.is_empty() && !s.label.is_empty() {
                        let style = s.style;
                        dots.label(typeset(&s.label))
                            .legend(move |(x, y)| marker(style, (x + 12, y), color));
                    }
                }
            }
        }

        for (k, (label, x)) in markers.iter().map(|m| (&m.0, m.1)).enumerate() {
            let color = MARKER_COLORS[k % MARKER_COLORS.len()];
            let style = color.stroke_width(2);
            let drawn = chart
                .draw_series(DashedLineSeries::new(vec![(x, y0), (x, y1)], 7, 5, style))
                .map_err(plot_err)?;
            if !label.is_empty() {
                drawn.label(typeset(label)).legend(move |(x, y)| {
                    plotters::element::DashedPathElement::new(
                        vec![(x, y), (x + 24, y)],
                        6,
                        3,
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
                .margin(12)
                .legend_area_size(30)
                .label_font((FONT, 14))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(200, 200, 200))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(())
}

/// For each series, whether it is a line drawn over an earlier line with the same points
/// (within 1e-6 of the plotted range): it is then dashed, so that the one below shows.
fn covering(series: &[Series]) -> Vec<bool> {
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
fn marker<C>(style: Style, at: C, color: RGBColor) -> Circle<C, i32> {
    match style {
        Style::Ring => Circle::new(at, 7, color.stroke_width(2)),
        _ => Circle::new(at, 4, color.filled()),
    }
}

/// Text as the embedded font can draw it: the font has no combining marks positioned over the
/// letter before them, so t̂_C (t + U+0302) would render as "tˆC"; it is written "t_C measured".
pub fn typeset(text: &str) -> String {
    text.replace("f^e", "f\u{1d49}")
        .replace("median t̂_C", "median measured t_C")
        .replace("t̂_C", "measured t_C")
        .replace('\u{0302}', "")
}

/// How a legend entry is drawn: its label, sample and colour.
enum Sample {
    Line,
    Dot,
    Ring,
    Dashed,
}

fn legend_entries(
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
            Style::Points => Sample::Dot,
            Style::Ring => Sample::Ring,
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
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(String, Sample, RGBColor)],
) -> Result<()> {
    let top = 30;
    for (i, (label, sample, color)) in entries.iter().enumerate() {
        let y = top + 22 * i as i32;
        let style = color.stroke_width(2);
        match sample {
            Sample::Line => area
                .draw(&PathElement::new(vec![(6, y), (30, y)], style))
                .map_err(plot_err)?,
            Sample::Dot => area
                .draw(&marker(Style::Points, (18, y), *color))
                .map_err(plot_err)?,
            Sample::Ring => area
                .draw(&marker(Style::Ring, (18, y), *color))
                .map_err(plot_err)?,
            Sample::Dashed => area
                .draw(&plotters::element::DashedPathElement::new(
                    vec![(6, y), (30, y)],
                    6,
                    3,
                    style,
                ))
                .map_err(plot_err)?,
        }
        area.draw(&Text::new(
            label.clone(),
            (38, y - 8),
            (FONT, 14).into_font().color(&RGBColor(30, 30, 30)),
        ))
        .map_err(plot_err)?;
    }
    Ok(())
}

/// Render a plot (see [`render_svg`]) and write it atomically to `name` in `out`, with the PNG
/// beside it (`NAME.png` for `NAME.svg`).
pub fn plot_series(
    out: &OutDir,
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    markers: &[(String, f64)],
) -> Result<std::path::PathBuf> {
    let svg = render_svg(title, x_label, y_label, series, markers)?;
    let path = out.write_text(name, &svg)?;
    // The PNG and the figure's data beside it.
    if let Some(stem) = name.strip_suffix(".svg") {
        let figure = Figure {
            title,
            x_label,
            y_label,
            series,
            markers,
        };
        out.write_bytes(&format!("{stem}.png"), &render_png(&figure)?)?;
        out.write_text(&format!("{stem}.data.csv"), &figure_csv(&figure))?;
    }
    Ok(path)
}

/// What a figure draws, as a long CSV: one row per point of each series (`series` is its legend
/// label, `style` line, points or ring, `error` the ± half-width or empty) and one per vertical
/// marker (`style` marker, its x).
pub fn figure_csv(figure: &Figure) -> String {
    let q = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let num = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    let mut out = format!(
        "series,style,{},{},error\n",
        q(figure.x_label),
        q(figure.y_label)
    );
    for s in figure.series {
        let style = match s.style {
            Style::Line => "line",
            Style::Points => "points",
            Style::Ring => "ring",
        };
        for (i, p) in s.points.iter().enumerate() {
            let e = s.err(i).map_or(String::new(), num);
            out += &format!("{},{style},{},{},{e}\n", q(&s.label), num(p.0), num(p.1));
        }
    }
    for (label, x) in figure.markers {
        out += &format!("{},marker,{},,\n", q(label), num(*x));
    }
    out
}

/// Write a plot as `stem.svg` and `stem.png` in `out`, with its data as `stem.data.csv`.
pub fn write_figure(out: &OutDir, stem: &str, figure: &Figure) -> Result<()> {
    let svg = render_svg(
        figure.title,
        figure.x_label,
        figure.y_label,
        figure.series,
        figure.markers,
    )?;
    out.write_text(&format!("{stem}.svg"), &svg)?;
    out.write_bytes(&format!("{stem}.png"), &render_png(figure)?)?;
    out.write_text(&format!("{stem}.data.csv"), &figure_csv(figure))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phi_series() -> Vec<Series> {
        let ts: Vec<f64> = (1..=30).map(|i| i as f64 * 0.1).collect();
        let theory: Vec<(f64, f64)> = ts
            .iter()
            .map(|&t| (t, 0.5 + 0.5 / (1.0 + ((t - 1.4) * 4.0).exp())))
            .collect();
        let mut measured: Vec<(f64, f64)> = theory
            .iter()
            .step_by(3)
            .map(|&(t, p)| (t, p + 0.01 * (t * 7.0).sin()))
            .collect();
        measured[4].1 = f64::NAN;
        let err = vec![0.02; measured.len()];
        vec![
            Series::line("φ(t) theory, F(s(t))", theory.clone()),
            Series::points("φ(t) clones", measured).with_error(err),
            Series::line(
                "Σ r² estimator",
                theory.iter().map(|&(t, p)| (t, p - 0.01)).collect(),
            )
            .with_error(vec![0.015; theory.len()]),
        ]
    }

    #[test]
    fn svg_is_produced() {
        let s = crate::report::tests::Scratch::new("plot");
        let out = OutDir::create(&s.0, false).unwrap();
        let path = plot_series(
            &out,
            "plots/speciation.svg",
            "Speciation: cloning probability",
            "branch time t",
            "φ(t)",
            &phi_series(),
            &[("t_S theory".into(), 1.386), ("F(1) crossing".into(), 1.45)],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.starts_with("<svg") || svg.starts_with("<?xml"),
            "{}",
            &svg[..80]
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "Speciation",
            "branch time t",
            "t_S theory",
            "φ(t) clones",
            "polygon",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(!svg.contains("NaN"));
        assert_eq!(
            out.files(),
            [
                "plots/speciation.svg",
                "plots/speciation.png",
                "plots/speciation.data.csv"
            ]
        );
        if let Ok(dir) = std::env::var("REGIMES_PLOT_DIR") {
            std::fs::copy(&path, std::path::Path::new(&dir).join("speciation.svg")).unwrap();
        }
    }

    /// The PNG decodes to the plot's size, and the embedded font draws the title: its band holds
    /// dark pixels (a missing font would leave it white).
    #[test]
    fn png_is_produced_with_text() {
        let series = phi_series();
        let markers = [("t_S theory".to_string(), 1.386)];
        let figure = Figure {
            title: "Speciation: cloning probability",
            x_label: "branch time t",
            y_label: "φ(t)",
            series: &series,
            markers: &markers,
        };
        let bytes = render_png(&figure).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        let row = (info.width * 3) as usize;
        let title_band = &buf[row * 18..row * 42];
        let dark = title_band
            .chunks(3)
            .filter(|p| p.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 200, "title pixels: {dark}");
        if let Ok(dir) = std::env::var("REGIMES_PLOT_DIR") {
            std::fs::write(std::path::Path::new(&dir).join("speciation.png"), &bytes).unwrap();
        }
    }

    #[test]
    fn degenerate_inputs_still_render() {
        // No data, constant data, all-NaN, single point.
        render_svg("empty", "x", "y", &[], &[]).unwrap();
        render_svg(
            "nan",
            "x",
            "y",
            &[Series::line("a", vec![(f64::NAN, 1.0)])],
            &[],
        )
        .unwrap();
        let svg = render_svg(
            "one",
            "x",
            "y",
            &[Series::points("a", vec![(2.0, 3.0)])],
            &[("m".into(), f64::INFINITY)],
        )
        .unwrap();
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert_eq!(range([5.0, 5.0].into_iter(), 0.1), (4.5, 5.5));
    }
}
