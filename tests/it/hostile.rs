//! The binary against hostile input: every case must exit non-zero with a message that names the
//! input at fault, without a panic, and leave nothing half-written in `--out`. Then the signals
//! (SIGINT, SIGTERM on a run that is one batch) and a busy output directory.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{regimes, scratch, wait_within};

fn file(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// A .npy v1 file with the given header fields and data bytes.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// One hostile invocation: the command line and the words its error must contain.
struct Case {
    args: Vec<String>,
    needles: Vec<&'static str>,
}

fn case(args: &[&str], needles: &[&'static str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        needles: needles.to_vec(),
    }
}

#[test]
fn hostile_inputs_are_refused_cleanly() {
    let dir = scratch("inputs");
    let f8 = |shape: &str, n: usize| npy("<f8", shape, &vec![0u8; 8 * n]);
    let huge_shape = file(&dir, "huge.npy", &f8("(4294967296, 4294967296)", 2));
    let wrapping = file(&dir, "wrap.npy", &f8("(4294967296, 4294967297)", 2));
    let promised = file(&dir, "promised.npy", &f8("(100000, 100000)", 2));
    let truncated = file(&dir, "truncated.npy", &npy("<f8", "(3, 3)", &[0u8; 20]));
    let three_d = file(&dir, "3d.npy", &f8("(2, 2, 2)", 8));
    let complex = file(&dir, "complex.npy", &npy("<c16", "(2, 2)", &[0u8; 64]));
    let garbage = file(
        &dir,
        "garbage.npy",
        b"\x93NUMPY\x01\x00\xff\xffnot a header",
    );
    // A v3 header that claims 3.6 GB, and a header of nested braces (found by fuzz/).
    let mut long_header = b"\x93NUMPY\x03\x00".to_vec();
    long_header.extend(0xD9C0_0000u32.to_le_bytes());
    long_header.extend(b"{'de");
    let long_header = file(&dir, "long_header.npy", &long_header);
    let mut braces = b"\x93NUMPY\x01\x00".to_vec();
    let text = format!("{}\n", "{".repeat(20));
    braces.extend((text.len() as u16).to_le_bytes());
    braces.extend(text.as_bytes());
    let braces = file(&dir, "braces.npy", &braces);
    let binary = file(&dir, "binary.csv", &[0xff, 0xfe, 0x00, 0x01]);
    let ragged = file(&dir, "ragged.csv", b"1,2,3\n4,5\n");
    let nan = file(&dir, "nan.csv", b"1,nan\n2,3\n");
    let empty = file(&dir, "empty.csv", b"# nothing\n\n");
    let words = file(&dir, "words.csv", b"a,b\nc,d\n");
    let one_point = file(&dir, "one.csv", b"1,2\n");
    let zero_mean = file(&dir, "zero.csv", b"0\n0\n0\n");
    let not_toml = file(&dir, "bad.toml", b"dim = = 3\n");
    let typo = file(&dir, "typo.toml", b"stpes = 10\n");
    let wrong_type = file(&dir, "type.toml", b"particles = \"many\"\n");
    let binary_toml = file(&dir, "binary.toml", &[0xff, 0xfe, 0xfd]);
    let u_not_spd = file(&dir, "u.csv", b"1,0\n0,-2\n");
    let q_sym = file(&dir, "q.csv", b"0,1\n1,0\n");
    let neg_weight = file(&dir, "mix.csv", b"-0.5,1,1\n1.5,-1,-1\n");
    let big_mean = file(&dir, "mean.csv", b"1e300\n1e300\n1e300\n");
    let u_file = |p: &str| format!("file:{p}");
    let backwards = file(&dir, "backwards.csv", b"t,gamma\n0,0.1\n2,0.3\n1,0.2\n");
    let schedule_words = file(&dir, "schedule.csv", b"0,0.1\nlater,0.3\n");
    let backwards = format!("additive:file:{backwards}");
    let schedule_words = format!("additive:file:{schedule_words}");
    let cases = vec![
        // Coupled modalities: bounds, schedules, pairing.
        case(
            &["theory", "--coupling", "additive:1"],
            &["coupling", "|γ| < 1"],
        ),
        case(
            &["theory", "--coupling", "diffusive:-0.5"],
            &["coupling", "γ > −½"],
        ),
        case(
            &["theory", "--coupling", "additive:step:0.1,2,0.99,3,1.5"],
            &["coupling", "1.5"],
        ),
        case(
            &["theory", "--coupling", "additive:step:0.1,2"],
            &["coupling", "odd"],
        ),
        case(
            &["theory", "--coupling", "additive:file:/nonexistent/g.csv"],
            &["coupling", "/nonexistent/g.csv"],
        ),
        case(
            &["theory", "--coupling", &backwards],
            &["coupling", "increase"],
        ),
        case(
            &["theory", "--coupling", &schedule_words],
            &["coupling", "line 2"],
        ),
        case(
            &["theory", "--coupling", "rotating:0.2,inf"],
            &["coupling", "ω"],
        ),
        case(
            &[
                "theory",
                "--coupling",
                "additive:features:0.1,0.2",
                "--dim",
                "3",
            ],
            &["coupling", "d = 3"],
        ),
        case(
            &["theory", "--pairing", "per-mode"],
            &["pairing", "--coupling"],
        ),
        case(
            &[
                "theory",
                "--coupling",
                "additive:0.2",
                "--pair-angle",
                "0",
                "--pairing",
                "per-mode",
            ],
            &["pairing", "aligned"],
        ),
        case(
            &[
                "theory",
                "--coupling",
                "additive:0.2",
                "--pair-angle",
                "270",
            ],
            &["pair-angle", "180"],
        ),
        case(
            &["theory", "--coupling", "additive:0.2", "--q", "optimal"],
            &["q", "rotating"],
        ),
        // Parsing: .npy headers, text matrices, config files, unbounded reads.
        case(
            &["run", "--train-file", &huge_shape],
            &["huge.npy", "too large"],
        ),
        case(
            &["run", "--train-file", &wrapping],
            &["wrap.npy", "too large"],
        ),
        case(
            &["run", "--train-file", &promised],
            &["promised.npy", "needs"],
        ),
        case(&["run", "--train-file", &truncated], &["truncated.npy"]),
        case(&["run", "--train-file", &three_d], &["3d.npy", "2-D"]),
        case(
            &["run", "--train-file", &complex],
            &["complex.npy", "dtype"],
        ),
        case(&["run", "--train-file", &garbage], &["garbage.npy"]),
        case(
            &["run", "--train-file", &long_header],
            &["long_header.npy", "truncated"],
        ),
        case(
            &["run", "--train-file", &braces],
            &["braces.npy", "flat dictionary"],
        ),
        case(&["run", "--train-file", &binary], &["binary.csv", "UTF-8"]),
        case(&["run", "--train-file", &ragged], &["ragged.csv", "line 2"]),
        case(&["run", "--train-file", &nan], &["nan.csv", "not finite"]),
        case(
            &["run", "--train-file", &empty],
            &["empty.csv", "no numeric rows"],
        ),
        case(&["run", "--train-file", &words], &["words.csv"]),
        case(
            &["run", "--train-file", "/nonexistent/t.npy"],
            &["/nonexistent/t.npy"],
        ),
        case(
            &["run", "--u", "file:/dev/zero", "--dim", "2"],
            &["/dev/zero", "device"],
        ),
        case(&["run", "--config", "/dev/zero"], &["/dev/zero", "device"]),
        case(&["run", "--config", &not_toml], &["bad.toml", "TOML"]),
        case(
            &["run", "--config", &typo],
            &["stpes", "did you mean 'steps'"],
        ),
        case(
            &["run", "--config", &wrong_type],
            &["type.toml", "particles"],
        ),
        case(
            &["run", "--config", &binary_toml],
            &["binary.toml", "UTF-8"],
        ),
        case(&["run", "--u", "geomspace:1"], &["--u", "geomspace:LO:HI"]),
        case(&["run", "--q", "pair:0:0:1"], &["--q", "differ"]),
        case(&["run", "--mean", "sideways"], &["--mean", "unknown form"]),
        case(&["run", "--sigma", "nan"], &["--sigma", "finite"]),
        case(&["run", "--t-max", "1e400"], &["--t-max", "finite"]),
        case(
            &["run", "--branch-times", "1,inf"],
            &["--branch-times", "finite"],
        ),
        // Numerics that would silently go wrong.
        case(
            &["run", "--u", "diag:500,1", "--scheme", "euler-maruyama"],
            &["steps", "unstable", "--steps 2527"],
        ),
        case(
            &[
                "run",
                "--dim",
                "4",
                "--u",
                "linspace:1:100",
                "--steps",
                "100",
                "--scheme",
                "euler-maruyama",
            ],
            &["steps", "unstable"],
        ),
        case(&["theory", "--q", "random:1e100"], &["Q", "weaker Q"]),
        case(
            &["theory", "--u", "geomspace:0.2:5", "--q", "optimal:1e20"],
            &["Q", "‖QU‖"],
        ),
        case(&["theory", "--u", "diag:1e13,1"], &["U", "usable range"]),
        case(&["theory", "--t-max", "1e100"], &["t-max", "horizon"]),
        case(&["run", "--sigma", "1e20"], &["sigma", "overflow"]),
        case(
            &["run", "--mean-norm2", "1e40"],
            &["mean-norm2", "overflow"],
        ),
        case(&["collapse", "--n-train", "1"], &["n-train", "at least 2"]),
        case(
            &["collapse", "--train-file", &one_point],
            &["n-train", "at least 2"],
        ),
        case(
            &["run", "--dim", "3", "--mean", &u_file(&zero_mean)],
            &["mean", "zero vector"],
        ),
        case(
            &["run", "--dim", "2", "--u", &u_file(&u_not_spd)],
            &["U", "positive definite"],
        ),
        case(
            &["run", "--dim", "2", "--q", &u_file(&q_sym)],
            &["Q", "antisymmetric"],
        ),
        case(&["run", "--mixture-file", &neg_weight], &["weight", "≥ 0"]),
        // Meaningless combinations.
        case(
            &["speciation", "--train-file", "missing.npy"],
            &["missing.npy"],
        ),
        case(
            &["speciation", "--n-train", "100"],
            &["--n-train", "speciation"],
        ),
        case(&["theory", "--particles", "10"], &["--particles", "theory"]),
        case(&["run", "--pairs", "10"], &["--pairs", "run"]),
        case(
            &["collapse", "--record-times", "1"],
            &["--record-times", "collapse"],
        ),
        case(
            &["run", "--train-file", &one_point, "--n-train", "5"],
            &["n-train", "conflicts"],
        ),
        // Resources.
        case(
            &["collapse", "--n-train", "1000000000", "--dim", "100"],
            &["memory", "--n-train"],
        ),
        case(
            &[
                "run",
                "--particles",
                "100000000000",
                "--dim",
                "1000",
                "--save-samples",
            ],
            &["memory", "--particles"],
        ),
        case(&["run", "--threads", "100000"], &["threads", "per core"]),
        case(
            &["run", "--particles", "18446744073709551615"],
            &["particles", "2⁴⁸"],
        ),
        case(
            &[
                "run",
                "--particles",
                "1000000000000",
                "--steps",
                "100000000",
            ],
            &["particles", "overflow"],
        ),
        case(&["run", "--steps", "0"], &["steps"]),
        // Times, slices, intervals and engine settings out of range.
        case(
            &["speciation", "--branch-times", "0"],
            &["branch-times", "0"],
        ),
        case(&["run", "--record-times", "11"], &["record-times", "t-max"]),
        case(
            &["collapse", "--entropy-times", "-1"],
            &["entropy-times", "-1"],
        ),
        case(&["run", "--shard", "3/3"], &["--shard", "3/3"]),
        case(&["run", "--shard", "a/b"], &["--shard", "a/b"]),
        case(
            &["run", "--checkpoint-every", "0"],
            &["--checkpoint-every", "positive"],
        ),
        case(
            &["run", "--checkpoint-every", "10x"],
            &["--checkpoint-every", "unit"],
        ),
        case(&["theory", "--devices", "all"], &["--devices", "theory"]),
        case(
            &["run", "--devices", "0", "--checkpoint-every", "10"],
            &["--devices", "--checkpoint-every"],
        ),
        case(
            &["run", "--devices", "all", "--backend", "cpu"],
            &["--devices", "--backend"],
        ),
        case(&["run", "--scheme", "sideways"], &["--scheme", "sideways"]),
        case(&["run", "--start", "nowhere"], &["--start", "nowhere"]),
        case(
            &[
                "speciation",
                "--coupling",
                "additive:0.5",
                "--pairing",
                "sideways",
            ],
            &["--pairing", "sideways"],
        ),
        case(
            &["run", "--mixture-file", "/nonexistent/m.csv"],
            &["mixture-file", "/nonexistent/m.csv"],
        ),
        case(
            &["run", "--q", "file:/nonexistent/q.npy"],
            &["/nonexistent/q.npy"],
        ),
        case(&["run", "--t-max", "0"], &["t-max"]),
        case(&["run", "--steps", "-5"], &["--steps", "-5"]),
        case(&["run", "--seed", "-1"], &["--seed", "-1"]),
        case(&["run", "--dim", "0"], &["dim"]),
        case(&["run", "--sigma", "0"], &["sigma"]),
        case(&["run", "--particles", "0"], &["particles"]),
        case(&["speciation", "--pairs", "0"], &["pairs"]),
        case(&["run", "--batch", "0"], &["batch"]),
        case(&["run", "--threads", "0"], &["threads"]),
        case(
            &["run", "--pair-angle", "400", "--coupling", "additive:0.5"],
            &["pair-angle", "400"],
        ),
        case(
            &["collapse", "--entropy-samples", "0"],
            &["entropy-samples"],
        ),
        case(
            &["run", "--steps-per-dispatch", "0"],
            &["steps-per-dispatch"],
        ),
        case(&["run", "--mean-norm2", "-1"], &["mean-norm2", "-1"]),
        case(&["run", "--u", "diag:1,-2"], &["--u", "-2"]),
        case(&["run", "--q-lambdas", "1,2"], &["q-lambdas", "2"]),
        case(
            &["run", "--adapter", "nosuchgpu", "--backend", "gpu"],
            &["adapter", "nosuchgpu"],
        ),
    ];
    assert!(cases.len() >= 95, "{} cases", cases.len());
    // A huge mean file is normalised, not refused: its direction is all that counts.
    let ok = regimes(&[
        "theory",
        "--dim",
        "3",
        "--mean",
        &u_file(&big_mean),
        "--json",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert!(
        (v["t_s"].as_f64().unwrap() - 0.5 * 3f64.ln()).abs() < 1e-6,
        "{}",
        v["t_s"]
    );

    for (i, c) in cases.iter().enumerate() {
        let out_dir = dir.join(format!("out-{i}"));
        let mut args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let out_str = out_dir.to_str().unwrap().to_string();
        args.extend(["--out", &out_str]);
        let out = regimes(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{:?} succeeded", c.args);
        assert!(!err.contains("panicked"), "{:?} panicked: {err}", c.args);
        for n in &c.needles {
            assert!(
                err.contains(n),
                "{:?}: error does not mention '{n}': {err}",
                c.args
            );
        }
        assert!(!out_dir.exists(), "{:?} left {}", c.args, out_dir.display());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Starts a single-batch run long enough to be interrupted, waits until it has begun stepping,
/// sends `signal`, and returns its output and the output directory.
fn interrupted_run(name: &str, signal: libc::c_int) -> (Output, PathBuf) {
    let dir = scratch(name);
    let out_dir = dir.join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args([
            "run",
            "--dim",
            "16",
            "--particles",
            "4096",
            "--steps",
            "200000",
            // One batch: without --batch the first batch is sized small and grows.
            "--batch",
            "4096",
        ])
        .args(["--backend", "cpu", "--record-times", "10,9.99,5,0.001"])
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    // The lock file appears once the output directory is set up; give the run a moment more to
    // get past the first recorded points.
    let start = Instant::now();
    while !out_dir.join(".regimes.lock").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    // A second run into the busy directory is refused, even with --force.
    let busy = regimes(&[
        "run",
        "--dim",
        "2",
        "--force",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(!busy.status.success());
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("in use by another run"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    // SAFETY: sending a signal to our own child process.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill failed");
    let out = child.wait_with_output().unwrap();
    (out, out_dir)
}

fn check_interrupted(signal: libc::c_int) {
    let (out, out_dir) = interrupted_run(&format!("signal{signal}"), signal);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{signal}: exit 0: {err}");
    assert!(err.contains("stopped early"), "{signal}: {err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let reason = summary["stopped_early"].as_str().unwrap_or("");
    assert!(reason.contains("interrupted"), "{signal}: {summary}");
    // The points passed before the signal hold every particle; the last one holds none.
    let record = summary["record"].as_array().unwrap();
    assert_eq!(record[0]["count"], 4096);
    assert_eq!(record.last().unwrap()["count"], 0);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert!(
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "summary.json")
    );
    assert!(!out_dir.join(".regimes.lock").exists(), "lock released");
}

#[test]
fn sigint_stops_a_single_batch_run_with_a_marked_partial_summary() {
    check_interrupted(libc::SIGINT);
}

#[test]
fn sigterm_stops_a_single_batch_run_with_a_marked_partial_summary() {
    check_interrupted(libc::SIGTERM);
}

// ---- sweep, plot and resume of a sweep: pipes, full streams, FIFOs (issue 32) ----------------

/// Runs the binary with `args`, its stdout and stderr as given, within `secs` seconds.
fn streams(args: &[&str], stdout: Stdio, stderr: Stdio, secs: u64) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("binary runs");
    common::wait_within(child, secs, &format!("{args:?}"))
}

#[test]
fn sweep_plot_and_resume_never_panic_on_a_closed_or_full_stream() {
    let dir = scratch("sweep-streams");
    let sw = dir.join("sw");
    let sw_s = sw.to_str().unwrap().to_string();
    let fig = dir.join("figs").join("cmp");
    let fig_s = fig.to_str().unwrap().to_string();
    let sweep: Vec<&str> = vec!["sweep", "theory", "--over", "dim=4,8", "--out", &sw_s];
    let resume: Vec<&str> = vec!["resume", &sw_s];
    let plot: Vec<&str> = vec!["plot", &sw_s, "--out", &fig_s];
    let shards: Vec<String> = ["0/2", "1/2"]
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = dir.join(format!("s{i}")).to_str().unwrap().to_string();
            let out = regimes(&[
                "sweep", "theory", "-q", "--over", "dim=4,8", "--shard", s, "--out", &d,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            d
        })
        .collect();
    let merged = dir.join("m").to_str().unwrap().to_string();
    let merge: Vec<&str> = vec!["merge", &shards[0], &shards[1], "--out", &merged];
    for args in [&sweep, &resume, &plot, &merge] {
        // The reader gone before the first line (`| head -0`): a quiet exit with 141.
        let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = common::wait_within(child, 120, "closed stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        // `| head -1` as a shell runs it.
        let line = format!(
            "'{}' {} | head -1",
            env!("CARGO_BIN_EXE_regimes"),
            args.join(" ")
        );
        let out = Command::new("sh").arg("-c").arg(line).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?} | head -1: {err}");
        let Ok(full) = std::fs::File::create("/dev/full") else {
            continue;
        };
        // A full stdout: a clean error naming stdout; the files stay complete.
        let out = streams(args, Stdio::from(full), Stdio::piped(), 120);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?} > /dev/full: {err}");
        assert!(err.contains("stdout") && !err.contains("panicked"), "{err}");
        // A dead stderr never stops the work.
        let full = std::fs::File::create("/dev/full").unwrap();
        let out = streams(args, Stdio::null(), Stdio::from(full), 120);
        assert!(
            out.status.success(),
            "{args:?} 2> /dev/full: {:?}",
            out.status
        );
    }
    let top: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sw.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(top["complete"], true);
    let names: Vec<String> = std::fs::read_dir(&sw)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".tmp-") || n == ".regimes.lock"),
        "{names:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plot_reads_only_regular_files() {
    let dir = scratch("plot-fifo");
    let fifo = dir.join("fifo");
    std::fs::create_dir_all(&fifo).unwrap();
    let path = std::ffi::CString::new(fifo.join("summary.json").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let zero = dir.join("zero");
    std::fs::create_dir_all(&zero).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("summary.json")).unwrap();
    for (input, kind) in [(&fifo, "FIFO"), (&zero, "device")] {
        let out_stem = dir.join("figs").join("x");
        let args = [
            "plot",
            input.to_str().unwrap(),
            "--out",
            out_stem.to_str().unwrap(),
        ];
        let out = streams(&args, Stdio::piped(), Stdio::piped(), 30);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(kind) && err.contains(input.to_str().unwrap()),
            "{args:?}: {err}"
        );
        assert!(!dir.join("figs").exists(), "nothing written");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Sends `signal` to a `regimes` started with `args` after `delay`, and returns its output and
/// the seconds from the signal to its exit (at most `limit`, else the test fails as hung).
fn stop_after(args: &[&str], delay: Duration, signal: libc::c_int, limit: u64) -> (Output, f64) {
    let child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .env("WGPU_BACKEND", "vulkan")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    std::thread::sleep(delay);
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let sent = Instant::now();
    let out = wait_within(child, limit, &format!("{args:?} after the signal"));
    (out, sent.elapsed().as_secs_f64())
}

/// A stop during the theory (d = 512, dense: about 150 s of scans on 2 cores) ends it within
/// one evaluation, with an error that says it stopped, and writes nothing; it used to run to
/// the end and exit 0.
#[test]
fn sigterm_stops_a_long_theory_with_a_typed_error() {
    let dir = scratch("stop-theory");
    let out_dir = dir.join("out");
    let (out, secs) = stop_after(
        &[
            "theory",
            "--dim",
            "512",
            "--u",
            "rotated:0.2:5",
            "--q",
            "random:1",
        ]
        .into_iter()
        .chain(["--out", out_dir.to_str().unwrap()])
        .collect::<Vec<_>>(),
        Duration::from_secs(3),
        libc::SIGTERM,
        60,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 after a stop: {err}");
    assert!(
        err.contains("stopped") && err.contains("interrupted"),
        "{err}"
    );
    assert!(
        !out_dir.join("summary.json").exists(),
        "a stopped theory wrote a summary"
    );
    eprintln!("theory stopped {secs:.1} s after SIGTERM");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A stop while the collapse study builds its pruning table (O(N²d): minutes at N = 20 000,
/// d = 256 on 2 cores) ends the study promptly, marked stopped early.
#[test]
fn sigint_stops_collapse_while_its_pruning_table_is_built() {
    let (out, secs) = stop_after(
        &[
            "collapse",
            "--preset",
            "biroli",
            "--dim",
            "256",
            "--n-train",
            "20000",
            "--particles",
            "16",
            "--pairs",
            "1",
            "--steps",
            "100",
            "--backend",
            "cpu",
        ],
        Duration::from_secs(4),
        libc::SIGINT,
        60,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 after a stop: {err}");
    assert!(err.contains("stopped early"), "{err}");
    eprintln!("collapse stopped {secs:.1} s after SIGINT");
}

/// Labelled data with 1000 classes in 2 dimensions (a 30 KB file): the split times are
/// computed on the d×d form of the between-class matrix, one scan for all splits. It took
/// over 500 s (a 1000×1000 eigen-solve per split and bisection step).
#[test]
fn labelled_theory_with_many_classes_is_quick() {
    let dir = scratch("many-classes");
    let (mut x, mut y) = (String::new(), String::new());
    for i in 0..2000 {
        let k = i % 1000;
        x += &format!(
            "{:.4},{:.4}\n",
            k as f64 * 0.01 + (i as f64 * 0.7).sin(),
            (i as f64).cos()
        );
        y += &format!("{k}\n");
    }
    let x = file(&dir, "x.csv", x.as_bytes());
    let y = file(&dir, "y.csv", y.as_bytes());
    let child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args([
            "theory",
            "--dim",
            "2",
            "--train-file",
            &x,
            "--train-labels",
            &y,
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_within(child, 60, "theory of 1000 classes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let splits = v["data"]["t_s_splits"].as_array().unwrap();
    assert_eq!(splits.len(), 999);
    // Rank ≤ d = 2: at most two splits at positive times.
    assert!(splits[2..].iter().all(|t| t.is_null()), "{splits:?}");
    assert!(splits[0].as_f64().is_some_and(|t| t > 0.0), "{splits:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `steer` refuses settings it does not apply and names --budget when the budget overflows.
#[test]
fn steer_refuses_what_it_does_not_apply_and_names_the_budget() {
    let dir = scratch("steer");
    let x = file(&dir, "x.csv", b"1,2\n3,4\n5,7\n");
    for (args, needle) in [
        (
            vec!["steer", "--dim", "2", "--budget", "1", "--train-file", &x],
            "--train-file",
        ),
        (
            vec![
                "steer",
                "--dim",
                "4",
                "--u",
                "geomspace:0.2:5",
                "--budget",
                "1e300",
            ],
            "--budget",
        ),
    ] {
        let out = regimes(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: exit 0");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A GPU run of ten million particles (one batch of about 2 M on lavapipe never finished
/// before a stop, and kept nothing) stopped after some seconds keeps its completed batches:
/// the first batch is small and later ones are sized to take about two seconds.
#[test]
fn an_interrupted_gpu_run_keeps_its_completed_batches() {
    let dir = scratch("gpu-stop");
    let out_dir = dir.join("out");
    let (out, _) = stop_after(
        &[
            "run",
            "--particles",
            "10000000",
            "--backend",
            "gpu",
            "--dim",
            "16",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(25),
        libc::SIGINT,
        120,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit 0 after a stop: {err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["stopped_early"].as_str().is_some(), "{summary}");
    let kept = summary["particles"].as_u64().unwrap();
    assert!(
        kept > 0 && kept.is_multiple_of(1024),
        "kept {kept} particles: {summary}"
    );
    assert!(
        summary["fraction_done"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- steer, reproduce and bench on the shared path (issue 32) --------------------------------

/// Closed stdout (`| head -0`): a quiet exit with 141; a full stdout (`> /dev/full`): exit 1
/// naming stdout; a dead stderr (`2> /dev/full`): the work completes. Never a panic.
fn check_streams(args: &[&str]) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = wait_within(child, 60, "closed stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    let Ok(full) = std::fs::File::create("/dev/full") else {
        return;
    };
    let out = streams(args, Stdio::from(full), Stdio::piped(), 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?} > /dev/full: {err}");
    assert!(err.contains("stdout") && !err.contains("panicked"), "{err}");
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = streams(args, Stdio::null(), Stdio::from(full), 60);
    assert!(
        out.status.success(),
        "{args:?} 2> /dev/full: {:?}",
        out.status
    );
}

#[test]
fn steer_reproduce_and_bench_never_panic_on_a_closed_or_full_stream() {
    let dir = scratch("guard-streams");
    let q = dir.join("q.npy");
    let r = dir.join("r");
    let steer = [
        "steer",
        "--dim",
        "4",
        "--budget",
        "1",
        "--iterations",
        "20",
        "--write-q",
        q.to_str().unwrap(),
    ];
    let reproduce = [
        "reproduce",
        "gap",
        "--quick",
        "--backend",
        "cpu",
        "--force",
        "--out",
        r.to_str().unwrap(),
    ];
    let bench = [
        "bench",
        "--workload",
        "gmm",
        "--dim",
        "4",
        "--particles",
        "1024",
        "--steps",
        "10",
        "--threads",
        "1",
    ];
    for args in [&steer[..], &reproduce[..], &bench[..]] {
        check_streams(args);
    }
    assert!(q.exists() && r.join("summary.json").exists());
    assert!(!dir.join(".regimes.lock").exists() && !r.join(".regimes.lock").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A FIFO or a link to /dev/zero where steer reads a matrix, or where steer, reproduce or bench
/// write: refused at once, naming the path; nothing hangs.
#[test]
fn steer_reproduce_and_bench_refuse_fifos_and_devices() {
    let dir = scratch("guard-fifo");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let zero = dir.join("zero");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (f, z) = (fifo.to_str().unwrap(), zero.to_str().unwrap());
    let (uf, uz) = (format!("file:{f}"), format!("file:{z}"));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["steer", "--dim", "2", "--budget", "1", "--u", &uf],
            "FIFO",
        ),
        (
            vec!["steer", "--dim", "2", "--budget", "1", "--u", &uz],
            "device",
        ),
        (
            vec!["steer", "--dim", "2", "--budget", "1", "--write-q", f],
            "not a regular file",
        ),
        (
            vec!["steer", "--dim", "2", "--budget", "1", "--write-q", z],
            "not a regular file",
        ),
        (
            vec!["reproduce", "gap", "--quick", "--out", f],
            "not a directory",
        ),
        (
            vec!["bench", "--workload", "gmm", "--export-model", z],
            "not a directory",
        ),
    ];
    for (args, needle) in cases {
        let out = streams(&args, Stdio::piped(), Stdio::piped(), 30);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
        let named = args.iter().any(|a| a.contains(f)) && err.contains(f)
            || args.iter().any(|a| a.contains(z)) && err.contains(z);
        assert!(named, "{args:?}: the path is not named: {err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// An absurd size is refused before any work, with the estimate and the flag that lowers it
/// (steer aborted on an 80 GB allocation at d = 100 000); nothing is written.
#[test]
fn steer_reproduce_and_bench_preflight_refuses_absurd_sizes() {
    let dir = scratch("guard-preflight");
    let r = dir.join("r");
    let q = dir.join("q.npy");
    let x = dir.join("x");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec![
                "steer",
                "--dim",
                "100000",
                "--budget",
                "1",
                "--write-q",
                q.to_str().unwrap(),
            ],
            vec!["GiB of memory", "--dim"],
        ),
        (
            vec!["bench", "--workload", "dense", "--dim", "1000000"],
            vec!["GiB of memory", "--dim"],
        ),
        (
            vec![
                "bench",
                "--workload",
                "dense",
                "--dim",
                "1000000",
                "--export-model",
                x.to_str().unwrap(),
            ],
            vec!["GiB of memory", "--dim"],
        ),
        (
            vec![
                "reproduce",
                "gap",
                "--pairs",
                "1000000000000000",
                "--out",
                r.to_str().unwrap(),
            ],
            vec!["--pairs", "140737488355328"],
        ),
    ];
    for (args, needles) in cases {
        let out = streams(&args, Stdio::piped(), Stdio::piped(), 30);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: lacks '{n}': {err}");
        }
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "a refused command wrote {left:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Starts `args`, waits until `lock` exists, and returns the child.
fn started_with_lock(args: &[&str], lock: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let start = Instant::now();
    while !lock.exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{args:?} ended before it locked {}",
            lock.display()
        );
        assert!(start.elapsed() < Duration::from_secs(60), "no lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGINT to `child`; its output and the seconds from the signal to its exit.
fn sigint(child: std::process::Child, what: &str) -> (Output, f64) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let sent = Instant::now();
    let out = wait_within(child, 30, what);
    (out, sent.elapsed().as_secs_f64())
}

/// A second run into a directory one of these commands holds is refused, naming the lock; a
/// SIGINT stops the holder within about a second with a typed error, keeping what completed
/// (reproduce: its report of the checks done; bench: the workloads measured; steer: nothing,
/// and no half-written Q), and says "stopped early" once.
#[test]
fn steer_reproduce_and_bench_hold_their_output_and_stop_on_sigint() {
    let dir = scratch("guard-lock");
    let busy = |args: &[&str]| {
        let out = regimes(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("in use by another run")
                && err.contains("process")
                && err.contains(".regimes.lock"),
            "{args:?}: {err}"
        );
    };

    // reproduce: a second reproduce (even --force) and a bench export into its directory.
    let r = dir.join("r");
    let rs = r.to_str().unwrap();
    let child = started_with_lock(
        &[
            "reproduce",
            "speciation-gmm",
            "--backend",
            "cpu",
            "--out",
            rs,
        ],
        &r.join(".regimes.lock"),
    );
    std::thread::sleep(Duration::from_millis(1500));
    busy(&["reproduce", "gap", "--quick", "--force", "--out", rs]);
    busy(&[
        "bench",
        "--workload",
        "gmm",
        "--export-model",
        rs,
        "--force",
    ]);
    let (out, secs) = sigint(child, "reproduce after SIGINT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("stopped early").count(), 1, "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(r.join("summary.json")).unwrap()).unwrap();
    let reason = summary["stopped_early"].as_str().unwrap_or("");
    assert!(
        reason.contains("interrupted") && !reason.contains("stopped early"),
        "{summary}"
    );
    assert!(r.join("report.md").exists() && !r.join(".regimes.lock").exists());
    eprintln!("reproduce stopped {secs:.2} s after SIGINT");
    assert!(secs < 5.0, "reproduce took {secs:.1} s to stop");

    // steer: a second steer writing beside it is refused; stopped, it writes no Q.
    let q = dir.join("q.npy");
    let qs = q.to_str().unwrap();
    let long = [
        "steer",
        "--dim",
        "64",
        "--u",
        "rotated:0.2:5",
        "--budget",
        "2",
        "--iterations",
        "1000000",
        "--write-q",
        qs,
    ];
    let child = started_with_lock(&long, &dir.join(".regimes.lock"));
    std::thread::sleep(Duration::from_millis(1500));
    busy(&["steer", "--dim", "4", "--budget", "1", "--write-q", qs]);
    let (out, secs) = sigint(child, "steer after SIGINT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stopped") && err.contains("interrupted"),
        "{err}"
    );
    assert!(!q.exists(), "a stopped steer wrote {qs}");
    assert!(!dir.join(".regimes.lock").exists());
    eprintln!("steer stopped {secs:.2} s after SIGINT");
    assert!(secs < 5.0, "steer took {secs:.1} s to stop");

    // bench: the workload in flight stops; the JSON records of those measured before are
    // printed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(["bench", "--workload", "gmm,empirical", "--dim", "16"])
        .args([
            "--particles",
            "20000000",
            "--steps",
            "1000",
            "--threads",
            "1",
        ])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "bench ended early");
    let (out, secs) = sigint(child, "bench after SIGINT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("stopped early").count(), 1, "{err}");
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(records.as_array().unwrap().len() < 2, "{records}");
    eprintln!("bench stopped {secs:.2} s after SIGINT");
    assert!(secs < 5.0, "bench took {secs:.1} s to stop");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The same with a small batch cap (`--batch 4096`): a run on lavapipe stopped after some
/// seconds keeps whole batches (a multiple of the cap, at least one), and stops within about a
/// second of the signal.
#[test]
fn an_interrupted_gpu_run_with_a_batch_cap_keeps_whole_batches() {
    let dir = scratch("gpu-stop-cap");
    let out_dir = dir.join("out");
    let (out, secs) = stop_after(
        &[
            "run",
            "--particles",
            "4000000",
            "--batch",
            "4096",
            "--steps",
            "100",
            "--backend",
            "gpu",
            "--dim",
            "8",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        Duration::from_secs(15),
        libc::SIGINT,
        60,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert!(summary["stopped_early"].as_str().is_some(), "{summary}");
    let kept = summary["particles"].as_u64().unwrap();
    assert!(
        kept >= 4096 && kept.is_multiple_of(4096) && kept < 4_000_000,
        "kept {kept} particles: {summary}"
    );
    eprintln!("gpu run (batch cap 4096) stopped {secs:.2} s after SIGINT, kept {kept} particles");
    assert!(secs < 5.0, "took {secs:.1} s to stop");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `reproduce discretisation --pairs N` runs N pairs per point (the flag was accepted and
/// ignored: the experiment kept its own default).
#[test]
fn reproduce_discretisation_applies_pairs() {
    let dir = scratch("disc-pairs");
    let out_dir = dir.join("d");
    let args = [
        "reproduce",
        "discretisation",
        "--quick",
        "--pairs",
        "100",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = streams(&args, Stdio::piped(), Stdio::piped(), 120);
    let err = String::from_utf8_lossy(&out.stderr);
    // 100 pairs are too few for every check to pass: exit 1 naming the failed checks is fine.
    assert!(
        !err.contains("panicked") && !err.contains("stopped"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["data"]["pairs"], 100, "{summary}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A file reproduce cannot write (a user's directory in its way) loses none of the checks done:
/// a CSV in the middle ends the experiment with summary.json and report.md holding the checks
/// so far, naming the file; report.md unwritable at the end puts the summary on stdout.
#[test]
fn a_late_write_failure_in_reproduce_loses_no_check() {
    let dir = scratch("reproduce-late");
    for (blocked, on_stdout) in [("gap.csv", false), ("report.md", true)] {
        let r = dir.join(blocked.replace('.', "-"));
        std::fs::create_dir_all(r.join(blocked).join("keep")).unwrap();
        let args = [
            "reproduce",
            "gap",
            "--quick",
            "--backend",
            "cpu",
            "--quiet",
            "--force",
            "--out",
            r.to_str().unwrap(),
        ];
        let out = streams(&args, Stdio::piped(), Stdio::piped(), 60);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{blocked}: {err}");
        assert!(err.contains(blocked) && !err.contains("panicked"), "{err}");
        assert!(
            r.join(blocked).join("keep").is_dir(),
            "the user's directory stays"
        );
        let summary: serde_json::Value = if on_stdout {
            assert!(err.contains("summary above"), "{err}");
            serde_json::from_slice(&out.stdout).expect("the summary on stdout")
        } else {
            assert!(r.join("report.md").is_file());
            serde_json::from_str(&std::fs::read_to_string(r.join("summary.json")).unwrap()).unwrap()
        };
        let checks = summary["checks"].as_array().unwrap();
        assert!(!checks.is_empty(), "{blocked}: {summary}");
        if !on_stdout {
            // Cut short by the failure: not a pass, whatever the checks done say.
            assert_eq!(summary["passed"], false, "{summary}");
            let why = summary["stopped_early"].as_str().unwrap_or("");
            assert!(why.contains("failed") && why.contains(blocked), "{summary}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
