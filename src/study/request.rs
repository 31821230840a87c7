//! What a front end asks for, made into what the driver runs: the config resolved from its
//! layers (defaults or a preset ← a TOML file ← keys given on top), and the request policy —
//! the preflight, the scale-out options checked against the study and each other, a sweep's
//! axes, the engine a resumed run continues on — that turns a resolved config and the
//! invocation's options into a [`Request`] or a [`SweepRequest`]. The CLI (flags) and the Python package (keyword arguments) both come here,
//! so that they parse and print only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::{Map, Value};

use super::Kind;
use super::driver::Request;
use super::preflight::{self, Asked};
use super::sweep::{Axis, Plan, SweepRequest};
use crate::config::{Backend, Config, read_config_file};
use crate::io::read_matrix;
use crate::measure::{Every, Shard};

/// The layers a study's config is resolved from.
#[derive(Clone, Debug, Default)]
pub struct Layers<'a> {
    /// A named preset under the file (`Config::preset`); None: the defaults.
    pub preset: Option<&'a str>,
    /// A TOML file of keys over the preset.
    pub file: Option<&'a Path>,
    /// Keys over the file (flags, keyword arguments): kebab-case, with their values as the
    /// config serialises them.
    pub keys: Map<String, Value>,
    /// What `keys` are, in errors ("flags", "keyword arguments").
    pub source: &'a str,
}

impl Layers<'_> {
    /// The config: preset (or defaults) ← file ← keys, with d inferred from the model's files
    /// when no layer sets it, N from the training file, and every key validated.
    pub fn resolve(&self) -> Result<Config> {
        self.resolve_without(&[])
    }

    /// [`Layers::resolve`] with the file's `skip` keys left out (keys another layer reads, such
    /// as a sweep's `over`).
    pub fn resolve_without(&self, skip: &[&str]) -> Result<Config> {
        let mut c = match self.preset {
            Some(name) => Config::preset(name)?,
            None => Config::default(),
        };
        let given = |k: &str| self.keys.get(k).is_some_and(|v| !v.is_null());
        let mut dim_given = given("dim") || c.dim != Config::default().dim;
        let mut in_file: Vec<String> = vec![];
        if let Some(path) = self.file {
            let mut text = read_config_file(path)?;
            if !skip.is_empty()
                && let Ok(mut t) = toml::from_str::<toml::Table>(&text)
            {
                t.retain(|k, _| !skip.contains(&k));
                text = toml::to_string(&t)?;
            }
            if let Ok(t) = toml::from_str::<toml::Table>(&text) {
                dim_given |= t.contains_key("dim");
                in_file = t.keys().cloned().collect();
            }
            c = c.overlay_toml(&text, &path.display().to_string())?;
        }
        let mut keys = self.keys.clone();
        keys.retain(|_, v| !v.is_null());
        c = c.overlay(keys, self.source)?;
        c = super::scheme::default_grid(c, |k| given(k) || in_file.iter().any(|f| f == k));
        // The training file is read once here: its columns imply d, its rows fix N.
        let train_shape = match &c.train_file {
            Some(p) => {
                let m = read_matrix(p).context("train-file")?;
                Some((p.clone(), m.nrows(), m.ncols()))
            }
            None => None,
        };
        let read: Vec<(&Path, (usize, usize))> = train_shape
            .iter()
            .map(|(p, rows, cols)| (p.as_path(), (*rows, *cols)))
            .collect();
        let implied = c.implied_dims(&read)?;
        if let Some((first, d)) = implied.first() {
            if let Some((other, e)) = implied.iter().find(|(_, e)| e != d) {
                anyhow::bail!("{first} implies d = {d} but {other} implies d = {e}");
            }
            if !dim_given {
                c.dim = *d;
            }
        }
        if let Some((path, n, _)) = train_shape {
            if let Some(given) = c.n_train {
                ensure!(
                    n == given,
                    "n-train: {given} conflicts with train-file {}, which holds {n} points (omit \
                     n-train)",
                    path.display()
                );
            }
            c.n_train = Some(n);
        }
        c.validate()?;
        Ok(c)
    }

    /// The keys given on top of the file.
    pub fn given(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The keys the file sets (a sweep's `over` aside).
    pub fn file_keys(&self) -> Vec<String> {
        self.file
            .and_then(|p| read_config_file(p).ok())
            .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
            .map(|t| t.keys().filter(|k| *k != "over").cloned().collect())
            .unwrap_or_default()
    }

    /// A sweep's axes: the file's `over` table, then `given` (each replacing the file's axis
    /// of the same key).
    pub fn axes(&self, given: Vec<Axis>) -> Result<Vec<Axis>> {
        let mut axes = vec![];
        if let Some(path) = self.file {
            let text = read_config_file(path)?;
            if let Ok(t) = toml::from_str::<toml::Table>(&text)
                && let Some(over) = t.get("over")
            {
                let table = over.as_table().ok_or_else(|| {
                    anyhow!(
                        "{}: over must be a table, e.g. over = {{ q = [\"zero\"] }}",
                        path.display()
                    )
                })?;
                axes.extend(Axis::from_toml(table)?);
            }
        }
        for axis in given {
            axes.retain(|x: &Axis| x.key != axis.key);
            axes.push(axis);
        }
        Ok(axes)
    }
}

/// How one invocation runs and reports a study, beside its config.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The output directory.
    pub out: Option<PathBuf>,
    /// Write into a non-empty `out`.
    pub force: bool,
    /// No progress or notes on stderr.
    pub quiet: bool,
    pub shard: Option<Shard>,
    pub every: Option<Every>,
    /// One slice per GPU adapter (`all`, or indices and names).
    pub devices: Option<String>,
    /// The config keys given explicitly (flags, keyword arguments): one the study never reads
    /// is refused.
    pub given: Vec<String>,
    /// The keys a config file set: one the study never reads is warned about.
    pub file_keys: Vec<String>,
}

impl Options {
    fn asked(&self) -> Asked<'_> {
        Asked {
            flags: &self.given,
            file_keys: &self.file_keys,
            out: self.out.as_deref(),
            shard: self.shard.is_some(),
            every: self.every,
            devices: self.devices.is_some(),
        }
    }
}

/// The request of a study of `kind` on the resolved `cfg`: the preflight passed (its warnings
/// kept for the report) and the scale-out options checked.
pub fn study(kind: Kind, cfg: Config, opts: Options) -> Result<Request> {
    let warnings = preflight::preflight(kind, &cfg, &opts.asked())?;
    preflight::scale_out(kind, &cfg, &opts.asked())?;
    Ok(Request {
        kind,
        cfg,
        out: opts.out,
        force: opts.force,
        quiet: opts.quiet,
        shard: opts.shard,
        every: opts.every,
        devices: opts.devices,
        resume: false,
        warnings,
    })
}

/// The request of a sweep of `kind` over `axes` around the resolved `base`: one process, one
/// engine, point by point into `out` (required); `--devices` and checkpoints are refused.
pub fn sweep(kind: Kind, base: Config, axes: &[Axis], opts: Options) -> Result<SweepRequest> {
    let warnings = preflight::preflight(kind, &base, &opts.asked())?;
    for (flag, given) in [
        ("devices", opts.devices.is_some()),
        ("checkpoint-every", opts.every.is_some()),
    ] {
        ensure!(
            !given,
            "--{flag} is not supported by `sweep` (it resumes point by point; run shards with \
             --shard I/N instead)"
        );
    }
    let out = opts
        .out
        .ok_or_else(|| anyhow!("sweep needs --out DIR (one directory per point)"))?;
    let plan = Plan::new(kind, &base, axes)?;
    Ok(SweepRequest {
        plan,
        out,
        force: opts.force,
        quiet: opts.quiet,
        shard: opts.shard,
        warnings,
    })
}

/// The study named `name` for a sweep, with the message both front ends give.
pub fn sweep_kind(name: &str) -> Result<Kind> {
    Kind::from_name(name)
        .map_err(|e| anyhow!("{e}: sweep one of theory, run, speciation, collapse"))
}

/// The engine a resumed run continues on, where it differs from the one it started on (the
/// engine is not part of the study).
#[derive(Clone, Debug, Default)]
pub struct EngineOverrides {
    pub backend: Option<Backend>,
    pub adapter: Option<String>,
    pub threads: Option<usize>,
}

impl EngineOverrides {
    fn apply(&self, cfg: &mut Config) -> Result<()> {
        if let Some(b) = self.backend {
            cfg.backend = b;
        }
        if self.adapter.is_some() {
            cfg.adapter = self.adapter.clone();
        }
        if self.threads.is_some() {
            cfg.threads = self.threads;
        }
        cfg.validate()
    }
}

/// What `resume` continues: a study from its checkpoint, or a sweep from its completed points.
pub enum Resumed {
    Study(Request),
    Sweep(SweepRequest),
}

/// The request that continues the interrupted run or sweep in `dir`, on `engine`.
pub fn resume(dir: &Path, quiet: bool, engine: EngineOverrides) -> Result<Resumed> {
    if super::sweep::is_sweep(dir) {
        let mut req = super::sweep::resume_request(dir, quiet)?;
        // The engine applies to every point left (the config hash ignores it).
        for cfg in std::iter::once(&mut req.plan.base)
            .chain(req.plan.points.iter_mut().filter_map(|p| p.cfg.as_mut()))
        {
            engine.apply(cfg)?;
        }
        return Ok(Resumed::Sweep(req));
    }
    let mut req = super::driver::resume_request(dir, quiet)?;
    if let Some(b) = engine.backend
        && b != req.cfg.backend
    {
        req.warnings.push(format!(
            "continuing on --backend {} (the run started with {}): CPU and GPU agree to f32 \
             round-off, so the result is not bit-identical to an uninterrupted run",
            b.name(),
            req.cfg.backend.name()
        ));
    }
    engine.apply(&mut req.cfg)?;
    Ok(Resumed::Study(req))
}
