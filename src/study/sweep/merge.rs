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
    // A point counts only where it verifies (ledger, manifest, every file as written).
    let ledgers: Vec<Ledger> = plans.iter().map(|(d, _)| read_ledger(d)).collect();
    let mut owner: Vec<Option<&PathBuf>> = vec![None; plan.points.len()];
    for ((d, _), ledger) in plans.iter().zip(&ledgers) {
        for pt in &plan.points {
            match reusable(d, pt, ledger) {
                Ok(()) => {
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
                Err(why) if ledger.contains_key(&pt.dir) => {
                    crate::note!(
                        "warning: {}: point {} is not taken: {why:#}",
                        d.display(),
                        pt.dir
                    );
                }
                Err(_) => {}
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
        "no shard holds a complete run of point(s) {} (a point whose files were changed or \
         removed after it ran is not complete; run it again with `regimes resume` in its shard)",
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
    let (dir, mut ledger) = open(out, plan, force)?;
    let status = vec![Status::Reused; plan.points.len()];
    for (p, d) in plan.points.iter().zip(&owner) {
        let Some(d) = d else {
            bail!("no shard holds point {}", p.dir);
        };
        if reusable(out, p, &ledger).is_err() {
            ledger.remove(&p.dir);
            copy_point(&d.join(&p.dir), &out.join(&p.dir))?;
            ledger.insert(p.dir.clone(), done(&out.join(&p.dir), &p.config_hash)?);
        }
    }
    write_ledger(&dir, &ledger)?;
    let entries = read_points(out, plan, &status)?;
    let tops: Vec<Value> = dirs
        .iter()
        .filter_map(|d| {
            crate::io::read_bounded(&d.join("sweep.json"), crate::io::MAX_STATE_BYTES).ok()
        })
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .collect();
    let wall = tops
        .iter()
        .filter_map(|v| v.get("wall_seconds").and_then(Value::as_f64))
        .sum();
    let backends: Vec<String> = tops
        .iter()
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
    finish(&dir, plan, &status, &entries, extra, None)
}
