//! Atomic writes: a temporary file named with the run's id, fsync, rename; each write into an
//! output directory recorded in its manifest.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, ensure};

use super::OutDir;
use super::manifest::Entry;
use super::paths::{no_symlink_between, plain};
use super::token::run_token;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl OutDir {
    /// Write raw bytes to `name` atomically (temp file in the same directory, fsync, rename) and
    /// record it in the manifest.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let dest = self.write_raw(name, bytes)?;
        let entry = Entry {
            name: name.to_string(),
            bytes: bytes.len() as u64,
            hash: crate::digest::digest(bytes),
        };
        {
            let mut files = self.files.lock().unwrap();
            match files.iter_mut().find(|f| f.name == name) {
                Some(f) => *f = entry,
                None => files.push(entry),
            }
        }
        self.write_manifest(false)?;
        Ok(dest)
    }

    pub(super) fn write_raw(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let rel = Path::new(name);
        ensure!(
            !name.is_empty() && plain(rel) && !name.ends_with('/'),
            "output name '{name}' must be a relative path inside the output directory"
        );
        ensure!(
            no_symlink_between(&self.root, rel),
            "cannot write {name}: a directory on its way in {} is a symbolic link or a file \
             (regimes writes only inside the output directory)",
            self.root.display()
        );
        let dest = self.root.join(rel);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let file_name = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        write_atomic(&dir, &file_name, bytes, false)
    }
}

/// Writes `bytes` to `dir/name` atomically: a temporary file in `dir` (named with this run's id,
/// [`run_token`]), fsync, rename; with `durable`, the directory is synced too, so the rename
/// survives a crash of the machine.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<PathBuf> {
    let dest = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        run_token(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &dest)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", dest.display()));
    }
    Ok(dest)
}
