//! The lock of an output directory: one run at a time writes into it.
//!
//! The lock file ([`LOCK`]) appears atomically, complete, and already locked: it is written
//! under a private name, `flock`ed, then hard-linked into place (`link(2)` fails when the name
//! exists, so of two runs exactly one gets in). Its holder keeps the `flock` for its whole life;
//! the kernel drops it when the process dies, whatever PID namespace it ran in.
//!
//! The file records who holds it ([`Holder`]): host, boot id (`/proc/sys/kernel/random/boot_id`),
//! process id, process start time (`/proc/self/stat`) and PID namespace. A lock whose file is
//! there is taken over only when its holder is provably dead: the same kernel (same boot id, so
//! the `flock` speaks for it), the `flock` free, and — when it ran in this PID namespace — its
//! process gone or another process under its id (another start time). Anything else (another
//! host, another boot, a file this version cannot read) is refused, naming the lock file and how
//! to clear it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The lock file of a running study.
pub const LOCK: &str = ".regimes.lock";

/// Who holds a lock: what proves, from another process, whether it is still alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// The run's random id (also in its manifest and its temporary files' names).
    pub run_id: String,
    pub host: String,
    /// The kernel's boot id: equal boot ids mean the same kernel, since the last boot.
    pub boot_id: Option<String>,
    /// The process id, in `pid_ns`.
    pub pid: u32,
    /// Start time of the process in clock ticks after boot (field 22 of `/proc/PID/stat`).
    pub start_time: Option<u64>,
    /// The PID namespace (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`).
    pub pid_ns: Option<String>,
}

impl Holder {
    /// This process.
    pub fn me(run_id: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            run_id: run_id.to_string(),
            host: hostname(),
            boot_id: fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            pid,
            start_time: start_time("self"),
            pid_ns: fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned()),
        }
    }

    fn describe(&self) -> String {
        format!("process {} on host {}", self.pid, self.host)
    }
}

fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
        // truncates, and we stop at the first NUL.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into())
}

/// Field 22 of `/proc/PROC/stat` (the start time in clock ticks), or None where there is none.
fn start_time(proc: &str) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{proc}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `holder` is provably dead, seen from `me`, given that its `flock` is free.
fn provably_dead(holder: &Holder, me: &Holder) -> bool {
    let same_kernel = holder.boot_id.is_some() && holder.boot_id == me.boot_id;
    if !same_kernel {
        return false;
    }
    if holder.pid_ns.is_some() && holder.pid_ns == me.pid_ns {
        // Its pid means the same here: gone, or reused by a process started at another time.
        match start_time(&holder.pid.to_string()) {
            None => true,
            Some(t) => holder.start_time.is_some_and(|h| h != t),
        }
    } else {
        // Another PID namespace on this kernel: the free flock is the proof (the kernel releases
        // it when the process dies, and a live holder keeps it).
        true
    }
}

/// A held lock; dropping it removes the lock file (if it is still this run's) and releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    file: File,
    pub holder: Holder,
}

/// `flock(LOCK_EX)`, blocking or not; Ok(false) when another open file holds it.
fn flock(file: &File, block: bool) -> Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let op = libc::LOCK_EX | if block { 0 } else { libc::LOCK_NB };
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
                return Ok(true);
            }
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => return Ok(false),
                _ => return Err(e.into()),
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, block);
        Ok(true)
    }
}

/// Whether the open `file` is what `path` names now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::symlink_metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

impl Lock {
    /// Takes the lock of `dir` for the run `run_id`, taking over a provably dead holder's.
    pub fn acquire(dir: &Path, run_id: &str) -> Result<Lock> {
        let path = dir.join(LOCK);
        let me = Holder::me(run_id);
        let cannot = |e: std::io::Error| {
            anyhow::anyhow!(
                "cannot lock output directory {} ({e}; the lock file is {})",
                dir.display(),
                path.display()
            )
        };
        // The new lock, complete and flocked, under a private name first.
        let private = dir.join(format!("{LOCK}.{run_id}"));
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&private)
            .map_err(cannot)?;
        let written = (|| -> Result<()> {
            flock(&file, true)?;
            file.write_all(format!("{}\n", serde_json::to_string(&me)?).as_bytes())?;
            file.sync_all()?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&private);
            return Err(e.context(format!("cannot lock output directory {}", dir.display())));
        }
        let result = Self::install(dir, &path, &private, &me);
        let _ = fs::remove_file(&private);
        if let Some(direct) = result? {
            file = direct;
        }
        Ok(Lock {
            path,
            file,
            holder: me,
        })
    }

    /// Puts the private lock file in place at `path`: by link when there is none, by rename
    /// over a provably dead holder's. At most a few rounds when other runs race for it.
    ///
    /// On a file system without hard links the lock is created in place instead
    /// (`O_CREAT | O_EXCL`, still atomic; a reader may then see it empty for an instant, which it
    /// refuses as unreadable), and that file is returned.
    fn install(dir: &Path, path: &Path, private: &Path, me: &Holder) -> Result<Option<File>> {
        let failed = |e: std::io::Error| {
            anyhow::Error::new(e).context(format!(
                "cannot lock output directory {} (lock file {})",
                dir.display(),
                path.display()
            ))
        };
        let mut busy_rounds = 0;
        for _ in 0..50 {
            match fs::hard_link(private, path) {
                Ok(()) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => match fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(path)
                {
                    Ok(mut f) => {
                        let written = flock(&f, true).and_then(|_| {
                            f.write_all(format!("{}\n", serde_json::to_string(me)?).as_bytes())
                                .and_then(|_| f.sync_all())
                                .map_err(failed)
                        });
                        if let Err(e) = written {
                            let _ = fs::remove_file(path);
                            return Err(e);
                        }
                        return Ok(Some(f));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(failed(e)),
                },
            }
            // A lock is there: whose, and is it provably dead?
            let old = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // released
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read the lock file {}", path.display()));
                }
            };
            let free = flock(&old, false)?;
            let mut text = String::new();
            let _ = (&old).take(4096).read_to_string(&mut text);
            let holder = serde_json::from_str::<Holder>(text.trim()).ok();
            if !free && busy_rounds < 5 && !same_file(&old, path) {
                busy_rounds += 1;
                continue; // replaced meanwhile: look at the new one
            }
            if !free && busy_rounds < 5 {
                // Held: by its owner, or for an instant by another run taking over a dead
                // holder's lock; look again shortly so the message names the run that won.
                busy_rounds += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            if !free {
                bail!(
                    "output directory {} is in use by another run ({}, lock file {}); wait for \
                     it to finish or choose another directory",
                    dir.display(),
                    holder.map_or_else(|| "its lock is held".to_string(), |h| h.describe()),
                    path.display()
                );
            }
            if !same_file(&old, path) {
                continue; // replaced or released while we looked
            }
            match holder {
                Some(h) if h.run_id == me.run_id => {
                    bail!(
                        "output directory {} is already locked by this run",
                        dir.display()
                    )
                }
                Some(h) if provably_dead(&h, me) => {
                    // We hold the old file's flock, so no other run replaces it meanwhile; the
                    // rename swaps ours in at once (and takes the private name away).
                    fs::rename(private, path).with_context(|| {
                        format!("cannot take over the stale lock {}", path.display())
                    })?;
                    return Ok(None);
                }
                Some(h) => bail!(
                    "output directory {} is locked by a run this machine cannot prove dead ({}, \
                     boot id {}); if no run is writing into it, delete the lock file {} and try \
                     again",
                    dir.display(),
                    h.describe(),
                    h.boot_id.as_deref().unwrap_or("unknown"),
                    path.display()
                ),
                None => bail!(
                    "output directory {} holds a lock file this version cannot read (an older \
                     regimes, or an unfinished write); if no run is writing into it, delete the \
                     lock file {} and try again",
                    dir.display(),
                    path.display()
                ),
            }
        }
        bail!(
            "cannot lock output directory {}: other runs keep taking and releasing it (lock file \
             {})",
            dir.display(),
            path.display()
        )
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regimes-lock-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn one_holder_and_a_dead_one_is_taken_over() {
        let d = scratch("one");
        let a = Lock::acquire(&d, "a").unwrap();
        let e = Lock::acquire(&d, "b").unwrap_err().to_string();
        assert!(e.contains("in use by another run"), "{e}");
        assert!(
            !d.join(format!("{LOCK}.b")).exists(),
            "no private file left"
        );
        drop(a);
        assert!(!d.join(LOCK).exists());
        // A holder on this kernel whose process is gone (its flock is free).
        let mut dead = Holder::me("dead");
        dead.pid = u32::MAX - 1;
        fs::write(d.join(LOCK), serde_json::to_string(&dead).unwrap()).unwrap();
        let b = Lock::acquire(&d, "b").unwrap();
        let now: Holder =
            serde_json::from_str(fs::read_to_string(d.join(LOCK)).unwrap().trim()).unwrap();
        assert_eq!(now.run_id, "b");
        drop(b);
        // Another boot, or an unreadable file: refused, naming the file.
        let mut other = Holder::me("other");
        other.boot_id = Some("another-boot".into());
        fs::write(d.join(LOCK), serde_json::to_string(&other).unwrap()).unwrap();
        let e = Lock::acquire(&d, "c").unwrap_err().to_string();
        assert!(e.contains("cannot prove dead") && e.contains(LOCK), "{e}");
        fs::write(d.join(LOCK), "1\n").unwrap();
        let e = Lock::acquire(&d, "c").unwrap_err().to_string();
        assert!(
            e.contains("delete the lock file") && e.contains(LOCK),
            "{e}"
        );
        // A holder in another PID namespace on this kernel: its free flock proves it dead.
        let mut contained = Holder::me("contained");
        contained.pid = 1;
        contained.pid_ns = Some("pid:[1]".into());
        fs::write(d.join(LOCK), serde_json::to_string(&contained).unwrap()).unwrap();
        drop(Lock::acquire(&d, "c").unwrap());
        // A live process with the same start time (this one, under another run id) is alive.
        let alive = Holder::me("alive");
        fs::write(d.join(LOCK), serde_json::to_string(&alive).unwrap()).unwrap();
        let e = Lock::acquire(&d, "c").unwrap_err().to_string();
        assert!(e.contains("cannot prove dead"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
