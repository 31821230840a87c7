//! `regimes reproduce NAME --quick` for every experiment, as CI runs them: each finishes, every
//! check passes, and it leaves the documented files (summary.json with its checks, report.md that
//! embeds its plots, SVG and decodable PNG figures, CSV data).

use crate::common::{regimes, scratch};

#[test]
fn every_experiment_reproduces_quickly_with_its_checks_passing() {
    let root = scratch("reproduce");
    for name in [
        "gap",
        "speciation-gmm",
        "collapse-gmm",
        "steering",
        "multimodal",
        "discretisation",
    ] {
        let dir = root.join(name);
        let out = regimes(&[
            "reproduce",
            name,
            "--quick",
            "--backend",
            "cpu",
            "--out",
            dir.to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["experiment"], name);
        assert_eq!(summary["passed"], true, "{name}");
        let checks = summary["checks"].as_array().unwrap();
        assert!(checks.len() >= 3, "{name}: {} checks", checks.len());
        for c in checks {
            for key in ["name", "value", "stderr", "expected", "tolerance", "pass"] {
                assert!(c.get(key).is_some(), "{name}: check without {key}: {c}");
            }
        }
        if name == "collapse-gmm" {
            values_are_what_the_checks_name(&dir, checks);
        }
        let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(
            report.contains("machine") && report.contains("wall time"),
            "{name}"
        );
        let pngs: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".png"))
            .collect();
        assert!(!pngs.is_empty(), "{name}: no figure");
        for png in &pngs {
            assert!(
                report.contains(&format!("]({png})")),
                "{name}: report lacks {png}"
            );
            let svg = dir.join(png.replace(".png", ".svg"));
            assert!(svg.exists(), "{name}: {png} has no SVG twin");
            let bytes = std::fs::read(dir.join(png)).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}: {png}");
        }
        let csvs = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "csv")
            })
            .count();
        assert!(csvs >= 1, "{name}: no CSV data");
    }
}

/// A check prints the value it names, not the value less its allowance: f^e/α at t_C/2 is the
/// CSV's value there, with its s.e., and the allowance of 4.5 s.e. is the tolerance.
fn values_are_what_the_checks_name(dir: &std::path::Path, checks: &[serde_json::Value]) {
    let csv = std::fs::read_to_string(dir.join("excess_entropy.csv")).unwrap();
    let mut seen = 0;
    for row in csv.lines().skip(1) {
        let v: Vec<f64> = row.split(',').map(|x| x.parse().unwrap()).collect();
        if (v[2] - 0.5).abs() > 1e-9 {
            continue;
        }
        let want = format!("f^e/α at t_C/2 d={} (collapsed)", v[0]);
        let c = checks.iter().find(|c| c["name"] == want.as_str()).unwrap();
        let get = |k: &str| c[k].as_f64().unwrap();
        assert!((get("value") - v[3]).abs() < 1e-12, "{c} vs {row}");
        assert!((get("stderr") - v[4]).abs() < 1e-12, "{c} vs {row}");
        assert!((get("tolerance") - 4.5 * v[4]).abs() < 1e-12, "{c}");
        seen += 1;
    }
    assert_eq!(seen, 3, "{csv}");
}

#[test]
fn unknown_experiments_and_busy_directories_are_refused() {
    let out = regimes(&["reproduce", "nonsense", "--quick"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("speciation-gmm"), "{err}");
    let dir = scratch("reproduce-busy");
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let out = regimes(&[
        "reproduce",
        "gap",
        "--quick",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
}
