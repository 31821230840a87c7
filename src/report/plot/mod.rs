//! Line and point plots as SVG (plotters' SVG backend, no font files needed) and PNG (the bitmap
//! backend with DejaVu Sans embedded in the binary through ab_glyph: no fontconfig, no system
//! fonts).

use anyhow::{Result, anyhow};
use plotters::prelude::*;

mod draw;
mod panels;
mod samples;
use draw::*;
use panels::Content;
pub use panels::{Panels, write_panels};
pub use samples::{SampleSet, write_samples_figure};

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
    /// A measured time with its error: at each point a solid vertical line across the axes at
    /// x, a shaded band of ± `error` in x (not y) around it and a dot at the point (e.g. a
    /// measured t_S at the level where φ crosses F(1)). Drawn before the markers, so a theory
    /// marker at the same x shows as a dashed line over it, the band still visible.
    XBand,
    /// Small dots without error bars, for many points (a scatter of samples).
    Scatter,
    /// A line through the points with a dot at each: a measurement at a few points, the line
    /// guiding the eye and the dots saying where it was measured; `error` as ± error bars.
    LinePoints,
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

/// SVG coordinates are integers in plotters: the SVG is drawn this many times larger and its
/// `viewBox` scaled back, so curves are placed to 1/16 of a unit (no stair steps when zoomed).
const SVG_SUBUNITS: u32 = 16;

/// A figure unit is a CSS pixel: 96 per inch.
pub const UNITS_PER_INCH: u32 = 96;

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

/// How a figure is drawn beyond its content: its size and resolution, a categorical x axis,
/// and where the legend goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Render {
    /// Width and height in figure units (CSS pixels, 1/96 inch; the SVG's size); None = 860 ×
    /// 540, plus 240 in width for a legend column.
    pub size: Option<(u32, u32)>,
    /// PNG pixels per inch: the PNG is `size` × dpi / 96 pixels, laid out as the SVG.
    pub dpi: u32,
    /// Names of the x positions 0, 1, 2, … (a non-numeric swept key): the axis shows the names
    /// at those positions and nothing between them.
    pub categories: Option<Vec<String>>,
    /// The legend in a column right of the axes, where it hides no data (else in the corner
    /// of the axes that hides the fewest points).
    pub legend_outside: bool,
    /// The x values are whole numbers (an integer key such as d or N): ticks only at whole
    /// numbers, labelled without decimals.
    pub integer_x: bool,
    /// The legend column as wide as a label of this many characters at least (panels share
    /// one width, so that their legends line up); None = the figure's longest label.
    pub legend_chars: Option<usize>,
}

impl Default for Render {
    fn default() -> Render {
        Render {
            size: None,
            dpi: UNITS_PER_INCH,
            categories: None,
            legend_outside: true,
            integer_x: false,
            legend_chars: None,
        }
    }
}

impl Render {
    /// A figure `size` (None: the default) at `dpi` (None: 96), legend outside.
    pub fn sized(size: Option<(u32, u32)>, dpi: Option<u32>) -> Render {
        Render {
            size,
            dpi: dpi.unwrap_or(UNITS_PER_INCH),
            ..Render::default()
        }
    }

    /// The size in figure units.
    pub fn dims(&self) -> (u32, u32) {
        // A legend column needs room beside the axes.
        let default = if self.legend_outside {
            (WIDTH + 240, HEIGHT)
        } else {
            (WIDTH, HEIGHT)
        };
        self.size.unwrap_or(default)
    }

    /// The size of a figure of `n` panels stacked vertically: the default is 860 (plus the
    /// legend column) wide and 60 + 380 per panel high; a given size is the whole figure's.
    pub fn panel_dims(&self, n: usize) -> (u32, u32) {
        match self.size {
            Some(size) => size,
            None => (self.dims().0, 60 + 380 * n.max(1) as u32),
        }
    }

    /// The PNG's size in pixels.
    pub fn png_dims(&self) -> (u32, u32) {
        let (w, h) = self.dims();
        let s = |v: u32| (u64::from(v) * u64::from(self.dpi)).div_ceil(u64::from(UNITS_PER_INCH));
        (s(w) as u32, s(h) as u32)
    }
}

/// A figure size `WIDTHxHEIGHT` (range-checked by `Config::validate`).
pub fn parse_figure_size(s: &str) -> std::result::Result<(u32, u32), String> {
    let bad = || format!("'{s}': expected WIDTHxHEIGHT, e.g. 1200x800");
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let n = |v: &str| v.trim().parse::<u32>().map_err(|_| bad());
    Ok((n(w)?, n(h)?))
}

/// Render a figure to an SVG document, sized and labelled as `render` says.
pub fn render_svg(figure: &Figure, render: &Render) -> Result<String> {
    content_svg(Content::One(figure), render)
}

fn content_svg(content: Content, render: &Render) -> Result<String> {
    let render = &content.sized(render);
    let (w, h) = render.dims();
    let (sw, sh) = (w * SVG_SUBUNITS, h * SVG_SUBUNITS);
    let mut svg = String::new();
    content.draw(
        SVGBackend::with_string(&mut svg, (sw, sh)).into_drawing_area(),
        render,
        Px(f64::from(SVG_SUBUNITS)),
    )?;
    // The document keeps its size in units; the drawing's finer coordinates map onto it.
    let drawn = format!("width=\"{sw}\" height=\"{sh}\"");
    anyhow::ensure!(svg.contains(&drawn), "cannot size the SVG: no {drawn}");
    Ok(svg.replacen(&drawn, &format!("width=\"{w}\" height=\"{h}\""), 1))
}

/// Render a figure to PNG bytes (RGB, 8 bits) at `render.dpi`, laid out as its SVG.
pub fn render_png(figure: &Figure, render: &Render) -> Result<Vec<u8>> {
    content_png(Content::One(figure), render)
}

fn content_png(content: Content, render: &Render) -> Result<Vec<u8>> {
    let render = &content.sized(render);
    let (w, h) = render.png_dims();
    let mut rgb = vec![0u8; (w as usize) * (h as usize) * 3];
    content.draw(
        BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area(),
        render,
        Px(f64::from(render.dpi) / f64::from(UNITS_PER_INCH)),
    )?;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // The resolution, so that a document places the PNG at the SVG's size.
    let ppm = (f64::from(render.dpi) / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: ppm,
        yppu: ppm,
        unit: png::Unit::Meter,
    }));
    encoder
        .write_header()
        .and_then(|mut wr| wr.write_image_data(&rgb))
        .map_err(|e| anyhow!("cannot encode PNG: {e}"))?;
    Ok(bytes)
}

/// Text is laid out (SVG) and drawn (PNG) with fonts registered by name: DejaVu Sans, compiled in.
fn register_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes = include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/assets/fonts/DejaVuSans.ttf"
        ));
        plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    anyhow::ensure!(ok, "cannot load the embedded font");
    Ok(())
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
    /// A shaded band with a line and a dot: an [`Style::XBand`].
    Band,
    /// A line with a dot on it: a [`Style::LinePoints`].
    LineDot,
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
            Style::XBand => "x-band",
            Style::Scatter => "scatter",
            Style::LinePoints => "line-points",
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

/// Write a figure as `stem.svg` and `stem.png` in `out`, with its data as `stem.data.csv`.
pub fn write_figure(out: &OutDir, stem: &str, figure: &Figure, render: &Render) -> Result<()> {
    out.write_text(&format!("{stem}.svg"), &render_svg(figure, render)?)?;
    out.write_bytes(&format!("{stem}.png"), &render_png(figure, render)?)?;
    out.write_text(&format!("{stem}.data.csv"), &figure_csv(figure))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::panels::{panels_csv, render_panels_svg};
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

    fn phi_figure<'a>(series: &'a [Series], markers: &'a [(String, f64)]) -> Figure<'a> {
        Figure {
            title: "Speciation: cloning probability",
            x_label: "branch time t",
            y_label: "φ(t)",
            series,
            markers,
        }
    }

    #[test]
    fn svg_is_produced() {
        let s = crate::report::tests::Scratch::new("plot");
        let out = OutDir::create(&s.0, false).unwrap();
        let (series, markers) = (
            phi_series(),
            [("t_S theory".into(), 1.386), ("F(1) crossing".into(), 1.45)],
        );
        let figure = phi_figure(&series, &markers);
        write_figure(&out, "plots/speciation", &figure, &Render::default()).unwrap();
        let path = s.0.join("plots/speciation.svg");
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

    /// The SVG keeps its size in units but places its curves on a grid 16 times finer: a
    /// smooth curve's points are not rounded to whole units (which draws stair steps).
    #[test]
    fn svg_places_curves_below_a_unit() {
        let series = [Series::line(
            "sine",
            (0..400)
                .map(|i| (i as f64 * 0.01, (i as f64 * 0.01).sin()))
                .collect(),
        )];
        let render = Render::sized(Some((600, 400)), None);
        let svg = render_svg(&phi_figure(&series, &[]), &render).unwrap();
        let head = &svg[..svg.find('>').unwrap()];
        let sub = SVG_SUBUNITS;
        assert!(
            head.contains(r#"width="600" height="400""#)
                && head.contains(&format!("viewBox=\"0 0 {} {}\"", 600 * sub, 400 * sub)),
            "{head}"
        );
        // The curve's y coordinates, in units: many fall between whole units.
        let line = svg
            .split("<polyline")
            .map(|p| &p[..p.find("/>").unwrap_or(p.len())])
            .max_by_key(|p| p.len())
            .unwrap();
        let points = &line[line.find("points=\"").unwrap() + 8..];
        let ys: Vec<f64> = points[..points.find('"').unwrap()]
            .split_whitespace()
            .filter_map(|p| p.split_once(',')?.1.parse().ok())
            .collect();
        assert!(ys.len() > 300, "{}", ys.len());
        let fractional = ys.iter().filter(|&&y| y % f64::from(sub) != 0.0).count();
        assert!(fractional > ys.len() / 2, "{fractional} of {}", ys.len());
    }

    /// The PNG decodes to the plot's size, and the embedded font draws the title: its band holds
    /// dark pixels (a missing font would leave it white).
    #[test]
    fn png_is_produced_with_text() {
        let series = phi_series();
        let markers = [("t_S theory".to_string(), 1.386)];
        let figure = phi_figure(&series, &markers);
        let render = Render {
            legend_outside: false,
            ..Render::default()
        };
        let bytes = render_png(&figure, &render).unwrap();
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

    /// At 3 × 96 dpi the PNG has 3 × the pixels, records its dpi, and is the 96-dpi image
    /// scaled: the share of dark pixels (text, lines) stays within a few per cent.
    #[test]
    fn png_resolution_scales_the_same_layout() {
        let series = phi_series();
        let markers = [("t_S theory".to_string(), 1.386)];
        let figure = phi_figure(&series, &markers);
        let decode = |dpi: u32| {
            let render = Render::sized(Some((500, 300)), Some(dpi));
            let bytes = render_png(&figure, &render).unwrap();
            let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
                .read_info()
                .unwrap();
            let dims = reader.info().pixel_dims.unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            let dark = buf.chunks(3).filter(|p| p.iter().all(|&c| c < 160)).count();
            (
                (info.width, info.height),
                dims.xppu,
                dark as f64 / f64::from(info.width * info.height),
            )
        };
        let (size1, ppm1, dark1) = decode(96);
        let (size3, ppm3, dark3) = decode(288);
        assert_eq!(size1, (500, 300));
        assert_eq!(size3, (1500, 900));
        assert_eq!((ppm1, ppm3), (3780, 11339));
        assert!(
            (dark3 / dark1 - 1.0).abs() < 0.35,
            "dark share {dark1} at 96 dpi, {dark3} at 288"
        );
    }

    /// Panels: one title, each panel's heading and axis labels, the legends in one column
    /// (the same x), and a CSV whose rows name their panel.
    #[test]
    fn panels_have_their_own_axes_and_one_legend_column() {
        let a = [Series::points("purity", vec![(0.0, 0.5), (1.0, 0.9)])];
        let b = [Series {
            style: Style::LinePoints,
            ..Series::line(
                "a much longer label of the spread",
                vec![(0.0, 2.0), (1.0, 1.0)],
            )
        }];
        let panels = [
            Figure {
                title: "first panel",
                x_label: "t",
                y_label: "purity axis",
                series: &a,
                markers: &[],
            },
            Figure {
                title: "second panel",
                x_label: "t",
                y_label: "spread axis",
                series: &b,
                markers: &[],
            },
        ];
        let p = Panels {
            title: "both",
            panels: &panels,
        };
        let svg = render_panels_svg(&p, &Render::default()).unwrap();
        for text in [
            "both",
            "first panel",
            "second panel",
            "purity axis",
            "spread axis",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        // The x of the text whose content is `label`.
        let x_of = |label: &str| -> Option<String> {
            svg.split("<text").skip(1).find_map(|t| {
                let body = &t[t.find('>')? + 1..];
                (body[..body.find("</text>")?].trim() == label)
                    .then(|| {
                        t.split("x=\"")
                            .nth(1)?
                            .split('"')
                            .next()
                            .map(str::to_string)
                    })
                    .flatten()
            })
        };
        assert!(x_of("purity").is_some(), "no legend entry purity");
        assert_eq!(x_of("purity"), x_of("a much longer label of the spread"));
        let (w, h) = Render::default().panel_dims(2);
        assert!(svg.contains(&format!("width=\"{w}\" height=\"{h}\"")));
        let csv = panels_csv(&p);
        assert!(csv.starts_with("series,style,x,y,error,panel\n"), "{csv}");
        assert!(csv.contains("purity,points,1,0.9,,first panel\n"), "{csv}");
        assert!(csv.contains(",line-points,0,2,,second panel\n"), "{csv}");
    }

    /// An x-band widens the x range by its error (not the y range), and integer keys get whole
    /// ticks without decimals.
    #[test]
    fn x_bands_and_integer_ticks() {
        let series = [
            // (y in [0, 1], so that a tick label in [9, 26] is an x tick's)
            Series::points("m", vec![(10.0, 0.0), (20.0, 1.0)]),
            Series {
                style: Style::XBand,
                ..Series::points("t_S", vec![(21.0, 0.5)]).with_error(vec![4.0])
            },
        ];
        let figure = Figure {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: &series,
            markers: &[],
        };
        let render = Render {
            integer_x: true,
            ..Render::default()
        };
        let svg = render_svg(&figure, &render).unwrap();
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| {
                let body = &t[t.find('>')? + 1..];
                Some(body[..body.find("</text>")?].trim())
            })
            .collect();
        let x_ticks: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| t.parse::<f64>().is_ok_and(|v| (9.0..=26.0).contains(&v)))
            .collect();
        assert!(x_ticks.len() >= 3, "{texts:?}");
        assert!(!x_ticks.iter().any(|t| t.contains('.')), "{texts:?}");
        // Without the band the axis would end near 21.3.
        let top = x_ticks
            .iter()
            .filter_map(|t| t.parse::<f64>().ok())
            .fold(0.0, f64::max);
        assert!(top >= 24.0, "the band reaches x = 25: {texts:?}");
        assert!(figure_csv(&figure).contains("t_S,x-band,21,0.5,4\n"));
    }

    #[test]
    fn degenerate_inputs_still_render() {
        // No data, constant data, all-NaN, single point.
        let svg = |series: &[Series], markers: &[(String, f64)]| {
            let figure = Figure {
                title: "t",
                x_label: "x",
                y_label: "y",
                series,
                markers,
            };
            render_svg(&figure, &Render::default()).unwrap()
        };
        svg(&[], &[]);
        svg(&[Series::line("a", vec![(f64::NAN, 1.0)])], &[]);
        let one = svg(
            &[Series::points("a", vec![(2.0, 3.0)])],
            &[("m".into(), f64::INFINITY)],
        );
        assert!(!one.contains("NaN") && !one.contains("inf"));
        assert_eq!(range([5.0, 5.0].into_iter(), 0.1), (4.5, 5.5));
    }
}
