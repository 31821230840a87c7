//! Scale-out through the binary: shards merged equal the full run, merge refuses what does not
//! belong together, and a checkpointed run killed at random points (SIGKILL, even while it writes
//! a checkpoint) and resumed equals the uninterrupted run bit for bit.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{regimes, scratch};
use serde_json::Value;

/// Keys that hold wall times or name the run rather than its results.
const INCIDENTAL: &[&str] = &[
    "wall_seconds",
    "shader_compile_seconds",
    "seconds",
    // Work done, not results: it depends on how particles were grouped into SIMD blocks.
    "pruned_tiles",
    "backend",
    // How the GPU ran it (the variant probes' timings differ between runs).
    "gpu_variant",
    "shard",
    "merged_from",
];

/// Differences between two summaries: integers and strings must be equal, floats within `rel`
/// (relative, plus 1e-15 absolute for values near 0, such as a variance that cancels; 0 =
/// bit-identical).
fn differences(a: &Value, b: &Value, path: &str, rel: f64, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                if INCIDENTAL.contains(&k.as_str()) {
                    continue;
                }
                match y.get(k) {
                    Some(vb) => differences(va, vb, &format!("{path}.{k}"), rel, out),
                    None => out.push(format!("{path}.{k} missing")),
                }
            }
            for k in y.keys() {
                if !x.contains_key(k) && !INCIDENTAL.contains(&k.as_str()) {
                    out.push(format!("{path}.{k} extra"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: {} vs {} entries", x.len(), y.len()));
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(va, vb, &format!("{path}[{i}]"), rel, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            let floor = if rel > 0.0 { 1e-15 } else { 0.0 };
            if (p - q).abs() > rel * p.abs().max(q.abs()) + floor {
                out.push(format!("{path}: {p:?} vs {q:?}"));
            }
        }
        _ => {
            if a != b {
                out.push(format!("{path}: {a} vs {b}"));
            }
        }
    }
}

fn assert_same(a: &Value, b: &Value, rel: f64, what: &str) {
    let mut d = vec![];
    differences(a, b, "", rel, &mut d);
    assert!(d.is_empty(), "{what}: {} differences: {d:#?}", d.len());
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

fn ok(args: &[&str]) {
    let out = regimes(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn refused(args: &[&str], needles: &[&str]) {
    let out = regimes(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: error lacks '{n}': {err}");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `args` whole and as shards 0/3, 1/3, 2/3 (given in scrambled order to merge), and checks
/// the merged outputs against the full run: `exact` keys (counts and what follows from them)
/// bit for bit, every other number to f64 round-off; CSV files hold the same columns.
fn check_merge(name: &str, args: &[&str], exact: &[&str], csvs: &[&str]) -> PathBuf {
    let dir = scratch(name);
    let full = dir.join("full");
    let mut a = args.to_vec();
    a.extend(["--backend", "cpu", "--quiet", "--out", path(&full)]);
    ok(&a);
    let shards: Vec<PathBuf> = (0..3).map(|i| dir.join(format!("shard{i}"))).collect();
    for (i, s) in shards.iter().enumerate() {
        let spec = format!("{i}/3");
        let mut a = args.to_vec();
        a.extend([
            "--backend",
            "cpu",
            "--quiet",
            "--shard",
            &spec,
            "--out",
            path(s),
        ]);
        ok(&a);
        let sh = summary(s);
        assert_eq!(sh["shard"], spec.as_str());
    }
    let merged = dir.join("merged");
    ok(&[
        "merge",
        path(&shards[2]),
        path(&shards[0]),
        path(&shards[1]),
        "--out",
        path(&merged),
        "--quiet",
    ]);
    let (f, m) = (summary(&full), summary(&merged));
    assert_same(&f, &m, 1e-12, &format!("{name}: merged vs full"));
    for k in exact {
        let pointer = format!("/{}", k.replace('.', "/"));
        let (x, y) = (f.pointer(&pointer), m.pointer(&pointer));
        assert!(x.is_some(), "{name}: no {k} in the summary");
        assert_same(x.unwrap(), y.unwrap(), 0.0, &format!("{name}: {k}"));
    }
    assert_eq!(
        m["merged_from"].as_array().unwrap().len(),
        3,
        "{name}: merged_from"
    );
    for csv in csvs {
        let read = |d: &Path| -> Vec<Vec<f64>> {
            std::fs::read_to_string(d.join(csv))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
                .collect()
        };
        let (x, y) = (read(&full), read(&merged));
        assert_eq!(x.len(), y.len(), "{name}: {csv} rows");
        for (r, s) in x.iter().zip(&y) {
            for (p, q) in r.iter().zip(s) {
                let close = (p.is_nan() && q.is_nan()) || (p - q).abs() <= 1e-12 * p.abs() + 1e-15;
                assert!(close, "{name}: {csv}: {p} vs {q}");
            }
        }
    }
    dir
}

#[test]
fn run_shards_merge_to_the_full_run() {
    let dir = check_merge(
        "merge-run",
        &[
            "run",
            "--preset",
            "quick",
            "--particles",
            "5000",
            "--batch",
            "1024",
            "--record-times",
            "10,5,1,0.5,0.01",
            "--save-samples",
        ],
        &[
            "particles",
            "class_fractions",
            "record.0.count",
            "record.4.count",
        ],
        &["moments.csv"],
    );
    // The samples and their labels are the full run's, bit for bit, in particle order.
    for file in ["samples.npy", "labels.npy"] {
        let read = |d: &str| std::fs::read(dir.join(d).join(file)).unwrap();
        assert_eq!(read("full"), read("merged"), "{file}");
    }
    let record = summary(&dir.join("merged"))["record"].clone();
    assert!(
        record
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["count"] == 5000)
    );
}

/// A shard without particles (2 particles in 3 shards) writes an array of no rows as its
/// samples; merge takes it (it refused "empty matrix") and the merged samples are the full
/// run's.
#[test]
fn an_empty_shard_merges_with_its_samples() {
    let dir = scratch("empty-shard");
    let base = [
        "run",
        "--dim",
        "2",
        "--particles",
        "2",
        "--steps",
        "20",
        "--save-samples",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let mut shards = vec![];
    for i in 0..3 {
        let d = dir.join(format!("s{i}"));
        let spec = format!("{i}/3");
        let mut a = base.to_vec();
        a.extend(["--shard", &spec, "--out", path(&d)]);
        ok(&a);
        shards.push(path(&d).to_string());
    }
    let empty = shards
        .iter()
        .filter(|d| summary(Path::new(d))["particles"] == 0)
        .count();
    assert_eq!(empty, 1, "one of the three shards holds no particle");
    let (full, merged) = (dir.join("full"), dir.join("merged"));
    let mut a = base.to_vec();
    a.extend(["--out", path(&full)]);
    ok(&a);
    ok(&[
        "merge",
        &shards[0],
        &shards[1],
        &shards[2],
        "--out",
        path(&merged),
        "--quiet",
    ]);
    for file in ["samples.npy", "labels.npy"] {
        let read = |d: &Path| std::fs::read(d.join(file)).unwrap();
        assert_eq!(read(&full), read(&merged), "{file}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn speciation_shards_merge_to_the_full_run() {
    let dir = check_merge(
        "merge-speciation",
        &[
            "speciation",
            "--preset",
            "quick",
            "--pairs",
            "3000",
            "--batch",
            "1024",
            "--branch-times",
            "0.5,1,1.5,2",
        ],
        &[
            "pairs",
            "t_s_measured",
            "phi.0.phi",
            "phi.3.phi",
            "phi.1.stderr",
        ],
        &["phi.csv", "s_curve.csv"],
    );
    let m = summary(&dir.join("merged"));
    assert_eq!(m["pairs"], 3000);
    assert!(m["t_s_measured"].as_f64().is_some());
}

/// Coupled modalities: the per-mode φ come from the pair histograms, which merge exactly too.
#[test]
fn coupled_speciation_shards_merge_per_mode() {
    let dir = check_merge(
        "merge-coupled",
        &[
            "speciation",
            "--preset",
            "coupled",
            "--pairing",
            "per-mode",
            "--steps",
            "200",
            "--pairs",
            "1500",
            "--batch",
            "512",
        ],
        &[
            "modes.0.phi",
            "modes.1.phi",
            "modes.0.t_s_measured",
            "sync_gap_measured",
        ],
        &["phi_common.csv", "phi_difference.csv"],
    );
    let m = summary(&dir.join("merged"));
    assert!(m["modes"][0]["phi"][0]["phi"].as_f64().unwrap() > 0.0);
}

#[test]
fn collapse_shards_merge_to_the_full_run() {
    check_merge(
        "merge-collapse",
        &[
            "collapse",
            "--preset",
            "quick",
            "--dim",
            "4",
            "--n-train",
            "40",
            "--particles",
            "3000",
            "--pairs",
            "600",
            "--batch",
            "1024",
            "--entropy-samples",
            "100",
        ],
        &[
            "particles",
            "collapse_times",
            "t_c_measured",
            "clone_collapse.0.phi",
            "excess_entropy",
        ],
        &[
            "collapse_times.csv",
            "excess_entropy.csv",
            "clone_collapse.csv",
        ],
    );
}

#[test]
fn merge_refuses_foreign_duplicate_and_missing_shards() {
    let dir = scratch("merge-refusals");
    let base = [
        "speciation",
        "--preset",
        "quick",
        "--pairs",
        "200",
        "--steps",
        "50",
        "--branch-times",
        "1,2",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let shard = |name: &str, spec: &str, extra: &[&str]| -> String {
        let d = dir.join(name);
        let mut a = base.to_vec();
        a.extend(extra);
        a.extend(["--shard", spec, "--out", path(&d)]);
        ok(&a);
        path(&d).to_string()
    };
    let s0 = shard("s0", "0/3", &[]);
    let s1 = shard("s1", "1/3", &[]);
    let s2 = shard("s2", "2/3", &[]);
    // Engine settings do not make a different study.
    let s2_threads = shard("s2-threads", "2/3", &["--threads", "1"]);
    let foreign = shard("foreign", "2/3", &["--seed", "9"]);
    let other_split = shard("halves", "1/2", &[]);
    let out = dir.join("merged");
    let o = path(&out);
    refused(
        &["merge", &s0, &s1, &foreign, "--out", o],
        &[&foreign, "different study", "seed"],
    );
    refused(
        &["merge", &s0, &s1, &s1, "--out", o],
        &[&s1, "both shard 1/3"],
    );
    refused(
        &["merge", &s0, &s1, &s2, &s2_threads, "--out", o],
        &[&s2, &s2_threads, "both shard 2/3"],
    );
    refused(&["merge", &s0, &s2, "--out", o], &["missing shard 1/3"]);
    refused(
        &["merge", &s0, &s1, &s2, &other_split, "--out", o],
        &[&other_split, "1/2", "different ways"],
    );
    let plain = dir.join("plain");
    ok(&[
        "speciation",
        "--preset",
        "quick",
        "--pairs",
        "50",
        "--steps",
        "20",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        path(&plain),
    ]);
    refused(
        &["merge", &s0, &s1, path(&plain), "--out", o],
        &[path(&plain), "shard.json"],
    );
    assert!(!out.exists(), "a refused merge wrote {}", out.display());
    ok(&["merge", &s0, &s2_threads, &s1, "--out", o, "--quiet"]);
    // Flags that need an output directory, or a study.
    refused(&["run", "--shard", "0/2"], &["--shard needs --out"]);
    refused(&["run", "--shard", "2/2", "--out", o], &["--shard", "I/N"]);
    refused(
        &["theory", "--checkpoint-every", "30s", "--out", o],
        &["no effect on `theory`"],
    );
    refused(
        &["run", "--checkpoint-every", "3x", "--out", o],
        &["--checkpoint-every", "duration"],
    );
    refused(&["resume", path(&plain)], &["no checkpoint"]);
}

/// Starts the binary with `args`, waits until its checkpoint exists, sleeps `delay` and sends
/// `signal`. Returns its output, or None when it ended before the signal.
fn signal_after(
    args: &[&str],
    out: &Path,
    signal: libc::c_int,
    delay: Duration,
) -> Option<std::process::Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let state = out.join(".regimes-checkpoint").join("state.json");
    let start = Instant::now();
    while !state.exists() && start.elapsed() < Duration::from_secs(30) {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(delay);
    if child.try_wait().unwrap().is_some() {
        return None;
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    Some(child.wait_with_output().unwrap())
}

/// [`signal_after`] for a fresh run into `out`; when the run ends before the signal (a faster
/// machine than the delay assumed), starts over with half the delay.
fn interrupt(
    args: &[&str],
    out: &Path,
    signal: libc::c_int,
    delay: Duration,
) -> std::process::Output {
    let mut delay = delay;
    for _ in 0..8 {
        if let Some(o) = signal_after(args, out, signal, delay) {
            return o;
        }
        let _ = std::fs::remove_dir_all(out);
        delay /= 2;
    }
    panic!("{args:?} always ended before the signal");
}

/// SIGKILL `delay` after the checkpoint appears; whether the process was still running.
fn kill_after(args: &[&str], out: &Path, delay: Duration) -> bool {
    signal_after(args, out, libc::SIGKILL, delay).is_some()
}

/// The uninterrupted run of `args`, then the same run killed (SIGKILL) at pseudo-random points —
/// the first kill during the run, later ones during the resumes, each a `fractions` of the
/// uninterrupted run's wall time after the checkpoint appeared — and resumed to the end: the
/// summaries must be bit-identical.
fn check_kills(name: &str, args: &[&str], every: &str, seed: u64) {
    let dir = scratch(name);
    let full = dir.join("full");
    let mut a = args.to_vec();
    a.extend(["--backend", "cpu", "--quiet", "--out", path(&full)]);
    let clock = Instant::now();
    ok(&a);
    let wall = clock.elapsed();
    let want = summary(&full);
    let out = dir.join("killed");
    let mut a = args.to_vec();
    a.extend([
        "--backend",
        "cpu",
        "--quiet",
        "--checkpoint-every",
        every,
        "--out",
        path(&out),
    ]);
    let mut seen = vec![];
    for (i, f) in fractions(seed, 3).into_iter().enumerate() {
        let resume = ["resume", path(&out), "--quiet"];
        if i == 0 {
            interrupt(&a, &out, libc::SIGKILL, wall.mul_f64(f));
        } else if !kill_after(&resume, &out, wall.mul_f64(f)) {
            break;
        }
        // What the checkpoint left by the kill holds: phases reached, a batch in flight.
        let state = std::fs::read_to_string(out.join(".regimes-checkpoint/state.json")).unwrap();
        let phases = state.matches("\"phase\":").count();
        let flight = state.contains("\"flight\":{");
        seen.push(format!("{f:.2}·T: {phases} phase(s), in flight: {flight}"));
    }
    eprintln!(
        "{name}: T = {:.2} s; killed at {seen:?}",
        wall.as_secs_f64()
    );
    assert!(
        !seen.is_empty(),
        "{name}: the run ended before the first kill"
    );
    // What a kill in the middle of writing a checkpoint can leave, whatever the moment: a partial
    // temporary particle file, a complete one the state does not name yet, a partial temporary
    // state. The state itself is always whole (renamed into place).
    let ck = out.join(".regimes-checkpoint");
    if ck.join("state.json").exists() {
        std::fs::write(ck.join(".p0-999.bin.tmp-1-0"), [1u8, 2, 3]).unwrap();
        std::fs::write(ck.join("p0-1000.bin"), vec![7u8; 4096]).unwrap();
        std::fs::write(ck.join(".state.json.tmp-1-1"), "{\"format\":1,\"comm").unwrap();
    }
    if out.join(".regimes-checkpoint").exists() {
        ok(&["resume", path(&out), "--quiet"]);
    }
    assert!(
        !out.join(".regimes-checkpoint").exists(),
        "{name}: a completed run keeps no checkpoint"
    );
    assert_same(
        &want,
        &summary(&out),
        0.0,
        &format!("{name}: resumed vs full"),
    );
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["complete"], true, "{name}");
    refused(&["resume", path(&out)], &["no checkpoint"]);
}

/// Pseudo-random fractions in [0.15, 0.55) (fixed seed): where to kill.
fn fractions(seed: u64, n: usize) -> Vec<f64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.15 + 0.4 * (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

#[test]
fn killed_run_resumes_to_the_uninterrupted_run() {
    check_kills(
        "kill-run",
        &[
            "run",
            "--dim",
            "16",
            "--particles",
            "12288",
            "--steps",
            "3000",
            "--batch",
            "4096",
            "--record-times",
            "10,7,5,1,0.1,0.01",
            "--save-samples",
        ],
        "150",
        1,
    );
}

#[test]
fn killed_speciation_resumes_to_the_uninterrupted_run() {
    check_kills(
        "kill-speciation",
        &[
            "speciation",
            "--dim",
            "16",
            "--pairs",
            "6144",
            "--steps",
            "1500",
            "--batch",
            "4096",
            "--branch-times",
            "0.5,1,2,4",
        ],
        "100ms",
        2,
    );
}

#[test]
fn killed_collapse_resumes_to_the_uninterrupted_run() {
    check_kills(
        "kill-collapse",
        &[
            "collapse",
            "--dim",
            "8",
            "--n-train",
            "64",
            "--particles",
            "8192",
            "--pairs",
            "2048",
            "--steps",
            "1500",
            "--batch",
            "2048",
            "--entropy-samples",
            "100",
        ],
        "120",
        3,
    );
}

#[test]
fn sigterm_leaves_a_resumable_checkpoint() {
    signal_leaves_a_resumable_checkpoint("sigterm-checkpoint", libc::SIGTERM);
}

#[test]
fn sigint_leaves_a_resumable_checkpoint() {
    signal_leaves_a_resumable_checkpoint("sigint-checkpoint", libc::SIGINT);
}

/// A signal stops the run at a step boundary with a checkpoint of the batch in flight; the
/// resumed run equals the uninterrupted one bit for bit.
fn signal_leaves_a_resumable_checkpoint(name: &str, signal: libc::c_int) {
    let dir = scratch(name);
    let args = [
        "speciation",
        "--dim",
        "16",
        "--pairs",
        "4096",
        "--steps",
        "2000",
        "--branch-times",
        "1,3",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let full = dir.join("full");
    let mut a = args.to_vec();
    a.extend(["--out", path(&full)]);
    let clock = Instant::now();
    ok(&a);
    let wall = clock.elapsed();
    let out = dir.join("stopped");
    let mut a = args.to_vec();
    // An interval far beyond the run: the only checkpoints are the start and the stop.
    a.extend(["--checkpoint-every", "1h", "--out", path(&out)]);
    let res = interrupt(&a, &out, signal, wall.mul_f64(0.4));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{err}");
    assert!(err.contains("regimes resume"), "{err}");
    let partial = summary(&out);
    assert!(partial["stopped_early"].is_string(), "{partial}");
    let state = out.join(".regimes-checkpoint").join("state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(
        text.contains("\"flight\":{"),
        "the batch in flight is saved"
    );
    ok(&["resume", path(&out), "--quiet"]);
    let resumed = summary(&out);
    assert!(resumed["stopped_early"].is_null());
    assert_same(
        &summary(&full),
        &resumed,
        0.0,
        &format!("{name}: resumed vs full"),
    );
}

/// `examples/slurm.sh` and `examples/parallel.sh` parse (`bash -n`); the Slurm array tasks run
/// here in sequence (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT set as Slurm sets them) and the
/// merge task combines them into the full study; `submit` asks sbatch for the array and a merge
/// job that depends on it (afterok); the GNU parallel script does the same through a stand-in for
/// `parallel` that runs its jobs one after the other (GNU parallel is rarely installed on CI).
#[test]
fn example_scripts_run_their_shards_and_merge() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let (slurm, parallel) = (root.join("slurm.sh"), root.join("parallel.sh"));
    for script in [&slurm, &parallel] {
        let out = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "bash -n {}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = scratch("scripts");
    let study = "--preset quick --pairs 600 --steps 60 --branch-times 1,2,3 --backend cpu --quiet";
    let full = dir.join("full");
    let mut a: Vec<&str> = vec!["speciation"];
    a.extend(study.split(' '));
    a.extend(["--out", path(&full)]);
    ok(&a);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |name: &str, text: &str| {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
    };
    // sbatch: logs its arguments, answers with a job id as --parsable does.
    script(
        "sbatch",
        "#!/usr/bin/env bash\necho \"$*\" >> \"$(dirname \"$0\")/sbatch.log\"\necho '4242;cluster'\n",
    );
    // parallel: runs the command on each input line in turn, {} replaced by the line.
    script(
        "parallel",
        r#"#!/usr/bin/env bash
args=()
while [[ $# -gt 0 ]]; do
    case $1 in --halt|-j) shift 2 ;; *) args+=("$1"); shift ;; esac
done
while read -r x; do bash -c "${args[*]//\{\}/$x}" || exit 1; done
"#,
    );
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |script: &Path, arg: Option<&str>, results: &Path, task: Option<usize>| {
        let mut c = Command::new("bash");
        c.arg(script)
            .args(arg)
            .env("PATH", &path_var)
            .env("REGIMES", env!("CARGO_BIN_EXE_regimes"))
            .env("SHARDS", "3")
            .env("STUDY", "speciation")
            .env("ARGS", study)
            .env("RESULTS", results)
            .env("CHECKPOINT", "20")
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("SLURM_ARRAY_TASK_COUNT");
        if let Some(i) = task {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "3");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{} {arg:?} {task:?}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The array tasks in sequence, then the merge job.
    let results = dir.join("slurm");
    for i in 0..3 {
        run(&slurm, None, &results, Some(i));
    }
    assert!(run(&slurm, None, &results, Some(1)).contains("already complete"));
    run(&slurm, Some("merge"), &results, None);
    let want = summary(&full);
    assert_same(&want, &summary(&results.join("merged")), 1e-12, "slurm");
    // A requeued task resumes from its checkpoint.
    let requeued = results.join("shard-1");
    std::fs::remove_file(requeued.join("shard.json")).unwrap();
    std::fs::create_dir_all(requeued.join(".regimes-checkpoint")).unwrap();
    let out = Command::new("bash")
        .arg(&slurm)
        .env("REGIMES", env!("CARGO_BIN_EXE_regimes"))
        .env("RESULTS", &results)
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "3")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no checkpoint to resume"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // submit: the array, then the merge after it.
    run(&slurm, Some("submit"), &results, None);
    let log = std::fs::read_to_string(bin.join("sbatch.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("--array=0-2") && lines[0].ends_with("slurm.sh task"),
        "{log}"
    );
    assert!(
        lines[1].contains("--dependency=afterok:4242") && lines[1].ends_with("slurm.sh merge"),
        "{log}"
    );
    // GNU parallel: the shards, then the merge.
    let results = dir.join("parallel");
    run(&parallel, None, &results, None);
    assert_same(&want, &summary(&results.join("merged")), 1e-12, "parallel");
    assert_eq!(
        summary(&results.join("merged"))["merged_from"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// `--devices`: one slice per adapter in one process, merged at the end, equals the run on one
/// device (lavapipe named twice stands in for two GPUs); counts and samples bit for bit.
#[test]
fn devices_split_a_study_and_merge_it() {
    if common::gpu().is_none() {
        return;
    }
    let dir = scratch("devices");
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "speciation",
            &[
                "speciation",
                "--preset",
                "quick",
                "--pairs",
                "3000",
                "--steps",
                "100",
                "--branch-times",
                "0.5,1,2",
            ],
            &["pairs", "t_s_measured", "phi.0.phi", "phi.2.phi"],
        ),
        (
            "run",
            &[
                "run",
                "--preset",
                "quick",
                "--particles",
                "5000",
                "--steps",
                "100",
                "--record-times",
                "10,1,0.01",
                "--save-samples",
            ],
            &["particles", "class_fractions", "record.2.count"],
        ),
    ];
    for (name, args, exact) in cases {
        let one = dir.join(format!("{name}-one"));
        let two = dir.join(format!("{name}-two"));
        let mut a = args.to_vec();
        a.extend(["--backend", "gpu", "--quiet", "--out", path(&one)]);
        ok(&a);
        let mut a = args.to_vec();
        a.extend(["--devices", "0,0", "--quiet", "--out", path(&two)]);
        ok(&a);
        let (x, y) = (summary(&one), summary(&two));
        assert_same(&x, &y, 1e-12, &format!("{name}: two devices vs one"));
        for k in exact {
            let p = format!("/{}", k.replace('.', "/"));
            assert_same(
                &x.pointer(&p).unwrap().clone(),
                y.pointer(&p).unwrap(),
                0.0,
                k,
            );
        }
    }
    for file in ["samples.npy", "labels.npy"] {
        let read = |d: &str| std::fs::read(dir.join(d).join(file)).unwrap();
        assert_eq!(read("run-one"), read("run-two"), "{file}");
    }
    let o = dir.join("refused");
    let o = path(&o);
    refused(
        &["run", "--devices", "0,7", "--out", o],
        &["devices", "no adapter 7"],
    );
    refused(
        &["run", "--devices", "all", "--backend", "cpu", "--out", o],
        &["--devices", "--backend cpu"],
    );
    refused(
        &[
            "run",
            "--devices",
            "all",
            "--checkpoint-every",
            "9",
            "--out",
            o,
        ],
        &["--devices", "--checkpoint-every"],
    );
}

/// Damaged shard and checkpoint files are refused with a message naming them, never a panic; a
/// merge never writes into a shard's directory; a checkpointed study refused at set-up leaves
/// nothing behind.
#[test]
fn damaged_shard_and_checkpoint_files_are_refused_cleanly() {
    let dir = scratch("damaged");
    let base = [
        "speciation",
        "--preset",
        "quick",
        "--pairs",
        "200",
        "--steps",
        "40",
        "--branch-times",
        "1,2",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let mut shards = vec![];
    for i in 0..2 {
        let d = dir.join(format!("s{i}"));
        let spec = format!("{i}/2");
        let mut a = base.to_vec();
        a.extend(["--shard", &spec, "--out", path(&d)]);
        ok(&a);
        shards.push(path(&d).to_string());
    }
    let (s0, s1) = (&shards[0], &shards[1]);
    let o = dir.join("merged");
    refused(
        &["merge", s0, s1, "--out", s1, "--force"],
        &["is the shard directory"],
    );
    assert!(Path::new(s1).join("shard.json").exists());
    let shard_file = Path::new(s1).join("shard.json");
    let good = std::fs::read_to_string(&shard_file).unwrap();
    std::fs::write(&shard_file, "{ not json").unwrap();
    refused(
        &["merge", s0, s1, "--out", path(&o)],
        &["shard.json", "not a shard file"],
    );
    let format = format!("\"format\": {}", regimes::study::shard::FORMAT);
    assert!(good.contains(&format));
    std::fs::write(&shard_file, good.replace(&format, "\"format\": 99")).unwrap();
    refused(&["merge", s0, s1, "--out", path(&o)], &["shard format 99"]);
    // An edited count (the file still parses): its checksum tells.
    assert!(good.contains("\"done\": 100"));
    std::fs::write(
        &shard_file,
        good.replacen("\"done\": 100", "\"done\": 101", 1),
    )
    .unwrap();
    refused(
        &["merge", s0, s1, "--out", path(&o)],
        &["shard.json", "checksum"],
    );
    std::fs::write(&shard_file, &good).unwrap();
    assert!(!o.exists());

    // A checkpoint with a batch in flight (one batch, stopped by SIGTERM), then damaged in three
    // ways.
    let run = dir.join("run");
    let args = [
        "run",
        "--dim",
        "16",
        "--particles",
        "8192",
        "--steps",
        "4000",
        "--batch",
        "8192",
        "--backend",
        "cpu",
        "--quiet",
        "--checkpoint-every",
        "1h",
        "--out",
        path(&run),
    ];
    interrupt(&args, &run, libc::SIGTERM, Duration::from_millis(300));
    let ck = run.join(".regimes-checkpoint");
    let state_path = ck.join("state.json");
    let state = std::fs::read_to_string(&state_path).unwrap();
    let blob = std::fs::read_dir(&ck)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "bin"))
        .expect("a particle file");
    let bytes = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &bytes[..bytes.len() - 1]).unwrap();
    // A refused resume leaves the stopped run's manifest as it was (it was rewritten before the
    // checkpoint was read, and lost with the refusal).
    let manifest = std::fs::read(run.join("manifest.json")).unwrap();
    refused(&["resume", path(&run)], &["damaged checkpoint"]);
    assert_eq!(
        std::fs::read(run.join("manifest.json")).ok().as_ref(),
        Some(&manifest),
        "a refused resume changed the manifest"
    );
    // Same size, one particle id rewritten.
    let mut edited = bytes.clone();
    let at = edited.len() - 9 * 4;
    edited[at] ^= 1;
    std::fs::write(&blob, &edited).unwrap();
    refused(&["resume", path(&run)], &["damaged checkpoint"]);
    std::fs::write(&blob, &bytes).unwrap();
    let huge = state.replacen("\"sets\":[[", "\"sets\":[[18446744073709551615,", 1);
    let huge = huge.replacen("18446744073709551615,", "18446744073709551615],[", 1);
    std::fs::write(&state_path, huge).unwrap();
    let out = regimes(&["resume", path(&run)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"));
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    std::fs::write(&state_path, "garbage").unwrap();
    refused(&["resume", path(&run)], &["not a regimes checkpoint"]);
    std::fs::write(&state_path, &state).unwrap();
    ok(&["resume", path(&run), "--quiet"]);
    assert!(!ck.exists());

    // A file the run reads changed while it was stopped: resuming would mix two studies.
    let train = dir.join("train.csv");
    std::fs::write(&train, "0,0\n1,1\n2,0\n0,2\n").unwrap();
    let col = dir.join("collapse");
    let args = [
        "collapse",
        "--train-file",
        path(&train),
        "--particles",
        "20000",
        "--pairs",
        "4000",
        "--steps",
        "3000",
        "--entropy-samples",
        "50",
        "--backend",
        "cpu",
        "--quiet",
        "--checkpoint-every",
        "100",
        "--out",
        path(&col),
    ];
    interrupt(&args, &col, libc::SIGKILL, Duration::from_millis(200));
    std::fs::write(&train, "0,0\n1,1\n2,0\n0,3\n").unwrap();
    refused(
        &["resume", path(&col)],
        &["changed since the run started", "train-file", path(&train)],
    );

    // Refused at set-up: no output directory, no checkpoint.
    let refused_dir = dir.join("refused");
    let u = dir.join("u.csv");
    std::fs::write(&u, "1,0\n0,-2\n").unwrap();
    let u = format!("file:{}", path(&u));
    refused(
        &[
            "run",
            "--u",
            &u,
            "--dim",
            "2",
            "--backend",
            "cpu",
            "--checkpoint-every",
            "10s",
            "--out",
            path(&refused_dir),
        ],
        &["U", "positive definite"],
    );
    assert!(!refused_dir.exists(), "{}", refused_dir.display());
}

/// A within-class covariance read from a file (`--within-cov file:W`) is part of the study: shards
/// whose W files differ do not merge, and a run does not resume after W was edited; both refusals
/// name the file.
#[test]
fn within_cov_file_is_part_of_the_study() {
    let dir = scratch("within-cov-file");
    let w = dir.join("w.csv");
    let diag = |last: f64| -> String {
        (0..16)
            .map(|i| {
                let row: Vec<String> = (0..16)
                    .map(|j| match (i == j, i) {
                        (false, _) => "0".to_string(),
                        (true, 15) => last.to_string(),
                        (true, _) => "1".to_string(),
                    })
                    .collect();
                row.join(",") + "\n"
            })
            .collect()
    };
    std::fs::write(&w, diag(2.0)).unwrap();
    let spec = format!("file:{}", path(&w));
    let base = [
        "speciation",
        "--dim",
        "16",
        "--within-cov",
        &spec,
        "--pairs",
        "200",
        "--steps",
        "40",
        "--branch-times",
        "1,2",
        "--backend",
        "cpu",
        "--quiet",
    ];
    let shard = |name: &str, i: &str| -> String {
        let d = dir.join(name);
        let mut a = base.to_vec();
        a.extend(["--shard", i, "--out", path(&d)]);
        ok(&a);
        path(&d).to_string()
    };
    let s0 = shard("s0", "0/2");
    std::fs::write(&w, diag(3.0)).unwrap();
    let s1 = shard("s1", "1/2");
    let merged = dir.join("merged");
    refused(
        &["merge", &s0, &s1, "--out", path(&merged)],
        &["different study", "within-cov", path(&w)],
    );
    assert!(!merged.exists());

    let run = dir.join("run");
    let args = [
        "run",
        "--dim",
        "16",
        "--within-cov",
        &spec,
        "--particles",
        "8192",
        "--steps",
        "4000",
        "--batch",
        "8192",
        "--backend",
        "cpu",
        "--quiet",
        "--checkpoint-every",
        "1h",
        "--out",
        path(&run),
    ];
    interrupt(&args, &run, libc::SIGTERM, Duration::from_millis(300));
    assert!(run.join(".regimes-checkpoint").exists());
    std::fs::write(&w, diag(2.0)).unwrap();
    refused(
        &["resume", path(&run)],
        &["changed since the run started", "within-cov", path(&w)],
    );
    std::fs::write(&w, diag(3.0)).unwrap();
    ok(&["resume", path(&run), "--quiet"]);
}
