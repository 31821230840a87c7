//! Class labels of training points (`--train-labels`): whole numbers, one per point, mapped to
//! dense class indices 0..K in ascending order of the label values.

use std::path::Path;

use anyhow::{Result, anyhow, ensure};

use crate::io::read_vector;

/// The classes of N training points.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    /// Class index (0..K) of each point.
    pub class: Vec<u32>,
    /// The label value of each class, ascending (class k is `values[k]` in the file).
    pub values: Vec<i64>,
}

/// More classes than this are refused: the class-level pair histogram is K×K per branch point.
pub const MAX_CLASSES: usize = 1024;

impl Labels {
    /// Reads labels (.npy of integers or floats holding whole numbers, or CSV/text; a vector)
    /// for `n` training points.
    pub fn from_file(path: &Path, n: usize) -> Result<Labels> {
        let v = read_vector(path).map_err(|e| anyhow!("train-labels: {e:#}"))?;
        Labels::from_values(v.as_slice(), n)
            .map_err(|e| anyhow!("train-labels {}: {e:#}", path.display()))
    }

    /// Validates label values: one per training point, whole numbers, at least two classes.
    pub fn from_values(values: &[f64], n: usize) -> Result<Labels> {
        ensure!(
            values.len() == n,
            "{} labels for {n} training points (one label per point is needed)",
            values.len()
        );
        let mut ints = Vec::with_capacity(n);
        for (i, &x) in values.iter().enumerate() {
            ensure!(
                x.is_finite() && x.fract() == 0.0 && x.abs() < 2f64.powi(53),
                "label {i} is {x}, not a whole number (labels name classes: 0, 1, 2, …)"
            );
            ints.push(x as i64);
        }
        let mut distinct = ints.clone();
        distinct.sort_unstable();
        distinct.dedup();
        ensure!(
            distinct.len() >= 2,
            "every point has the label {}: class-level quantities need at least two classes",
            distinct.first().copied().unwrap_or(0)
        );
        ensure!(
            distinct.len() <= MAX_CLASSES,
            "{} classes; at most {MAX_CLASSES} are supported",
            distinct.len()
        );
        let class = ints
            .iter()
            .map(|v| distinct.binary_search(v).map_or(0, |k| k as u32))
            .collect();
        Ok(Labels {
            class,
            values: distinct,
        })
    }

    /// Number of classes K.
    pub fn classes(&self) -> usize {
        self.values.len()
    }

    /// Points per class.
    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes()];
        for &k in &self.class {
            c[k as usize] += 1;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_to_dense_classes_and_bad_input_is_refused() {
        let l = Labels::from_values(&[7.0, -1.0, 7.0, 3.0], 4).unwrap();
        assert_eq!(l.values, vec![-1, 3, 7]);
        assert_eq!(l.class, vec![2, 0, 2, 1]);
        assert_eq!(l.counts(), vec![1, 1, 2]);
        let e = |v: &[f64], n| format!("{:#}", Labels::from_values(v, n).unwrap_err());
        assert!(
            e(&[0.0, 1.0], 3).contains("2 labels for 3"),
            "{}",
            e(&[0.0, 1.0], 3)
        );
        assert!(e(&[0.0, 1.5], 2).contains("not a whole number"));
        assert!(e(&[0.0, f64::NAN], 2).contains("not a whole number"));
        assert!(e(&[4.0, 4.0, 4.0], 3).contains("at least two classes"));
    }
}
