//! The encodings an output directory writes: text, pretty JSON, CSV (numbers at full precision)
//! and f32 `.npy`.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use serde::Serialize;

use super::OutDir;

impl OutDir {
    /// Write a UTF-8 text file.
    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        self.write_bytes(name, text.as_bytes())
    }

    /// Write `value` as pretty-printed JSON (with a final newline). Non-finite f64 become `null`
    /// (serde_json's rule); store such values as strings if they matter.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let mut text = serde_json::to_string_pretty(value)
            .with_context(|| format!("cannot serialise {name}"))?;
        text.push('\n');
        self.write_text(name, &text)
    }

    /// Write a CSV file: one header line, then one line per row. Numbers are written with the
    /// shortest representation that reads back to the same f64 (full precision); NaN is written
    /// as `nan` and infinities as `inf` / `-inf` (read as such by numpy, pandas and R). Every row
    /// must have as many values as the header.
    pub fn write_csv(
        &self,
        name: &str,
        header: &[&str],
        rows: impl IntoIterator<Item = Vec<f64>>,
    ) -> Result<PathBuf> {
        let mut text = String::new();
        text.push_str(&header.join(","));
        text.push('\n');
        for (i, row) in rows.into_iter().enumerate() {
            ensure!(
                row.len() == header.len(),
                "{name}: row {i} has {} values but the header has {} columns",
                row.len(),
                header.len()
            );
            for (j, x) in row.iter().enumerate() {
                if j > 0 {
                    text.push(',');
                }
                text.push_str(&csv_number(*x));
            }
            text.push('\n');
        }
        self.write_text(name, &text)
    }

    /// A CSV whose first columns are names (a class, a strategy, a mode: written as text,
    /// quoted where needed) and the rest numbers, as [`OutDir::write_csv`] writes them.
    pub fn write_csv_named(
        &self,
        name: &str,
        (names, numbers): (&[&str], &[&str]),
        rows: impl IntoIterator<Item = (Vec<String>, Vec<f64>)>,
    ) -> Result<PathBuf> {
        let mut text = names
            .iter()
            .chain(numbers)
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
        for (i, (labels, values)) in rows.into_iter().enumerate() {
            ensure!(
                labels.len() == names.len() && values.len() == numbers.len(),
                "{name}: row {i} has {} names and {} values but the header has {} and {}",
                labels.len(),
                values.len(),
                names.len(),
                numbers.len()
            );
            let quote = |s: &str| {
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_string()
                }
            };
            let cells: Vec<String> = labels
                .iter()
                .map(|l| quote(l))
                .chain(values.iter().map(|&x| csv_number(x)))
                .collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        self.write_text(name, &text)
    }

    /// Write `data` (C order) as an f32 `.npy` array of the given shape.
    pub fn write_npy_f32(&self, name: &str, shape: &[usize], data: &[f32]) -> Result<PathBuf> {
        self.write_bytes(name, &crate::io::encode_npy(name, shape, data)?)
    }
}

fn csv_number(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Whole numbers (counts, indices) as integers; else Debug: shortest round-trip digits,
        // exponent for very large or small magnitudes.
        if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
            format!("{}", x as i64)
        } else {
            format!("{x:?}")
        }
    }
}
