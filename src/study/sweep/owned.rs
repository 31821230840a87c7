//! The sweep directory as its owner keeps it: taken under the lock an output directory has
//! ([`OutDir`]), a ledger of the points this sweep completed, and reuse that trusts only what
//! verifies.
//!
//! A point is reused only when the ledger (`sweep-points.json`, itself checked against the
//! sweep's sealed manifest) records it completed under the config hash the plan has now (which
//! digests every input file's contents), its `manifest.json` is the one that run wrote (hash in
//! the ledger), and every file that manifest lists is still as written. Anything else runs again.
//! `--force` over another sweep clears the points its plan names (but for those that are points
//! of the new sweep too, same config and inputs), each of the files its own manifest proves it
//! wrote, never a user's file.

#[allow(unused_imports)]
use super::*;

use std::collections::BTreeMap;

use crate::digest::digest;
use crate::io::{MAX_STATE_BYTES, read_bounded, read_text};
use crate::report::{MANIFEST, OutDir, verify_complete, verify_listed};

/// The ledger of the points a sweep completed.
pub const LEDGER: &str = "sweep-points.json";

/// One completed point: the config hash it ran under and the hash of its `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Done {
    pub(super) config_hash: String,
    pub(super) manifest: String,
}

/// The completed points of a sweep directory, by point directory.
pub(super) type Ledger = BTreeMap<String, Done>;

/// The ledger of the sweep in `dir`: empty when it has none this program wrote, intact.
pub(super) fn read_ledger(dir: &Path) -> Ledger {
    if verify_listed(dir, LEDGER).is_err() {
        return Ledger::new();
    }
    read_bounded(&dir.join(LEDGER), MAX_STATE_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub(super) fn write_ledger(dir: &OutDir, ledger: &Ledger) -> Result<()> {
    dir.write_bytes(LEDGER, &pretty(ledger)?).map(drop)
}

/// The ledger entry of the complete point in `dir` run under `config_hash`.
pub(super) fn done(dir: &Path, config_hash: &str) -> Result<Done> {
    let manifest = read_bounded(&dir.join(MANIFEST), MAX_STATE_BYTES)?;
    Ok(Done {
        config_hash: config_hash.to_string(),
        manifest: digest(&manifest),
    })
}

/// Whether point `p` of the sweep in `out` holds a complete run of its config as it is now;
/// the error says why not.
pub(super) fn reusable(out: &Path, p: &Point, ledger: &Ledger) -> Result<()> {
    let d = ledger
        .get(&p.dir)
        .ok_or_else(|| anyhow!("not completed by this sweep"))?;
    ensure!(
        d.config_hash == p.config_hash,
        "it ran with other inputs (config hash {} then, {} now: a file it reads changed)",
        d.config_hash,
        p.config_hash
    );
    let dir = out.join(&p.dir);
    ensure!(
        done(&dir, &p.config_hash)? == *d,
        "its {MANIFEST} is not the one its run wrote"
    );
    verify_complete(&dir)?;
    let summary = read_summary(&dir)?;
    ensure!(
        summary.get("stopped_early").is_none_or(Value::is_null),
        "it stopped early"
    );
    Ok(())
}

/// Whether `name` is one plain directory name (what a plan's points are; an edited plan's
/// `../x` is not).
fn plain_name(name: &str) -> bool {
    let mut c = Path::new(name).components();
    matches!(
        (c.next(), c.next()),
        (Some(std::path::Component::Normal(_)), None)
    )
}

/// Takes `out` for `plan`: the same sweep is reopened (its points reused where they verify),
/// another is refused unless `force` and then cleared of what it provably wrote, a directory
/// holding no sweep is taken as a study's output directory is. Returns the directory, locked,
/// with the plan written, and the ledger of the points it holds.
pub(super) fn open(out: &Path, plan: &Plan, force: bool) -> Result<(OutDir, Ledger)> {
    let old = if std::fs::symlink_metadata(out.join(PLAN_FILE)).is_ok() {
        match Plan::read(out) {
            Ok(p) => Some(p),
            Err(e) if force => {
                crate::note!("--force: {e:#}; it is replaced");
                None
            }
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    let same = old.as_ref().is_some_and(|o| {
        (o.study.as_str(), o.identity()) == (plan.study.as_str(), plan.identity())
    });
    // Read before the directory is taken (--force removes the old top files).
    let mut ledger = read_ledger(out);
    let dir = if same {
        OutDir::reopen(out, "sweep")?
    } else {
        ensure!(
            old.is_none() || force,
            "{} holds another sweep (other points or configs); choose another directory or \
             pass --force to run this one there (the other sweep's points are removed)",
            out.display()
        );
        let dir = OutDir::create_for(out, force, "sweep")?;
        // Under the lock: the other sweep's points cleared of what their runs wrote, but for
        // those that are points of this sweep too (same directory, same config and inputs).
        let ours = |d: &str, h: &str| plan.points.iter().any(|p| p.dir == d && p.config_hash == h);
        ledger.retain(|d, done| old.is_some() && ours(d, &done.config_hash));
        for p in old.iter().flat_map(|o| &o.points) {
            if !plain_name(&p.dir) || ledger.contains_key(&p.dir) {
                continue;
            }
            for note in OutDir::clear(&out.join(&p.dir))? {
                crate::note!("--force: {note}");
            }
        }
        dir
    };
    dir.write_bytes(PLAN_FILE, &pretty(plan)?)?;
    Ok((dir, ledger))
}

/// Copies the complete point `from` (verified) into `to`: the files its manifest lists and the
/// manifest, nothing else (no link or other file is followed); then verifies the copy. What
/// `to` held from an earlier run is cleared first; a user's file there refuses the copy.
pub(super) fn copy_point(from: &Path, to: &Path) -> Result<()> {
    let names = verify_complete(from)?;
    OutDir::clear(to)?;
    ensure!(
        std::fs::symlink_metadata(to).is_err(),
        "{} holds files regimes did not write; move them away and merge again",
        to.display()
    );
    for name in names.iter().map(String::as_str).chain([MANIFEST]) {
        let (src, dst) = (from.join(name), to.join(name));
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // Streamed (samples.npy can be large); a new file, so no link is written through.
        let copied = (|| -> Result<()> {
            let mut r = crate::io::open_regular(&src)?;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dst)?;
            std::io::copy(&mut r, &mut w)?;
            w.sync_all()?;
            Ok(())
        })();
        copied.with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
    }
    verify_complete(to).with_context(|| format!("the copy of {}", from.display()))?;
    Ok(())
}

/// The `shard` a sweep directory's `sweep.json` records (read within the state limit).
pub(super) fn recorded_shard(dir: &Path) -> Result<Option<Shard>> {
    let path = dir.join("sweep.json");
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(&read_text(&path, MAX_STATE_BYTES)?)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    v.get("shard")
        .and_then(Value::as_str)
        .map(|s| {
            s.parse::<Shard>()
                .map_err(|e| anyhow!("{}: {e}", path.display()))
        })
        .transpose()
}
