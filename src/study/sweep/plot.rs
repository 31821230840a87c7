//! `regimes plot DIR…`: the outputs of one study kind, made on any day or machine, overlaid.
//!
//! `plot` writes only files of its own: never inside an input directory, and never over a file
//! an earlier `plot` did not write (its marker, `.STEM.regimes-plot.json`, lists what it wrote
//! with content hashes) unless `--force`. Every check passes before the first file is written.

#[allow(unused_imports)]
use super::*;

use std::collections::BTreeMap;

use crate::digest::digest;
use crate::io::{MAX_STATE_BYTES, read_bounded};
use crate::report::write_atomic;

/// `regimes plot`: the outputs in `dirs` (study directories, merges, sweeps) of one study
/// kind, overlaid against `x_key` (default: the first key on which they differ). Figures go to
/// `stem_*.svg`/`.png`/`.csv`. Refuses mixed kinds, naming them; refuses to replace a file it
/// did not write unless `force`. Outputs that stopped early or are shards are labelled partial.
pub fn plot(
    dirs: &[PathBuf],
    x_key: Option<&str>,
    stem: &Path,
    render: &Render,
    force: bool,
) -> Result<Vec<PathBuf>> {
    let dir = match stem.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = stem
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != "." && s != "..")
        .ok_or_else(|| anyhow!("--out {}: give a file stem, e.g. figs/cmp", stem.display()))?;
    outside_inputs(&dir, dirs)?;
    let mut entries: Vec<(Kind, Entry, Config)> = vec![];
    for d in dirs {
        if is_sweep(d) {
            let plan = Plan::read(d)?;
            for p in &plan.points {
                let dir = d.join(&p.dir);
                if std::fs::symlink_metadata(dir.join("summary.json")).is_ok() {
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
    let mut partial = 0;
    for (_, mut e, c) in entries {
        let v = serde_json::to_value(&c)?
            .get(&key)
            .map(label)
            .unwrap_or_default();
        e.params = vec![(key.clone(), v.clone())];
        e.name = format!("{key}={v}");
        // A partial output says so in the legend, the CSV and on stderr.
        if let Some(why) = partial_of(&e.summary) {
            crate::note!(
                "warning: {} is partial ({why}); its curves and headlines cover only what it \
                 measured",
                e.dir
            );
            e.name = format!("{} (partial: {why})", e.name);
            partial += 1;
        }
        list.push(e);
    }
    let note = match partial {
        0 => format!("{} outputs", list.len()),
        n => format!("{} outputs, {n} partial", list.len()),
    };
    let mut files: Files = vec![];
    overlay(&mut files, &base, kind, &list, &key, &note, render)?;
    files.push((
        format!("{base}.csv"),
        tidy_csv(std::slice::from_ref(&key), &list).into_bytes(),
    ));
    write_owned(&dir, &base, files, force)
}

/// Why an output covers only part of its study: stopped early, or one shard of it.
fn partial_of(summary: &Value) -> Option<String> {
    if let Some(s) = summary.get("shard").and_then(Value::as_str) {
        return Some(format!("shard {s}"));
    }
    summary.get("stopped_early").and_then(Value::as_str)?;
    let done = summary.get("fraction_done").and_then(Value::as_f64);
    Some(done.map_or_else(
        || "stopped early".to_string(),
        |f| format!("stopped early, {:.1} % done", 100.0 * f),
    ))
}

/// The real path of `p`, whether or not it exists yet: its nearest existing ancestor resolved,
/// the rest appended.
fn real(p: &Path) -> PathBuf {
    let mut rest = vec![];
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return rest.iter().rev().fold(c, |acc, r| acc.join(r));
        }
        match (cur.file_name().map(ToOwned::to_owned), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// Refuses an output directory that is an input directory or inside one (a study's own
/// `phi.csv` must not be replaced by an overlay).
fn outside_inputs(dir: &Path, inputs: &[PathBuf]) -> Result<()> {
    let out = real(dir);
    for d in inputs {
        let Ok(input) = d.canonicalize() else {
            continue;
        };
        ensure!(
            !out.starts_with(&input),
            "--out {}: inside the input directory {}; plot writes its figures outside its \
             inputs (e.g. --out figs/cmp)",
            dir.display(),
            d.display()
        );
    }
    Ok(())
}

/// The marker of the files an earlier `plot` wrote with the stem `base`.
fn marker_name(base: &str) -> String {
    format!(".{base}.regimes-plot.json")
}

/// The files an earlier `plot` wrote (name → content hash), from its sealed marker; None when
/// there is no marker this program wrote.
fn read_marker(path: &Path) -> Option<BTreeMap<String, String>> {
    let v: Value = serde_json::from_slice(&read_bounded(path, MAX_STATE_BYTES).ok()?).ok()?;
    super::super::fingerprint::check_seal(&v, "plot marker").ok()?;
    serde_json::from_value(v.get("files")?.clone()).ok()
}

/// Writes `files` into `dir` when every one is new, was written by an earlier `plot` and is
/// unchanged since, or `force`; else refuses naming the files in the way, writing nothing.
fn write_owned(dir: &Path, base: &str, files: Files, force: bool) -> Result<Vec<PathBuf>> {
    let marker = dir.join(marker_name(base));
    let earlier = read_marker(&marker);
    let ours = |name: &str, path: &Path| -> bool {
        let recorded = earlier.as_ref().and_then(|m| m.get(name));
        let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
        is_file
            && recorded.is_some_and(|h| {
                read_bounded(path, crate::io::MAX_MATRIX_BYTES).is_ok_and(|b| digest(&b) == *h)
            })
    };
    let mut in_the_way = vec![];
    for (name, _) in &files {
        let path = dir.join(name);
        match std::fs::symlink_metadata(&path) {
            Err(_) => {}
            Ok(m) if m.is_dir() => bail!("{} is a directory; choose another --out", path.display()),
            Ok(_) if force || ours(name, &path) => {}
            Ok(_) => in_the_way.push(path.display().to_string()),
        }
    }
    if earlier.is_none() && std::fs::symlink_metadata(&marker).is_ok() && !force {
        in_the_way.push(marker.display().to_string());
    }
    ensure!(
        in_the_way.is_empty(),
        "plot would replace {} which it did not write; choose another --out, or pass --force to \
         replace {}",
        in_the_way.join(", "),
        if in_the_way.len() == 1 { "it" } else { "them" }
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut recorded = earlier.unwrap_or_default();
    let mut written = vec![];
    for (name, bytes) in &files {
        written.push(write_atomic(dir, name, bytes, true)?);
        recorded.insert(name.clone(), digest(bytes));
        // The marker follows every file, so an interrupted plot still owns what it wrote.
        let sealed = super::super::fingerprint::seal(serde_json::json!({ "files": recorded }));
        write_atomic(dir, &marker_name(base), &pretty(&sealed)?, true)?;
    }
    Ok(written)
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
