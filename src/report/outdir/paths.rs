//! Path safety: a name the run writes or removes stays inside its directory.

use std::fs;
use std::path::{Component, Path};

/// Whether `rel` is a plain relative path (no `..`, no root, not empty).
pub(super) fn plain(rel: &Path) -> bool {
    rel.components().next().is_some() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Whether every directory between `root` and `rel`'s last component is a real directory (no
/// symlink on the way out of `root`); missing ones count as real (they will be created).
pub(super) fn no_symlink_between(root: &Path, rel: &Path) -> bool {
    let mut p = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => return false,
            _ => {}
        }
    }
    true
}
