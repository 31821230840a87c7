//! The one path a command beside the study driver (`steer`, `bench`, `reproduce`) takes for
//! what the driver guarantees the studies and sweeps: its needs checked before any work
//! ([`Needs`], the same check a study and every sweep point pass), its output directory created,
//! owned and locked ([`OutDir`]) or its one output file written atomically under its
//! directory's lock ([`OutFile`]), and a stop request (SIGINT, SIGTERM) turned into a typed
//! error ([`unless_stopped`]). Inputs are read through `io::read_bounded` (regular files within
//! a limit) and console lines through `out!`/`note!` (the library denies `println!`), so a
//! command that takes this path cannot hang on a FIFO or panic on a closed pipe.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};

use super::resources::Needs;
use crate::report::{Lock, OutDir, run_token, write_atomic};

/// What a command asks of the shared path before it works.
pub struct Guard<'a> {
    /// The command, as its manifest names it.
    pub command: &'static str,
    pub needs: Needs,
    /// The output directory and `--force`, if it writes one.
    pub out: Option<(&'a Path, bool)>,
}

impl Guard<'_> {
    /// Checks the needs (memory; disk where the output goes), then creates and locks the output
    /// directory: refused with the estimate, or naming the run that holds the directory, before
    /// anything is written.
    pub fn open(self) -> Result<Option<OutDir>> {
        self.needs.check(self.out.map(|o| o.0))?;
        self.out
            .map(|(path, force)| OutDir::create_for(path, force, self.command))
            .transpose()
    }
}

/// A typed error ([`crate::stop::Interrupted`]) when a stop was requested: the command reports
/// what completed and stops, never exits 0 with results cut short.
pub use crate::stop::unless_stopped;

/// Runs `work` (a computation that writes nothing) on a thread of its own and returns its
/// result, or the typed stop within a few milliseconds of a stop request: for work that does
/// not poll the request itself (the search of `steer`), which is then left to end with the
/// process.
pub fn until_stopped<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(10)) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => unless_stopped()?,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the computation ended without a result (it panicked)")
            }
        }
    }
}

/// One file a command writes outside an output directory of its own (`steer --write-q`): its
/// directory is locked for the command's life (a second run writing there is refused, naming
/// the lock), a FIFO, device or directory at the path is refused, and the file is replaced
/// atomically (a reader never sees half of it).
pub struct OutFile {
    path: PathBuf,
    dir: PathBuf,
    name: String,
    _lock: Lock,
}

impl OutFile {
    /// Claims `path` (its directory must exist), before any work; `flag` names it in messages.
    pub fn claim(path: &Path, flag: &str) -> Result<OutFile> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .ok_or_else(|| anyhow::anyhow!("--{flag} {}: not a file name", path.display()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        ensure!(
            dir.is_dir(),
            "--{flag} {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            ensure!(
                meta.is_file(),
                "--{flag} {}: exists and is not a regular file; give the path of a new or \
                 regular file",
                path.display()
            );
        }
        let lock = Lock::acquire(&dir, run_token())
            .map_err(|e| e.context(format!("--{flag} {}", path.display())))?;
        Ok(OutFile {
            path: path.to_path_buf(),
            dir,
            name,
            _lock: lock,
        })
    }

    /// Replaces the file with `bytes` atomically.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.dir, &self.name, bytes, true)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
