//! `regimes reproduce NAME --quick` for every experiment, as CI runs them: each finishes, every
//! check passes, and it leaves the documented files (summary.json with its checks, report.md that
//! embeds its plots, SVG and decodable PNG figures, CSV data).

mod common;

use common::{regimes, scratch};

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
            for key in ["name", "value", "expected", "tolerance", "pass"] {
                assert!(c.get(key).is_some(), "{name}: check without {key}: {c}");
            }
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
