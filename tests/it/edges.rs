//! Trust at the edges (issue 24, §3): the binary under the conditions users' runs meet — closed
//! pipes, full disks on stdout, a dead stderr, concurrent runs into one directory, runs in
//! containers (PID namespaces), FIFOs and devices where files belong, directories holding files
//! it did not write — each asserting the exit status, that the message names the input, and that
//! nothing was lost or left behind.

use crate::common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{regimes, scratch, wait_within};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regimes"));
    c.env("WGPU_BACKEND", "vulkan");
    c
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Files in `dir` (recursively, relative names), sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.push(name);
            }
        }
    }
    let mut v = vec![];
    walk(dir, dir, &mut v);
    v.sort();
    v
}

fn no_temporaries(dir: &Path) {
    let left: Vec<String> = listing(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp-") || n.contains(".regimes.lock"))
        .collect();
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}",
        dir.display()
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// A CPU run of about a second or more on one thread, into `out`.
fn long_run(out: &Path, steps: &str) -> Command {
    let mut c = bin();
    c.args(["run", "--dim", "8", "--particles", "2048", "--steps", steps])
        .args([
            "--backend",
            "cpu",
            "--threads",
            "1",
            "--record-times",
            "10,0",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn quick_run(out: &Path, force: bool) -> Output {
    let mut args = vec!["run", "--preset", "quick", "--backend", "cpu", "--quiet"];
    if force {
        args.push("--force");
    }
    let o = s(out);
    args.extend(["--out", &o]);
    regimes(&args)
}

// ---- 3.4 stdout and stderr ------------------------------------------------------------------

#[test]
fn a_closed_stdout_ends_quietly_with_141() {
    // The reader is gone before the table is written (`regimes theory | head -0`).
    let mut child = bin()
        .arg("theory")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = wait_within(child, 30, "theory into a closed pipe");
    assert_eq!(out.status.code(), Some(141), "{}", text(&out));
    assert!(text(&out).is_empty(), "not quiet: {}", text(&out));
    // The shell's view: `regimes theory | head -1` prints one line, no panic.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' theory --dim 64 | head -1",
            env!("CARGO_BIN_EXE_regimes")
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
}

#[test]
fn a_full_stdout_is_a_clean_error_and_the_files_stay() {
    let Ok(full) = fs::File::create("/dev/full") else {
        eprintln!("skipping: no /dev/full here");
        return;
    };
    let dir = scratch("edges-full");
    let out_dir = dir.join("out");
    let out = bin()
        .args(["run", "--preset", "quick", "--backend", "cpu", "--quiet"])
        .arg("--out")
        .arg(&out_dir)
        .stdout(full)
        .output()
        .unwrap();
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stdout") && !err.contains("panicked"), "{err}");
    assert!(out_dir.join("summary.json").exists(), "the results stay");
    assert_eq!(manifest(&out_dir)["complete"], true);
    no_temporaries(&out_dir);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_dead_stderr_never_stops_the_work() {
    let Ok(full) = fs::File::create("/dev/full") else {
        eprintln!("skipping: no /dev/full here");
        return;
    };
    let dir = scratch("edges-stderr");
    let out_dir = dir.join("out");
    // Progress, engine line and summary lines all go to the dead stderr.
    let out = bin()
        .args(["run", "--preset", "quick", "--backend", "cpu", "--json"])
        .arg("--out")
        .arg(&out_dir)
        .stderr(full)
        .output()
        .unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v["command"], "run");
    assert_eq!(manifest(&out_dir)["complete"], true);
    no_temporaries(&out_dir);
    fs::remove_dir_all(dir).unwrap();
}

// ---- 3.1 the output lock ----------------------------------------------------------------------

/// Several runs started at once into one directory: exactly one gets in, the others are refused
/// naming the run that holds it, and the directory holds the winner's complete run.
fn race(dir: &Path, make: impl Fn() -> Command, n: usize) -> Vec<Output> {
    let children: Vec<Child> = (0..n).map(|_| make().spawn().unwrap()).collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| wait_within(c, 120, "racing run"))
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    let msgs: Vec<String> = outs.iter().map(text).collect();
    assert_eq!(won, 1, "{won} of {n} got in: {msgs:#?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let e = text(o);
        assert!(e.contains("in use by another run"), "{e}");
        assert!(e.contains(&s(dir)), "names the directory: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    assert_eq!(manifest(dir)["complete"], true);
    no_temporaries(dir);
    outs
}

#[test]
fn concurrent_force_runs_exactly_one_gets_in() {
    let dir = scratch("edges-force-race");
    let out_dir = dir.join("out");
    assert!(quick_run(&out_dir, false).status.success());
    fs::write(out_dir.join("notes.txt"), "mine").unwrap();
    race(
        &out_dir,
        || {
            let mut c = long_run(&out_dir, "20000");
            c.arg("--force");
            c
        },
        4,
    );
    assert_eq!(
        fs::read_to_string(out_dir.join("notes.txt")).unwrap(),
        "mine"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["config"]["steps"], 20000, "the winner's run");
    fs::remove_dir_all(dir).unwrap();
}

/// Waits until a run has checkpointed a phase (a blob beside state.json).
fn wait_for_checkpoint(out_dir: &Path) {
    let cp = out_dir.join(".regimes-checkpoint");
    let start = Instant::now();
    loop {
        let blobs = fs::read_dir(&cp)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n != "state.json" && !n.starts_with('.')
            })
            .count();
        if blobs > 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint in {}",
            cp.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn concurrent_resumes_after_a_kill_exactly_one_gets_in() {
    let dir = scratch("edges-resume-race");
    let out_dir = dir.join("out");
    let child = long_run(&out_dir, "40000")
        .args(["--checkpoint-every", "1000"])
        .spawn()
        .unwrap();
    wait_for_checkpoint(&out_dir);
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: killing our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let _ = child.wait_with_output();
    // kill -9 left its lock: a dead holder on this machine, which a resume takes over.
    assert!(out_dir.join(".regimes.lock").exists());
    let outs = race(
        &out_dir,
        || {
            let mut c = bin();
            c.arg("resume")
                .arg(&out_dir)
                .arg("--quiet")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c
        },
        4,
    );
    assert!(outs.iter().any(|o| o.status.success()));
    assert!(
        !out_dir.join(".regimes-checkpoint").exists(),
        "resumed to the end"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_lock_held_in_another_pid_namespace_is_respected_and_taken_over_once_dead() {
    let probe = Command::new("unshare")
        .args(["-rpf", "--mount-proc", "--kill-child", "true"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        let why = probe.map_or_else(|e| e.to_string(), |o| text(&o));
        println!("skipping the PID-namespace case: `unshare -rpf --mount-proc` fails here: {why}");
        return;
    }
    let dir = scratch("edges-pidns");
    let out_dir = dir.join("out");
    let inner = long_run(&out_dir, "400000");
    let mut cmd = Command::new("unshare");
    cmd.args(["-rpf", "--mount-proc", "--kill-child"])
        .arg(inner.get_program())
        .args(inner.get_args())
        .env("WGPU_BACKEND", "vulkan")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let lock = out_dir.join(".regimes.lock");
    let start = Instant::now();
    let holder = loop {
        if let Ok(t) = fs::read_to_string(&lock)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(t.trim())
        {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no lock");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The holder's pid means nothing here (it is 1 in its namespace).
    assert_eq!(holder["pid"], 1, "{holder}");
    let busy = quick_run(&out_dir, true);
    let e = text(&busy);
    assert!(
        !busy.status.success(),
        "--force got into a live run's directory"
    );
    assert!(e.contains("in use by another run"), "{e}");
    // Killed inside its container: the lock stays, and is provably stale from here.
    child.kill().unwrap();
    child.wait().unwrap();
    let start = Instant::now();
    let taken = loop {
        let o = quick_run(&out_dir, true);
        if o.status.success() || start.elapsed() > Duration::from_secs(10) {
            break o;
        }
        std::thread::sleep(Duration::from_millis(100)); // the kernel reaps the namespace
    };
    assert!(taken.status.success(), "{}", text(&taken));
    assert_eq!(manifest(&out_dir)["complete"], true);
    no_temporaries(&out_dir);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unreadable_or_foreign_lock_names_the_file_to_delete() {
    let dir = scratch("edges-oldlock");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).unwrap();
    for (content, needle) in [
        ("1\n", "cannot read"),
        (
            r#"{"run_id":"x","host":"elsewhere","boot_id":"another-boot","pid":7,"start_time":1,"pid_ns":null}"#,
            "cannot prove dead",
        ),
    ] {
        fs::write(out_dir.join(".regimes.lock"), content).unwrap();
        let o = quick_run(&out_dir, true);
        let e = text(&o);
        assert!(!o.status.success(), "{e}");
        assert!(
            e.contains(needle) && e.contains("delete the lock file"),
            "{e}"
        );
        assert!(e.contains(&s(&out_dir.join(".regimes.lock"))), "{e}");
        assert_eq!(listing(&out_dir), [".regimes.lock"], "nothing else written");
    }
    fs::remove_dir_all(dir).unwrap();
}

// ---- 3.9 deleting only what it wrote ---------------------------------------------------------

#[test]
fn force_deletes_only_files_it_proves_it_wrote() {
    let dir = scratch("edges-own");
    let out_dir = dir.join("out");
    let outside = dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    assert!(quick_run(&out_dir, false).status.success());
    let first = manifest(&out_dir);
    let names: Vec<String> = first["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "summary.json"), "{names:?}");
    // A user's file named like a temporary, a listed file the user edited, and a listed file
    // replaced by a symlink to a file outside.
    fs::write(out_dir.join(".draft.tmp-1"), "mine").unwrap();
    fs::write(out_dir.join(".notes.json.tmp-123-0"), "mine").unwrap();
    fs::write(out_dir.join("moments.csv"), "edited by hand\n").unwrap();
    fs::write(outside.join("precious.svg"), "outside").unwrap();
    fs::remove_file(out_dir.join("run.svg")).unwrap();
    std::os::unix::fs::symlink(outside.join("precious.svg"), out_dir.join("run.svg")).unwrap();
    let o = quick_run(&out_dir, true);
    assert!(o.status.success(), "{}", text(&o));
    let e = text(&o);
    assert!(e.contains("moments.csv") && e.contains("left alone"), "{e}");
    assert_eq!(
        fs::read_to_string(out_dir.join(".draft.tmp-1")).unwrap(),
        "mine"
    );
    assert_eq!(
        fs::read_to_string(out_dir.join(".notes.json.tmp-123-0")).unwrap(),
        "mine"
    );
    assert_eq!(
        fs::read_to_string(outside.join("precious.svg")).unwrap(),
        "outside"
    );
    // A manifest it did not write, listing the user's thesis: the thesis stays.
    fs::write(out_dir.join("thesis.tex"), "years of work").unwrap();
    fs::write(
        out_dir.join("manifest.json"),
        r#"{"run_id":"1-2","command":"run","complete":true,"files":["thesis.tex","../outside/precious.svg"]}"#,
    )
    .unwrap();
    let o = quick_run(&out_dir, true);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not written by regimes"), "{}", text(&o));
    assert_eq!(
        fs::read_to_string(out_dir.join("thesis.tex")).unwrap(),
        "years of work"
    );
    assert_eq!(
        fs::read_to_string(outside.join("precious.svg")).unwrap(),
        "outside"
    );
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_refused_run_leaves_no_directories_it_made() {
    let dir = scratch("edges-parents");
    let deep = dir.join("a").join("b").join("c");
    // Refused after the output directory is set up: no such adapter.
    let o = regimes(&[
        "run",
        "--preset",
        "quick",
        "--backend",
        "gpu",
        "--adapter",
        "no-such-adapter-xyz",
        "--out",
        &s(&deep),
    ]);
    assert!(!o.status.success());
    assert!(
        !dir.join("a").exists(),
        "left {}: {}",
        dir.join("a").display(),
        text(&o)
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---- 3.6 blocking and unbounded reads --------------------------------------------------------

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn fifos_and_devices_are_refused_at_once() {
    let dir = scratch("edges-fifo");
    let fifo = dir.join("pipe");
    mkfifo(&fifo);
    let f = s(&fifo);
    let file_f = format!("file:{f}");
    let sched = format!("additive:file:{f}");
    let mut cases: Vec<(Vec<String>, &str)> = vec![];
    let mut add = |args: &[&str], needle: &'static str| {
        cases.push((args.iter().map(|a| a.to_string()).collect(), needle))
    };
    add(&["theory", "--config", &f], "FIFO");
    add(&["theory", "--config", "/dev/zero"], "device");
    add(&["theory", "--u", &file_f], "FIFO");
    add(&["theory", "--u", "file:/dev/zero"], "device");
    add(&["theory", "--mixture-file", &f, "--dim", "2"], "FIFO");
    add(&["theory", "--train-file", &f], "FIFO");
    add(
        &["theory", "--preset", "coupled", "--coupling", &sched],
        "FIFO",
    );
    add(&["theory", "--config", &s(&dir)], "directory");
    // A shard directory whose shard.json is a FIFO, and a checkpoint whose state.json is one.
    let shard = dir.join("shard");
    fs::create_dir_all(&shard).unwrap();
    mkfifo(&shard.join("shard.json"));
    let merged = s(&dir.join("merged"));
    add(&["merge", &s(&shard), "--out", &merged], "shard.json");
    let ck = dir.join("ck");
    fs::create_dir_all(ck.join(".regimes-checkpoint")).unwrap();
    mkfifo(&ck.join(".regimes-checkpoint").join("state.json"));
    add(&["resume", &s(&ck)], "checkpoint");
    for (args, needle) in &cases {
        let child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = wait_within(child, 20, &format!("{args:?}"));
        let e = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(e.contains(needle), "{args:?}: no '{needle}' in: {e}");
        assert!(!e.contains("panicked"), "{args:?}: {e}");
    }
    assert!(!dir.join("merged").exists());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_oversized_config_states_the_limit() {
    let dir = scratch("edges-big");
    let big = dir.join("big.toml");
    fs::write(&big, vec![b'#'; (1 << 20) + 10]).unwrap();
    let o = regimes(&["theory", "--config", &s(&big)]);
    let e = text(&o);
    assert!(!o.status.success());
    assert!(e.contains("big.toml") && e.contains("1 MiB"), "{e}");
    fs::remove_dir_all(dir).unwrap();
}

// ---- 3.8 late failures and silent misreads ---------------------------------------------------

#[test]
fn misread_files_are_refused_naming_the_line() {
    let dir = scratch("edges-misread");
    let put = |name: &str, body: &str| -> String {
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        s(&p)
    };
    let sched = put("sched.csv", "0 0.5x\n1 0.2\n");
    let comma = put("comma.csv", "1,5;2;2\n2,5;1;1\n");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "theory".into(),
                "--preset".into(),
                "coupled".into(),
                "--coupling".into(),
                format!("additive:file:{sched}"),
            ],
            vec!["sched.csv", "line 1", "0.5x"],
        ),
        (
            vec![
                "theory".into(),
                "--mixture-file".into(),
                comma.clone(),
                "--dim".into(),
                "2".into(),
            ],
            vec!["comma.csv", "line 1", "decimal comma"],
        ),
        (
            vec![
                "theory".into(),
                "--u".into(),
                format!("file:{}", put("u.csv", "0 0.5x\n0.5 1\n")),
            ],
            vec!["u.csv", "line 1", "0.5x"],
        ),
    ];
    for (args, needles) in &cases {
        let out_dir = dir.join("never");
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o_s = s(&out_dir);
        a.extend(["--out", &o_s]);
        let o = regimes(&a);
        let e = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        for n in needles {
            assert!(e.contains(n), "{args:?}: no '{n}' in {e}");
        }
        assert!(!out_dir.exists());
    }
    // A header of words is still a header.
    let header = put("header.csv", "t gamma\n0 0.5\n1 0.2\n");
    let o = regimes(&[
        "theory",
        "--preset",
        "coupled",
        "--coupling",
        &format!("additive:file:{header}"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Weights of 1e308 are normalised, not "weights sum to zero".
    let huge = put("huge.csv", "1e308,1,1\n1e308,-1,-1\n");
    let o = regimes(&["theory", "--mixture-file", &huge, "--dim", "2", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_tiny_sigma_runs_or_is_refused_up_front_never_half_way() {
    // σ = 1e-9: Γ(0) = C exactly, so the plan is finite and the run completes.
    let v = common::summary(&[
        "speciation",
        "--sigma",
        "1e-9",
        "--dim",
        "4",
        "--pairs",
        "500",
        "--steps",
        "200",
        "--backend",
        "cpu",
        "--json",
    ]);
    assert!(v["stopped_early"].is_null(), "{v}");
    // Where the f32 logits would overflow, refused before any work, naming both settings.
    let dir = scratch("edges-sigma");
    let out_dir = dir.join("out");
    let o = regimes(&[
        "run",
        "--sigma",
        "1e-12",
        "--mean-norm2",
        "1e20",
        "--dim",
        "4",
        "--out",
        &s(&out_dir),
    ]);
    let e = text(&o);
    assert!(!o.status.success());
    assert!(e.contains("sigma") && e.contains("mean-norm2"), "{e}");
    assert!(!out_dir.exists());
    fs::remove_dir_all(dir).unwrap();
}

// ---- 3.7 cost in proportion to the input ------------------------------------------------------

#[test]
fn costs_grow_with_what_the_model_needs() {
    let dir = scratch("edges-cost");
    // A 1000-row ramp schedule (was 44 s): theory well within seconds.
    let mut rows = String::from("t,gamma\n");
    for i in 0..1000 {
        rows.push_str(&format!("{},{}\n", i as f64 * 0.01, 0.5 - i as f64 * 0.001));
    }
    let ramp = dir.join("ramp.csv");
    fs::write(&ramp, rows).unwrap();
    let start = Instant::now();
    let o = regimes(&[
        "theory",
        "--preset",
        "coupled",
        "--coupling",
        &format!("additive:file:{}", s(&ramp)),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // U = I of d = 100 000 stays one number (a dense identity would be 80 GB).
    let start = Instant::now();
    let v = common::summary(&["theory", "--dim", "100000", "--json"]);
    assert!(v["t_s"].as_f64().is_some(), "{v}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // A dense Q of that d is counted before it is allocated, and refused naming --dim.
    let o = regimes(&["theory", "--dim", "100000", "--q", "optimal"]);
    let e = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("GiB") && e.contains("--dim"), "{e}");
    // bench --n-train 1e12: refused with the estimate, not an abort.
    let o = regimes(&["bench", "--workload", "empirical", "--n-train", "1e12"]);
    let e = text(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("--n-train") && e.contains("GiB"), "{e}");
    // --checkpoint-every 1 warns that it is costly.
    let o = regimes(&[
        "run",
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--checkpoint-every",
        "1",
        "--out",
        &s(&dir.join("ck")),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("--checkpoint-every 1") && text(&o).contains("slower"),
        "{}",
        text(&o)
    );
    fs::remove_dir_all(dir).unwrap();
}

// ---- messages ---------------------------------------------------------------------------------

#[test]
fn messages_name_the_input() {
    let dir = scratch("edges-msg");
    let toml = |name: &str, body: &str| {
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        s(&p)
    };
    let shard_toml = toml("shard.toml", "shard = \"0/2\"\n");
    let preset_toml = toml("preset.toml", "preset = \"biroli\"\n");
    let out = s(&dir.join("out"));
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["run", "--shard", "-1/3"], vec!["'-1/3'", "0 ≤ I < N"]),
        (
            vec!["run", "--checkpoint-every", "1e3x", "--out", &out],
            vec!["unknown unit 'x'"],
        ),
        (
            vec!["theory", "--config", &shard_toml],
            vec!["'shard'", "command line"],
        ),
        (
            vec!["theory", "--config", &preset_toml],
            vec!["'preset'", "--preset"],
        ),
        (
            vec!["run", "--particles", "1.5"],
            vec!["'1.5'", "whole number"],
        ),
    ];
    for (args, needles) in &cases {
        let o = regimes(args);
        let e = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(
            !e.contains("unexpected argument") && !e.contains("Some("),
            "{args:?}: {e}"
        );
        for n in needles {
            assert!(e.contains(n), "{args:?}: no '{n}' in {e}");
        }
    }
    // A duration in scientific notation is read whole (was "unknown unit 'e3s'").
    let o = regimes(&[
        "run",
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--quiet",
        "--checkpoint-every",
        "1e3s",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Counts in scientific notation.
    let v = common::summary(&[
        "run",
        "--preset",
        "quick",
        "--backend",
        "cpu",
        "--particles",
        "2e3",
        "--json",
    ]);
    assert_eq!(v["config"]["particles"], 2000);
    // devices: indices as --devices takes them, no feature dump.
    let o = regimes(&["devices"]);
    assert!(o.status.success());
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.lines().all(|l| l.chars().count() <= 120),
        "{listing}"
    );
    if !listing.starts_with("no GPU adapter") {
        assert!(listing.contains("[0] "), "{listing}");
    }
    fs::remove_dir_all(dir).unwrap();
}
