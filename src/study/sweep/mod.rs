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
use crate::report::{Figure, Render, Series, Style, render_png, render_svg};

/// The plan file of a sweep directory.
mod merge;
mod overlay;
mod plan;
mod plot;
mod table;

pub use merge::merge;
use overlay::*;
use plan::*;
pub use plan::{Axis, Plan, Point, label};
pub use plot::plot;
use table::*;
pub use table::{Entry, tidy_csv};

pub const PLAN_FILE: &str = "sweep-plan.json";
/// The version of `sweep.json`'s keys.
pub const SWEEP_SCHEMA_VERSION: u32 = 1;

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
    finish(out, plan, &status, &entries, extra, stopped)
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

/// The top of a sweep: sweep.json, sweep.csv and the overlay figures.
fn finish(
    out: &Path,
    plan: &Plan,
    status: &[Status],
    entries: &[Entry],
    extra: Extra,
    stopped: Option<String>,
) -> Result<SweepReport> {
    let kind = plan.kind()?;
    // The overlays are drawn as the points' own figures.
    let render = &Render::sized(plan.base.figure_size, Some(plan.base.dpi));
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
    let rebuilt = Plan::new(kind, &plan.base, &axes)?;
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
        warnings: vec![],
    })
}

/// Whether `dir` is a sweep directory.
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(PLAN_FILE).is_file()
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
        let plan = Plan::new(Kind::Speciation, &base, &[a, b]).unwrap();
        assert_eq!(plan.points.len(), 4);
        assert_eq!(plan.points[1].dir, "p01_q=zero_dim=8");
        assert_eq!(plan.points[2].params[0].1, "optimal:0.5");
        assert_eq!(plan.points[3].cfg.as_ref().unwrap().dim, 8);
        let e = Plan::new(Kind::Speciation, &base, &[Axis::parse("qq=zero").unwrap()]).unwrap_err();
        assert!(format!("{e:#}").contains("unknown config key"), "{e:#}");
        let e = Plan::new(Kind::Speciation, &base, &[Axis::parse("q=bogus").unwrap()]).unwrap_err();
        assert!(format!("{e:#}").contains("q"), "{e:#}");
    }
}
