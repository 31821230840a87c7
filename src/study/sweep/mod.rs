//! Sweeps: a study run at every point of a Cartesian grid of config keys, in one process on one
//! engine, and overlays of study outputs (`regimes plot`).
//!
//! A sweep directory holds `sweep-plan.json` (the study, the axes and each point's directory and
//! config hash), one ordinary study directory per point (`p00_q=zero/`, …), and at the top
//! `sweep.json`, the tidy `sweep.csv`, the overlay figures, each with its CSV, and the ledger of
//! completed points. It is owned as a study's output directory is: locked while a sweep runs,
//! its files in a sealed manifest, nothing written before every point passed the study's
//! pre-flight (`owned.rs`).
//!
//! Resuming is point by point: running the same sweep into the same directory again (or
//! `regimes resume DIR`) reuses every point whose directory verifies as a complete run of the
//! same config and inputs, and runs the others afresh. `--shard I/N` runs the I-th contiguous
//! block of points; `regimes merge` copies the shards' verified point directories into one
//! sweep directory and writes its tables and figures.
//!
//! Console output goes through [`crate::out!`] and [`crate::note!`], which never panic on a
//! closed pipe or a full stream.

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
use crate::report::OutDir;
use crate::report::{Figure, Render, Series, Style, render_png, render_svg};

mod merge;
mod overlay;
mod owned;
mod plan;
mod plot;
mod table;

pub use merge::merge;
use overlay::*;
pub use owned::LEDGER;
use owned::*;
use plan::*;
pub use plan::{Axis, MAX_POINTS, Plan, Point, label};
pub use plot::plot;
use table::*;
pub use table::{Entry, tidy_csv};

/// The plan file of a sweep directory.
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
/// tables and figures over every complete point. Every point passes the study's pre-flight
/// before anything is written.
pub fn run(req: &SweepRequest) -> Result<SweepReport> {
    let plan = &req.plan;
    let kind = plan.kind()?;
    let out = &req.out;
    let started = Instant::now();
    let range = req
        .shard
        .unwrap_or(Shard::WHOLE)
        .range(plan.points.len() as u64);
    let mine: Vec<&Point> = plan.points[range.start as usize..range.end as usize]
        .iter()
        .collect();
    preflight(plan, &mine, out)?;
    let (dir, mut ledger) = open(out, plan, req.force)?;
    let mut status = vec![Status::Missing; plan.points.len()];
    let mut todo = vec![];
    let mut again = vec![];
    for p in &mine {
        match reusable(out, p, &ledger) {
            Ok(()) => status[p.index] = Status::Reused,
            Err(why) => {
                if ledger.remove(&p.dir).is_some() {
                    again.push(format!("point {} runs again: {why:#}", p.dir));
                }
                todo.push(*p);
            }
        }
    }
    ledger.retain(|d, _| plan.points.iter().any(|p| &p.dir == d));
    write_ledger(&dir, &ledger)?;
    let note = |s: &str| {
        if !req.quiet {
            crate::note!("{s}");
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
    for w in req.warnings.iter().chain(&again) {
        note(&format!("warning: {w}"));
    }
    let mut engine: Option<Selected> = None;
    let mut backend = None;
    let mut stopped = None;
    let clock = Instant::now();
    for (k, p) in todo.iter().enumerate() {
        let result = (|| -> Result<Option<String>> {
            let cfg = p
                .cfg
                .clone()
                .ok_or_else(|| anyhow!("the plan holds no config for {}", p.dir))?;
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
            }?;
            if let Some(e) = report.write_error {
                return Err(e);
            }
            if backend.is_none() {
                backend = report
                    .summary
                    .get("backend")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Ok(report.stopped.map(|s| s.to_string()))
        })()
        .with_context(|| format!("sweep point {} ({})", p.dir, describe(&p.params)));
        let point_stopped = match result {
            Ok(s) => s,
            Err(e) => {
                // A sweep that failed before any point completed leaves nothing behind, so the
                // corrected command starts in a clean directory.
                if k == 0 && !status.contains(&Status::Reused) {
                    let _ = OutDir::clear(&out.join(&p.dir));
                    drop(dir.discard());
                }
                return Err(e);
            }
        };
        if let Some(s) = point_stopped {
            status[p.index] = Status::Stopped;
            stopped = Some(format!("point {} ({}): {s}", p.dir, describe(&p.params)));
            break;
        }
        status[p.index] = Status::Run;
        ledger.insert(p.dir.clone(), done(&out.join(&p.dir), &p.config_hash)?);
        write_ledger(&dir, &ledger)?;
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
    finish(&dir, plan, &status, &entries, extra, stopped)
}

/// The pre-flight of every point of the slice, as the study runs it alone (memory, disk), so
/// that a point the machine cannot hold is refused with its estimate before anything is
/// written; then the disk of all of them together (every point's files stay).
fn preflight(plan: &Plan, mine: &[&Point], out: &Path) -> Result<()> {
    use super::resources::Needs;
    let kind = plan.kind()?;
    let mut all: Option<Needs> = None;
    for p in mine {
        let cfg = p
            .cfg
            .as_ref()
            .ok_or_else(|| anyhow!("the plan holds no config for {}", p.dir))?;
        let needs = Needs::study(kind, cfg);
        needs
            .check(Some(out))
            .with_context(|| format!("sweep point {} ({})", p.dir, describe(&p.params)))?;
        all = Some(match all {
            Some(a) => a.then(needs),
            None => needs,
        });
    }
    if let Some(all) = all {
        all.check(Some(out))
            .with_context(|| format!("the sweep's {} points together", mine.len()))?;
    }
    Ok(())
}

fn pretty(v: &impl Serialize) -> Result<Vec<u8>> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?).into_bytes())
}

/// The top of a sweep: sweep.json, sweep.csv and the overlay figures.
fn finish(
    dir: &OutDir,
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
    let mut made: Files = vec![("sweep.csv".into(), tidy_csv(&keys, entries).into_bytes())];
    let x_key = keys[0].clone();
    overlay(
        &mut made,
        "sweep",
        kind,
        entries,
        &x_key,
        &figure_note(plan),
        render,
    )?;
    let mut files = vec![];
    for (name, bytes) in made {
        dir.write_bytes(&name, &bytes)?;
        files.push(name);
    }
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
    dir.write_bytes("sweep.json", &pretty(&summary)?)?;
    if stopped.is_none() {
        dir.finish()?;
    }
    let mut all = vec!["sweep.json".to_string()];
    all.extend(files);
    Ok(SweepReport {
        table: table(plan, status, entries),
        summary,
        out: dir.path().to_path_buf(),
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
        // A theory study's result is the theory; a run's holds it under `theory`.
        Kind::Theory => &[("t_S theory", "t_s", None), ("t_C theory", "t_c", None)],
        Kind::Run => &[
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
    let shard = recorded_shard(dir)?;
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
        // A grid past the limit (or past usize) is refused before a point is built.
        let many: Vec<Axis> = (0..20)
            .map(|_| Axis::parse("seed=1,2,3,4,5,6,7,8,9,10").unwrap())
            .collect();
        let e = Plan::new(Kind::Speciation, &base, &many).unwrap_err();
        assert!(format!("{e:#}").contains("at most 10000"), "{e:#}");
        let big = std::iter::once(Axis::parse("seed=1,2").unwrap())
            .chain((0..2).map(|_| Axis {
                key: "dim".into(),
                values: (1..=100).map(Value::from).collect(),
            }))
            .collect::<Vec<_>>();
        let e = Plan::new(Kind::Speciation, &base, &big).unwrap_err();
        assert!(format!("{e:#}").contains("2 × 100 × 100"), "{e:#}");
    }
}
