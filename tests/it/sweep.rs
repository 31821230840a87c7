//! `regimes sweep`, `regimes plot` and sweep shards: a sweep is its points run one by one, an
//! interrupted sweep resumes to the uninterrupted one, shards merge, `plot` refuses mixed
//! studies, and every figure (the sweeps' and the studies') names only what it draws and has its
//! CSV.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{regimes, scratch, summary};
use serde_json::Value;

/// A quick sweep: 2 × 2 points of the quick preset on the CPU.
const OVER: [&str; 4] = ["--over", "seed=1,2", "--over", "q=zero,random:1"];

fn base() -> Vec<&'static str> {
    vec![
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--threads",
        "2",
        "-q",
    ]
}

fn ok(args: &[&str]) -> std::process::Output {
    let out = regimes(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sweep_into(dir: &Path, extra: &[&str]) {
    let d = dir.to_str().unwrap();
    let mut args = vec!["sweep", "speciation"];
    args.extend(base());
    args.extend(OVER);
    args.extend(["--out", d]);
    args.extend(extra);
    ok(&args);
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A summary without what depends on the clock.
fn timeless(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["wall_seconds", "shader_compile_seconds", "seconds"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn points(dir: &Path) -> Vec<Value> {
    read_json(&dir.join("sweep.json"))["points"]
        .as_array()
        .unwrap()
        .clone()
}

fn point_summaries(dir: &Path) -> Vec<Value> {
    points(dir)
        .iter()
        .map(|p| {
            timeless(read_json(
                &dir.join(p["dir"].as_str().unwrap()).join("summary.json"),
            ))
        })
        .collect()
}

fn csv(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sweep.csv")).unwrap()
}

#[test]
fn a_sweep_equals_its_points_run_one_by_one() {
    let dir = scratch("sweep-points");
    let sw = dir.join("sweep");
    sweep_into(&sw, &[]);
    let pts = points(&sw);
    assert_eq!(pts.len(), 4);
    // The last axis varies fastest; parameters are names, not codes.
    assert_eq!(pts[1]["params"]["seed"], "1");
    assert_eq!(pts[1]["params"]["q"], "random:1");
    for p in &pts {
        let one = dir.join(format!("one-{}", p["index"]));
        let (seed, q) = (
            p["params"]["seed"].as_str().unwrap(),
            p["params"]["q"].as_str().unwrap(),
        );
        let mut args = vec!["speciation"];
        args.extend(base());
        args.extend(["--seed", seed, "--q", q, "--out", one.to_str().unwrap()]);
        ok(&args);
        let alone = timeless(read_json(&one.join("summary.json")));
        let point = timeless(read_json(
            &sw.join(p["dir"].as_str().unwrap()).join("summary.json"),
        ));
        assert_eq!(alone, point, "point {}", p["dir"]);
        // Each point directory holds the study's usual files.
        for f in ["phi.csv", "phi.svg", "s_curve.csv"] {
            assert!(sw.join(p["dir"].as_str().unwrap()).join(f).is_file(), "{f}");
        }
    }
    // The tidy table: parameter columns first, one summary row and a row per φ point each.
    let table = csv(&sw);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("seed,q,point,series,"), "{header}");
    let phi_rows = table
        .lines()
        .skip(1)
        .filter(|l| l.contains(",phi,"))
        .count();
    let branch_times = read_json(
        &sw.join(pts[0]["dir"].as_str().unwrap())
            .join("summary.json"),
    )["phi"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(phi_rows, 4 * branch_times);
    assert_eq!(table.lines().filter(|l| l.contains(",summary,")).count(), 4);
    let top = read_json(&sw.join("sweep.json"));
    assert_eq!(top["complete"], true);
    assert_eq!(top["study"], "speciation");
    assert!(top["points"][0]["headlines"]["t_s_theory"].is_number());
}

#[test]
fn an_interrupted_sweep_resumes_to_the_uninterrupted_one() {
    let dir = scratch("sweep-resume");
    let whole = dir.join("whole");
    sweep_into(&whole, &[]);

    // Interrupted by SIGINT once its first point has completed (if it finishes first, the
    // rerun reuses every point: the result must be the same either way).
    let cut = dir.join("cut");
    let mut args = vec!["sweep", "speciation"];
    args.extend(base());
    args.extend(OVER);
    args.extend(["--out", cut.to_str().unwrap()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = cut.join("p00_seed=1_q=zero").join("summary.json");
    let clock = Instant::now();
    while !first.exists() && clock.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    child.wait().unwrap();
    ok(&["resume", cut.to_str().unwrap(), "-q"]);
    assert_eq!(csv(&cut), csv(&whole));
    assert_eq!(point_summaries(&cut), point_summaries(&whole));

    // A point stopped half-way (its manifest incomplete) and one never started are run again;
    // the others are reused.
    let mut manifest = read_json(&cut.join("p01_seed=1_q=random_1").join("manifest.json"));
    manifest["complete"] = Value::Bool(false);
    std::fs::write(
        cut.join("p01_seed=1_q=random_1").join("manifest.json"),
        manifest.to_string(),
    )
    .unwrap();
    std::fs::remove_dir_all(cut.join("p03_seed=2_q=random_1")).unwrap();
    sweep_into(&cut, &[]);
    let status: Vec<String> = points(&cut)
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(status, ["reused", "run", "reused", "run"]);
    assert_eq!(csv(&cut), csv(&whole));
    assert_eq!(point_summaries(&cut), point_summaries(&whole));

    // Another sweep into the same directory is refused.
    let out = regimes(&[
        "sweep",
        "speciation",
        "--preset",
        "quick",
        "--over",
        "seed=7",
        "--out",
        cut.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds another sweep"));
}

#[test]
fn sharded_sweeps_merge() {
    let dir = scratch("sweep-shards");
    let whole = dir.join("whole");
    sweep_into(&whole, &[]);
    let (a, b) = (dir.join("s0"), dir.join("s1"));
    sweep_into(&a, &["--shard", "0/2"]);
    sweep_into(&b, &["--shard", "1/2"]);
    assert_eq!(read_json(&a.join("sweep.json"))["points_done"], 2);
    // One shard alone does not make the sweep.
    let merged = dir.join("merged");
    let out = regimes(&[
        "merge",
        a.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no shard holds") && err.contains("p02"),
        "{err}"
    );
    ok(&[
        "merge",
        b.to_str().unwrap(),
        a.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(csv(&merged), csv(&whole));
    assert_eq!(point_summaries(&merged), point_summaries(&whole));
    assert_eq!(read_json(&merged.join("sweep.json"))["complete"], true);
}

#[test]
fn plot_overlays_one_study_kind_and_refuses_mixed_kinds() {
    let dir = scratch("sweep-plot");
    let (s1, s2, th) = (dir.join("s1"), dir.join("s2"), dir.join("th"));
    for (d, seed) in [(&s1, "1"), (&s2, "2")] {
        let mut args = vec!["speciation"];
        args.extend(base());
        args.extend(["--seed", seed, "--out", d.to_str().unwrap()]);
        ok(&args);
    }
    ok(&[
        "theory",
        "--preset",
        "quick",
        "-q",
        "--out",
        th.to_str().unwrap(),
    ]);
    let stem = dir.join("figs").join("cmp");
    let out = regimes(&[
        "plot",
        s1.to_str().unwrap(),
        th.to_str().unwrap(),
        "--out",
        stem.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("speciation") && err.contains("theory") && err.contains("th"),
        "{err}"
    );
    ok(&[
        "plot",
        s1.to_str().unwrap(),
        s2.to_str().unwrap(),
        "--out",
        stem.to_str().unwrap(),
        "--figure-size",
        "1200x800",
    ]);
    for f in [
        "cmp_phi.svg",
        "cmp_phi.png",
        "cmp_phi.csv",
        "cmp_t_s.svg",
        "cmp.csv",
    ] {
        assert!(dir.join("figs").join(f).is_file(), "{f}");
    }
    // The x key defaults to the key the outputs differ in.
    let svg = std::fs::read_to_string(dir.join("figs/cmp_phi.svg")).unwrap();
    assert!(svg.contains("seed=1") && svg.contains("seed=2"));
    assert!(svg.contains("width=\"1200\""), "figure size");
    // A shard overlaid is labelled partial, in the legend and on stderr.
    let sh = dir.join("sh");
    let mut args = vec!["speciation"];
    args.extend(base());
    args.extend([
        "--seed",
        "2",
        "--shard",
        "0/2",
        "--out",
        sh.to_str().unwrap(),
    ]);
    ok(&args);
    let out = ok(&[
        "plot",
        s1.to_str().unwrap(),
        sh.to_str().unwrap(),
        "--out",
        stem.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("partial") && err.contains("shard 0/2") && err.contains("sh"),
        "{err}"
    );
    let svg = std::fs::read_to_string(dir.join("figs/cmp_phi.svg")).unwrap();
    assert!(svg.contains("partial: shard 0/2"), "legend says partial");
}

/// The texts of an SVG document's `<text>` elements.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

#[test]
fn every_sweep_figure_draws_what_its_legend_names_and_has_its_csv() {
    let dir = scratch("sweep-figures");
    let sw = dir.join("sweep");
    sweep_into(&sw, &[]);
    let names: Vec<String> = std::fs::read_dir(&sw)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let svgs: Vec<&String> = names.iter().filter(|n| n.ends_with(".svg")).collect();
    assert!(svgs.len() >= 2, "{names:?}");
    // The points' own figures: each SVG with its PNG and its data.
    for p in points(&sw) {
        let d = sw.join(p["dir"].as_str().unwrap());
        for e in std::fs::read_dir(&d).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(stem) = n.strip_suffix(".svg") {
                for ext in ["png", "data.csv"] {
                    assert!(d.join(format!("{stem}.{ext}")).is_file(), "{n}: no {ext}");
                }
                let data = std::fs::read_to_string(d.join(format!("{stem}.data.csv"))).unwrap();
                let svg = std::fs::read_to_string(d.join(&n)).unwrap();
                let texts: Vec<String> = svg_texts(&svg).iter().map(|t| unescape(t)).collect();
                // Every series with data is named in the legend.
                for line in data.lines().skip(1) {
                    let label = line.split(",points,").next().unwrap();
                    if line.contains(",points,") && !label.contains('"') {
                        assert!(
                            texts.iter().any(|t| t == label),
                            "{n}: {label} not in legend"
                        );
                    }
                }
            }
        }
    }
    for svg_name in svgs {
        let stem = svg_name.trim_end_matches(".svg");
        for ext in ["png", "csv"] {
            assert!(
                names.contains(&format!("{stem}.{ext}")),
                "{stem}.{ext} missing"
            );
        }
        let svg = std::fs::read_to_string(sw.join(svg_name)).unwrap();
        let texts: Vec<String> = svg_texts(&svg).iter().map(|t| unescape(t)).collect();
        let data = std::fs::read_to_string(sw.join(format!("{stem}.csv"))).unwrap();
        let rows: Vec<&str> = data.lines().skip(1).collect();
        if stem == "sweep_phi" {
            // Every point is in the legend with its measured series and its theory, and has
            // rows of both in the CSV.
            for p in points(&sw) {
                let name = format!("seed={}, q={}", p["params"]["seed"], p["params"]["q"])
                    .replace('"', "");
                for (legend, kind) in [
                    (format!("{name} (±1 s.e.)"), "measured"),
                    (format!("{name} theory"), "theory"),
                ] {
                    assert!(texts.contains(&legend), "{stem}: no legend {legend}");
                    let quoted = format!("\"{name}\",{kind},");
                    assert!(
                        rows.iter().any(|r| r.starts_with(&quoted)),
                        "{stem}: no {kind} rows of {name}"
                    );
                }
            }
        } else {
            // Headline against the first swept key: a theory and a measured series per group
            // of the other keys, each with values in the CSV.
            for q in ["zero", "random:1"] {
                for what in ["theory", "measured (±1 s.e.)"] {
                    let legend = format!("q={q}: {what}");
                    assert!(texts.contains(&legend), "{stem}: no legend {legend}");
                }
                // One row per point (measured and theory), then the theory on a dense grid of
                // the key (a numeric key).
                let group = rows
                    .iter()
                    .filter(|r| r.contains(&format!(",q={q},point,")));
                assert_eq!(group.clone().count(), 2, "{stem}: rows of q={q}");
                for r in group {
                    let cells: Vec<&str> = r.split(',').collect();
                    assert!(cells[3].parse::<f64>().is_ok(), "{stem}: measured {r}");
                    assert!(cells[5].parse::<f64>().is_ok(), "{stem}: theory {r}");
                }
                assert!(
                    rows.iter()
                        .any(|r| r.contains(&format!(",q={q},theory-grid,"))),
                    "{stem}: no dense theory of q={q}"
                );
            }
        }
        // No legend entry names a series the figure lacks: every legend text is one of those.
        let legendish: Vec<&String> = texts
            .iter()
            .filter(|t| t.contains(" theory") || t.contains("s.e.)"))
            .collect();
        for t in legendish {
            assert!(
                t.starts_with("seed=") || t.starts_with("q="),
                "{stem}: unexpected legend {t}"
            );
        }
    }
}

/// The cells of a CSV line (fields with commas are quoted, quotes doubled).
fn csv_cells(line: &str) -> Vec<String> {
    let (mut cells, mut cell, mut quoted) = (vec![], String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// Every figure of every study (run, speciation and collapse, coupled so that the per-mode
/// series are there too) has its PNG and its data CSV, and its legend names exactly the series
/// and markers the CSV holds with a value: no series hidden from the legend, no legend entry
/// without data. (The legend is the column of texts right of the axes.)
#[test]
fn every_study_figure_draws_what_its_legend_names_and_has_its_csv() {
    let dir = scratch("study-figures");
    let coupled = ["--preset", "coupled", "--coupling", "additive:0.3"];
    let cases: [(&str, Vec<&str>); 3] = [
        ("run", vec!["--preset", "quick", "--particles", "2000"]),
        (
            "speciation",
            [&coupled[..], &["--pairing", "per-mode", "--pairs", "1000"]].concat(),
        ),
        (
            "collapse",
            [
                &coupled[..],
                &[
                    "--particles",
                    "300",
                    "--pairs",
                    "100",
                    "--entropy-samples",
                    "100",
                ],
            ]
            .concat(),
        ),
    ];
    let mut seen = vec![];
    for (study, flags) in cases {
        let out = dir.join(study);
        let mut args = vec![study];
        args.extend(flags);
        args.extend(["--backend", "cpu", "--threads", "2", "-q"]);
        args.extend(["--out", out.to_str().unwrap()]);
        ok(&args);
        for e in std::fs::read_dir(&out).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".svg") else {
                continue;
            };
            seen.push(format!("{study}/{stem}"));
            assert!(out.join(format!("{stem}.png")).is_file(), "{name}: no PNG");
            let data = std::fs::read_to_string(out.join(format!("{stem}.data.csv")))
                .unwrap_or_else(|e| panic!("{name}: no data CSV ({e})"));
            let mut drawn: Vec<String> = data
                .lines()
                .skip(1)
                .map(csv_cells)
                .filter(|c| {
                    let has = |i: usize| c.get(i).is_some_and(|v| !v.is_empty());
                    has(2) && (c[1] == "marker" || has(3))
                })
                .map(|c| regimes::report::typeset(&c[0]))
                .collect();
            drawn.sort();
            drawn.dedup();
            let svg = std::fs::read_to_string(out.join(&name)).unwrap();
            let texts: Vec<(f64, String)> = svg
                .split("<text")
                .skip(1)
                .filter_map(|t| {
                    let x = t.split("x=\"").nth(1)?.split('"').next()?.parse().ok()?;
                    let body = &t[t.find('>')? + 1..];
                    Some((x, unescape(body[..body.find("</text>")?].trim())))
                })
                .collect();
            let right = texts.iter().map(|t| t.0).fold(f64::MIN, f64::max);
            let mut legend: Vec<String> = texts
                .into_iter()
                .filter(|t| t.0 == right)
                .map(|t| t.1)
                .collect();
            legend.sort();
            assert_eq!(
                legend, drawn,
                "{study}/{name}: legend against the drawn series"
            );
        }
    }
    for want in [
        "run/run",
        "speciation/phi",
        "collapse/collapse",
        "collapse/clone_collapse",
        "collapse/collapse_times",
    ] {
        assert!(seen.iter().any(|s| s == want), "no {want}.svg in {seen:?}");
    }
}

// ---- A sweep directory under the guarantees of a study's (issue 32) ---------------------------

fn fails(args: &[&str]) -> String {
    let out = regimes(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    err
}

fn statuses(dir: &Path) -> Vec<String> {
    points(dir)
        .iter()
        .map(|p| p["status"].as_str().unwrap().to_string())
        .collect()
}

fn headline(dir: &Path, i: usize, key: &str) -> Value {
    points(dir)[i]["headlines"][key].clone()
}

/// Names in a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    n.sort();
    n
}

#[test]
fn sweep_reuse_verifies_contents_and_inputs() {
    let dir = scratch("sweep-verify");
    let u = dir.join("u2.csv");
    std::fs::write(&u, "2,0\n0,2\n").unwrap();
    let sw = dir.join("sw");
    let over = format!("u=file:{},identity", u.display());
    let run = |force: bool| {
        let mut args = vec!["sweep", "theory", "--dim", "2", "-q", "--over", &over];
        args.extend(["--out", sw.to_str().unwrap()]);
        if force {
            args.push("--force");
        }
        ok(&args);
    };
    run(false);
    let first = headline(&sw, 0, "t_s");
    // The same sweep again: every point verifies and is reused.
    run(false);
    assert_eq!(statuses(&sw), ["reused", "reused"]);
    // The U file edited: the point that reads it runs again (its inputs changed), and its
    // result is what a fresh `theory` of the edited file gives.
    std::fs::write(&u, "3,0\n0,3\n").unwrap();
    run(true);
    assert_eq!(statuses(&sw), ["run", "reused"]);
    let alone = summary(&[
        "theory",
        "--dim",
        "2",
        "--u",
        &format!("file:{}", u.display()),
        "--json",
    ]);
    let edited = headline(&sw, 0, "t_s");
    assert_ne!(edited, first);
    assert_eq!(edited, alone["t_s"]);
    // An edited summary, a deleted file: those points run again, the others are reused.
    let p0 = sw.join(points(&sw)[0]["dir"].as_str().unwrap());
    let p1 = sw.join(points(&sw)[1]["dir"].as_str().unwrap());
    let text = std::fs::read_to_string(p1.join("summary.json")).unwrap();
    std::fs::write(p1.join("summary.json"), format!("{text} ")).unwrap();
    run(false);
    assert_eq!(statuses(&sw), ["reused", "run"]);
    let listed = read_json(&p0.join("manifest.json"))["files"][0]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(p0.join(&listed)).unwrap();
    run(false);
    assert_eq!(statuses(&sw), ["run", "reused"]);
    assert!(p0.join(&listed).is_file(), "{listed} written again");
    assert_eq!(headline(&sw, 0, "t_s"), alone["t_s"]);
}

#[test]
fn a_tampered_shard_point_is_not_merged() {
    let dir = scratch("sweep-tamper");
    let (a, b, m) = (dir.join("s0"), dir.join("s1"), dir.join("m"));
    for (d, shard) in [(&a, "0/2"), (&b, "1/2")] {
        ok(&[
            "sweep",
            "theory",
            "-q",
            "--over",
            "dim=4,8",
            "--shard",
            shard,
            "--out",
            d.to_str().unwrap(),
        ]);
    }
    let p1 = b.join(points(&b)[1]["dir"].as_str().unwrap());
    let text = std::fs::read_to_string(p1.join("summary.json")).unwrap();
    std::fs::write(p1.join("summary.json"), format!("{text} ")).unwrap();
    let err = fails(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
    ]);
    assert!(
        err.contains("no shard holds") && err.contains("p01"),
        "{err}"
    );
    assert!(
        err.contains("summary.json"),
        "names the changed file: {err}"
    );
    assert!(!m.exists(), "a refused merge writes nothing");
    // Run again in its shard, the point merges.
    ok(&["resume", b.to_str().unwrap(), "-q"]);
    ok(&[
        "merge",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        m.to_str().unwrap(),
    ]);
    assert_eq!(statuses(&m), ["reused", "reused"]);
}

#[test]
fn force_over_another_sweep_clears_its_points_but_no_user_file() {
    let dir = scratch("sweep-force");
    let sw = dir.join("sw");
    let d = sw.to_str().unwrap();
    ok(&["sweep", "theory", "-q", "--over", "dim=4,8", "--out", d]);
    std::fs::write(sw.join("notes.txt"), "mine").unwrap();
    std::fs::write(sw.join("p00_dim=4").join("mine.txt"), "mine").unwrap();
    let err = fails(&["sweep", "theory", "-q", "--over", "dim=16", "--out", d]);
    assert!(
        err.contains("holds another sweep") && err.contains(d),
        "{err}"
    );
    ok(&[
        "sweep", "theory", "-q", "--over", "dim=16", "--out", d, "--force",
    ]);
    // The old points are gone but for the user's file; the new sweep is alone.
    assert_eq!(names(&sw.join("p00_dim=4")), ["mine.txt"]);
    assert!(!sw.join("p01_dim=8").exists());
    assert!(sw.join("p00_dim=16").join("summary.json").is_file());
    assert_eq!(
        std::fs::read_to_string(sw.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(points(&sw).len(), 1);
    let m = read_json(&sw.join("manifest.json"));
    assert_eq!(m["complete"], true);
    assert!(!names(&sw).iter().any(|n| n.contains(".tmp-")));
}

#[test]
fn a_running_sweep_owns_its_directory() {
    let dir = scratch("sweep-lock");
    let sw = dir.join("sw");
    let mut args = vec!["sweep", "speciation"];
    args.extend(base());
    args.extend([
        "--over",
        "seed=1,2,3,4,5,6,7,8",
        "--out",
        sw.to_str().unwrap(),
    ]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = sw.join(".regimes.lock");
    let clock = Instant::now();
    while !lock.exists() && clock.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let d = sw.to_str().unwrap();
    let err = fails(&[
        "sweep", "theory", "-q", "--over", "dim=4", "--out", d, "--force",
    ]);
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    child.wait().unwrap();
    assert!(
        err.contains("in use by another run") && err.contains(d),
        "{err}"
    );
    // The running sweep's plan and points are untouched: it resumes to completion.
    ok(&["resume", d, "-q"]);
    assert_eq!(points(&sw).len(), 8);
    assert_eq!(read_json(&sw.join("sweep.json"))["complete"], true);
}

#[test]
fn a_sweep_passes_the_studys_preflight_before_writing_anything() {
    let dir = scratch("sweep-preflight");
    let sw = dir.join("sw");
    let d = sw.to_str().unwrap();
    // A point the machine cannot hold is refused with its estimate, as `theory` alone is.
    let err = fails(&[
        "sweep",
        "theory",
        "-q",
        "--over",
        "dim=4,1000000000000",
        "--out",
        d,
    ]);
    assert!(err.contains("memory") && err.contains("p01"), "{err}");
    assert!(!sw.exists(), "nothing written");
    // A grid too large to hold is refused before it is built.
    let hundred = (1..=100)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let axes: Vec<String> = ["seed", "dim", "pairs", "steps"]
        .iter()
        .map(|k| format!("{k}={hundred}"))
        .collect();
    let mut args = vec!["sweep", "speciation", "-q", "--out", d];
    for a in &axes {
        args.extend(["--over", a.as_str()]);
    }
    let err = fails(&args);
    assert!(
        err.contains("100 × 100 × 100 × 100") && err.contains("10000"),
        "{err}"
    );
    assert!(!sw.exists(), "nothing written");
    // A first point that fails as it runs leaves nothing behind either.
    let bad = dir.join("not-spd.csv");
    std::fs::write(&bad, "1,0\n0,-2\n").unwrap();
    let over = format!("u=file:{},identity", bad.display());
    let err = fails(&[
        "sweep", "theory", "--dim", "2", "-q", "--over", &over, "--out", d,
    ]);
    assert!(err.contains("not-spd.csv") && err.contains("p00"), "{err}");
    assert!(!sw.exists(), "nothing left behind");
    // The corrected command is not blocked.
    ok(&["sweep", "theory", "-q", "--over", "dim=4,8", "--out", d]);
    assert_eq!(read_json(&sw.join("sweep.json"))["complete"], true);
}

#[test]
fn plot_never_replaces_a_file_it_did_not_write() {
    let dir = scratch("plot-owned");
    let (a, b) = (dir.join("a"), dir.join("b"));
    ok(&["theory", "--dim", "4", "-q", "--out", a.to_str().unwrap()]);
    ok(&["theory", "--dim", "8", "-q", "--out", b.to_str().unwrap()]);
    let (a_s, b_s) = (a.to_str().unwrap(), b.to_str().unwrap());
    let res = dir.join("res");
    std::fs::write(dir.join("res.csv"), "the user's\n").unwrap();
    let err = fails(&["plot", a_s, b_s, "--out", res.to_str().unwrap()]);
    assert!(err.contains("res.csv") && err.contains("--force"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("res.csv")).unwrap(),
        "the user's\n"
    );
    // Inside an input directory: refused, the study's files untouched.
    let before = names(&a);
    let inside = a.join("phi");
    let err = fails(&["plot", a_s, b_s, "--out", inside.to_str().unwrap()]);
    assert!(
        err.contains("inside the input directory") && err.contains(a_s),
        "{err}"
    );
    assert_eq!(names(&a), before);
    // --force replaces the user's file; a later plot replaces its own files without it, but
    // not one edited since.
    ok(&["plot", a_s, b_s, "--out", res.to_str().unwrap(), "--force"]);
    assert!(
        std::fs::read_to_string(dir.join("res.csv"))
            .unwrap()
            .contains("dim")
    );
    ok(&["plot", a_s, b_s, "--out", res.to_str().unwrap()]);
    std::fs::write(dir.join("res.csv"), "edited\n").unwrap();
    let err = fails(&["plot", a_s, b_s, "--out", res.to_str().unwrap()]);
    assert!(err.contains("res.csv"), "{err}");
}

/// The printed table of a theory sweep shows the values `sweep.json` holds (it printed "—"
/// where the theory's headlines were looked up under `theory.`).
#[test]
fn the_theory_sweep_table_prints_what_sweep_json_holds() {
    let dir = scratch("sweep-theory-table");
    let sw = dir.join("sw");
    let out = ok(&[
        "sweep",
        "theory",
        "-q",
        "--over",
        "dim=4,8",
        "--out",
        sw.to_str().unwrap(),
    ]);
    let table = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sw.join("sweep.json")).unwrap()).unwrap();
    for p in v["points"].as_array().unwrap() {
        let dim = p["params"]["dim"].as_str().unwrap();
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("dim={dim} ")))
            .unwrap_or_else(|| panic!("no row for dim={dim}: {table}"));
        assert!(!row.contains('—'), "{row}");
        let t_s = p["headlines"]["t_s"].as_f64().unwrap();
        assert!(row.contains(&format!("{t_s:.4}")), "{row} lacks t_S {t_s}");
    }
}
