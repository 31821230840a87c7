//! Figures of several panels stacked under one title, each with its own axes (quantities of
//! different units never share an axis), their legends in one column.

use anyhow::Result;
use plotters::prelude::*;

use super::draw::{Px, draw, draw_panels};
use super::{Figure, OutDir, Render, content_png, content_svg, figure_csv};

/// Several figures stacked as panels under one title, sharing a size and a resolution: each
/// panel has its own axes, labels and legend (quantities of different units, never on one axis).
pub struct Panels<'a> {
    pub title: &'a str,
    pub panels: &'a [Figure<'a>],
}

/// What is drawn: one figure, or panels.
#[derive(Clone, Copy)]
pub(super) enum Content<'a> {
    One(&'a Figure<'a>),
    Panels(&'a Panels<'a>),
}

impl Content<'_> {
    /// The render with the content's size: panels are taller by default.
    pub(super) fn sized(self, render: &Render) -> Render {
        match self {
            Content::One(_) => render.clone(),
            Content::Panels(p) => Render {
                size: Some(render.panel_dims(p.panels.len())),
                ..render.clone()
            },
        }
    }

    pub(super) fn draw<DB: DrawingBackend>(
        self,
        root: DrawingArea<DB, plotters::coord::Shift>,
        render: &Render,
        px: Px,
    ) -> Result<()> {
        match self {
            Content::One(f) => draw(root, f, render, px),
            Content::Panels(p) => draw_panels(root, p, render, px),
        }
    }
}

/// Render panels to an SVG document.
pub fn render_panels_svg(panels: &Panels, render: &Render) -> Result<String> {
    content_svg(Content::Panels(panels), render)
}

/// Render panels to PNG bytes.
pub fn render_panels_png(panels: &Panels, render: &Render) -> Result<Vec<u8>> {
    content_png(Content::Panels(panels), render)
}

/// What panels draw, as one long CSV: [`figure_csv`]'s rows of each panel (x and y on that
/// panel's own axes, named in its title) with a last column `panel`, the panel's title.
pub fn panels_csv(panels: &Panels) -> String {
    let mut out = String::from("series,style,x,y,error,panel\n");
    for f in panels.panels {
        let csv = figure_csv(f);
        let title = if f.title.contains([',', '"']) {
            format!("\"{}\"", f.title.replace('"', "\"\""))
        } else {
            f.title.to_string()
        };
        for row in csv.lines().skip(1) {
            out += &format!("{row},{title}\n");
        }
    }
    out
}

/// Write panels as `stem.svg` and `stem.png` in `out`, with their data as `stem.data.csv`.
pub fn write_panels(out: &OutDir, stem: &str, panels: &Panels, render: &Render) -> Result<()> {
    out.write_text(&format!("{stem}.svg"), &render_panels_svg(panels, render)?)?;
    out.write_bytes(&format!("{stem}.png"), &render_panels_png(panels, render)?)?;
    out.write_text(&format!("{stem}.data.csv"), &panels_csv(panels))?;
    Ok(())
}
