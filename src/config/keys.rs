//! Every config key, declared once: its section (what it is about) and, for a key whose value may
//! name a file, that file and how its shape implies the dimension d. The fingerprint (the
//! sections that define a study), the engine and figure key sets, what each study reads (the
//! studies' `READS` lists), the files a study reads and the dimensions they imply all
//! follow from [`KEYS`]; a test checks it against the fields of [`Config`], so a new field
//! cannot be left out.

use std::path::Path;

use anyhow::{Context, Result, ensure};

use super::Config;

/// What a key is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The forward process and the target mixture.
    Model,
    /// The empirical target's training points.
    Target,
    /// How generation samples: seed, particles, steps, time grid, scheme, start.
    Sampling,
    /// What is measured, and when.
    Measurement,
    /// How a study runs, not what it measures.
    Engine,
    /// How figures are drawn, not what they show.
    Figure,
}

impl Section {
    /// Whether the section's keys define the study (and so its fingerprint): shards and
    /// checkpoints that differ only in engine or figure keys belong to the same study.
    pub const fn defines_study(self) -> bool {
        !matches!(self, Section::Engine | Section::Figure)
    }
}

/// How a file named by a key implies d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// It does not (a schedule, labels).
    None,
    /// A d × d matrix: its rows.
    Rows,
    /// d values.
    Len,
    /// Rows of `skip` + d values (a mixture's weight, then its mean); with coupled modalities
    /// the rows hold the pair (x, y), 2d values.
    Columns { skip: usize },
}

/// The file a key's value names, if any.
pub type FileOf = fn(&Config) -> Option<&Path>;

/// One config key (kebab-case, as in TOML, flags and summary.json).
#[derive(Clone, Copy)]
pub struct Key {
    pub name: &'static str,
    pub section: Section,
    /// The file its value names (`file:PATH` specs and path keys).
    pub file: FileOf,
    pub shape: Shape,
}

fn no_file(_: &Config) -> Option<&Path> {
    None
}

const fn key(name: &'static str, section: Section) -> Key {
    Key {
        name,
        section,
        file: no_file,
        shape: Shape::None,
    }
}

const fn file(name: &'static str, section: Section, file: FileOf, shape: Shape) -> Key {
    Key {
        name,
        section,
        file,
        shape,
    }
}

use Section::*;

/// Every key of [`Config`], in the order of its fields.
pub const KEYS: &[Key] = &[
    key("dim", Model),
    file("u", Model, |c| c.u.file().map(|p| p.as_path()), Shape::Rows),
    file("q", Model, |c| c.q.file().map(|p| p.as_path()), Shape::Rows),
    key("q-lambdas", Model),
    file(
        "mean",
        Model,
        |c| c.mean.file().map(|p| p.as_path()),
        Shape::Len,
    ),
    key("mean-norm2", Model),
    key("sigma", Model),
    file(
        "within-cov",
        Model,
        |c| c.within_cov.as_ref()?.file().map(|p| p.as_path()),
        Shape::Rows,
    ),
    file(
        "coupling",
        Model,
        |c| {
            c.coupling
                .as_ref()?
                .schedule()?
                .file
                .as_deref()
                .map(Path::new)
        },
        Shape::None,
    ),
    key("pairing", Model),
    key("pair-angle", Model),
    file(
        "mixture-file",
        Model,
        |c| c.mixture_file.as_deref(),
        Shape::Columns { skip: 1 },
    ),
    key("n-train", Target),
    file(
        "train-file",
        Target,
        |c| c.train_file.as_deref(),
        Shape::Columns { skip: 0 },
    ),
    file(
        "train-labels",
        Target,
        |c| c.train_labels.as_deref(),
        Shape::None,
    ),
    key("seed", Sampling),
    key("particles", Sampling),
    key("steps", Sampling),
    key("t-max", Sampling),
    key("scheme", Sampling),
    key("grid", Sampling),
    key("start", Sampling),
    key("backend", Engine),
    key("adapter", Engine),
    key("pairs", Measurement),
    key("branch-times", Measurement),
    key("entropy-times", Measurement),
    key("record-times", Measurement),
    key("entropy-samples", Measurement),
    key("batch", Engine),
    key("threads", Engine),
    key("steps-per-dispatch", Engine),
    key("save-samples", Measurement),
    key("figure-size", Figure),
    key("dpi", Figure),
];

/// The declaration of `name`, if it is a key.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a key that defines the study (not an engine or figure key; unknown names
/// do not).
pub fn defines_study(name: &str) -> bool {
    find(name).is_some_and(|k| k.section.defines_study())
}

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

    /// Each field of `Config` is declared once, and nothing else is.
    #[test]
    fn every_config_key_is_declared_once() {
        let mut declared: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        let mut fields = Config::keys();
        declared.sort_unstable();
        for w in declared.windows(2) {
            assert_ne!(w[0], w[1], "'{}' is declared twice", w[0]);
        }
        fields.sort();
        for f in &fields {
            assert!(
                declared.contains(&f.as_str()),
                "config key '{f}' is not declared in config::keys::KEYS"
            );
        }
        assert_eq!(declared, fields, "KEYS declares a key Config does not have");
    }

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
