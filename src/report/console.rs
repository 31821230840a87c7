//! The terminal streams, written without ever panicking (`println!` and `eprintln!` panic when
//! the stream fails).
//!
//! * stdout carries the results: [`out!`](crate::out) writes a line and flushes it, and returns an
//!   error when the write fails. A closed pipe (`regimes theory | head -1`) is the error
//!   [`StdoutClosed`], which `main` turns into a quiet exit with status 141 (128 + SIGPIPE, what
//!   a shell reports for a program a closed pipe stopped); any other failure (`> /dev/full`) is
//!   an ordinary error that names stdout.
//! * stderr carries progress, warnings and errors: [`note!`](crate::note) writes a line and
//!   ignores failures, so a dead stderr (`2> /dev/full`, a closed terminal) never stops the work.

use std::fmt;
use std::io::Write;

/// The exit status of a run whose stdout was closed by its reader (128 + SIGPIPE).
pub const CLOSED_PIPE_STATUS: u8 = 141;

/// stdout was closed by its reader: nobody reads the rest, so the program stops quietly.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout was closed by its reader")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `e` is (or was caused by) a closed stdout.
pub fn is_closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::anyhow!("cannot write the results to stdout ({e})")
    }
}

/// Writes `args` and a newline to stdout and flushes it (use [`out!`](crate::out)).
pub fn write_out(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut lock = std::io::stdout().lock();
    lock.write_fmt(args)
        .and_then(|_| lock.write_all(b"\n"))
        .and_then(|_| lock.flush())
        .map_err(stdout_error)
}

/// Writes `args` and a newline to stderr, ignoring failures (use [`note!`](crate::note)).
pub fn write_note(args: fmt::Arguments<'_>) {
    let mut lock = std::io::stderr().lock();
    let _ = lock
        .write_fmt(args)
        .and_then(|_| lock.write_all(b"\n"))
        .and_then(|_| lock.flush());
}

/// `println!` that never panics: evaluates to `anyhow::Result<()>`, an error when stdout fails
/// ([`StdoutClosed`] for a closed pipe).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::report::console::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics and never fails: progress, warnings and errors are best-effort.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::report::console::write_note(format_args!($($arg)*))
    };
}
