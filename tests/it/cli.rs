//! The binary as users meet it: bad input gets a clear error naming the field, a non-zero exit,
//! no panic and nothing half-written; good input gives the documented JSON keys.

use std::path::Path;

use crate::common::{regimes, scratch, summary};

/// Fails with a message containing every `needles` entry, without a panic, and writes no --out.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let out_dir = scratch("refused").join("out");
    let mut full: Vec<&str> = args.to_vec();
    let out_str = out_dir.to_str().unwrap().to_string();
    full.extend(["--out", &out_str, "--backend", "cpu"]);
    let out = regimes(&full);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(
            err.contains(n),
            "{args:?}: error does not mention '{n}': {err}"
        );
    }
    let written = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "{args:?} left files in --out");
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = scratch("inputs");
    let not_spd = write(&dir, "u.csv", "1,0\n0,-2\n");
    let not_antisym = write(&dir, "q.csv", "0,1\n1,0\n");
    let u3 = write(&dir, "u3.csv", "1,0,0\n0,1,0\n0,0,1\n");
    let nan = write(&dir, "nan.csv", "1,0\n0,nan\n");
    let typo = write(&dir, "typo.toml", "particels = 10\n");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![
                "--dim".into(),
                "2".into(),
                "--u".into(),
                format!("file:{not_spd}"),
            ],
            vec!["U", "smallest eigenvalue"],
        ),
        (
            vec![
                "--dim".into(),
                "2".into(),
                "--q".into(),
                format!("file:{not_antisym}"),
            ],
            vec!["Q", "antisymmetric"],
        ),
        (
            vec![
                "--dim".into(),
                "2".into(),
                "--u".into(),
                format!("file:{u3}"),
            ],
            vec!["U", "3"],
        ),
        (
            vec![
                "--dim".into(),
                "2".into(),
                "--u".into(),
                format!("file:{nan}"),
            ],
            vec!["NaN"],
        ),
        (
            vec!["--config".into(), typo],
            vec!["particels", "did you mean 'particles'"],
        ),
        (
            vec!["--u".into(), "file:/nonexistent/u.npy".into()],
            vec!["/nonexistent/u.npy"],
        ),
        (vec!["--steps".into(), "0".into()], vec!["steps"]),
        (vec!["--t-max".into(), "-1".into()], vec!["t-max"]),
        (vec!["--particles".into(), "0".into()], vec!["particles"]),
        (vec!["--sigma".into(), "nan".into()], vec!["sigma"]),
        (
            vec![
                "--dim".into(),
                "3".into(),
                "--q".into(),
                "pair:0:5:1".into(),
            ],
            vec!["q", "below dim"],
        ),
    ];
    for (args, needles) in cases {
        let mut full = vec!["run"];
        full.extend(args.iter().map(String::as_str));
        assert_refused(&full, &needles);
    }
}

#[test]
fn existing_output_is_never_overwritten_silently() {
    let dir = scratch("existing");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = regimes(&["theory", "--out", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = regimes(&["theory", "--out", dir.to_str().unwrap(), "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
    assert!(dir.join("summary.json").exists());
}

#[test]
fn json_summaries_hold_the_stable_keys() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = regimes(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("stdout is JSON")
    };
    let envelope = ["config", "seed", "version", "backend", "wall_seconds"];
    let t = json(&["theory", "--preset", "biroli", "--dim", "32", "--json"]);
    for k in envelope.iter().chain(&[
        "t_s",
        "t_c",
        "spectral_gap",
        "spectral_gap_reversible",
        "gap_bound",
    ]) {
        assert!(t.get(k).is_some(), "theory summary lacks '{k}'");
    }
    assert!((t["t_s"].as_f64().unwrap() - 0.5 * 32f64.ln()).abs() < 1e-6);

    let s = json(&[
        "speciation",
        "--preset",
        "quick",
        "--pairs",
        "500",
        "--branch-times",
        "0.5,1,2",
        "--backend",
        "cpu",
        "--json",
    ]);
    for k in envelope
        .iter()
        .chain(&["t_s_theory", "t_s_measured", "phi"])
    {
        assert!(s.get(k).is_some(), "speciation summary lacks '{k}'");
    }
    let phi = s["phi"].as_array().unwrap();
    assert_eq!(phi.len(), 3);
    for k in ["t", "phi", "stderr", "phi_theory"] {
        assert!(phi[0].get(k).is_some(), "phi entries lack '{k}'");
    }

    let c = json(&[
        "collapse",
        "--preset",
        "quick",
        "--dim",
        "4",
        "--n-train",
        "50",
        "--particles",
        "300",
        "--pairs",
        "50",
        "--steps",
        "100",
        "--entropy-times",
        "0.1,0.5",
        "--entropy-samples",
        "100",
        "--backend",
        "cpu",
        "--json",
    ]);
    for k in envelope
        .iter()
        .chain(&["t_c_theory", "t_c_measured", "excess_entropy"])
    {
        assert!(c.get(k).is_some(), "collapse summary lacks '{k}'");
    }
    for k in ["t", "f_over_alpha", "stderr"] {
        assert!(
            c["excess_entropy"][0].get(k).is_some(),
            "excess_entropy entries lack '{k}'"
        );
    }
}

#[test]
fn bench_prints_records_with_the_cost_model() {
    let out = regimes(&[
        "bench",
        "--workload",
        "gmm",
        "--dim",
        "8",
        "--particles",
        "512",
        "--steps",
        "5",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let records = records.as_array().expect("a list of records");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    for k in [
        "workload",
        "backend",
        "adapter",
        "dim",
        "particles",
        "steps",
        "n_train",
        "threads",
        "particle_steps_per_s",
        "gflops",
        "bytes_per_s",
        "normals_per_s",
        "peak_gflops",
        "peak_source",
        "peak_fraction",
        "setup_seconds",
        "shader_compile_seconds",
        "run_seconds",
        "peak_memory_bytes",
        "note",
    ] {
        assert!(r.get(k).is_some(), "record lacks '{k}'");
    }
    assert_eq!(r["workload"], "gmm");
    assert_eq!(r["backend"], "cpu");
    assert_eq!(r["dim"], 8);
    assert_eq!(r["particles"], 512);
    assert!(r["n_train"].is_null());
    assert!(r["shader_compile_seconds"].is_null());
    let num = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number"))
    };
    for k in [
        "particle_steps_per_s",
        "gflops",
        "bytes_per_s",
        "normals_per_s",
        "peak_gflops",
        "peak_fraction",
        "run_seconds",
    ] {
        assert!(num(k) > 0.0 && num(k).is_finite(), "{k} = {}", num(k));
    }
    // The cost model at d = 8, two classes, scalar plan: B x, M x, P v 3·8; logits 2·2·8 + 2;
    // softmax 2·2; Wᵀr 2·2·8; combine 3·8 — 118 flops, 8 normals per particle-step.
    assert_eq!(r["flops_per_particle_step"], 118);
    assert_eq!(r["normals_per_particle_step"], 8);
    let rate = num("particle_steps_per_s");
    assert!((num("gflops") - rate * 118.0 / 1e9).abs() <= 1e-9 * num("gflops"));
    assert!((num("normals_per_s") - rate * 8.0).abs() <= 1e-9 * num("normals_per_s"));
    assert!((num("peak_fraction") - num("gflops") / num("peak_gflops")).abs() < 1e-12);
    assert!((rate * num("run_seconds") - 512.0 * 5.0).abs() < 1e-6);
}

#[test]
fn bench_refuses_bad_input_naming_the_flag() {
    let cases: [(&[&str], &str); 5] = [
        (&["--dim", "0"], "--dim"),
        (&["--particles", "0"], "--particles"),
        (&["--workload", "sparse"], "--workload"),
        (&["--workload", "empirical", "--n-train", "1"], "--n-train"),
        (&["--threads", "0"], "--threads"),
    ];
    for (args, flag) in cases {
        let mut full = vec!["bench", "--steps", "2", "--json"];
        full.extend(args);
        let out = regimes(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(
            err.contains(flag),
            "{args:?}: error does not name {flag}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed records");
    }
}

/// A setting one workload cannot run (20 steps are unstable for `dense`, not for `gmm`) fails
/// before any workload is measured: no peak probe, no gmm run, no table.
#[test]
fn bench_checks_every_workload_before_measuring_any() {
    let out = regimes(&["bench", "--steps", "20", "--particles", "64", "--dim", "16"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the dense workload cannot run") && err.contains("--steps"),
        "{err}"
    );
    assert!(!err.contains("measuring the peak"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_command_reads_the_same_model() {
    let dir = scratch("same-model");
    // Five training points in d = 3, well apart.
    let train = write(&dir, "train.csv", "3,0,0\n-3,0,0\n0,3,0\n0,-3,0\n0,0,3\n");
    // d is inferred from the file, N fixed by it.
    let th = summary(&["theory", "--train-file", &train, "--json"]);
    assert_eq!(th["config"]["dim"], 3);
    assert_eq!(th["config"]["n-train"], 5);
    // With a file the headline t_C is the points' own (REM on their sample covariance); the
    // configured target's, as for five drawn points, is reported beside it.
    let drawn = summary(&["theory", "--dim", "3", "--n-train", "5", "--json"]);
    assert_eq!(th["t_c_target"], drawn["t_c"]);
    assert_eq!(th["t_c"], th["data"]["t_c"]);
    assert_ne!(th["t_c"], drawn["t_c"]);
    assert!(th["t_c"].as_f64().unwrap() > 0.0);

    // `run --train-file` samples the empirical target: every sample ends on a training point.
    let out = dir.join("run");
    let run = summary(&[
        "run",
        "--train-file",
        &train,
        "--particles",
        "64",
        "--steps",
        "4000",
        "--save-samples",
        "--backend",
        "cpu",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run["class_fractions"].as_array().unwrap().len(), 5);
    let bytes = std::fs::read(out.join("samples.npy")).unwrap();
    // NPY v1: 10-byte preamble + header, then 64 × 3 little-endian f32.
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(data.len(), 64 * 3);
    let points = [
        [3., 0., 0.],
        [-3., 0., 0.],
        [0., 3., 0.],
        [0., -3., 0.],
        [0., 0., 3.],
    ];
    // labels.npy beside it: each sample's nearest training point, counted as class_fractions.
    let labels = regimes::io::read_vector(&out.join("labels.npy")).unwrap();
    assert_eq!(labels.len(), 64);
    let mut counts = [0.0; 5];
    for (x, &label) in data.chunks_exact(3).zip(labels.iter()) {
        let dist: Vec<f32> = points
            .iter()
            .map(|p| p.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum::<f32>())
            .collect();
        let (closest, nearest) =
            dist.iter().enumerate().fold(
                (0, f32::INFINITY),
                |m, (i, &d)| if d < m.1 { (i, d) } else { m },
            );
        assert_eq!(label, closest as f64, "sample {x:?}");
        counts[closest] += 1.0 / 64.0;
        // The last Euler–Maruyama step adds noise √(2Δt) ≈ 0.07 per coordinate (Δt = 0.0025):
        // 0.5 is 7 of those, while the points are 4.2 apart.
        assert!(
            nearest.sqrt() < 0.5,
            "sample {x:?} is {} from every point",
            nearest.sqrt()
        );
    }
    for (k, c) in counts.iter().enumerate() {
        assert!((run["class_fractions"][k].as_f64().unwrap() - c).abs() < 1e-12);
    }

    // t_S is continuous in the target: a two-class file 1e-6 from ±m gives the two-class t_S.
    let mix = write(
        &dir,
        "mix.csv",
        "0.500001,1,1,1,1\n0.499999,-1,-1,-1,-0.999999\n",
    );
    let near = summary(&["theory", "--mixture-file", &mix, "--json"]);
    let exact = summary(&["theory", "--dim", "4", "--json"]);
    assert_eq!(near["config"]["dim"], 4);
    let (a, b) = (
        near["t_s"].as_f64().unwrap(),
        exact["t_s"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-5, "t_S {a} against {b}");

    // A file and an --n-train that disagree are refused; speciation refuses training points.
    assert_refused(
        &["theory", "--train-file", &train, "--n-train", "7"],
        &["n-train", "5 points"],
    );
    assert_refused(
        &["speciation", "--n-train", "10"],
        &["speciation", "--n-train"],
    );
}

/// `--help` teaches only what the command reads, and wraps at word boundaries within the
/// terminal's width.
#[test]
fn help_lists_only_the_flags_a_command_reads_and_fits_80_columns() {
    let help = |cmd: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_regimes"))
            .args([cmd, "--help"])
            .env("COLUMNS", "80")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    for cmd in [
        "theory",
        "run",
        "speciation",
        "collapse",
        "bench",
        "merge",
        "resume",
    ] {
        let text = help(cmd);
        let long: Vec<&str> = text.lines().filter(|l| l.chars().count() > 80).collect();
        assert!(
            long.is_empty(),
            "{cmd} --help: lines over 80 columns: {long:#?}"
        );
    }
    let speciation = help("speciation");
    for hidden in [
        "--particles",
        "--n-train",
        "--record-times",
        "--save-samples",
    ] {
        assert!(
            !speciation.contains(hidden),
            "speciation --help lists {hidden}"
        );
    }
    assert!(speciation.contains("--pairs") && speciation.contains("--branch-times"));
    let theory = help("theory");
    assert!(!theory.contains("--backend") && !theory.contains("--pairs"));
    // Hidden, still refused with a message naming the flag.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_regimes"))
        .args(["speciation", "--particles", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--particles"));
}

/// `run --save-samples --record-times`: the samples at each record time, replayed from the
/// counter-based streams, are the positions the run passed through — at t = 0 they equal
/// samples.npy and labels.npy byte for byte — listed in snapshots.csv; at t = T they have the
/// start's spread (variance ≈ 1 per coordinate for U = I, σ = 1) within 5 standard errors.
#[test]
fn record_time_snapshots_are_the_runs_own_positions() {
    let dir = scratch("snapshots");
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let args = [
        "run",
        "--preset",
        "quick",
        "--particles",
        "3000",
        "--record-times",
        "10,1,0",
        "--save-samples",
        "--backend",
        "cpu",
        "--quiet",
        "--out",
        o,
    ];
    let r = regimes(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let read = |f: &str| std::fs::read(out.join(f)).unwrap();
    assert_eq!(read("samples_t0.npy"), read("samples.npy"));
    assert_eq!(read("labels_t0.npy"), read("labels.npy"));
    let csv = String::from_utf8(read("snapshots.csv")).unwrap();
    assert!(
        csv.starts_with("samples,labels,t,rows\nsamples_t10.npy,labels_t10.npy,10,3000\n"),
        "{csv}"
    );
    let start = regimes::io::read_matrix(&out.join("samples_t10.npy")).unwrap();
    let n = start.len() as f64;
    let var = start.iter().map(|x| x * x).sum::<f64>() / n;
    assert!(
        (var - 1.0).abs() < 5.0 * (2.0 / n).sqrt(),
        "variance at t = T: {var}"
    );
}

/// The summary without what differs from run to run: wall and setup times.
fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(m) = v.as_object_mut() {
        for k in ["wall_seconds", "shader_compile_seconds", "seconds"] {
            m.remove(k);
        }
        for x in m.values_mut() {
            *x = without_timings(x.take());
        }
    } else if let Some(a) = v.as_array_mut() {
        for x in a {
            *x = without_timings(x.take());
        }
    }
    v
}

/// The target is a function of the resolved config alone: `n-train = 500` in a config file and
/// `--n-train 500` give the same `run` (on the empirical target), another than the run without
/// it (on the mixture).
#[test]
fn n_train_in_a_file_or_a_flag_gives_the_same_run() {
    let dir = scratch("n-train-layers");
    let toml = write(&dir, "study.toml", "n-train = 500\n");
    let run = |extra: &[&str]| {
        let mut a = vec![
            "run",
            "--preset",
            "quick",
            "--particles",
            "2000",
            "--steps",
            "50",
            "--backend",
            "cpu",
            "--json",
            "--quiet",
        ];
        a.extend(extra);
        without_timings(summary(&a))
    };
    let flag = run(&["--n-train", "500"]);
    let file = run(&["--config", &toml]);
    assert_eq!(flag, file);
    assert_eq!(flag["config"]["n-train"], 500);
    let mut mixture = run(&[]);
    assert!(
        mixture["config"]["n-train"].is_null(),
        "{}",
        mixture["config"]
    );
    let mut flag = flag;
    for v in [&mut flag, &mut mixture] {
        v.as_object_mut().unwrap().remove("config");
    }
    assert_ne!(flag, mixture, "--n-train must sample the training set");
}
