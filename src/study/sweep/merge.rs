//! `regimes merge` of sweep shards: their point directories copied into one sweep directory,
//! each point once, and its tables and figures written.

#[allow(unused_imports)]
use super::*;

/// `merge` of sweep shards: their point directories copied into `out`, which then holds the
/// whole sweep's tables and figures. Refuses shards of different sweeps, and points held twice
/// or by no shard, naming them.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<SweepReport> {
    let plans = dirs
        .iter()
        .map(|d| Plan::read(d).map(|p| (d, p)))
        .collect::<Result<Vec<_>>>()?;
    let (first_dir, plan) = &plans[0];
    for (d, p) in &plans[1..] {
        ensure!(
            (p.study.as_str(), p.identity()) == (plan.study.as_str(), plan.identity()),
            "{} and {} are shards of different sweeps",
            first_dir.display(),
            d.display()
        );
    }
    let mut owner: Vec<Option<&PathBuf>> = vec![None; plan.points.len()];
    for (d, p) in &plans {
        for pt in &p.points {
            if complete(&d.join(&pt.dir), &pt.config_hash) {
                if let Some(other) = owner[pt.index] {
                    bail!(
                        "point {} is in both {} and {}",
                        pt.dir,
                        other.display(),
                        d.display()
                    );
                }
                owner[pt.index] = Some(d);
            }
        }
    }
    let missing: Vec<&str> = plan
        .points
        .iter()
        .filter(|p| owner[p.index].is_none())
        .map(|p| p.dir.as_str())
        .collect();
    ensure!(
        missing.is_empty(),
        "no shard holds a complete run of point(s) {}",
        missing.join(", ")
    );
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(d) = dirs.iter().find(|d| same(d, out)) {
        bail!(
            "--out {} is the shard directory {}; give the merge a directory of its own",
            out.display(),
            d.display()
        );
    }
    prepare(out, plan, force)?;
    let mut status = vec![Status::Reused; plan.points.len()];
    for (p, d) in plan.points.iter().zip(&owner) {
        let d = d.expect("every point has a shard");
        let dest = out.join(&p.dir);
        if !complete(&dest, &p.config_hash) {
            let _ = std::fs::remove_dir_all(&dest);
            copy_dir(&d.join(&p.dir), &dest)?;
        }
        status[p.index] = Status::Reused;
    }
    let entries = read_points(out, plan, &status)?;
    let wall = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("sweep.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|v| v.get("wall_seconds").and_then(Value::as_f64))
        .sum();
    let backends: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("sweep.json")).ok())
        .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
        .filter_map(|v| v.get("backend").and_then(Value::as_str).map(str::to_string))
        .fold(vec![], |mut acc, b| {
            if !acc.contains(&b) {
                acc.push(b);
            }
            acc
        });
    let extra = Extra {
        shard: None,
        merged_from: Some(dirs.iter().map(|d| d.display().to_string()).collect()),
        wall_seconds: wall,
        backend: (!backends.is_empty()).then(|| backends.join("; ")),
        warnings: vec![],
    };
    finish(out, plan, &status, &entries, extra, None)
}

pub(super) fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let e = e?;
        let name = e.file_name();
        if name == crate::report::LOCK {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type()?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}
