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
//! This file holds the lifecycle (create, reopen, finish, release); the run token, content
//! hash, sealed manifest, path safety, removal, atomic writes and encodings each have a file in
//! `outdir/`.

mod atomic;
mod clear;
mod encode;
mod hash;
mod manifest;
mod paths;
mod token;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail, ensure};

use super::lock::{LOCK, Lock};
use manifest::{Entry, Manifest};

pub use atomic::write_atomic;
pub use manifest::{verify_complete, verify_listed};
pub use token::run_token;

/// The manifest of the run that wrote the directory.
pub const MANIFEST: &str = "manifest.json";

/// Where a run's checkpoints live inside its output directory (`--checkpoint-every`).
pub const CHECKPOINT_DIR: &str = ".regimes-checkpoint";

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

#[cfg(test)]
mod tests {
    use super::manifest::{WRITTEN_BY, legacy_manifest, seal};
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
