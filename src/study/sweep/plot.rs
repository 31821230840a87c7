//! `regimes plot DIR…`: the outputs of one study kind, made on any day or machine, overlaid.

#[allow(unused_imports)]
use super::*;

/// `regimes plot`: the outputs in `dirs` (study directories, merges, sweeps) of one study
/// kind, overlaid against `x_key` (default: the first key on which they differ). Figures go to
/// `stem_*.svg`/`.png`/`.csv`. Refuses mixed kinds, naming them.
pub fn plot(
    dirs: &[PathBuf],
    x_key: Option<&str>,
    stem: &Path,
    render: &Render,
) -> Result<Vec<PathBuf>> {
    let mut entries: Vec<(Kind, Entry, Config)> = vec![];
    for d in dirs {
        if is_sweep(d) {
            let plan = Plan::read(d)?;
            for p in &plan.points {
                let dir = d.join(&p.dir);
                if dir.join("summary.json").is_file() {
                    entries.push(study_entry(&dir)?);
                }
            }
        } else {
            entries.push(study_entry(d)?);
        }
    }
    ensure!(!entries.is_empty(), "no study outputs to plot");
    let mut kinds: Vec<(Kind, Vec<String>)> = vec![];
    for (k, e, _) in &entries {
        match kinds.iter_mut().find(|(x, _)| x == k) {
            Some((_, ds)) => ds.push(e.dir.clone()),
            None => kinds.push((*k, vec![e.dir.clone()])),
        }
    }
    if kinds.len() > 1 {
        let named: Vec<String> = kinds
            .iter()
            .map(|(k, ds)| format!("{} ({})", k.name(), ds.join(", ")))
            .collect();
        bail!(
            "plot overlays outputs of one study; these are of different studies: {}",
            named.join("; ")
        );
    }
    let kind = kinds[0].0;
    // The x key: given, or the first config key on which the outputs differ.
    let cfgs: Vec<&Config> = entries.iter().map(|(_, _, c)| c).collect();
    let key = match x_key {
        Some(k) => {
            ensure!(
                Config::keys().iter().any(|n| n == k),
                "--x {k}: unknown config key"
            );
            k.to_string()
        }
        None => cfgs
            .windows(2)
            .flat_map(|w| super::super::fingerprint::differing_keys(w[0], w[1]))
            .next()
            .unwrap_or_else(|| "seed".to_string()),
    };
    let mut list = vec![];
    for (_, mut e, c) in entries {
        let v = serde_json::to_value(&c)?
            .get(&key)
            .map(label)
            .unwrap_or_default();
        e.params = vec![(key.clone(), v.clone())];
        e.name = format!("{key}={v}");
        list.push(e);
    }
    let dir = match stem.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = stem
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "overlay".into());
    let note = format!("{} outputs", list.len());
    let files = overlay(&dir, &base, kind, &list, &key, &note, render)?;
    write_atomic(
        &dir,
        &format!("{base}.csv"),
        tidy_csv(std::slice::from_ref(&key), &list).as_bytes(),
        true,
    )?;
    let mut out: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    out.push(dir.join(format!("{base}.csv")));
    Ok(out)
}

pub(super) fn study_entry(dir: &Path) -> Result<(Kind, Entry, Config)> {
    let summary = read_summary(dir)?;
    let command = summary
        .get("command")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("{}: summary.json names no study", dir.display()))?;
    let kind =
        Kind::from_name(command).with_context(|| format!("{}: summary.json", dir.display()))?;
    let cfg: Config = serde_json::from_value(summary.get("config").cloned().unwrap_or_default())
        .with_context(|| format!("{}: summary.json has no readable config", dir.display()))?;
    Ok((
        kind,
        Entry {
            name: dir.display().to_string(),
            dir: dir.display().to_string(),
            params: vec![],
            summary,
        },
        cfg,
    ))
}
