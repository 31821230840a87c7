//! Outputs people and other tools read: an output directory written atomically (JSON, CSV, NPY,
//! text, SVG plots), a progress bar, and aligned text tables.
//!
//! Every file goes to a temporary file in the same directory first and is renamed into place, so
//! a reader (or a crash) never sees half a file.

mod plot;
mod progress;

pub use plot::{
    Figure, Render, Series, Style, plot_series, render_png, render_png_with, render_svg,
    render_svg_with, write_figure,
};
pub use progress::{Progress, duration, si};

use std::fs::{self, File};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

/// An output directory. Names passed to the `write_*` methods are relative paths inside it
/// (sub-directories are created as needed); each write is atomic and the name is recorded in
/// [`OutDir::files`].
///
/// A run owns its directory: a lock file ([`LOCK`]) refuses a second run into it while the first
/// runs, and a manifest ([`MANIFEST`]) names the run and the files it wrote, with
/// `"complete": false` until [`OutDir::finish`]. `--force` over an earlier run removes the files
/// its manifest lists and the temporaries a killed run left, and nothing else, so a directory
/// never mixes two runs.
#[derive(Debug)]
pub struct OutDir {
    root: PathBuf,
    files: Mutex<Vec<String>>,
    run_id: String,
    command: String,
    /// The directory did not exist before this run.
    created: bool,
    finished: std::sync::atomic::AtomicBool,
}

/// The lock file of a running study (holds its process id).
pub const LOCK: &str = ".regimes.lock";

/// The manifest of the run that wrote the directory.
pub const MANIFEST: &str = "manifest.json";

/// Where a run's checkpoints live inside its output directory (`--checkpoint-every`).
pub const CHECKPOINT_DIR: &str = ".regimes-checkpoint";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What a run records about the files it owns.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Manifest {
    run_id: String,
    command: String,
    complete: bool,
    files: Vec<String>,
}

/// Whether process `pid` is alive (Linux: /proc; elsewhere assume it is).
fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

impl OutDir {
    /// Create `path` (and its parents), lock it and start its manifest. An existing non-empty
    /// directory is refused unless `force`; a directory another live run holds is refused even
    /// then. `command` names the run in the manifest.
    pub fn create(path: &Path, force: bool) -> Result<OutDir> {
        Self::create_for(path, force, "regimes")
    }

    pub fn create_for(path: &Path, force: bool, command: &str) -> Result<OutDir> {
        let created = !path.exists();
        if path.exists() {
            ensure!(
                path.is_dir(),
                "output path {} exists and is not a directory",
                path.display()
            );
        } else {
            fs::create_dir_all(path)
                .with_context(|| format!("cannot create output directory {}", path.display()))?;
        }
        let lock = path.join(LOCK);
        refuse_live_lock(path)?;
        // A stale lock: its run was killed.
        if force {
            let _ = fs::remove_file(&lock);
        }
        let non_empty = fs::read_dir(path)
            .with_context(|| format!("cannot read output directory {}", path.display()))?
            .next()
            .is_some();
        if non_empty && !force {
            bail!(
                "output directory {} is not empty; choose another one or pass --force to \
                 write into it (the files of the run that wrote it are replaced, other files are \
                 left alone)",
                path.display()
            );
        }
        let summary = path.join("summary.json");
        ensure!(
            !summary.is_dir(),
            "{} is a directory; the run could not write its summary there",
            summary.display()
        );
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .with_context(|| {
                format!(
                    "cannot write into output directory {} (lock file)",
                    path.display()
                )
            })?;
        writeln!(f, "{}", std::process::id())
            .with_context(|| format!("cannot write into output directory {}", path.display()))?;
        let dir = OutDir {
            root: path.to_path_buf(),
            files: Mutex::new(Vec::new()),
            run_id: format!(
                "{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            ),
            command: command.to_string(),
            created,
            finished: std::sync::atomic::AtomicBool::new(false),
        };
        if force {
            dir.remove_earlier_run()?;
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
        refuse_live_lock(path)?;
        let lock = path.join(LOCK);
        let _ = fs::remove_file(&lock);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .with_context(|| format!("cannot lock output directory {}", path.display()))?;
        writeln!(f, "{}", std::process::id())
            .with_context(|| format!("cannot write into output directory {}", path.display()))?;
        let files = fs::read_to_string(path.join(MANIFEST))
            .ok()
            .and_then(|t| serde_json::from_str::<Manifest>(&t).ok())
            .map(|m| m.files)
            .unwrap_or_default();
        let dir = OutDir {
            root: path.to_path_buf(),
            files: Mutex::new(files),
            run_id: format!("{}-resumed", std::process::id()),
            command: command.to_string(),
            created: false,
            finished: std::sync::atomic::AtomicBool::new(false),
        };
        dir.write_manifest(false)?;
        Ok(dir)
    }

    /// Removes the files the earlier run's manifest lists and stale temporaries of killed runs.
    fn remove_earlier_run(&self) -> Result<()> {
        // Its checkpoints, if it left any: a fresh run never resumes them.
        let _ = fs::remove_dir_all(self.root.join(CHECKPOINT_DIR));
        if let Ok(text) = fs::read_to_string(self.root.join(MANIFEST))
            && let Ok(old) = serde_json::from_str::<Manifest>(&text)
        {
            for name in old.files.iter().chain([&MANIFEST.to_string()]) {
                let rel = Path::new(name);
                if rel.components().all(|c| matches!(c, Component::Normal(_))) {
                    let _ = fs::remove_file(self.root.join(rel));
                }
            }
        }
        for entry in fs::read_dir(&self.root)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn write_manifest(&self, complete: bool) -> Result<()> {
        let m = Manifest {
            run_id: self.run_id.clone(),
            command: self.command.clone(),
            complete,
            files: self.files(),
        };
        self.write_raw(
            MANIFEST,
            format!("{}\n", serde_json::to_string_pretty(&m)?).as_bytes(),
        )?;
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

    /// Where `name` lives (whether or not it was written yet).
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Names written so far, in the order they were first written.
    pub fn files(&self) -> Vec<String> {
        self.files.lock().unwrap().clone()
    }

    /// Write raw bytes to `name` atomically (temp file in the same directory, fsync, rename) and
    /// record it in the manifest.
    pub fn write_bytes(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let dest = self.write_raw(name, bytes)?;
        let new = {
            let mut files = self.files.lock().unwrap();
            let new = !files.iter().any(|f| f == name);
            if new {
                files.push(name.to_string());
            }
            new
        };
        if new {
            self.write_manifest(false)?;
        }
        Ok(dest)
    }

    fn write_raw(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let rel = Path::new(name);
        ensure!(
            !name.is_empty()
                && rel.components().all(|c| matches!(c, Component::Normal(_)))
                && !name.ends_with('/'),
            "output name '{name}' must be a relative path inside the output directory"
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

    /// Write `data` (C order) as an f32 `.npy` array of the given shape.
    pub fn write_npy_f32(&self, name: &str, shape: &[usize], data: &[f32]) -> Result<PathBuf> {
        self.write_bytes(name, &crate::io::encode_npy(name, shape, data)?)
    }
}

/// Refuses a directory whose lock a live process other than this one holds.
fn refuse_live_lock(path: &Path) -> Result<()> {
    if let Ok(text) = fs::read_to_string(path.join(LOCK)) {
        let pid = text.trim().parse::<u32>().ok();
        if let Some(pid) = pid.filter(|&p| p != std::process::id() && alive(p)) {
            bail!(
                "output directory {} is in use by another run (process {pid}); wait for it \
                 or choose another directory",
                path.display()
            );
        }
    }
    Ok(())
}

/// Writes `bytes` to `dir/name` atomically: a temporary file in `dir`, fsync, rename; with
/// `durable`, the directory is synced too, so the rename survives a crash of the machine.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<PathBuf> {
    let dest = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
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
    /// wrote anything leaves nothing behind: no manifest, and no directory if it made it.
    fn drop(&mut self) {
        if !self.finished.load(Ordering::SeqCst) && self.files().is_empty() {
            let _ = fs::remove_file(self.root.join(MANIFEST));
        }
        let _ = fs::remove_file(self.root.join(LOCK));
        if self.created {
            let _ = fs::remove_dir(&self.root); // only if empty
        }
    }
}

fn csv_number(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        // Debug: shortest round-trip digits, exponent for very large or small magnitudes.
        format!("{x:?}")
    }
}

/// A two-column table, keys left-aligned and padded to the widest key:
///
/// ```text
/// t_S (theory)   2.079
/// t_S (measured) 2.08 ± 0.01
/// ```
///
/// Values spanning several lines are indented under the value column.
pub fn format_table(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        let mut lines = v.lines();
        let first = lines.next().unwrap_or("");
        let pad = width - k.chars().count();
        let line = format!("{k}{}  {first}", " ".repeat(pad));
        out.push_str(line.trim_end());
        out.push('\n');
        for rest in lines {
            let line = format!("{}  {rest}", " ".repeat(width));
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// A value to 4 decimals, or "—" when there is none.
pub fn or_dash(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), |x| format!("{x:.4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) struct Scratch(pub PathBuf);
    impl Scratch {
        pub(super) fn new(name: &str) -> Self {
            let d =
                std::env::temp_dir().join(format!("regimes-report-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            Scratch(d)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

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
    fn a_directory_in_use_is_refused_and_a_stale_lock_is_not() {
        let s = Scratch::new("lock");
        fs::create_dir_all(&s.0).unwrap();
        // Process 1 (init) is always alive: another run holds the directory.
        fs::write(s.0.join(LOCK), "1\n").unwrap();
        let e = OutDir::create(&s.0, true).unwrap_err().to_string();
        assert!(e.contains("in use") && e.contains("process 1"), "{e}");
        // A lock whose process is gone, and a temporary of the killed run, are cleaned by --force.
        fs::write(s.0.join(LOCK), "4294967295\n").unwrap();
        fs::write(s.0.join(".summary.json.tmp-7-0"), "half").unwrap();
        let out = OutDir::create(&s.0, true).unwrap();
        assert!(!s.0.join(".summary.json.tmp-7-0").exists());
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
    fn csv_has_full_precision_and_explicit_nan() {
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
        assert_eq!(
            text,
            "t,phi\n1.0,0.30000000000000004\n2.5,nan\n1e-300,-inf\n"
        );
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

    #[test]
    fn table_is_aligned() {
        let t = format_table(&[
            ("t_S".into(), "2.079".into()),
            ("collapse time".into(), "0.31\n(±0.01)".into()),
            ("é".into(), "".into()),
        ]);
        assert_eq!(
            t,
            "t_S            2.079\ncollapse time  0.31\n               (±0.01)\né\n"
        );
        assert_eq!(format_table(&[]), "");
    }
}
