//! No number nobody measured, no unlike quantities side by side, an error on every measured
//! headline, numbers as written, a prompt stop, and no result lost to a late write failure
//! (issue 24 §1, §2, §3.3, §3.10). Each test runs the binary as a user would.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{regimes, scratch, summary, wait_within};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .env("WGPU_BACKEND", "vulkan")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

/// Sends SIGINT to `child` after `after` and waits for it at most `within`; returns its output
/// and how long it took to exit after the signal.
fn interrupt(mut child: Child, after: Duration, within: Duration) -> (Output, Duration) {
    std::thread::sleep(after);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the signal: make it longer"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = Instant::now();
    let out = wait_within(child, within.as_secs(), "after SIGINT");
    (out, signalled.elapsed())
}

/// `regimes run` as one batch of 8192 particles over 20 000 steps (seconds of work, so a signal
/// lands mid-batch), with `extra` flags.
fn long_run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--dim",
        "16",
        "--particles",
        "8192",
        "--batch",
        "8192",
        "--steps",
        "20000",
    ];
    args.extend(extra);
    args
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// No number in a CSV is a statistic of nothing: where a point holds no particles, its
/// statistics columns are `nan`, never 0.
fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn an_interrupted_run_reports_no_statistic_of_points_it_never_reached() {
    let dir = scratch("partial-run");
    let out = dir.join("run");
    // One batch, long enough that the stop lands in its middle.
    let child = spawn(&long_run(&[
        "--record-times",
        "10,5,1,0",
        "--backend",
        "cpu",
        "--out",
        s(&out),
    ]));
    let (o, took) = interrupt(child, Duration::from_millis(1500), Duration::from_secs(10));
    assert!(!o.status.success());
    assert!(took < Duration::from_secs(6), "took {took:?} to stop");
    let err = stderr(&o);
    assert!(err.contains("stopping at the next step boundary"), "{err}");
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("PARTIAL RESULTS"), "{table}");
    let sum = read_json(&out.join("summary.json"));
    assert_eq!(sum["schema_version"], 2);
    assert!(sum["stopped_early"].is_string());
    let done = sum["fraction_done"].as_f64().unwrap();
    assert!((0.0..1.0).contains(&done), "{done}");
    assert_eq!(sum["particles"], 0);
    assert!(sum["class_fractions"].is_null());
    let record = sum["record"].as_array().unwrap();
    // t = 10 was reached by the whole batch, t = 0 by none of it.
    assert_eq!(record[0]["count"], 8192);
    assert!(record[0]["purity"].is_number());
    let last = &record[3];
    assert_eq!(last["count"], 0);
    for key in [
        "mean_norm",
        "purity",
        "purity_stderr",
        "projection_mean",
        "mean",
        "variance",
    ] {
        assert!(
            last[key].is_null(),
            "{key} of a point never reached: {}",
            last[key]
        );
    }
    // The table shows a dash, the CSV nan, for what was not measured.
    let last_line = table
        .lines()
        .find(|l| l.trim_start().starts_with("0.000"))
        .unwrap();
    assert!(
        last_line.contains('—') && !last_line.contains("0.0000"),
        "{last_line}"
    );
    let rows = csv_rows(&out.join("moments.csv"));
    let zero = rows.iter().find(|r| r[0] == "0").unwrap();
    assert_eq!(zero[1], "0");
    assert!(zero[2..].iter().all(|c| c == "nan"), "{zero:?}");
}

#[test]
fn an_interrupted_speciation_and_collapse_measure_nothing_they_did_not_do() {
    let dir = scratch("partial-studies");
    let spec = dir.join("speciation");
    let child = spawn(&[
        "speciation",
        "--dim",
        "16",
        "--pairs",
        "16384",
        "--batch",
        "32768",
        "--steps",
        "20000",
        "--backend",
        "cpu",
        "--json",
        "--out",
        s(&spec),
    ]);
    let (o, _) = interrupt(child, Duration::from_millis(1500), Duration::from_secs(10));
    assert!(!o.status.success());
    let sum: Value = serde_json::from_slice(&o.stdout).expect("the partial summary on stdout");
    assert_eq!(sum["pairs"], 0);
    for p in sum["phi"].as_array().unwrap() {
        assert!(p["phi"].is_null() && p["stderr"].is_null(), "{p}");
        assert!(p["phi_posterior"].is_null(), "{p}");
    }
    assert!(sum["t_s_measured"].is_null() && sum["t_s_measured_stderr"].is_null());
    assert!(
        sum["t_s_theory"].is_number(),
        "the theory is not a measurement: it stays"
    );

    let col = dir.join("collapse");
    let child = spawn(&[
        "collapse",
        "--dim",
        "16",
        "--n-train",
        "2000",
        "--particles",
        "4096",
        "--batch",
        "4096",
        "--steps",
        "20000",
        "--backend",
        "cpu",
        "--json",
        "--out",
        s(&col),
    ]);
    let (o, _) = interrupt(child, Duration::from_millis(1500), Duration::from_secs(10));
    assert!(!o.status.success());
    let sum: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sum["particles"], 0);
    assert!(sum["t_c_measured"].is_null(), "{}", sum["t_c_measured"]);
    let times = &sum["collapse_times"];
    for key in ["mean", "stderr", "median", "median_interval", "q10", "q90"] {
        assert!(times[key].is_null(), "{key}: {}", times[key]);
    }
    assert!(sum["t_c_theory"].is_number());
    // The figure says what it is.
    let svg = std::fs::read_to_string(col.join("collapse.svg")).unwrap();
    assert!(
        svg.contains("partial"),
        "the figure's title marks a partial run"
    );
}

#[test]
fn an_empty_shard_has_no_statistics() {
    let dir = scratch("empty-shard");
    let out = dir.join("s5");
    let o = regimes(&[
        "run",
        "--preset",
        "quick",
        "--particles",
        "3",
        "--shard",
        "5/10",
        "--out",
        s(&out),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sum: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sum["particles"], 0);
    for p in sum["record"].as_array().unwrap() {
        assert!(p["purity"].is_null() && p["mean_norm"].is_null(), "{p}");
    }
    assert_eq!(sum["fraction_done"], 1.0, "nothing was left to do");
}

#[test]
fn speciation_measures_t_s_only_where_the_crossing_is_the_speciation_time() {
    let dir = scratch("unlike");
    // Two classes of unequal weight: φ crossing F(1) is not t_S.
    let mixture = dir.join("mixture.csv");
    let mut rows = String::new();
    for (w, sign) in [(0.3, 1.0), (0.7, -1.0)] {
        let mean: Vec<String> = (0..8).map(|_| format!("{}", sign)).collect();
        rows += &format!("{w},{}\n", mean.join(","));
    }
    std::fs::write(&mixture, rows).unwrap();
    let sum = summary(&[
        "speciation",
        "--mixture-file",
        s(&mixture),
        "--pairs",
        "2000",
        "--steps",
        "200",
        "--backend",
        "cpu",
        "--json",
        "--quiet",
    ]);
    assert!(sum["t_s_measured"].is_null(), "{}", sum["t_s_measured"]);
    let note = sum["t_s_measured_note"].as_str().unwrap();
    assert!(note.contains("unequal weight"), "{note}");
    assert!(sum["t_s_theory"].is_number());

    // Four classes (a label per mode): no joint t_S measured, each mode's is.
    let sum = summary(&[
        "speciation",
        "--preset",
        "coupled",
        "--pairing",
        "per-mode",
        "--pairs",
        "2000",
        "--steps",
        "300",
        "--backend",
        "cpu",
        "--json",
        "--quiet",
    ]);
    assert!(sum["t_s_measured"].is_null());
    assert!(
        sum["t_s_measured_note"]
            .as_str()
            .unwrap()
            .contains("4 classes")
    );
    for m in sum["modes"].as_array().unwrap() {
        assert!(m["t_s_measured"].is_number(), "{m}");
        assert!(m["t_s_measured_stderr"].as_f64().unwrap() > 0.0, "{m}");
    }
    assert!(sum["sync_gap_measured_stderr"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_measured_headline_has_its_error_and_numbers_read_as_written() {
    let dir = scratch("headlines");
    let out = dir.join("s");
    let sum = summary(&[
        "speciation",
        "--preset",
        "quick",
        "--steps",
        "1000",
        "--branch-times",
        "0.05,0.5,1,1.04,2.14,3",
        "--backend",
        "cpu",
        "--json",
        "--quiet",
        "--out",
        s(&out),
    ]);
    assert_eq!(sum["schema_version"], 2);
    let t_s = sum["t_s_measured"].as_f64().unwrap();
    let se = sum["t_s_measured_stderr"].as_f64().unwrap();
    assert!(se > 0.0 && se < 0.5 * t_s, "{t_s} ± {se}");
    let mut phi = sum["phi"].as_array().unwrap().clone();
    phi.sort_by(|a, b| {
        a["t"]
            .as_f64()
            .unwrap()
            .total_cmp(&b["t"].as_f64().unwrap())
    });
    // Times come back as written.
    let mut times: Vec<f64> = phi.iter().map(|p| p["t"].as_f64().unwrap()).collect();
    times.sort_by(f64::total_cmp);
    assert_eq!(times, [0.05, 0.5, 1.0, 1.04, 2.14, 3.0]);
    // φ near 1 keeps an error bar (Wilson), and every error is positive.
    assert!(phi[0]["phi"].as_f64().unwrap() > 0.99);
    for p in &phi {
        assert!(p["stderr"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["pairs"].is_u64(), "counts are integers: {p}");
    }
    // The theory curve has named fields, not tuples.
    let point = &sum["theory"]["s_curve"][0];
    for key in ["t", "s", "lambda_min_mtilde", "phi_theory"] {
        assert!(point[key].is_number(), "{key} in {point}");
    }
    assert!(
        std::fs::read_to_string(out.join("phi.csv"))
            .unwrap()
            .contains("\n2.14,")
    );

    let sum = summary(&[
        "collapse",
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--json",
        "--quiet",
        "--out",
        s(&dir.join("c")),
    ]);
    let median = sum["t_c_measured"].as_f64().unwrap();
    let [lo, hi] = [0, 1].map(|i| sum["t_c_measured_interval"][i].as_f64().unwrap());
    // On a grid of 200 steps the ±1σ ranks may fall in the median's step.
    assert!(lo <= median && median <= hi, "{lo} {median} {hi}");
    assert_eq!(sum["t_c_theory_basis"], "target-covariance");
    let bin = &sum["collapse_times"]["histogram"][0];
    assert!(bin["t"].is_number() && bin["fraction"].is_number(), "{bin}");
    // φ_C has no theory: its CSV has no all-nan theory column.
    let header = std::fs::read_to_string(dir.join("c").join("clone_collapse.csv")).unwrap();
    assert!(
        !header.lines().next().unwrap().contains("phi_theory"),
        "{header}"
    );
}

#[test]
fn a_training_file_headlines_its_own_t_c() {
    let dir = scratch("own-data");
    let train = dir.join("train.csv");
    // 300 points of a ±m mixture with a much wider spread than the default σ = 1.
    let mut text = String::new();
    let mut x = 12345u64;
    let mut uniform = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..300 {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        let row: Vec<String> = (0..8)
            .map(|_| format!("{:.6}", sign + 3.0 * (uniform() - 0.5) * 3.4641))
            .collect();
        text += &(row.join(",") + "\n");
    }
    std::fs::write(&train, text).unwrap();
    let sum = summary(&[
        "collapse",
        "--train-file",
        s(&train),
        "--particles",
        "500",
        "--pairs",
        "200",
        "--steps",
        "200",
        "--entropy-samples",
        "100",
        "--backend",
        "cpu",
        "--json",
        "--quiet",
    ]);
    assert_eq!(sum["t_c_theory_basis"], "sample-covariance");
    let (own, target) = (
        sum["t_c_theory"].as_f64().unwrap(),
        sum["t_c_target"].as_f64().unwrap(),
    );
    assert!(
        (own - target).abs() > 0.05,
        "the file's t_C {own} vs the target's {target}"
    );
}

#[test]
fn a_stop_request_lands_within_seconds_in_the_host_side_excess_entropy() {
    let dir = scratch("entropy-stop");
    // Almost all of this study is the host-side excess entropy.
    let child = spawn(&[
        "collapse",
        "--dim",
        "32",
        "--n-train",
        "4000",
        "--particles",
        "16",
        "--pairs",
        "16",
        "--steps",
        "50",
        "--entropy-samples",
        "400000",
        "--backend",
        "cpu",
        "--json",
        "--out",
        s(&dir.join("c")),
    ]);
    let (o, took) = interrupt(child, Duration::from_millis(2500), Duration::from_secs(20));
    assert!(!o.status.success());
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} after the signal"
    );
    let sum: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        sum["stopped_early"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert!(sum["excess_entropy"].as_array().unwrap().len() < 9);
}

#[test]
fn a_late_write_failure_loses_no_result() {
    let dir = scratch("late-failure");
    let out = dir.join("run");
    // A directory of the user's where the run's moments.csv goes: the rename onto it fails
    // after the work is done (as a full disk or a vanished file system would).
    std::fs::create_dir_all(out.join("moments.csv").join("keep")).unwrap();
    let o = regimes(&[
        "run",
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--force",
        "--out",
        s(&out),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("moments.csv"), "{err}");
    assert!(err.contains("summary above"), "{err}");
    let printed: Value = serde_json::from_slice(&o.stdout).expect("the summary on stdout");
    assert_eq!(printed["particles"], 10_000);
    // What did land stays: the summary, the user's directory.
    assert_eq!(read_json(&out.join("summary.json"))["particles"], 10_000);
    assert!(out.join("moments.csv").join("keep").is_dir());
    let manifest = read_json(&out.join("manifest.json"));
    assert_eq!(manifest["complete"], false);
}

#[test]
fn merge_refuses_shards_whose_input_files_changed_and_resume_moves_engines() {
    let dir = scratch("merge-inputs");
    let train = dir.join("train.csv");
    std::fs::write(&train, "0,0\n1,1\n2,0\n0,2\n1,3\n3,1\n").unwrap();
    let mut shards = vec![];
    for i in 0..2 {
        let d = dir.join(format!("s{i}"));
        let spec = format!("{i}/2");
        let o = regimes(&[
            "run",
            "--train-file",
            s(&train),
            "--particles",
            "2000",
            "--steps",
            "50",
            "--backend",
            "cpu",
            "--quiet",
            "--shard",
            &spec,
            "--out",
            s(&d),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        shards.push(d);
    }
    std::fs::write(&train, "0,0\n1,1\n2,0\n0,2\n1,3\n3,2\n").unwrap();
    let o = regimes(&[
        "merge",
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&dir.join("m")),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("train-file") && err.contains("other contents"),
        "{err}"
    );
    assert!(!dir.join("m").exists());

    // A run interrupted on one engine resumes on another when asked.
    let run = dir.join("r");
    let child = spawn(&long_run(&[
        "--backend",
        "cpu",
        "--checkpoint-every",
        "1h",
        "--out",
        s(&run),
    ]));
    let (o, _) = interrupt(child, Duration::from_millis(1200), Duration::from_secs(10));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("regimes resume"));
    // --force over a copy of it discards the checkpoint, and says so.
    let copy = dir.join("r-copy");
    let cp = Command::new("cp")
        .args(["-r", s(&run), s(&copy)])
        .status()
        .unwrap();
    assert!(cp.success());
    let o = regimes(&["run", "--preset", "quick", "--force", "--out", s(&copy)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--force discards the checkpoint"),
        "{}",
        stderr(&o)
    );
    let o = regimes(&[
        "resume",
        s(&run),
        "--backend",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!run.join(".regimes-checkpoint").exists());
}

#[test]
fn an_interrupted_reproduce_writes_the_checks_done_so_far() {
    let dir = scratch("reproduce-stop");
    let out = dir.join("multimodal");
    let child = spawn(&["reproduce", "multimodal", "--quick", "--out", s(&out)]);
    let (o, took) = interrupt(child, Duration::from_millis(2500), Duration::from_secs(20));
    assert!(!o.status.success());
    assert!(
        took < Duration::from_secs(8),
        "took {took:?} after the signal"
    );
    assert!(stderr(&o).contains("checks done so far"), "{}", stderr(&o));
    let sum = read_json(&out.join("summary.json"));
    assert!(
        sum["stopped_early"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(sum["passed"], false);
    assert!(sum["checks"].is_array());
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Stopped early"), "{report}");
}
