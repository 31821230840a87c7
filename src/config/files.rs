//! The files a study reads and the dimensions they imply, both from the keys' declarations
//! ([`super::keys::KEYS`]): a key whose value may name a file says which and how its shape
//! implies d.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::keys::{KEYS, Shape};
use crate::config::Config;

impl Config {
    /// Every file a study of this config reads, with the key that names it.
    pub fn input_files(&self) -> Vec<(&'static str, &Path)> {
        KEYS.iter()
            .filter_map(|k| Some((k.name, (k.file)(self)?)))
            .collect()
    }

    /// The dimensions the model's parts imply, each with the setting it comes from: U's
    /// diagonal and every file whose shape implies d (`read`: files already read, with their
    /// (rows, columns); the others are read here).
    pub fn implied_dims(&self, read: &[(&Path, (usize, usize))]) -> Result<Vec<(String, usize)>> {
        let shape_of = |what: &str, p: &Path| -> Result<(usize, usize)> {
            if let Some((_, s)) = read.iter().find(|(r, _)| *r == p) {
                return Ok(*s);
            }
            let m = crate::io::read_matrix(p).context(what.to_string())?;
            Ok((m.nrows(), m.ncols()))
        };
        let mut dims = vec![];
        if let crate::model::USpec::Diag(v) = &self.u {
            dims.push(("u (diag)".to_string(), v.len()));
        }
        for k in KEYS {
            let Some(path) = (k.file)(self) else { continue };
            let what = match k.name.ends_with("-file") {
                true => format!("{} {}", k.name, path.display()),
                false => format!("{} file {}", k.name, path.display()),
            };
            let d = match k.shape {
                Shape::None => continue,
                Shape::Rows => shape_of(k.name, path)?.0,
                Shape::Len => crate::io::read_vector(path).context(k.name)?.len(),
                Shape::Columns { skip } => {
                    let cols = shape_of(k.name, path)?.1.saturating_sub(skip);
                    // Coupled modalities: the rows hold the joint vector (x, y), 2d values.
                    if self.coupling.is_some() {
                        ensure!(
                            cols.is_multiple_of(2),
                            "{what}: {cols} columns cannot hold the pair (x, y) of two coupled \
                             modalities (2d columns, x first)"
                        );
                        cols / 2
                    } else {
                        cols
                    }
                }
            };
            dims.push((what, d));
        }
        Ok(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config that names a file under every key that may name one (the coupling's schedule
    /// file exists in `dir`: parsing reads it).
    fn naming_every_file(dir: &Path) -> Config {
        let g = dir.join("g.csv");
        std::fs::write(&g, "0,0.5\n2,0.2\n").unwrap();
        Config {
            u: "file:u.npy".parse().unwrap(),
            q: "file:q.npy".parse().unwrap(),
            mean: "file:m.npy".parse().unwrap(),
            within_cov: Some("file:w.npy".parse().unwrap()),
            coupling: Some(format!("additive:file:{}", g.display()).parse().unwrap()),
            mixture_file: Some("mix.npy".into()),
            train_file: Some("train.npy".into()),
            train_labels: Some("labels.npy".into()),
            ..Config::default()
        }
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("regimes-keys-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Each key's file accessor reads its own key.
    #[test]
    fn the_files_a_study_reads_are_named_by_their_keys() {
        let dir = scratch("files");
        let c = naming_every_file(&dir);
        let files: Vec<(&str, String)> = c
            .input_files()
            .into_iter()
            .map(|(k, p)| (k, p.display().to_string()))
            .collect();
        let g = dir.join("g.csv").display().to_string();
        let want = [
            ("u", "u.npy"),
            ("q", "q.npy"),
            ("mean", "m.npy"),
            ("within-cov", "w.npy"),
            ("coupling", &g),
            ("mixture-file", "mix.npy"),
            ("train-file", "train.npy"),
            ("train-labels", "labels.npy"),
        ];
        let want: Vec<(&str, String)> = want.iter().map(|(k, p)| (*k, p.to_string())).collect();
        assert_eq!(files, want);
        assert!(Config::default().input_files().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    // The Python package derives its array keys from KEYS (`config_keys` in python/src/lib.rs);
    // python/tests checks them and its stubs against this declaration.
}
