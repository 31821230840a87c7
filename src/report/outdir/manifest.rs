//! The sealed manifest: the files a run wrote, each with its size and content hash, sealed so
//! that a manifest another program or a person wrote is not taken for one; and the checks that a
//! listed file is still the one the run wrote.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::hash::hash_file;
use super::paths::{no_symlink_between, plain};
use super::{MANIFEST, OutDir};

/// Largest manifest read back.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// One file a run wrote: its name in the directory, size and content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) bytes: u64,
    pub(super) hash: String,
}

/// What a run records about the files it owns.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    #[serde(default)]
    pub(super) written_by: String,
    pub(super) run_id: String,
    pub(super) command: String,
    pub(super) complete: bool,
    /// The names, in the order first written (as `entries`).
    pub(super) files: Vec<String>,
    #[serde(default)]
    pub(super) entries: Vec<Entry>,
    /// Hash of the run id, command, completeness and entries: proves regimes wrote the manifest.
    #[serde(default)]
    pub(super) seal: String,
}

pub(super) const WRITTEN_BY: &str = "regimes";

pub(super) fn seal(run_id: &str, command: &str, complete: bool, entries: &[Entry]) -> String {
    let mut text = format!("regimes manifest 1\n{run_id}\n{command}\n{complete}\n");
    for e in entries {
        text.push_str(&format!("{}\t{}\t{}\n", e.name, e.bytes, e.hash));
    }
    crate::digest::digest(text.as_bytes())
}

/// Whether the manifest at `path` carries a seal of an older regimes (its hashes are not
/// this version's digests).
pub(super) fn legacy_manifest(path: &Path) -> bool {
    crate::io::read_bounded(path, MAX_MANIFEST_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("seal")?.as_str().map(crate::digest::is_legacy))
        .unwrap_or(false)
}

impl Manifest {
    /// The manifest in `root`, if there is one this program wrote (a regular file, sealed).
    pub(super) fn read(root: &Path) -> Option<Manifest> {
        let path = root.join(MANIFEST);
        let m: Manifest =
            serde_json::from_slice(&crate::io::read_bounded(&path, MAX_MANIFEST_BYTES).ok()?)
                .ok()?;
        let names: Vec<&String> = m.entries.iter().map(|e| &e.name).collect();
        let ok = m.written_by == WRITTEN_BY
            && m.seal == seal(&m.run_id, &m.command, m.complete, &m.entries)
            && m.files.iter().collect::<Vec<_>>() == names;
        ok.then_some(m)
    }
}

/// Checks that `root` holds the complete output of a run of this program: its sealed manifest
/// says complete, and every file it lists is a regular file inside `root` with the size and
/// content hash recorded as it was written. Returns the listed names; the error names the first
/// file that is not as written (what reuse and merge of a sweep's points rest on).
pub fn verify_complete(root: &Path) -> Result<Vec<String>> {
    let m = Manifest::read(root).ok_or_else(|| {
        anyhow::anyhow!(
            "{} is missing, edited or not written by regimes",
            root.join(MANIFEST).display()
        )
    })?;
    ensure!(m.complete, "{}: its run did not complete", root.display());
    for e in &m.entries {
        check_entry(root, e)?;
    }
    Ok(m.files)
}

/// Checks that `name` is listed in the sealed manifest of `root` (complete or not) and is still
/// the file the run wrote.
pub fn verify_listed(root: &Path, name: &str) -> Result<()> {
    let m = Manifest::read(root).ok_or_else(|| {
        anyhow::anyhow!(
            "{} is missing, edited or not written by regimes",
            root.join(MANIFEST).display()
        )
    })?;
    let e =
        m.entries.iter().find(|e| e.name == name).ok_or_else(|| {
            anyhow::anyhow!("{}: not written by the run", root.join(name).display())
        })?;
    check_entry(root, e)
}

fn check_entry(root: &Path, e: &Entry) -> Result<()> {
    let rel = Path::new(&e.name);
    let path = root.join(rel);
    let regular = plain(rel)
        && no_symlink_between(root, rel)
        && fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file() && m.len() == e.bytes);
    ensure!(
        regular && hash_file(&path, e.bytes).as_deref() == Some(e.hash.as_str()),
        "{}: not the file the run wrote (missing, changed, or replaced)",
        path.display()
    );
    Ok(())
}

impl OutDir {
    pub(super) fn write_manifest(&self, complete: bool) -> Result<()> {
        let entries = self.files.lock().unwrap().clone();
        let m = Manifest {
            written_by: WRITTEN_BY.into(),
            seal: seal(&self.run_id, &self.command, complete, &entries),
            run_id: self.run_id.clone(),
            command: self.command.clone(),
            complete,
            files: entries.iter().map(|e| e.name.clone()).collect(),
            entries,
        };
        self.write_raw(
            MANIFEST,
            format!("{}\n", serde_json::to_string_pretty(&m)?).as_bytes(),
        )?;
        self.manifested.store(true, Ordering::SeqCst);
        Ok(())
    }
}
