//! Ownership-proven removal (`--force`, `OutDir::clear`): only what an earlier run's sealed
//! manifest proves it wrote, unchanged, and its temporaries; everything else is left alone and
//! reported.

use std::fs;
use std::path::{Path, PathBuf};

use super::hash::hash_file;
use super::manifest::{Manifest, legacy_manifest};
use super::paths::{no_symlink_between, plain};
use super::{CHECKPOINT_DIR, MANIFEST, OutDir};

impl OutDir {
    /// Removes what the earlier run provably wrote (its sealed manifest's files, unchanged, and
    /// its temporaries) and its checkpoints; returns what it left alone, and why.
    pub(super) fn remove_earlier_run(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let checkpoints = self.root.join(CHECKPOINT_DIR);
        if let Ok(m) = fs::symlink_metadata(&checkpoints) {
            if m.is_dir() {
                notes.push(format!(
                    "discarding the earlier run's checkpoint in {} (`regimes resume` could have \
                     continued it)",
                    checkpoints.display()
                ));
                let _ = fs::remove_dir_all(&checkpoints);
            } else {
                notes.push(format!(
                    "{} is not a directory; left alone",
                    checkpoints.display()
                ));
            }
        }
        let manifest_path = self.root.join(MANIFEST);
        let Some(old) = Manifest::read(&self.root) else {
            if fs::symlink_metadata(&manifest_path).is_ok() {
                let why = if legacy_manifest(&manifest_path) {
                    "was written by an older regimes (before BLAKE3 digests), so its files cannot \
                     be told unchanged"
                } else {
                    "was not written by regimes (or was edited)"
                };
                notes.push(format!(
                    "{} {why}; the files it lists are left alone, and it is replaced by this \
                     run's manifest",
                    manifest_path.display()
                ));
            }
            return notes;
        };
        let mut dirs: Vec<PathBuf> = vec![self.root.clone()];
        for e in &old.entries {
            let rel = Path::new(&e.name);
            let path = self.root.join(rel);
            let regular = fs::symlink_metadata(&path)
                .map(|m| m.file_type().is_file() && m.len() == e.bytes)
                .unwrap_or(false);
            if !(plain(rel) && no_symlink_between(&self.root, rel)) {
                notes.push(format!("{}: outside the directory; left alone", e.name));
                continue;
            }
            if fs::symlink_metadata(&path).is_err() {
                continue; // already gone
            }
            if regular && hash_file(&path, e.bytes) == Some(e.hash.clone()) {
                let _ = fs::remove_file(&path);
                if let Some(parent) = path.parent()
                    && !dirs.iter().any(|d| d == parent)
                {
                    dirs.push(parent.to_path_buf());
                }
            } else {
                notes.push(format!(
                    "{}: not the file the earlier run wrote (changed, replaced or a link); left \
                     alone",
                    path.display()
                ));
            }
        }
        // The earlier run's temporaries carry its id.
        let marker = format!(".tmp-{}-", old.run_id);
        for dir in &dirs {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let regular = entry.file_type().is_ok_and(|t| t.is_file());
                if regular && name.starts_with('.') && name.contains(&marker) {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        // Sub-directories the listed files emptied (plots/), innermost first.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs.iter().filter(|d| **d != self.root) {
            let _ = fs::remove_dir(dir);
        }
        let _ = fs::remove_file(&manifest_path);
        notes
    }
}
