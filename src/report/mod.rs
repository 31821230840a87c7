//! Outputs people and other tools read: an output directory written atomically (JSON, CSV, NPY,
//! text, SVG plots), a progress bar, and aligned text tables.
//!
//! Every file goes to a temporary file in the same directory first and is renamed into place, so
//! a reader (or a crash) never sees half a file.

pub mod console;
mod lock;
mod outdir;
mod plot;
mod progress;

pub use lock::{Holder, LOCK, Lock};
pub use outdir::{
    CHECKPOINT_DIR, MANIFEST, OutDir, run_token, verify_complete, verify_listed, write_atomic,
};
pub use plot::{
    Figure, Panels, Render, SampleSet, Series, Style, parse_figure_size, render_png, render_svg,
    typeset, write_figure, write_panels, write_samples_figure,
};
pub use progress::{Meter, Progress, Reading, duration, si};

/// A two-column table, keys left-aligned and padded to the widest key:
///
/// ```text
/// t_S (theory)   2.079
/// t_S (measured) 2.08 ± 0.01
/// ```
///
/// Values spanning several lines are indented under the value column.
pub fn format_table(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let mut lines = v.lines();
        let first = lines.next().unwrap_or("");
        let pad = width - k.chars().count();
        let line = format!("{k}{}  {first}", " ".repeat(pad));
        out.push_str(line.trim_end());
        out.push('\n');
        for rest in lines {
            let line = format!("{}  {rest}", " ".repeat(width));
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// `text` after `head` (a padded name), wrapped at `width` columns with the continuation lines
/// indented under the text (clap would wrap them flush left).
pub fn hanging(head: &str, text: &str, width: usize) -> String {
    let indent = head.chars().count();
    let mut out = head.to_string();
    let mut col = indent;
    for (i, word) in text.split_whitespace().enumerate() {
        let len = word.chars().count();
        if i > 0 && col + 1 + len > width {
            out += &format!("\n{}", " ".repeat(indent));
            col = indent;
        } else if i > 0 {
            out.push(' ');
            col += 1;
        }
        out += word;
        col += len;
    }
    out
}

/// A value to 4 decimals, or "—" when there is none.
pub fn or_dash(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.4}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    pub(crate) struct Scratch(pub PathBuf);
    impl Scratch {
        pub(crate) fn new(name: &str) -> Self {
            let d =
                std::env::temp_dir().join(format!("regimes-report-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            Scratch(d)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn table_is_aligned() {
        let t = format_table(&[
            ("t_S".into(), "2.079".into()),
            ("collapse time".into(), "0.31\n(±0.01)".into()),
            ("é".into(), "".into()),
        ]);
        assert_eq!(
            t,
            "t_S            2.079\ncollapse time  0.31\n               (±0.01)\né\n"
        );
        assert_eq!(format_table(&[]), "");
    }
}
