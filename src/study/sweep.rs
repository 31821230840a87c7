//! Sweeps: a study run at every point of a Cartesian grid of config keys, in one process on one
//! engine, and overlays of study outputs (`regimes plot`).
//!
//! A sweep directory holds `sweep-plan.json` (the study, the axes and each point's directory and
//! config hash), one ordinary study directory per point (`p00_q=zero/`, …), and at the top
//! `sweep.json`, the tidy `sweep.csv` and the overlay figures, each with its CSV.
//!
//! Resuming is point by point: running the same sweep into the same directory again (or
//! `regimes resume DIR`) reuses every point whose directory holds a complete run of the same
//! config (its manifest complete, not stopped early) and runs the others afresh. `--shard I/N`
//! runs the I-th contiguous block of points; `regimes merge` copies the shards' point
//! directories into one sweep directory and writes its tables and figures.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Kind;
use super::backend::{Selected, select_engine};
use super::driver::{Request, run_on};
use super::fingerprint::config_hash;
use crate::config::Config;
use crate::measure::Shard;
use crate::report::write_atomic;
use crate::report::{Figure, Render, Series, Style, render_png_with, render_svg_with};

/// The plan file of a sweep directory.
pub const PLAN_FILE: &str = "sweep-plan.json";
/// The version of `sweep.json`'s keys.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

/// One swept key and its values, as given (`q=zero,optimal:1`, or a TOML array).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// The config key (kebab-case, as in TOML and the flags).
    pub key: String,
    /// Each value as the config reads it (a string such as `optimal:1`, or a number).
    pub values: Vec<Value>,
}

impl Axis {
    /// `KEY=V1,V2,…`: each value read as a TOML value when it is one (numbers, booleans), else
    /// as text (`zero`, `optimal:0.5`). Values holding commas need the TOML form.
    pub fn parse(text: &str) -> Result<Axis> {
        let (key, list) = text.split_once('=').ok_or_else(|| {
            anyhow!("--over {text}: expected KEY=V1,V2,… (e.g. --over q=zero,optimal:1)")
        })?;
        let key = key.trim().to_string();
        let values: Vec<Value> = list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(scalar)
            .collect();
        ensure!(!values.is_empty(), "--over {text}: no values");
        Ok(Axis { key, values })
    }

    /// From a TOML `over = { key = [v1, v2] }` table.
    pub fn from_toml(table: &toml::Table) -> Result<Vec<Axis>> {
        table
            .iter()
            .map(|(key, v)| {
                let list = match v {
                    toml::Value::Array(a) => a.clone(),
                    one => vec![one.clone()],
                };
                let values = list
                    .iter()
                    .map(|v| serde_json::to_value(v).map_err(|e| anyhow!("over.{key}: {e}")))
                    .collect::<Result<Vec<_>>>()?;
                ensure!(!values.is_empty(), "over.{key}: no values");
                Ok(Axis {
                    key: key.clone(),
                    values,
                })
            })
            .collect()
    }
}

/// A value of `--over` as TOML reads it, or as text.
fn scalar(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .filter(|v| !matches!(v, toml::Value::Table(_) | toml::Value::Datetime(_)))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// A value's name in tables, figures and directory names (text without quotes).
pub fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One point of the grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Point {
    pub index: usize,
    /// Its directory inside the sweep directory.
    pub dir: String,
    /// Each swept key with the name of its value, in axis order.
    pub params: Vec<(String, String)>,
    /// The point's config hash ([`config_hash`]): a reused directory must match it.
    pub config_hash: String,
    #[serde(skip)]
    pub cfg: Option<Config>,
}

/// The grid of a sweep: the study, its axes and its points.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub study: String,
    pub axes: Vec<Axis>,
    pub empirical: bool,
    /// The config every point starts from.
    pub base: Config,
    pub points: Vec<Point>,
}

impl Plan {
    /// The Cartesian grid of `axes` over `base` (the last axis varies fastest); every point's
    /// config validated, a value the key cannot take named.
    pub fn new(kind: Kind, base: &Config, empirical: bool, axes: &[Axis]) -> Result<Plan> {
        ensure!(
            !axes.is_empty(),
            "a sweep needs at least one --over KEY=V1,V2,…"
        );
        let known = Config::keys();
        for a in axes {
            ensure!(
                known.contains(&a.key),
                "--over {}: unknown config key (known keys: {})",
                a.key,
                known.join(", ")
            );
            ensure!(
                !kind.ignores().contains(&a.key.as_str()),
                "--over {}: `{}` does not read this key",
                a.key,
                kind.name()
            );
        }
        let total: usize = axes.iter().map(|a| a.values.len()).product();
        let mut points = Vec::with_capacity(total);
        for index in 0..total {
            let mut rest = index;
            let mut picks = vec![0; axes.len()];
            for (k, a) in axes.iter().enumerate().rev() {
                picks[k] = rest % a.values.len();
                rest /= a.values.len();
            }
            let mut cfg = base.clone();
            let mut params = vec![];
            for (a, &i) in axes.iter().zip(&picks) {
                let v = &a.values[i];
                cfg = set_key(cfg, &a.key, v)?;
                params.push((a.key.clone(), label(v)));
            }
            cfg.validate()
                .with_context(|| format!("sweep point {}", describe(&params)))?;
            let name: String = params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("_");
            let dir = format!("p{index:0w$}_{}", sanitize(&name), w = digits(total));
            points.push(Point {
                index,
                dir,
                params,
                config_hash: config_hash(kind.name(), &cfg),
                cfg: Some(cfg),
            });
        }
        Ok(Plan {
            study: kind.name().to_string(),
            axes: axes.to_vec(),
            empirical,
            base: base.clone(),
            points,
        })
    }

    pub fn kind(&self) -> Result<Kind> {
        Kind::from_name(&self.study)
    }

    /// The identity of the plan: the study and each point's directory and config hash.
    fn identity(&self) -> Vec<(String, String)> {
        self.points
            .iter()
            .map(|p| (p.dir.clone(), p.config_hash.clone()))
            .collect()
    }

    fn read(dir: &Path) -> Result<Plan> {
        let path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a sweep plan", path.display()))
    }
}

/// `key = v` on `cfg`: the value as given, else its text (`dim=8` is a number, `q=zero` text).
fn set_key(cfg: Config, key: &str, v: &Value) -> Result<Config> {
    let one = |v: Value| {
        let mut m = Map::new();
        m.insert(key.to_string(), v);
        cfg.clone().overlay(m, "--over")
    };
    match one(v.clone()) {
        Ok(c) => Ok(c),
        Err(e) => match v {
            Value::String(_) => Err(e),
            other => one(Value::String(label(other))).map_err(|_| e),
        },
    }
}

fn describe(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn digits(n: usize) -> usize {
    n.saturating_sub(1).max(1).to_string().len().max(2)
}

/// A directory name: letters, digits and `.-_=+` kept, anything else `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_=+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One invocation of a sweep.
#[derive(Clone)]
pub struct SweepRequest {
    pub plan: Plan,
    pub out: PathBuf,
    /// Replace a directory that holds another sweep (or other files).
    pub force: bool,
    pub quiet: bool,
    /// The block of points this process runs.
    pub shard: Option<Shard>,
    /// How figures are drawn (size).
    pub render: Render,
    /// Warnings found before the sweep started.
    pub warnings: Vec<String>,
}

/// What a sweep produced.
pub struct SweepReport {
    pub summary: Value,
    pub table: String,
    pub out: PathBuf,
    pub files: Vec<String>,
    /// Why it stopped before every point of its slice completed.
    pub stopped: Option<String>,
}

/// How a point's directory came to hold its results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    /// Run by this invocation.
    Run,
    /// A complete run of the same config found in its directory.
    Reused,
    /// Stopped early (interrupted); rerun the sweep to redo it.
    Stopped,
    /// Not in this shard, or not reached.
    Missing,
}

/// Runs the sweep: every point of the slice not already complete, on one engine; then the
/// tables and figures over every complete point.
pub fn run(req: &SweepRequest) -> Result<SweepReport> {
    let plan = &req.plan;
    let kind = plan.kind()?;
    let out = &req.out;
    prepare(out, plan, req.force)?;
    let started = Instant::now();
    let range = req
        .shard
        .unwrap_or(Shard::WHOLE)
        .range(plan.points.len() as u64);
    let mine: Vec<&Point> = plan.points[range.start as usize..range.end as usize]
        .iter()
        .collect();
    let mut status = vec![Status::Missing; plan.points.len()];
    let mut todo = vec![];
    for p in &mine {
        if complete(&out.join(&p.dir), &p.config_hash) {
            status[p.index] = Status::Reused;
        } else {
            todo.push(*p);
        }
    }
    let note = |s: &str| {
        if !req.quiet {
            eprintln!("{s}");
        }
    };
    note(&format!(
        "sweep: {} points of `{}` ({} here, {} reused, {} to run)",
        plan.points.len(),
        kind.name(),
        mine.len(),
        mine.len() - todo.len(),
        todo.len()
    ));
    for w in &req.warnings {
        note(&format!("warning: {w}"));
    }
    let mut engine: Option<Selected> = None;
    let mut backend = None;
    let mut stopped = None;
    let clock = Instant::now();
    for (k, p) in todo.iter().enumerate() {
        let cfg = p.cfg.clone().expect("a new plan holds its configs");
        if engine.is_none() && kind != Kind::Theory {
            engine = Some(select_engine(&cfg, req.quiet)?);
        }
        let point_req = Request {
            empirical: plan.empirical,
            out: Some(out.join(&p.dir)),
            force: true,
            quiet: true,
            ..Request::new(kind, cfg)
        };
        let report = match &engine {
            Some(e) => run_on(&point_req, e),
            None => super::driver::run(&point_req),
        }
        .with_context(|| format!("sweep point {} ({})", p.dir, describe(&p.params)))?;
        if let Some(e) = report.write_error {
            return Err(e.context(format!("sweep point {}", p.dir)));
        }
        if backend.is_none() {
            backend = report
                .summary
                .get("backend")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        if let Some(s) = report.stopped {
            status[p.index] = Status::Stopped;
            stopped = Some(format!("point {} ({}): {s}", p.dir, describe(&p.params)));
            break;
        }
        status[p.index] = Status::Run;
        let done = k + 1;
        let elapsed = clock.elapsed().as_secs_f64();
        let eta = elapsed / done as f64 * (todo.len() - done) as f64;
        note(&format!(
            "sweep: {done}/{} points run ({}), {} elapsed, ETA {}",
            todo.len(),
            describe(&p.params),
            crate::report::duration(elapsed),
            crate::report::duration(eta)
        ));
    }
    let entries = read_points(out, plan, &status)?;
    let extra = Extra {
        shard: req.shard.map(|s| s.to_string()),
        merged_from: None,
        wall_seconds: started.elapsed().as_secs_f64(),
        backend,
        warnings: req.warnings.clone(),
    };
    finish(out, plan, &status, &entries, extra, stopped, &req.render)
}

/// Creates `out` or checks that it holds this sweep (or nothing); writes the plan.
fn prepare(out: &Path, plan: &Plan, force: bool) -> Result<()> {
    if out.exists() {
        ensure!(
            out.is_dir(),
            "{} exists and is not a directory",
            out.display()
        );
        if out.join(PLAN_FILE).exists() {
            let old = Plan::read(out)?;
            if (old.study.as_str(), old.identity()) != (plan.study.as_str(), plan.identity()) {
                ensure!(
                    force,
                    "{} holds another sweep (other points or configs); choose another \
                     directory or pass --force to run this one there",
                    out.display()
                );
            }
        } else {
            let non_empty = std::fs::read_dir(out)?.next().is_some();
            ensure!(
                !non_empty || force,
                "output directory {} is not empty and holds no sweep; choose another one or \
                 pass --force",
                out.display()
            );
        }
    } else {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }
    write_atomic(out, PLAN_FILE, &pretty(plan)?, true)?;
    Ok(())
}

fn pretty(v: &impl Serialize) -> Result<Vec<u8>> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?).into_bytes())
}

/// Whether `dir` holds a complete run of the config hashed `hash`.
fn complete(dir: &Path, hash: &str) -> bool {
    let read = |name: &str| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).ok()
    };
    let (Some(manifest), Some(summary)) = (read(crate::report::MANIFEST), read("summary.json"))
    else {
        return false;
    };
    let done = manifest.get("complete") == Some(&Value::Bool(true))
        && summary.get("stopped_early").is_none_or(Value::is_null);
    let same = summary
        .get("config")
        .and_then(|c| serde_json::from_value::<Config>(c.clone()).ok())
        .zip(summary.get("command").and_then(Value::as_str))
        .is_some_and(|(cfg, cmd)| config_hash(cmd, &cfg) == hash);
    done && same
}

/// One study output to tabulate or overlay: its name, parameters and summary.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The legend name (`q=zero`).
    pub name: String,
    /// Its directory (relative to the sweep, or as given to `plot`).
    pub dir: String,
    pub params: Vec<(String, String)>,
    pub summary: Value,
}

fn read_summary(dir: &Path) -> Result<Value> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

fn read_points(out: &Path, plan: &Plan, status: &[Status]) -> Result<Vec<Entry>> {
    plan.points
        .iter()
        .filter(|p| matches!(status[p.index], Status::Run | Status::Reused))
        .map(|p| {
            Ok(Entry {
                name: describe(&p.params),
                dir: p.dir.clone(),
                params: p.params.clone(),
                summary: read_summary(&out.join(&p.dir))?,
            })
        })
        .collect()
}

/// What the top of a sweep records besides its points.
struct Extra {
    shard: Option<String>,
    merged_from: Option<Vec<String>>,
    wall_seconds: f64,
    backend: Option<String>,
    warnings: Vec<String>,
}

/// The keys of the summary envelope (not the study's result).
const ENVELOPE: [&str; 13] = [
    "schema_version",
    "command",
    "version",
    "seed",
    "backend",
    "wall_seconds",
    "shader_compile_seconds",
    "stopped_early",
    "fraction_done",
    "shard",
    "merged_from",
    "warnings",
    "config",
];

/// The study's result: the summary without its envelope.
fn result_of(summary: &Value) -> Map<String, Value> {
    let mut m = summary.as_object().cloned().unwrap_or_default();
    m.retain(|k, _| !ENVELOPE.contains(&k.as_str()));
    m
}

/// The headline scalars of a result (numbers, text, null; short number arrays such as an
/// interval as `key.0`, `key.1`), and the theory's.
fn headlines(summary: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let result = result_of(summary);
    for (k, v) in &result {
        flatten_scalar(k, v, &mut out);
    }
    if let Some(Value::Object(t)) = result.get("theory") {
        for (k, v) in t {
            flatten_scalar(&format!("theory.{k}"), v, &mut out);
        }
    }
    out
}

fn flatten_scalar(key: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Array(a) if a.len() <= 4 && a.iter().all(Value::is_number) => {
            for (i, x) in a.iter().enumerate() {
                out.insert(format!("{key}.{i}"), x.clone());
            }
        }
        Value::Array(_) | Value::Object(_) => {}
        scalar => {
            out.insert(key.to_string(), scalar.clone());
        }
    }
}

/// The series of a result: each top-level array of objects (`phi`, `excess_entropy`, …), each
/// named item's arrays (`modes[].phi` as `phi_common`, …) and the theory's s(t) curve.
fn series_of(summary: &Value) -> Vec<(String, Vec<Map<String, Value>>)> {
    let rows = |a: &[Value]| -> Option<Vec<Map<String, Value>>> {
        a.iter()
            .map(|v| {
                v.as_object().map(|o| {
                    let mut m = Map::new();
                    for (k, x) in o {
                        flatten_scalar(k, x, &mut m);
                    }
                    m
                })
            })
            .collect()
    };
    let mut out = vec![];
    let result = result_of(summary);
    for (k, v) in &result {
        let Value::Array(a) = v else { continue };
        if a.is_empty() {
            continue;
        }
        if let Some(r) = rows(a) {
            out.push((k.clone(), r));
        }
        for item in a {
            let (Some(name), Some(o)) =
                (item.get("name").and_then(Value::as_str), item.as_object())
            else {
                continue;
            };
            for (f, x) in o {
                if let Value::Array(inner) = x
                    && !inner.is_empty()
                    && let Some(r) = rows(inner)
                {
                    out.push((format!("{f}_{name}"), r));
                }
            }
        }
    }
    if let Some(Value::Array(a)) = result.get("theory").and_then(|t| t.get("s_curve"))
        && let Some(r) = rows(a)
        && !r.is_empty()
    {
        out.push(("s_curve".into(), r));
    }
    out
}

/// A CSV field: numbers in full precision, text quoted when it needs it, null empty.
fn field(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => quote(s),
        Some(other) => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row of a series: its columns and values.
type Row = Map<String, Value>;

/// The tidy long table: one row per point × series row; the swept keys, `point` and `series`
/// first, then every column any series has (empty where a series has none). The series
/// `summary` is each point's headline scalars.
pub fn tidy_csv(keys: &[String], entries: &[Entry]) -> String {
    let mut blocks: Vec<(&Entry, String, Vec<Row>)> = vec![];
    for e in entries {
        blocks.push((e, "summary".into(), vec![headlines(&e.summary)]));
        for (name, rows) in series_of(&e.summary) {
            blocks.push((e, name, rows));
        }
    }
    let mut columns: Vec<String> = vec![];
    for (_, _, rows) in &blocks {
        for r in rows {
            for k in r.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut s = String::new();
    let header: Vec<String> = keys
        .iter()
        .cloned()
        .chain(["point".into(), "series".into()])
        .chain(columns.iter().cloned())
        .map(|h| quote(&h))
        .collect();
    s += &header.join(",");
    s.push('\n');
    for (e, name, rows) in &blocks {
        for r in rows {
            let mut cells: Vec<String> = keys
                .iter()
                .map(|k| {
                    quote(
                        &e.params
                            .iter()
                            .find(|(p, _)| p == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            cells.push(quote(&e.dir));
            cells.push(quote(name));
            cells.extend(columns.iter().map(|c| field(r.get(c))));
            s += &cells.join(",");
            s.push('\n');
        }
    }
    s
}

/// The top of a sweep: sweep.json, sweep.csv and the overlay figures.
fn finish(
    out: &Path,
    plan: &Plan,
    status: &[Status],
    entries: &[Entry],
    extra: Extra,
    stopped: Option<String>,
    render: &Render,
) -> Result<SweepReport> {
    let kind = plan.kind()?;
    let keys: Vec<String> = plan.axes.iter().map(|a| a.key.clone()).collect();
    let mut files = vec![];
    write_atomic(out, "sweep.csv", tidy_csv(&keys, entries).as_bytes(), true)?;
    files.push("sweep.csv".to_string());
    let x_key = keys[0].clone();
    files.extend(overlay(
        out,
        "sweep",
        kind,
        entries,
        &x_key,
        &figure_note(plan),
        render,
    )?);
    let by_dir = |dir: &str| entries.iter().find(|e| e.dir == dir);
    let points: Vec<Value> = plan
        .points
        .iter()
        .map(|p| {
            let params: Map<String, Value> = p
                .params
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            serde_json::json!({
                "index": p.index,
                "dir": p.dir,
                "params": params,
                "config_hash": p.config_hash,
                "status": status[p.index],
                "headlines": by_dir(&p.dir).map(|e| Value::Object(headlines(&e.summary))),
            })
        })
        .collect();
    let done = status
        .iter()
        .filter(|s| matches!(s, Status::Run | Status::Reused))
        .count();
    let summary = serde_json::json!({
        "schema_version": SWEEP_SCHEMA_VERSION,
        "command": "sweep",
        "study": plan.study,
        "version": env!("CARGO_PKG_VERSION"),
        "axes": plan.axes,
        "points_total": plan.points.len(),
        "points_done": done,
        "complete": done == plan.points.len(),
        "stopped_early": stopped,
        "shard": extra.shard,
        "merged_from": extra.merged_from,
        "backend": extra.backend,
        "wall_seconds": extra.wall_seconds,
        "warnings": extra.warnings,
        "base_config": plan.base,
        "points": points,
        "files": files,
    });
    write_atomic(out, "sweep.json", &pretty(&summary)?, true)?;
    let mut all = vec!["sweep.json".to_string()];
    all.extend(files);
    Ok(SweepReport {
        table: table(plan, status, entries),
        summary,
        out: out.to_path_buf(),
        files: all,
        stopped,
    })
}

/// The parameters the points share, for figure titles: d, ‖m‖², U, Q, pairs (those not swept).
fn figure_note(plan: &Plan) -> String {
    let c = &plan.base;
    let swept = |k: &str| plan.axes.iter().any(|a| a.key == k);
    let mut parts = vec![];
    if !swept("dim") {
        parts.push(format!("d = {}", c.dim));
    }
    if !swept("mean-norm2") && !swept("dim") {
        parts.push(format!("‖m‖² = {}", c.mean_norm2()));
    }
    if !swept("u") {
        parts.push(format!("U = {}", c.u));
    }
    if !swept("q") {
        parts.push(format!("Q = {}", c.q));
    }
    if let Some(p) = c.pairs
        && !swept("pairs")
    {
        parts.push(format!("{p} pairs"));
    }
    parts.join(", ")
}

/// The human summary: one row per point with its headline.
fn table(plan: &Plan, status: &[Status], entries: &[Entry]) -> String {
    let kind = plan.kind().unwrap_or(Kind::Theory);
    let cols: &[(&str, &str, Option<&str>)] = match kind {
        Kind::Speciation => &[
            ("t_S theory", "t_s_theory", None),
            ("t_S measured", "t_s_measured", Some("t_s_measured_stderr")),
        ],
        Kind::Collapse => &[
            ("t_C theory", "t_c_theory", None),
            ("t̂_C measured", "t_c_measured", None),
        ],
        _ => &[
            ("t_S theory", "theory.t_s", None),
            ("t_C theory", "theory.t_c", None),
        ],
    };
    let mut s = String::new();
    let _ = write!(s, "{:<40} {:>8}", "point", "status");
    for (h, _, _) in cols {
        let _ = write!(s, " {h:>20}");
    }
    s.push('\n');
    for p in &plan.points {
        let _ = write!(
            s,
            "{:<40} {:>8}",
            describe(&p.params),
            status_name(status[p.index])
        );
        let h = entries
            .iter()
            .find(|e| e.dir == p.dir)
            .map(|e| headlines(&e.summary));
        for (_, key, err) in cols {
            let get = |k: &str| h.as_ref().and_then(|h| h.get(k)).and_then(Value::as_f64);
            let cell = super::pm(get(key), err.and_then(get));
            let _ = write!(s, " {cell:>20}");
        }
        s.push('\n');
    }
    s
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Run => "run",
        Status::Reused => "reused",
        Status::Stopped => "stopped",
        Status::Missing => "missing",
    }
}

/// The request that reruns the sweep in `dir` (its completed points reused).
pub fn resume_request(dir: &Path, quiet: bool) -> Result<SweepRequest> {
    let mut plan = Plan::read(dir)?;
    let kind = plan.kind()?;
    let axes = plan.axes.clone();
    let rebuilt = Plan::new(kind, &plan.base, plan.empirical, &axes)?;
    ensure!(
        rebuilt.identity() == plan.identity(),
        "{}: the sweep's points changed since it started (a file they read has other contents, \
         or this is another version of regimes); start it again with --force",
        dir.display()
    );
    plan = rebuilt;
    let shard = std::fs::read_to_string(dir.join("sweep.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v.get("shard").and_then(Value::as_str).map(str::to_string))
        .map(|s| s.parse::<Shard>().map_err(|e| anyhow!(e)))
        .transpose()?;
    Ok(SweepRequest {
        plan,
        out: dir.to_path_buf(),
        force: false,
        quiet,
        shard,
        render: Render::default(),
        warnings: vec![],
    })
}

/// Whether `dir` is a sweep directory.
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(PLAN_FILE).is_file()
}

/// `merge` of sweep shards: their point directories copied into `out`, which then holds the
/// whole sweep's tables and figures. Refuses shards of different sweeps, and points held twice
/// or by no shard, naming them.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool, render: &Render) -> Result<SweepReport> {
    let plans = dirs
        .iter()
        .map(|d| Plan::read(d).map(|p| (d, p)))
        .collect::<Result<Vec<_>>>()?;
    let (first_dir, plan) = &plans[0];
    for (d, p) in &plans[1..] {
        ensure!(
            (p.study.as_str(), p.identity()) == (plan.study.as_str(), plan.identity()),
            "{} and {} are shards of different sweeps",
            first_dir.display(),
            d.display()
        );
    }
    let mut owner: Vec<Option<&PathBuf>> = vec![None; plan.points.len()];
    for (d, p) in &plans {
        for pt in &p.points {
            if complete(&d.join(&pt.dir), &pt.config_hash) {
                if let Some(other) = owner[pt.index] {
                    bail!(
                        "point {} is in both {} and {}",
                        pt.dir,
                        other.display(),
                        d.display()
                    );
                }
                owner[pt.index] = Some(d);
            }
        }
    }
    let missing: Vec<&str> = plan
        .points
        .iter()
        .filter(|p| owner[p.index].is_none())
        .map(|p| p.dir.as_str())
        .collect();
    ensure!(
        missing.is_empty(),
        "no shard holds a complete run of point(s) {}",
        missing.join(", ")
    );
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(d) = dirs.iter().find(|d| same(d, out)) {
        bail!(
            "--out {} is the shard directory {}; give the merge a directory of its own",
            out.display(),
            d.display()
        );
    }
    prepare(out, plan, force)?;
    let mut status = vec![Status::Reused; plan.points.len()];
    for (p, d) in plan.points.iter().zip(&owner) {
        let d = d.expect("every point has a shard");
        let dest = out.join(&p.dir);
        if !complete(&dest, &p.config_hash) {
            let _ = std::fs::remove_dir_all(&dest);
            copy_dir(&d.join(&p.dir), &dest)?;
        }
        status[p.index] = Status::Reused;
    }
    let entries = read_points(out, plan, &status)?;
    let wall = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("sweep.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|v| v.get("wall_seconds").and_then(Value::as_f64))
        .sum();
    let backends: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("sweep.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|v| v.get("backend").and_then(Value::as_str).map(str::to_string))
        .fold(vec![], |mut acc, b| {
            if !acc.contains(&b) {
                acc.push(b);
            }
            acc
        });
    let extra = Extra {
        shard: None,
        merged_from: Some(dirs.iter().map(|d| d.display().to_string()).collect()),
        wall_seconds: wall,
        backend: (!backends.is_empty()).then(|| backends.join("; ")),
        warnings: vec![],
    };
    finish(out, plan, &status, &entries, extra, None, render)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        let name = e.file_name();
        if name == crate::report::LOCK {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// `regimes plot`: the outputs in `dirs` (study directories, merges, sweeps) of one study
/// kind, overlaid against `x_key` (default: the first key on which they differ). Figures go to
/// `stem_*.svg`/`.png`/`.csv`. Refuses mixed kinds, naming them.
pub fn plot(
    dirs: &[PathBuf],
    x_key: Option<&str>,
    stem: &Path,
    render: &Render,
) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<(Kind, Entry, Config)> = vec![];
    for d in dirs {
        if is_sweep(d) {
            let plan = Plan::read(d)?;
            for p in &plan.points {
                let dir = d.join(&p.dir);
                if dir.join("summary.json").is_file() {
                    entries.push(study_entry(&dir)?);
                }
            }
        } else {
            entries.push(study_entry(d)?);
        }
    }
    ensure!(!entries.is_empty(), "no study outputs to plot");
    let mut kinds: Vec<(Kind, Vec<String>)> = vec![];
    for (k, e, _) in &entries {
        match kinds.iter_mut().find(|(x, _)| x == k) {
            Some((_, ds)) => ds.push(e.dir.clone()),
            None => kinds.push((*k, vec![e.dir.clone()])),
        }
    }
    if kinds.len() > 1 {
        let named: Vec<String> = kinds
            .iter()
            .map(|(k, ds)| format!("{} ({})", k.name(), ds.join(", ")))
            .collect();
        bail!(
            "plot overlays outputs of one study; these are of different studies: {}",
            named.join("; ")
        );
    }
    let kind = kinds[0].0;
    // The x key: given, or the first config key on which the outputs differ.
    let cfgs: Vec<&Config> = entries.iter().map(|(_, _, c)| c).collect();
    let key = match x_key {
        Some(k) => {
            ensure!(
                Config::keys().iter().any(|n| n == k),
                "--x {k}: unknown config key"
            );
            k.to_string()
        }
        None => cfgs
            .windows(2)
            .flat_map(|w| super::fingerprint::differing_keys(w[0], w[1]))
            .next()
            .unwrap_or_else(|| "seed".to_string()),
    };
    let mut list = vec![];
    for (_, mut e, c) in entries {
        let v = serde_json::to_value(&c)?
            .get(&key)
            .map(label)
            .unwrap_or_default();
        e.params = vec![(key.clone(), v.clone())];
        e.name = format!("{key}={v}");
        list.push(e);
    }
    let dir = match stem.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = stem
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "overlay".into());
    let note = format!("{} outputs", list.len());
    let files = overlay(&dir, &base, kind, &list, &key, &note, render)?;
    write_atomic(
        &dir,
        &format!("{base}.csv"),
        tidy_csv(std::slice::from_ref(&key), &list).as_bytes(),
        true,
    )?;
    let mut out: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    out.push(dir.join(format!("{base}.csv")));
    Ok(out)
}

fn study_entry(dir: &Path) -> Result<(Kind, Entry, Config)> {
    let summary = read_summary(dir)?;
    let command = summary
        .get("command")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{}: summary.json names no study", dir.display()))?;
    let kind =
        Kind::from_name(command).with_context(|| format!("{}: summary.json", dir.display()))?;
    let cfg: Config = serde_json::from_value(summary.get("config").cloned().unwrap_or_default())
        .with_context(|| format!("{}: summary.json has no readable config", dir.display()))?;
    Ok((
        kind,
        Entry {
            name: dir.display().to_string(),
            dir: dir.display().to_string(),
            params: vec![],
            summary,
        },
        cfg,
    ))
}

/// A number read from a summary at a dotted path (`theory.t_s`).
fn number(v: &Value, path: &str) -> Option<f64> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
}

/// The overlay figures of `entries`: the per-point series on one axis, and the headlines
/// against `x_key`. Each figure is `stem_NAME.svg` and `.png` with `stem_NAME.csv` beside it;
/// returns the file names.
fn overlay(
    dir: &Path,
    stem: &str,
    kind: Kind,
    entries: &[Entry],
    x_key: &str,
    note: &str,
    render: &Render,
) -> Result<Vec<String>> {
    let mut files = vec![];
    if entries.is_empty() {
        return Ok(files);
    }
    let render = &Render {
        legend_outside: true,
        ..render.clone()
    };
    let sub = if note.is_empty() {
        String::new()
    } else {
        format!(" ({note})")
    };
    // The per-point curves: measured with error bars, theory as a line in the same colour.
    let curve = match kind {
        Kind::Speciation => Some((
            "phi",
            "Cloning probability φ(t)",
            "φ",
            "s_curve",
            "phi_theory",
        )),
        Kind::Collapse => Some((
            "clone_collapse",
            "Clone-collapse fraction φ_C(t)",
            "φ_C",
            "",
            "phi_theory",
        )),
        _ => None,
    };
    if let Some((series, title, y, theory_series, theory_col)) = curve {
        // Markers of different points at one time are dodged apart by a little (the CSV holds
        // the exact times), so that none hides another.
        let span = entries
            .iter()
            .filter_map(|e| e.summary.get(series).and_then(Value::as_array))
            .flatten()
            .filter_map(|p| number(p, "t"))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(t), b.max(t))
            });
        let dodge = if span.1 > span.0 {
            0.006 * (span.1 - span.0)
        } else {
            0.0
        };
        let mid = (entries.len() as f64 - 1.0) / 2.0;
        let mut figure_series = vec![];
        let mut rows = vec![];
        for (k, e) in entries.iter().enumerate() {
            let Some(points) = e.summary.get(series).and_then(Value::as_array) else {
                continue;
            };
            let mut measured = vec![];
            let mut errors = vec![];
            for p in points {
                let t = number(p, "t").unwrap_or(f64::NAN);
                let v = number(p, "phi");
                let s = number(p, "stderr");
                rows.push(vec![
                    quote(&e.name),
                    "measured".into(),
                    t.to_string(),
                    v.map_or(String::new(), |x| x.to_string()),
                    s.map_or(String::new(), |x| x.to_string()),
                ]);
                if let Some(v) = v {
                    measured.push((t + dodge * (k as f64 - mid), v));
                    errors.push(s.unwrap_or(f64::NAN));
                }
            }
            let t_end = 1.2 * measured.iter().map(|p| p.0).fold(0.0, f64::max);
            // Theory: the dense s(t) curve where the study has one, else its value per point.
            let dense: Vec<(f64, f64)> = e
                .summary
                .get("theory")
                .and_then(|t| t.get(theory_series))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((number(p, "t")?, number(p, theory_col)?)))
                        .filter(|p| p.0 <= t_end)
                        .collect()
                })
                .unwrap_or_default();
            let theory: Vec<(f64, f64)> = if dense.is_empty() {
                points
                    .iter()
                    .filter_map(|p| Some((number(p, "t")?, number(p, theory_col)?)))
                    .collect()
            } else {
                dense
            };
            for &(t, v) in &theory {
                rows.push(vec![
                    quote(&e.name),
                    "theory".into(),
                    t.to_string(),
                    v.to_string(),
                    String::new(),
                ]);
            }
            figure_series.push(Series {
                label: format!("{} (±1 s.e.)", e.name),
                points: measured,
                error: Some(errors),
                style: Style::Points,
                color: Some(k),
            });
            if !theory.is_empty() {
                figure_series.push(Series {
                    label: format!("{} theory", e.name),
                    points: theory,
                    error: None,
                    style: Style::Line,
                    color: Some(k),
                });
            }
        }
        let name = format!("{stem}_{series}");
        write_plot(
            dir,
            &name,
            &Figure {
                title: &format!("{title}{sub}"),
                x_label: "branch time t",
                y_label: y,
                series: &figure_series,
                markers: &[],
            },
            render,
        )?;
        write_rows(
            dir,
            &format!("{name}.csv"),
            &["point", "kind", "t", "value", "stderr"],
            &rows,
        )?;
        files.extend(
            ["svg", "png", "csv"]
                .iter()
                .map(|ext| format!("{name}.{ext}")),
        );
    }
    // Headlines against the swept key: measured with error bars beside theory.
    type Headline<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, &'a str);
    let heads: Vec<Headline> = match kind {
        Kind::Speciation => {
            let mut h = vec![(
                "t_s",
                "Speciation time t_S",
                "t_s_measured",
                Some("t_s_measured_stderr"),
                "t_s_theory",
            )];
            if entries.iter().any(|e| {
                e.summary
                    .get("sync_gap_theory")
                    .is_some_and(|v| !v.is_null())
            }) {
                h.push((
                    "sync_gap",
                    "Synchronization gap t_S(common) − t_S(difference)",
                    "sync_gap_measured",
                    Some("sync_gap_measured_stderr"),
                    "sync_gap_theory",
                ));
            }
            h
        }
        Kind::Collapse => vec![(
            "t_c",
            "Collapse time t_C",
            "t_c_measured",
            Some("interval"),
            "t_c_theory",
        )],
        _ => vec![("t_s", "Speciation time t_S", "", None, "theory.t_s")],
    };
    // x positions: the values when all are numbers, else categories in first-seen order.
    let xs: Vec<String> = entries
        .iter()
        .map(|e| {
            e.params
                .iter()
                .find(|(k, _)| k == x_key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    let numeric = xs
        .iter()
        .all(|x| x.parse::<f64>().is_ok_and(f64::is_finite));
    let mut categories: Vec<String> = vec![];
    for x in &xs {
        if !categories.contains(x) {
            categories.push(x.clone());
        }
    }
    let pos = |x: &str| -> f64 {
        if numeric {
            x.parse().unwrap_or(f64::NAN)
        } else {
            categories.iter().position(|c| c == x).unwrap_or(0) as f64
        }
    };
    // Points that differ in other keys than x form one group (one colour) each.
    let group_of = |e: &Entry| -> String {
        describe(
            &e.params
                .iter()
                .filter(|(k, _)| k != x_key)
                .cloned()
                .collect::<Vec<_>>(),
        )
    };
    let mut groups: Vec<String> = vec![];
    for e in entries {
        let g = group_of(e);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let render_x = Render {
        size: render.size,
        categories: (!numeric).then(|| categories.clone()),
        legend_outside: true,
    };

    for (name, title, measured_key, err_key, theory_key) in heads {
        let mut figure_series = vec![];
        let mut rows = vec![];
        for (g, group) in groups.iter().enumerate() {
            let members: Vec<(&Entry, &String)> = entries
                .iter()
                .zip(&xs)
                .filter(|(e, _)| &group_of(e) == group)
                .collect();
            let prefix = if group.is_empty() {
                String::new()
            } else {
                format!("{group}: ")
            };
            let mut measured = vec![];
            let mut errors = vec![];
            let mut theory = vec![];
            for (e, x) in &members {
                let m = (!measured_key.is_empty())
                    .then(|| number(&e.summary, measured_key))
                    .flatten();
                // The median t̂_C has a ±1σ interval: its half-width.
                let s = err_key.and_then(|k| match k {
                    "interval" => {
                        let a = interval(&e.summary, 0)?;
                        let b = interval(&e.summary, 1)?;
                        Some((b - a) / 2.0)
                    }
                    k => number(&e.summary, k),
                });
                let t = number(&e.summary, theory_key);
                rows.push(vec![
                    quote(x),
                    quote(group),
                    "point".into(),
                    m.map_or(String::new(), |v| v.to_string()),
                    s.map_or(String::new(), |v| v.to_string()),
                    t.map_or(String::new(), |v| v.to_string()),
                ]);
                // Categories: theory just left of its category, measured just right, so that
                // neither hides the other.
                let shift = if numeric { 0.0 } else { 0.08 };
                if let Some(m) = m {
                    measured.push((pos(x) + shift, m));
                    errors.push(s.unwrap_or(f64::NAN));
                }
                if let Some(t) = t {
                    theory.push((pos(x) - shift, t));
                }
            }
            theory.sort_by(|a, b| a.0.total_cmp(&b.0));
            // A numeric key: the theory on a dense grid of its values, when they build.
            if numeric
                && let Some((first, _)) = members.first()
                && let Some(dense) = dense_theory(first, x_key, name, &xs)
            {
                for &(x, t) in &dense {
                    rows.push(vec![
                        x.to_string(),
                        quote(group),
                        "theory-grid".into(),
                        String::new(),
                        String::new(),
                        t.to_string(),
                    ]);
                }
                theory = dense;
            }
            let color = 2 * g;
            if !theory.is_empty() {
                figure_series.push(Series {
                    label: format!("{prefix}theory"),
                    points: theory,
                    error: None,
                    // Categories have no order between them: theory as markers, not a line.
                    style: if numeric { Style::Line } else { Style::Points },
                    color: Some(color + 1),
                });
            }
            if !measured.is_empty() {
                figure_series.push(Series {
                    label: format!("{prefix}measured (±1 s.e.)"),
                    points: measured,
                    error: Some(errors),
                    style: Style::Points,
                    color: Some(color),
                });
            }
        }
        let file = format!("{stem}_{name}");
        write_plot(
            dir,
            &file,
            &Figure {
                title: &format!("{title} against {x_key}{sub}"),
                x_label: x_key,
                y_label: match name {
                    "sync_gap" => "gap",
                    "t_c" => "t_C",
                    _ => "t_S",
                },
                series: &figure_series,
                markers: &[],
            },
            &render_x,
        )?;
        write_rows(
            dir,
            &format!("{file}.csv"),
            &[x_key, "group", "row", "measured", "stderr", "theory"],
            &rows,
        )?;
        files.extend(
            ["svg", "png", "csv"]
                .iter()
                .map(|ext| format!("{file}.{ext}")),
        );
    }
    Ok(files)
}

/// `t_c_measured_interval[i]` of a summary.
fn interval(summary: &Value, i: usize) -> Option<f64> {
    summary.get("t_c_measured_interval")?.get(i)?.as_f64()
}

/// The theory of headline `name` (`t_s`, `t_c`, `sync_gap`) on a dense grid of `key` across the
/// values `xs` (integers when they all are), from `entry`'s config; None when fewer than two
/// values build.
fn dense_theory(entry: &Entry, key: &str, name: &str, xs: &[String]) -> Option<Vec<(f64, f64)>> {
    let cfg: Config = serde_json::from_value(entry.summary.get("config")?.clone()).ok()?;
    if name == "t_c" && cfg.train_file.is_some() {
        return None;
    }
    let field = match name {
        "sync_gap" => "sync_gap",
        "t_c" => "t_c",
        _ => "t_s",
    };
    let values: Vec<f64> = xs.iter().filter_map(|x| x.parse().ok()).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let integers = xs.iter().all(|x| x.parse::<i64>().is_ok());
    let grid: Vec<Value> = if integers {
        let (lo, hi) = (lo as i64, hi as i64);
        let step = ((hi - lo) / 80).max(1);
        (0..)
            .map(|k| lo + k * step)
            .take_while(|&v| v <= hi)
            .chain([hi])
            .map(Value::from)
            .collect()
    } else {
        (0..=80)
            .map(|k| Value::from(lo + (hi - lo) * k as f64 / 80.0))
            .collect()
    };
    let mut out: Vec<(f64, f64)> = vec![];
    for v in grid {
        let x = v.as_f64()?;
        if out.last().is_some_and(|l| l.0 == x) {
            continue;
        }
        let Ok(c) = set_key(cfg.clone(), key, &v) else {
            continue;
        };
        if c.validate().is_err() {
            continue;
        }
        let Ok(inputs) = super::Inputs::new(c, false, true) else {
            continue;
        };
        let mut session = super::Session::new(true);
        use super::Study as _;
        let Ok(th) = super::theory::TheoryStudy::setup(&inputs, &mut session) else {
            continue;
        };
        if let Some(t) = serde_json::to_value(&th)
            .ok()
            .and_then(|j| number(&j, field))
        {
            out.push((x, t));
        }
    }
    (out.len() >= 2).then_some(out)
}

fn write_plot(dir: &Path, stem: &str, figure: &Figure, render: &Render) -> Result<()> {
    let svg = render_svg_with(figure, render)?;
    write_atomic(dir, &format!("{stem}.svg"), svg.as_bytes(), true)?;
    write_atomic(
        dir,
        &format!("{stem}.png"),
        &render_png_with(figure, render)?,
        true,
    )?;
    Ok(())
}

fn write_rows(dir: &Path, name: &str, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut s = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in rows {
        s += &r.join(",");
        s.push('\n');
    }
    write_atomic(dir, name, s.as_bytes(), true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_and_grid_is_cartesian() {
        let a = Axis::parse("q=zero,optimal:0.5").unwrap();
        assert_eq!(
            a.values,
            vec![Value::from("zero"), Value::from("optimal:0.5")]
        );
        let b = Axis::parse("dim=4,8").unwrap();
        assert_eq!(b.values, vec![Value::from(4), Value::from(8)]);
        let base = Config::preset("quick").unwrap();
        let plan = Plan::new(Kind::Speciation, &base, false, &[a, b]).unwrap();
        assert_eq!(plan.points.len(), 4);
        assert_eq!(plan.points[1].dir, "p01_q=zero_dim=8");
        assert_eq!(plan.points[2].params[0].1, "optimal:0.5");
        assert_eq!(plan.points[3].cfg.as_ref().unwrap().dim, 8);
        let e = Plan::new(
            Kind::Speciation,
            &base,
            false,
            &[Axis::parse("qq=zero").unwrap()],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("unknown config key"), "{e:#}");
        let e = Plan::new(
            Kind::Speciation,
            &base,
            false,
            &[Axis::parse("q=bogus").unwrap()],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("q"), "{e:#}");
    }
}
