//! The output directory's life: created (with its parents) and locked, filled atomically, its
//! files listed in a sealed manifest, finished, released — and, under `--force`, cleared of
//! exactly the files an earlier run of this program wrote.
//!
//! What proves a file is ours: the earlier run's `manifest.json` carries a seal (a hash of its
//! run id and entries, so a manifest another program or a person wrote is not taken for one), and
//! each entry the size and content hash of the file as written. `--force` removes a listed file
//! only when it is a regular file inside the directory (no symlink on the way), with that size
//! and hash; temporaries only when their name carries that run's id. Everything else is left
//! alone and reported.
//!
//! (Longer than 500 lines: the directory's whole lifecycle — creation, the sealed manifest,
//! ownership-proven removal, atomic writes — is one concept, and 214 lines are its tests.)

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use super::lock::{LOCK, Lock};

/// The manifest of the run that wrote the directory.
pub const MANIFEST: &str = "manifest.json";

/// Where a run's checkpoints live inside its output directory (`--checkpoint-every`).
pub const CHECKPOINT_DIR: &str = ".regimes-checkpoint";

/// Largest manifest read back.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// This process's run id: random, 16 hex digits. It names the run in the lock and the manifest,
/// and every temporary file this process writes carries it.
pub fn run_token() -> &'static str {
    use std::hash::{BuildHasher, Hasher};
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        format!("{:016x}", h.finish())
    })
}

/// The hash of a file's contents, reading at most `limit` bytes (None when it holds more).
fn hash_file(path: &Path, limit: u64) -> Option<String> {
    let mut f = File::open(path).ok()?;
    let mut h = crate::digest::Digest::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        if h.len() > limit {
            return None;
        }
    }
    Some(h.finish())
}

/// One file a run wrote: its name in the directory, size and content hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    name: String,
    bytes: u64,
    hash: String,
}

/// What a run records about the files it owns.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    #[serde(default)]
    written_by: String,
    run_id: String,
    command: String,
    complete: bool,
    /// The names, in the order first written (as `entries`).
    files: Vec<String>,
    #[serde(default)]
    entries: Vec<Entry>,
    /// Hash of the run id, command, completeness and entries: proves regimes wrote the manifest.
    #[serde(default)]
    seal: String,
}

const WRITTEN_BY: &str = "regimes";

fn seal(run_id: &str, command: &str, complete: bool, entries: &[Entry]) -> String {
    let mut text = format!("regimes manifest 1\n{run_id}\n{command}\n{complete}\n");
    for e in entries {
        text.push_str(&format!("{}\t{}\t{}\n", e.name, e.bytes, e.hash));
    }
    crate::digest::digest(text.as_bytes())
}

/// Whether the manifest at `path` carries a seal of an older regimes (its hashes are not
/// this version's digests).
fn legacy_manifest(path: &Path) -> bool {
    crate::io::read_bounded(path, MAX_MANIFEST_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("seal")?.as_str().map(crate::digest::is_legacy))
        .unwrap_or(false)
}

impl Manifest {
    /// The manifest in `root`, if there is one this program wrote (a regular file, sealed).
    fn read(root: &Path) -> Option<Manifest> {
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

/// Whether `rel` is a plain relative path (no `..`, no root, not empty).
fn plain(rel: &Path) -> bool {
    rel.components().next().is_some() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Whether every directory between `root` and `rel`'s last component is a real directory (no
/// symlink on the way out of `root`); missing ones count as real (they will be created).
fn no_symlink_between(root: &Path, rel: &Path) -> bool {
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

/// An output directory. Names passed to the `write_*` methods are relative paths inside it
/// (sub-directories are created as needed); each write is atomic and the name is recorded in
/// [`OutDir::files`].
///
/// A run owns its directory: a lock file ([`LOCK`]) refuses a second run into it while the first
/// runs, and a manifest ([`MANIFEST`]) names the run and the files it wrote, with
/// `"complete": false` until [`OutDir::finish`]. `--force` over an earlier run removes the files
/// its manifest proves it wrote and that run's temporaries, and nothing else, so a directory
/// never mixes two runs.
#[derive(Debug)]
pub struct OutDir {
    root: PathBuf,
    files: Mutex<Vec<Entry>>,
    run_id: String,
    command: String,
    /// The directories this run created (the output directory and parents), outermost first.
    created: Vec<PathBuf>,
    finished: AtomicBool,
    /// This run wrote the manifest now in the directory.
    manifested: AtomicBool,
    lock: Option<Lock>,
}

/// Creates `path` and the parents missing, returning those it made (outermost first).
fn create_dirs(path: &Path) -> Result<Vec<PathBuf>> {
    let mut missing: Vec<PathBuf> = path
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    let mut made = Vec::new();
    for dir in missing {
        match fs::create_dir(&dir) {
            Ok(()) => made.push(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_created(&made);
                return Err(e)
                    .with_context(|| format!("cannot create output directory {}", path.display()));
            }
        }
    }
    Ok(made)
}

/// Removes the directories a run made, innermost first, each only if empty.
fn remove_created(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        if fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

impl OutDir {
    /// Create `path` (and its parents), lock it and start its manifest. An existing non-empty
    /// directory is refused unless `force`; a directory another live run holds is refused even
    /// then.
    pub fn create(path: &Path, force: bool) -> Result<OutDir> {
        Self::create_for(path, force, "regimes")
    }

    /// [`OutDir::create`], with `command` naming the run in the manifest.
    pub fn create_for(path: &Path, force: bool, command: &str) -> Result<OutDir> {
        if path.exists() {
            ensure!(
                path.is_dir(),
                "output path {} exists and is not a directory",
                path.display()
            );
        }
        let created = create_dirs(path)?;
        let run_id = run_token().to_string();
        let lock = match Lock::acquire(path, &run_id) {
            Ok(l) => l,
            Err(e) => {
                remove_created(&created);
                return Err(e);
            }
        };
        let dir = OutDir {
            root: path.to_path_buf(),
            files: Mutex::new(Vec::new()),
            run_id,
            command: command.to_string(),
            created,
            finished: AtomicBool::new(false),
            manifested: AtomicBool::new(false),
            lock: Some(lock),
        };
        let private = format!("{LOCK}.{}", dir.run_id);
        let non_empty = fs::read_dir(path)
            .with_context(|| format!("cannot read output directory {}", path.display()))?
            .flatten()
            .any(|e| e.file_name() != LOCK && e.file_name().to_string_lossy() != private);
        if non_empty && !force {
            bail!(
                "output directory {} is not empty; choose another one or pass --force to \
                 write into it (the files the run that wrote it recorded are replaced, other \
                 files are left alone)",
                path.display()
            );
        }
        let summary = path.join("summary.json");
        ensure!(
            !summary.is_dir(),
            "{} is a directory; the run could not write its summary there",
            summary.display()
        );
        if force {
            for note in dir.remove_earlier_run() {
                crate::note!("--force: {note}");
            }
        }
        dir.write_manifest(false)?;
        Ok(dir)
    }

    /// Takes over the directory of an interrupted run to resume it (`regimes resume`): refused
    /// while another live run holds it; the files its manifest lists stay listed (the resumed run
    /// rewrites them).
    pub fn reopen(path: &Path, command: &str) -> Result<OutDir> {
        ensure!(
            path.is_dir(),
            "{} is not a directory (give the --out directory of the interrupted run)",
            path.display()
        );
        let run_id = run_token().to_string();
        let lock = Lock::acquire(path, &run_id)?;
        let files = Manifest::read(path).map(|m| m.entries).unwrap_or_default();
        let dir = OutDir {
            root: path.to_path_buf(),
            files: Mutex::new(files),
            run_id,
            command: command.to_string(),
            created: Vec::new(),
            finished: AtomicBool::new(false),
            manifested: AtomicBool::new(false),
            lock: Some(lock),
        };
        dir.write_manifest(false)?;
        Ok(dir)
    }

    /// Removes from `path` what a run of this program provably wrote there (as `--force` does),
    /// under the directory's lock, and the directory itself when that empties it. Returns what
    /// was left alone, and why. A missing `path` is nothing to clear.
    pub fn clear(path: &Path) -> Result<Vec<String>> {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return Ok(Vec::new());
        };
        ensure!(
            meta.is_dir(),
            "{} is not a directory written by regimes; left alone",
            path.display()
        );
        let run_id = run_token().to_string();
        let dir = OutDir {
            root: path.to_path_buf(),
            files: Mutex::new(Vec::new()),
            lock: Some(Lock::acquire(path, &run_id)?),
            run_id,
            command: String::new(),
            created: Vec::new(),
            finished: AtomicBool::new(false),
            manifested: AtomicBool::new(false),
        };
        let notes = dir.remove_earlier_run();
        drop(dir);
        let _ = fs::remove_dir(path);
        Ok(notes)
    }

    /// Gives up this run: removes the files it wrote (those still as written) and its manifest,
    /// so a run that failed before producing anything leaves nothing behind.
    pub fn discard(self) -> Vec<String> {
        self.remove_earlier_run()
    }

    /// Removes what the earlier run provably wrote (its sealed manifest's files, unchanged, and
    /// its temporaries) and its checkpoints; returns what it left alone, and why.
    fn remove_earlier_run(&self) -> Vec<String> {
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

    fn write_manifest(&self, complete: bool) -> Result<()> {
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

    /// Marks the run complete in the manifest (its last file has landed).
    pub fn finish(&self) -> Result<()> {
        self.write_manifest(true)?;
        self.finished.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The run's id (in its lock, its manifest and its temporaries' names).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Where `name` lives (whether or not it was written yet).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The content hash recorded for `name` when this run wrote it.
    pub fn hash_of(&self, name: &str) -> Option<String> {
        let files = self.files.lock().unwrap();
        files
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.hash.clone())
    }

    /// Names written so far, in the order they were first written.
    pub fn files(&self) -> Vec<String> {
        self.files
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.name.clone())
            .collect()
    }

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

    fn write_raw(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
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

    /// Write a UTF-8 text file.
    pub fn write_text(&self, name: &str, text: &str) -> Result<PathBuf> {
        self.write_bytes(name, text.as_bytes())
    }

    /// Write `value` as pretty-printed JSON (with a final newline). Non-finite f64 become `null`
    /// (serde_json's rule); store such values as strings if they matter.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let mut text = serde_json::to_string_pretty(value)
            .with_context(|| format!("cannot serialise {name}"))?;
        text.push('\n');
        self.write_text(name, &text)
    }

    /// Write a CSV file: one header line, then one line per row. Numbers are written with the
    /// shortest representation that reads back to the same f64 (full precision); NaN is written
    /// as `nan` and infinities as `inf` / `-inf` (read as such by numpy, pandas and R). Every row
    /// must have as many values as the header.
    pub fn write_csv(
        &self,
        name: &str,
        header: &[&str],
        rows: impl IntoIterator<Item = Vec<f64>>,
    ) -> Result<PathBuf> {
        let mut text = String::new();
        text.push_str(&header.join(","));
        text.push('\n');
        for (i, row) in rows.into_iter().enumerate() {
            ensure!(
                row.len() == header.len(),
                "{name}: row {i} has {} values but the header has {} columns",
                row.len(),
                header.len()
            );
            for (j, x) in row.iter().enumerate() {
                if j > 0 {
                    text.push(',');
                }
                text.push_str(&csv_number(*x));
            }
            text.push('\n');
        }
        self.write_text(name, &text)
    }

    /// A CSV whose first columns are names (a class, a strategy, a mode: written as text,
    /// quoted where needed) and the rest numbers, as [`OutDir::write_csv`] writes them.
    pub fn write_csv_named(
        &self,
        name: &str,
        (names, numbers): (&[&str], &[&str]),
        rows: impl IntoIterator<Item = (Vec<String>, Vec<f64>)>,
    ) -> Result<PathBuf> {
        let mut text = names
            .iter()
            .chain(numbers)
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        text.push('\n');
        for (i, (labels, values)) in rows.into_iter().enumerate() {
            ensure!(
                labels.len() == names.len() && values.len() == numbers.len(),
                "{name}: row {i} has {} names and {} values but the header has {} and {}",
                labels.len(),
                values.len(),
                names.len(),
                numbers.len()
            );
            let quote = |s: &str| {
                if s.contains([',', '"', '\n']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.to_string()
                }
            };
            let cells: Vec<String> = labels
                .iter()
                .map(|l| quote(l))
                .chain(values.iter().map(|&x| csv_number(x)))
                .collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        self.write_text(name, &text)
    }

    /// Write `data` (C order) as an f32 `.npy` array of the given shape.
    pub fn write_npy_f32(&self, name: &str, shape: &[usize], data: &[f32]) -> Result<PathBuf> {
        self.write_bytes(name, &crate::io::encode_npy(name, shape, data)?)
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

impl Drop for OutDir {
    /// Releases the lock (the manifest says whether the run completed). A run refused before it
    /// wrote anything leaves nothing behind: no manifest, and none of the directories it made.
    fn drop(&mut self) {
        if self.manifested.load(Ordering::SeqCst)
            && !self.finished.load(Ordering::SeqCst)
            && self.files.lock().unwrap().is_empty()
        {
            let _ = fs::remove_file(self.root.join(MANIFEST));
        }
        drop(self.lock.take());
        remove_created(&self.created);
    }
}

fn csv_number(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Whole numbers (counts, indices) as integers; else Debug: shortest round-trip digits,
        // exponent for very large or small magnitudes.
        if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
            format!("{}", x as i64)
        } else {
            format!("{x:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::Scratch;

    #[test]
    fn refuses_non_empty_directory_unless_forced() {
        let s = Scratch::new("refuse");
        let dir = s.0.join("run");
        // An empty existing directory is fine.
        fs::create_dir_all(&dir).unwrap();
        {
            let out = OutDir::create(&dir, false).unwrap();
            out.write_text("a.txt", "hello\n").unwrap();
            out.finish().unwrap();
        }
        fs::write(dir.join("mine.txt"), "the user's\n").unwrap();
        let e = OutDir::create(&dir, false).unwrap_err().to_string();
        assert!(e.contains("--force") && e.contains("not empty"), "{e}");
        // --force removes the earlier run's files, and only those.
        let again = OutDir::create(&dir, true).unwrap();
        assert!(!dir.join("a.txt").exists());
        assert_eq!(
            fs::read_to_string(dir.join("mine.txt")).unwrap(),
            "the user's\n"
        );
        again.write_text("b.txt", "bye\n").unwrap();
        let m: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(
            (m["complete"].as_bool(), &m["files"]),
            (Some(false), &serde_json::json!(["b.txt"]))
        );
        again.finish().unwrap();
        drop(again);
        assert!(!dir.join(LOCK).exists(), "the lock is released");
        // A file in the way.
        let e = OutDir::create(&dir.join("b.txt"), true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn a_directory_in_use_is_refused_and_a_dead_runs_lock_is_taken_over() {
        let s = Scratch::new("lock");
        fs::create_dir_all(&s.0).unwrap();
        let first = OutDir::create(&s.0, true).unwrap();
        let e = OutDir::create(&s.0, true).unwrap_err().to_string();
        assert!(e.contains("in use by another run"), "{e}");
        drop(first);
        // A killed run on this kernel: its lock (its process gone) and its own temporary are
        // cleaned by --force, a user's file named like a temporary is not.
        let mut dead = super::super::Holder::me("feedfacefeedface");
        dead.pid = u32::MAX - 1;
        fs::write(s.0.join(LOCK), serde_json::to_string(&dead).unwrap()).unwrap();
        fs::write(s.0.join(".summary.json.tmp-feedfacefeedface-0"), "half").unwrap();
        fs::write(s.0.join(".draft.tmp-1"), "mine").unwrap();
        let m = Manifest {
            written_by: WRITTEN_BY.into(),
            seal: seal("feedfacefeedface", "run", false, &[]),
            run_id: "feedfacefeedface".into(),
            command: "run".into(),
            complete: false,
            files: vec![],
            entries: vec![],
        };
        fs::write(s.0.join(MANIFEST), serde_json::to_string(&m).unwrap()).unwrap();
        let out = OutDir::create(&s.0, true).unwrap();
        assert!(!s.0.join(".summary.json.tmp-feedfacefeedface-0").exists());
        assert!(s.0.join(".draft.tmp-1").exists());
        drop(out);
        // summary.json as a directory is refused before any work.
        let t = Scratch::new("summary-dir");
        fs::create_dir_all(t.0.join("summary.json")).unwrap();
        let e = OutDir::create(&t.0, true).unwrap_err().to_string();
        assert!(
            e.contains("summary.json") && e.contains("is a directory"),
            "{e}"
        );
    }

    #[test]
    fn force_removes_only_what_a_sealed_manifest_proves() {
        let s = Scratch::new("prove");
        let dir = s.0.join("a").join("b").join("run");
        {
            let out = OutDir::create(&dir, false).unwrap();
            out.write_text("kept.txt", "ours\n").unwrap();
            out.write_text("edited.txt", "ours\n").unwrap();
            out.write_text("plots/p.svg", "<svg/>").unwrap();
            out.finish().unwrap();
        }
        fs::write(dir.join("edited.txt"), "the user's now\n").unwrap();
        let out = OutDir::create(&dir, true).unwrap();
        assert!(!dir.join("kept.txt").exists() && !dir.join("plots").exists());
        assert_eq!(
            fs::read_to_string(dir.join("edited.txt")).unwrap(),
            "the user's now\n"
        );
        drop(out);
        // A manifest it did not write lists a user's file: left alone.
        fs::write(dir.join("thesis.tex"), "years").unwrap();
        fs::write(
            dir.join(MANIFEST),
            r#"{"run_id":"x","command":"run","complete":true,"files":["thesis.tex"]}"#,
        )
        .unwrap();
        drop(OutDir::create(&dir, true).unwrap());
        assert!(dir.join("thesis.tex").exists());
        // A manifest sealed by an older regimes (a 16-digit hash, not a BLAKE3 digest): its
        // files cannot be proven unchanged, so they stay, and the note says why.
        fs::write(
            dir.join(MANIFEST),
            r#"{"written_by":"regimes","run_id":"x","command":"run","complete":true,"files":["thesis.tex"],"entries":[{"name":"thesis.tex","bytes":5,"hash":"0123456789abcdef"}],"seal":"fedcba9876543210"}"#,
        )
        .unwrap();
        assert!(legacy_manifest(&dir.join(MANIFEST)));
        drop(OutDir::create(&dir, true).unwrap());
        assert!(dir.join("thesis.tex").exists());
        assert!(!legacy_manifest(&dir.join(MANIFEST)));
        // A listed sub-directory turned into a symlink out of the directory: nothing outside
        // is touched.
        {
            let out = OutDir::create(&dir, true).unwrap();
            out.write_text("plots/q.svg", "<svg/>").unwrap();
            out.finish().unwrap();
        }
        let outside = s.0.join("outside");
        fs::rename(dir.join("plots"), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("plots")).unwrap();
        drop(OutDir::create(&dir, true).unwrap());
        assert!(outside.join("q.svg").exists());
        let out = OutDir::create(&dir, true).unwrap();
        let e = out.write_text("plots/r.svg", "x").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        drop(out);
        assert!(!outside.join("r.svg").exists());
        // A refused run leaves none of the directories it made.
        let deep = s.0.join("x").join("y").join("z");
        {
            let _out = OutDir::create(&deep, false).unwrap();
        }
        assert!(!s.0.join("x").exists());
    }

    #[test]
    fn writes_are_atomic_and_listed() {
        let s = Scratch::new("atomic");
        let out = OutDir::create(&s.0, false).unwrap();
        out.write_text("notes.txt", "one\n").unwrap();
        out.write_json(
            "summary.json",
            &serde_json::json!({"t_s": 2.0794415416798357}),
        )
        .unwrap();
        out.write_npy_f32("plots/../x.npy", &[1], &[1.0])
            .unwrap_err();
        out.write_npy_f32("/abs.npy", &[1], &[1.0]).unwrap_err();
        out.write_npy_f32("samples/x.npy", &[2, 3], &[1., 2., 3., 4., 5., 6.])
            .unwrap();
        out.write_npy_f32("bad.npy", &[2, 2], &[1.0]).unwrap_err();
        out.write_text("notes.txt", "two\n").unwrap();
        assert_eq!(out.files(), ["notes.txt", "summary.json", "samples/x.npy"]);
        // No temporary files are left behind.
        let mut names: Vec<String> = fs::read_dir(&s.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [LOCK, MANIFEST, "notes.txt", "samples", "summary.json"]
        );
        assert_eq!(
            fs::read_to_string(out.path_of("notes.txt")).unwrap(),
            "two\n"
        );
        let v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(out.path_of("summary.json")).unwrap())
                .unwrap();
        assert_eq!(v["t_s"].as_f64(), Some(2.0794415416798357));
        let m = crate::io::read_matrix(&out.path_of("samples/x.npy")).unwrap();
        assert_eq!((m.nrows(), m.ncols(), m[(1, 2)]), (2, 3, 6.0));
        // A failed write (destination is a directory) leaves no temp file and is not listed.
        out.write_text("samples", "x").unwrap_err();
        assert_eq!(out.files().len(), 3);
        assert_eq!(fs::read_dir(&s.0).unwrap().count(), 5);
    }

    #[test]
    fn named_columns_are_text_and_quoted_where_needed() {
        let s = Scratch::new("csv-named");
        let out = OutDir::create(&s.0, false).unwrap();
        out.write_csv_named(
            "steering.csv",
            (&["mean", "q"], &["t_s"]),
            vec![
                (vec!["soft".into(), "optimal:0.5".into()], vec![1.25]),
                (vec!["stiff".into(), "pair:0:1:2,x".into()], vec![f64::NAN]),
            ],
        )
        .unwrap();
        let text = fs::read_to_string(out.path_of("steering.csv")).unwrap();
        assert_eq!(
            text,
            "mean,q,t_s\nsoft,optimal:0.5,1.25\nstiff,\"pair:0:1:2,x\",nan\n"
        );
        assert!(
            out.write_csv_named("bad.csv", (&["a"], &["b"]), vec![(vec![], vec![1.0])])
                .is_err()
        );
    }

    #[test]
    fn csv_has_full_precision_whole_numbers_and_explicit_nan() {
        let s = Scratch::new("csv");
        let out = OutDir::create(&s.0, false).unwrap();
        let x = 0.1 + 0.2;
        out.write_csv(
            "phi.csv",
            &["t", "phi"],
            vec![
                vec![1.0, x],
                vec![2.5, f64::NAN],
                vec![1e-300, f64::NEG_INFINITY],
            ],
        )
        .unwrap();
        let text = fs::read_to_string(out.path_of("phi.csv")).unwrap();
        assert_eq!(text, "t,phi\n1,0.30000000000000004\n2.5,nan\n1e-300,-inf\n");
        let back: f64 = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(back, x);
        let e = out
            .write_csv("bad.csv", &["a", "b"], vec![vec![1.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 0"), "{e}");
        assert!(!out.path_of("bad.csv").exists());
    }
}
